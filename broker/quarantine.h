/* SPDX-License-Identifier: MIT */
/*
 * Quarantine and unquarantine: put every member of a group on vfio-pci, or
 * give it back. With the vfio_quarantine module loaded the kernel does it
 * atomically (QUARANTINE / RELEASE over generic netlink); without it the
 * broker writes driver_override, unbind and drivers_probe beneath its sysfs
 * root itself ("sysfs" mode).
 */
#pragma once

#include "broker/broker.h"
#include "broker/identity.h"
#include "broker/inventory.h"
#include "broker/reply.h"

#include <stdbool.h>
#include <stdint.h>

/* What was done: the mode, and the endpoints whose driver changed. */
struct quarantine_result {
	const char *mode; /* "kmod" or "sysfs" */
	size_t n_devices;
	char devices[INVENTORY_MAX_DEVICES][VB_ADDRESS_MAX];
};

/*
 * quarantine_group quarantines group (quarantine true) or gives it back
 * (restore: to its host drivers; else the members stay where they are),
 * for the administrator who. Refused while the group is leased. On success
 * *res says what moved and the change is logged; otherwise *err says why.
 */
int quarantine_group(struct broker *b, const struct identity *who, uint32_t group, bool quarantine,
		     bool restore, struct quarantine_result *res, struct reply_error *err);
