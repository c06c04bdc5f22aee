/* SPDX-License-Identifier: MIT */
/*
 * One client connection: its identity (captured at accept), the handshake,
 * reading requests, and an outgoing queue for a client that does not read.
 * Closing a connection never ends a lease: leases belong to processes.
 */
#pragma once

#include "broker/broker.h"
#include "broker/identity.h"
#include "common/list.h"

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <systemd/sd-event.h>

/*
 * What may be queued for a client that does not read before the connection
 * is dropped: packets (events and small replies), and bytes, so that 64
 * full-size packets (4 MiB) cannot pile up per connection. 2 MiB holds the
 * largest reply, a list of 4,096 groups (188 bytes a one-device entry:
 * 0.8 MB), twice over, with the client reading nothing meanwhile.
 */
#define CONNECTION_MAX_QUEUED	    64
#define CONNECTION_MAX_QUEUED_BYTES (2 * 1024 * 1024)
/* Remove requests one connection may have waiting. */
#define CONNECTION_MAX_PENDING 16

struct connection;
struct holder;
struct packet;
struct rate_bucket;
struct server_uid;

/*
 * How long a client may leave replies queued without reading any of them:
 * past it the connection closes, and what was queued for it (fds included)
 * is freed.
 */
#define CONNECTION_SEND_DEADLINE_USEC (10 * 1000000ULL)

/* What connection_packet_fn is told about a packet besides its bytes. */
enum connection_packet_flags {
	/* The packet was longer than the buffer: buf holds its beginning. */
	CONNECTION_PACKET_TRUNCATED = 1 << 0,
	/*
	 * File descriptors came with it. The broker takes none: the packet was
	 * looked at, not received, so the descriptors were never installed in
	 * the broker, and the connection is closing (its socket, which still
	 * holds them, is closed off the event loop: closer.h).
	 */
	CONNECTION_PACKET_HAS_FDS = 1 << 1,
};

/*
 * What handles a packet read from c: buf (len bytes) and flags
 * (connection_packet_flags). Clients never pass file descriptors.
 */
typedef void (*connection_packet_fn)(struct connection *c, const char *buf, size_t len,
				     unsigned flags);

struct connection {
	struct broker *broker;
	struct list_node link;	    /* in the server's list */
	struct list_node pid_link;  /* in the server's table by the peer's pid */
	struct list_node ready;	    /* in its uid's ready connections (server.c) */
	struct list_node handshake; /* in the server's connections yet to say hello */
	uint64_t handshake_deadline_usec;
	struct server_uid *peer_uid; /* the server's entry for identity->uid */
	uint64_t serial;	     /* for logs */
	int fd;
	struct identity *identity;
	struct rate_bucket *budget; /* the uid's request budget, shared; NULL: not limited */
	connection_packet_fn on_packet;
	bool admin;
	bool handshaken;
	bool closing;		       /* closed at the next loop iteration; sends nothing more */
	bool peer_ended;	       /* the end of the stream was read: nothing is queued */
	bool idle_armed;	       /* the timer is the idle timer, not the handshake's */
	struct holder *holder;	       /* the holder object of the peer process, while it has one */
	unsigned n_pending;	       /* requests waiting for their reply (connection_pending_*) */
	sd_event_source *timer_source; /* idle timeout; made at the handshake, if there is one */
	sd_event_source *send_timer;   /* CONNECTION_SEND_DEADLINE_USEC; made when first needed */
	uint64_t last_request_usec;    /* the idle timer is pushed back lazily from here */
	uint64_t last_sent_usec;       /* when the queue last shrank or started */
	sd_event_source *close_source; /* deferred close */
	struct packet *queue_head, *queue_tail;
	size_t n_queued;
	size_t n_queued_bytes;
};

/*
 * Set up a connection on fd with identity id (both taken on success); packets
 * go to on_packet. fd has SO_PASSCRED on (accepted from the server's
 * listening socket, which has it): credentials on every packet tell a packet
 * from the end of the stream (connection_recv).
 */
int connection_new(struct broker *b, int fd, struct identity *id, connection_packet_fn on_packet,
		   struct connection **ret);
/*
 * Free now: tell the broker, drop the queue, and close the socket through
 * the closer (never a blocking close here). Accepts NULL.
 */
struct connection *connection_free(struct connection *c);

/*
 * connection_send sends obj as one packet with fd attached (borrowed; -1
 * for none). Returns 0 when sent, 1 when queued because the client is not
 * reading, -EAGAIN when a packet with fd could not be sent at once (it is
 * never queued; the connection stays open), or another -errno when it could
 * not be sent: the connection is then closing.
 */
int connection_send(struct connection *c, struct json_object *obj, int fd);
/* connection_send with n_fds (at most VB_MAX_FDS) descriptors attached, borrowed. */
int connection_send_fds(struct connection *c, struct json_object *obj, const int *fds,
			size_t n_fds);
/*
 * connection_send_fds of a packet's text already written (len <= VB_MAX_PACKET_SIZE): the
 * hot replies' writers and list's cache.
 */
int connection_send_packet(struct connection *c, const char *text, size_t len, const int *fds,
			   size_t n_fds);

/* Send queued packets until the socket is full again. Called when c is writable. */
void connection_flush(struct connection *c);
/*
 * Read one packet from c and hand it to its handler; at the end of the
 * stream or on an error c is freed. Called when c is readable.
 */
void connection_read(struct connection *c);

/* Close the connection at the next loop iteration (safe from inside handlers). */
void connection_close(struct connection *c, const char *why);

/* The handshake is done: switch from the handshake to the idle timeout. */
void connection_set_handshaken(struct connection *c);
/* A request arrived: (re)start the idle timer of a handshaken connection. */
void connection_arm_idle(struct connection *c);

/*
 * Requests answered later (a removal waiting for the lease to end) count
 * against CONNECTION_MAX_PENDING and keep the connection from idling out.
 */
bool connection_pending_full(const struct connection *c);
void connection_pending_add(struct connection *c);
void connection_pending_done(struct connection *c);
