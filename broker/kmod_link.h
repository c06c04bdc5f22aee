/* SPDX-License-Identifier: MIT */
/*
 * The link to the vfio_quarantine kernel module: the broker listens to the
 * module's generic netlink events, logs them and tells the holder of a
 * leased group when a device is hot-plugged into it. Without the module the
 * broker runs in "none" mode and retries every 2 s, so that a module loaded
 * (or reloaded) later is picked up.
 */
#pragma once

#include "broker/broker.h"

#include <stdbool.h>

struct kmod_link;

/* Resolve the family now (logging the mode) and watch for it from b->event. */
int kmod_link_new(struct broker *b, struct kmod_link **ret);
/* Accepts NULL. */
struct kmod_link *kmod_link_free(struct kmod_link *k);

/* "kmod" while subscribed to the module's events, else "none". Accepts NULL. */
const char *kmod_link_mode(const struct kmod_link *k);
