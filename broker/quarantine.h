/* SPDX-License-Identifier: MIT */
/*
 * The admin ops quarantine and unquarantine: put every member of a group on
 * vfio-pci, or give it back. With the vfio_quarantine module loaded the
 * kernel does it atomically (QUARANTINE / RELEASE over generic netlink);
 * without it the broker writes driver_override, unbind and drivers_probe
 * beneath its sysfs root itself ("sysfs" mode).
 */
#pragma once

#include "broker/broker.h"
#include "protocol/message.h"

struct connection;

void quarantine_handle(struct broker *b, struct connection *c, const struct vb_request *req);
