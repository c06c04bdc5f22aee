/* SPDX-License-Identifier: MIT */
/*
 * The requests that act on the policy: reload (administrators) and explain
 * (a decision for oneself, or for anyone when an administrator asks). Each
 * returns 0 once it has sent its reply, or a negative errno with *err
 * describing the error reply, which the dispatcher sends.
 */
#pragma once

#include "broker/broker.h"
#include "broker/reply.h"
#include "protocol/message.h"

#include <stddef.h>

struct connection;

int policy_requests_reload(struct broker *b, struct connection *c, const struct vb_request *req,
			   int *fds, size_t n_fds, struct reply_error *err);
int policy_requests_explain(struct broker *b, struct connection *c, const struct vb_request *req,
			    int *fds, size_t n_fds, struct reply_error *err);
