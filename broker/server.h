/* SPDX-License-Identifier: MIT */
/*
 * The listening socket (from systemd, or bound at --socket), accepting
 * connections within the limits, the list of open connections, and each
 * uid's request budget (rate_limit.h, shared by its connections).
 */
#pragma once

#include "broker/broker.h"
#include "broker/connection.h"

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct connection;
struct holder;
struct server;

/*
 * Bytes of replies that may wait for all the connections of one uid (root
 * exempt) that do not read: past it, the connection that would queue more
 * is closed. Four lists of 4,096 groups; without it 64 connections of a
 * uid could pin 64 times CONNECTION_MAX_QUEUED_BYTES.
 */
#define SERVER_MAX_QUEUED_BYTES_PER_UID (8 * 1024 * 1024)

/* What the rest of the broker does as connections come and go and requests arrive. */
struct server_hooks {
	/* A packet arrived on c: the request handling above the connection. */
	connection_packet_fn packet;
	/* c was accepted. */
	void (*opened)(struct connection *c);
	/* c is closing and about to be freed: drop every pointer to it. */
	void (*closed)(struct connection *c);
};

/* Take the socket from systemd or create it; start accepting. hooks are borrowed. */
int server_new(struct broker *b, const struct server_hooks *hooks, struct server **ret);
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
/*
 * server_charge_turns says that the request c is being served for cost
 * turns of the per-uid round robin, not one (a list: PROTOCOL.md, Limits):
 * the next turns - 1 times its uid is first in the ring, the next uid
 * with a request waiting goes first; with none, the wake-up ends there
 * (the next one sees whatever arrived meanwhile). It owes at most
 * SERVER_MAX_OWED turns.
 */
void server_charge_turns(struct server *s, struct connection *c, unsigned turns);

/* Whether len more bytes may be queued for c's uid (SERVER_MAX_QUEUED_BYTES_PER_UID). */
bool server_may_queue(struct server *s, struct connection *c, size_t len);
/* c's queue grew (delta > 0) or shrank by delta bytes. */
void server_count_queued(struct server *s, struct connection *c, ssize_t delta);
/* Watch c for output too (output), or for input only: replies are queued or not. */
void server_watch_output(struct server *s, struct connection *c, bool output);

/* Called by connection_free. */
void server_remove_connection(struct server *s, struct connection *c);

/* Link every connection of h's (live) process to h, so events for h reach them. */
void server_attach_holder(struct server *s, struct holder *h);
/* h is going away: unlink it from every connection. */
void server_detach_holder(struct server *s, const struct holder *h);

/* Send obj (not taken) to every open connection of h's process; how many got it. */
size_t server_send_to_holder(struct server *s, const struct holder *h, struct json_object *obj);
