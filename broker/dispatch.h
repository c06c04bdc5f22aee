/* SPDX-License-Identifier: MIT */
/*
 * From a packet read on a connection to a handler call: the per-uid rate,
 * decoding, the handshake check, and one table of ops. A packet that came
 * with file descriptors is refused and its connection closed. This is the
 * one place where a handler's error becomes an error reply.
 */
#pragma once

#include <stddef.h>

struct connection;

/*
 * dispatch_packet handles one packet read from c (a connection_packet_fn):
 * it is answered, with a reply or an error reply, or (for remove) later.
 */
void dispatch_packet(struct connection *c, const char *buf, size_t len, unsigned flags);
