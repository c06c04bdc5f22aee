/* SPDX-License-Identifier: MIT */
/*
 * The requests that act on leases: lease, release, leases, merge, unmerge
 * and remove. Each returns 0 once it has sent its reply (or, for remove,
 * once the reply is due later), or a negative errno with *err describing
 * the error reply, which the dispatcher sends. fds (n_fds) are taken.
 */
#pragma once

#include "broker/broker.h"
#include "broker/reply.h"
#include "protocol/message.h"

#include <stddef.h>

struct connection;

int lease_requests_lease(struct broker *b, struct connection *c, const struct vb_request *req,
			 int *fds, size_t n_fds, struct reply_error *err);
int lease_requests_release(struct broker *b, struct connection *c, const struct vb_request *req,
			   int *fds, size_t n_fds, struct reply_error *err);
int lease_requests_list(struct broker *b, struct connection *c, const struct vb_request *req,
			int *fds, size_t n_fds, struct reply_error *err);
/* merge takes an optional container: fds[0]. */
int lease_requests_merge(struct broker *b, struct connection *c, const struct vb_request *req,
			 int *fds, size_t n_fds, struct reply_error *err);
int lease_requests_unmerge(struct broker *b, struct connection *c, const struct vb_request *req,
			   int *fds, size_t n_fds, struct reply_error *err);
int lease_requests_remove(struct broker *b, struct connection *c, const struct vb_request *req,
			  int *fds, size_t n_fds, struct reply_error *err);

/* c is going away: nothing it asked for is answered any more. */
void lease_requests_connection_closed(struct broker *b, struct connection *c);
