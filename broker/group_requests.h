/* SPDX-License-Identifier: MIT */
/*
 * The requests that act on IOMMU groups as sysfs shows them: list, and the
 * administrator's quarantine and unquarantine. Each returns 0 once it has
 * sent its reply, or a negative errno with *err describing the error reply,
 * which the dispatcher sends.
 */
#pragma once

#include "broker/broker.h"
#include "broker/reply.h"
#include "protocol/message.h"

#include <stddef.h>

struct connection;

int group_requests_list(struct broker *b, struct connection *c, const struct vb_request *req,
			int *fds, size_t n_fds, struct reply_error *err);
/* quarantine and unquarantine {group, restore}. */
int group_requests_quarantine(struct broker *b, struct connection *c, const struct vb_request *req,
			      int *fds, size_t n_fds, struct reply_error *err);
