/* SPDX-License-Identifier: MIT */
/*
 * The listening socket (from systemd, or bound at --socket), accepting
 * connections within the limits, and the list of open connections.
 */
#pragma once

#include "broker/broker.h"

#include <json-c/json.h>
#include <stddef.h>
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

/* Called by connection_free. */
void server_remove_connection(struct server *s, struct connection *c);

/* Link every connection of h's (live) process to h, so events for h reach them. */
void server_attach_holder(struct server *s, struct holder *h);
/* h is going away: unlink it from every connection. */
void server_detach_holder(struct server *s, const struct holder *h);

/* Call fn for every open connection (fn must not free connections: close them). */
void server_foreach_connection(struct server *s, void (*fn)(struct connection *c, void *ud),
			       void *ud);
