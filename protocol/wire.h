/* SPDX-License-Identifier: MIT */
/*
 * Framing of the vfio-broker socket: one SOCK_SEQPACKET packet carries one
 * message; file descriptors travel beside it as SCM_RIGHTS. See PROTOCOL.md.
 */
#pragma once

#include <stddef.h>

/* Largest request a client may send; larger packets are refused (limit). */
#define VB_MAX_REQUEST_SIZE 4096
/* Largest packet either side sends; replies that would be larger are chunked. */
#define VB_MAX_PACKET_SIZE 65536
/*
 * Most fds one packet may carry; extra fds are closed by the receiver. A
 * cdev lease carries an iommufd and one fd per endpoint of the group.
 */
#define VB_MAX_FDS 16

enum vb_wire_flags {
	VB_WIRE_TRUNCATED = 1 << 0, /* the packet was larger than the buffer: payload discarded */
	VB_WIRE_FDS_DROPPED =
		1 << 1, /* more fds than max_fds arrived: all extra ones were closed */
};

/*
 * vb_wire_send sends one packet with n_fds file descriptors attached.
 * Never raises SIGPIPE. Returns 0, or -errno (-EAGAIN when the peer's queue
 * is full on a non-blocking socket, -EMSGSIZE above VB_MAX_PACKET_SIZE).
 */
int vb_wire_send(int fd, const void *buf, size_t len, const int *fds, size_t n_fds);

/*
 * vb_wire_recv receives one packet into buf (size bytes). Up to max_fds
 * received descriptors (O_CLOEXEC) are stored in fds; any beyond that are
 * closed at once and VB_WIRE_FDS_DROPPED is set. A packet larger than size
 * sets VB_WIRE_TRUNCATED; its fds are still returned so that the caller
 * closes them with everything else. Returns 0 on a packet, -ECONNRESET when
 * the peer has gone (end of stream), or -errno (-EAGAIN when nothing is queued).
 */
int vb_wire_recv(int fd, void *buf, size_t size, size_t *ret_len, int *fds, size_t max_fds,
		 size_t *ret_n_fds, unsigned *ret_flags);

/*
 * vb_wire_recv_flags is vb_wire_recv with recvmsg(2) flags added (MSG_DONTWAIT: never wait,
 * even on a blocking socket).
 */
int vb_wire_recv_flags(int fd, int msg_flags, void *buf, size_t size, size_t *ret_len, int *fds,
		       size_t max_fds, size_t *ret_n_fds, unsigned *ret_flags);

/* vb_wire_close_fds closes n descriptors and sets them to -1. */
void vb_wire_close_fds(int *fds, size_t n);
