/* SPDX-License-Identifier: MIT */
#include "protocol/wire.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

void vb_wire_close_fds(int *fds, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (fds[i] >= 0)
			close(fds[i]);
		fds[i] = -1;
	}
}

int vb_wire_send(int fd, const void *buf, size_t len, const int *fds, size_t n_fds)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * VB_MAX_FDS)];
	} control;
	struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};

	if (len == 0 || len > VB_MAX_PACKET_SIZE || n_fds > VB_MAX_FDS)
		return -EMSGSIZE;

	if (n_fds > 0) {
		struct cmsghdr *cmsg;

		memset(&control, 0, sizeof(control));
		msg.msg_control = control.buf;
		msg.msg_controllen = CMSG_SPACE(sizeof(int) * n_fds);
		cmsg = CMSG_FIRSTHDR(&msg);
		cmsg->cmsg_level = SOL_SOCKET;
		cmsg->cmsg_type = SCM_RIGHTS;
		cmsg->cmsg_len = CMSG_LEN(sizeof(int) * n_fds);
		memcpy(CMSG_DATA(cmsg), fds, sizeof(int) * n_fds);
	}

	for (;;) {
		ssize_t n = sendmsg(fd, &msg, MSG_NOSIGNAL);
		if (n >= 0)
			return (size_t)n == len ? 0 : -EIO;
		if (errno != EINTR)
			return -errno;
	}
}

/*
 * Take every SCM_RIGHTS descriptor out of msg: the first max_fds go to fds,
 * the rest are closed. Anything else (SCM_CREDENTIALS and friends) carries
 * no fds and is ignored: identity comes from SO_PEERCRED, never from a
 * message the client wrote.
 */
static void wire_collect_fds(struct msghdr *msg, int *fds, size_t max_fds, size_t *n_fds,
			     unsigned *flags)
{
	for (struct cmsghdr *c = CMSG_FIRSTHDR(msg); c; c = CMSG_NXTHDR(msg, c)) {
		size_t count;
		int received[64];

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < count; i += 64) {
			size_t chunk = count - i < 64 ? count - i : 64;

			memcpy(received, CMSG_DATA(c) + i * sizeof(int), chunk * sizeof(int));
			for (size_t j = 0; j < chunk; j++) {
				if (*n_fds < max_fds) {
					fds[(*n_fds)++] = received[j];
				} else {
					close(received[j]);
					*flags |= VB_WIRE_FDS_DROPPED;
				}
			}
		}
	}
}

int vb_wire_recv(int fd, void *buf, size_t size, size_t *ret_len, int *fds, size_t max_fds,
		 size_t *ret_n_fds, unsigned *ret_flags)
{
	return vb_wire_recv_flags(fd, 0, buf, size, ret_len, fds, max_fds, ret_n_fds, ret_flags);
}

int vb_wire_recv_flags(int fd, int msg_flags, void *buf, size_t size, size_t *ret_len, int *fds,
		       size_t max_fds, size_t *ret_n_fds, unsigned *ret_flags)
{
	/* Room for more fds than we accept, so that a flood is seen and closed
	 * here rather than silently truncated; the kernel closes any beyond. */
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * 253)];
	} control;
	struct iovec iov = {.iov_base = buf, .iov_len = size};
	struct msghdr msg = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = control.buf,
		.msg_controllen = sizeof(control.buf),
	};
	unsigned flags = 0;
	size_t n_fds = 0;
	ssize_t n;

	for (;;) {
		n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC | msg_flags);
		if (n >= 0)
			break;
		if (errno != EINTR)
			return -errno;
	}

	wire_collect_fds(&msg, fds, max_fds, &n_fds, &flags);
	if (msg.msg_flags & MSG_CTRUNC)
		flags |= VB_WIRE_FDS_DROPPED;
	if (msg.msg_flags & MSG_TRUNC)
		flags |= VB_WIRE_TRUNCATED;

	if (n == 0 && n_fds == 0 && !(flags & VB_WIRE_FDS_DROPPED))
		return -ECONNRESET;

	*ret_len = (size_t)n;
	*ret_n_fds = n_fds;
	*ret_flags = flags;
	return 0;
}
