/* SPDX-License-Identifier: MIT */
/*
 * The link to the vfio_quarantine kernel module: the broker asks the module
 * to quarantine and release groups, listens to the module's generic netlink
 * events, logs them and tells the holder of a leased group when a device is
 * hot-plugged into it; a soft removal relays the VFIO device request through it
 * (kmod_link_request_device). Without the module the
 * broker runs in "none" mode and retries every 2 s, so that a module loaded
 * (or reloaded) later is picked up.
 */
#pragma once

#include "broker/broker.h"

#include <stdbool.h>
#include <stdint.h>

struct kmod_link;

enum kmod_mode {
	KMOD_MODE_NONE, /* the module is not loaded (or went away) */
	KMOD_MODE_KMOD, /* subscribed to the module's events */
};

/* What the kernel answered to one request. */
struct kmod_answer {
	bool done;
	int error;     /* 0 or -errno */
	char msg[256]; /* NLMSGERR_ATTR_MSG; "" when none */
	bool replied;  /* REQUEST_DEVICE: the module sent its reply */
	bool eventfd;  /* REQUEST_DEVICE: the VFIO user has a request eventfd */
};

/* Resolve the family now (logging the mode) and watch for it from b->event. */
int kmod_link_new(struct broker *b, struct kmod_link **ret);
/* Accepts NULL. */
struct kmod_link *kmod_link_free(struct kmod_link *k);

/* KMOD_MODE_KMOD while subscribed to the module's events. Accepts NULL. */
enum kmod_mode kmod_link_mode(const struct kmod_link *k);
/* "kmod", "none": the mode as list replies and logs name it. */
const char *kmod_mode_to_string(enum kmod_mode m);

/*
 * kmod_link_quarantine asks the module to quarantine group, and
 * kmod_link_release to give it back (restore: to its host drivers). Each
 * uses a short-lived blocking socket of its own (the event socket stays
 * non-blocking); the kernel answers at once. Returns 0, the kernel's -errno
 * with its extended-ack message in a->msg, or -EIO when the exchange itself
 * failed.
 */
int kmod_link_quarantine(struct kmod_link *k, uint32_t group, struct kmod_answer *a);
int kmod_link_release(struct kmod_link *k, uint32_t group, bool restore, struct kmod_answer *a);

/*
 * kmod_link_request_device asks the module to relay a VFIO device request to
 * the user of device (a PCI address bound to vfio-pci), without unbinding it:
 * the module signals the eventfd the user registered at VFIO_PCI_REQ_IRQ_INDEX,
 * and a->eventfd says whether there was one. Same socket and answers as
 * kmod_link_quarantine; -ENXIO: the device is not on vfio-pci; -EBUSY: it is
 * being bound or unbound (an unbind waiting for the user relays the request
 * itself). Only while kmod_link_mode is KMOD: asking for a missing family
 * makes the kernel run modprobe.
 */
int kmod_link_request_device(struct kmod_link *k, const char *device, struct kmod_answer *a);
