/* SPDX-License-Identifier: MIT */
/*
 * The requests of the protocol: one handler per op, dispatched from one
 * place, and the helpers every handler builds its replies with.
 */
#pragma once

#include "broker/broker.h"
#include "broker/inventory.h"
#include "broker/lease.h"
#include "policy/policy.h"
#include "protocol/message.h"

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>

struct connection;

/*
 * ops_dispatch runs one decoded request of a handshaken connection. fds
 * (n_fds, at most vb_op_max_fds(op)) are taken: every handler closes or
 * keeps them.
 */
void ops_dispatch(struct broker *b, struct connection *c, const struct vb_request *req, int *fds,
		  size_t n_fds);

/* The hello request, the only one a connection may send before its handshake. */
void ops_hello(struct broker *b, struct connection *c, const struct vb_request *req);

/* An error reply: one sentence saying what is wrong and, where possible, what to do. */
struct json_object *ops_error(uint32_t id, enum vb_status code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Add a detail field ("rule", "uid", ...) to an error reply; takes val. */
void ops_error_detail(struct json_object *reply, const char *key, struct json_object *val);
/* Send reply (taken and freed) with fd attached (borrowed; -1: none). As connection_send. */
int ops_send(struct connection *c, struct json_object *reply, int fd);
/* Send an error reply at once. */
void ops_send_error(struct connection *c, uint32_t id, enum vb_status code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/*
 * ops_check_group reads group and asks the policy whether c's peer may do
 * action on it. On success *ret_group (freed by the caller) and *ret are
 * set. Otherwise the error reply (no-such-group, denied, internal) has been
 * sent for request id, the denial logged, and a negative errno is returned.
 */
int ops_check_group(struct broker *b, struct connection *c, uint32_t id, uint32_t group,
		    enum policy_action action, struct inventory_group **ret_group,
		    struct policy_decision *ret);

/* Send obj (not taken) to every open connection of the holder's process; how many got it. */
size_t ops_notify_holder(struct broker *b, const struct holder *h, struct json_object *obj);

/* The hooks main.c gives the lease table (userdata: the broker). */
extern const struct lease_hooks ops_lease_hooks;

/* Refresh the STATUS= line systemd shows. */
void ops_update_status(struct broker *b);

/* Milliseconds of CLOCK_MONOTONIC, for elapsed times. */
uint64_t ops_now_msec(void);
