/* SPDX-License-Identifier: MIT */
/*
 * One client connection: its identity (captured at accept), the handshake,
 * reading requests, and an outgoing queue for a client that does not read.
 * Closing a connection never ends a lease: leases belong to processes.
 */
#pragma once

#include "broker/broker.h"
#include "broker/identity.h"

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <systemd/sd-event.h>

/* Packets queued for a client that does not read before the connection is dropped. */
#define CONNECTION_MAX_QUEUED 64
/* Remove requests one connection may have waiting. */
#define CONNECTION_MAX_PENDING 16

struct holder;
struct server;
struct server_uid;
struct packet;

struct connection {
	struct broker *broker;
	struct connection *prev, *next; /* in the server's list */
	uint64_t serial;		/* for logs */
	int fd;
	struct identity *identity;
	struct server_uid *budget; /* the uid's request budget, shared; NULL: not limited */
	bool admin;
	bool handshaken;
	bool closing;	       /* closed at the next loop iteration; sends nothing more */
	struct holder *holder; /* the holder object of the peer process, while it has one */
	unsigned n_pending;    /* remove requests waiting for their reply */
	sd_event_source *io_source;
	sd_event_source *timer_source; /* handshake, then idle timeout */
	sd_event_source *close_source; /* deferred close */
	struct packet *queue_head, *queue_tail;
	size_t n_queued;
};

/* Set up a connection on fd with identity id (both taken on success). */
int connection_new(struct broker *b, int fd, struct identity *id, struct connection **ret);
/* Free now: close the socket and queued fds, tell the broker. Accepts NULL. */
struct connection *connection_free(struct connection *c);

/*
 * connection_send sends obj as one packet with fd attached (borrowed; -1
 * for none). Returns 0 when sent, 1 when queued because the client is not
 * reading (the fd is duplicated into the queue), or -errno when it could
 * not be sent: the connection is then closing.
 */
int connection_send(struct connection *c, struct json_object *obj, int fd);

/* Close the connection at the next loop iteration (safe from inside handlers). */
void connection_close(struct connection *c, const char *why);

/* The handshake is done: switch from the handshake to the idle timeout. */
void connection_set_handshaken(struct connection *c);
