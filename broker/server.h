/* SPDX-License-Identifier: MIT */
/*
 * The listening socket (from systemd, or bound at --socket), accepting
 * connections within the limits, the list of open connections, and each
 * uid's request budget (a token bucket shared by its connections).
 */
#pragma once

#include "broker/broker.h"

#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct connection;
struct holder;
struct server;

/* Take the socket from systemd or create it; start accepting. */
int server_new(struct broker *b, struct server **ret);
/* Close every connection and the socket (unlinking it if we created it). */
struct server *server_free(struct server *s);

const char *server_socket_path(const struct server *s);
size_t server_count_connections(const struct server *s);

/*
 * server_charge_request takes one request from the budget of c's uid. 0:
 * go on. -EUSERS: the uid is over --max-requests-per-uid; *ret_retry_ms is
 * then how long until it may send the next one. Root is never charged.
 */
int server_charge_request(struct server *s, struct connection *c, uint64_t *ret_retry_ms);

/* Called by connection_free. */
void server_remove_connection(struct server *s, struct connection *c);

/* Link every connection of h's (live) process to h, so events for h reach them. */
void server_attach_holder(struct server *s, struct holder *h);
/* h is going away: unlink it from every connection. */
void server_detach_holder(struct server *s, const struct holder *h);

/* Call fn for every open connection (fn must not free connections: close them). */
void server_foreach_connection(struct server *s, void (*fn)(struct connection *c, void *ud),
			       void *ud);
