/* SPDX-License-Identifier: MIT */
#include "broker/connection.h"
#include "broker/closer.h"
#include "broker/log.h"
#include "broker/server.h"
#include "common/cleanup.h"
#include "protocol/message.h"
#include "protocol/reply.h"
#include "protocol/wire.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

struct packet {
	struct packet *next;
	int fd; /* a duplicate owned by the queue, or -1 */
	size_t len;
	char data[];
};

static uint64_t connection_serial;

static int connection_on_timer(sd_event_source *s, uint64_t usec, void *userdata);

/* CLOCK_MONOTONIC of this loop iteration, in µs (no system call). */
static uint64_t connection_now(const struct connection *c)
{
	uint64_t now = 0;

	(void)sd_event_now(c->broker->event, CLOCK_MONOTONIC, &now);
	return now;
}

static struct packet *packet_free(struct packet *p)
{
	if (!p)
		return NULL;
	safe_close(p->fd);
	free(p);
	return NULL;
}

void connection_close(struct connection *c, const char *why)
{
	if (c->closing)
		return;
	c->closing = true;
	log_debug("Closing connection %llu of pid %d (uid %u): %s", (unsigned long long)c->serial,
		  (int)c->identity->pid.pid, (unsigned)c->identity->uid, why);
	if (list_is_linked(&c->handshake))
		list_unlink(&c->handshake);
	sd_event_source_set_enabled(c->timer_source, SD_EVENT_OFF);
	sd_event_source_set_enabled(c->send_timer, SD_EVENT_OFF);
	sd_event_source_set_enabled(c->close_source, SD_EVENT_ONESHOT);
}

static int connection_on_close(sd_event_source *s, void *userdata)
{
	connection_free(userdata);
	return 0;
}

/* An empty queue stops EPOLLOUT; any packet sent restarts the send deadline. */
void connection_flush(struct connection *c)
{
	while (c->queue_head) {
		struct packet *p = c->queue_head;
		int r = vb_wire_send(c->fd, p->data, p->len, p->fd >= 0 ? &p->fd : NULL,
				     p->fd >= 0 ? 1 : 0);

		if (r == -EAGAIN)
			return;
		if (r < 0) {
			connection_close(c, "sending failed");
			return;
		}
		c->queue_head = p->next;
		if (!c->queue_head)
			c->queue_tail = NULL;
		c->n_queued--;
		c->n_queued_bytes -= p->len;
		server_count_queued(c->broker->server, c, -(ssize_t)p->len);
		c->last_sent_usec = connection_now(c);
		packet_free(p);
	}
	sd_event_source_set_enabled(c->send_timer, SD_EVENT_OFF);
	server_watch_output(c->broker->server, c, false);
}

/*
 * The client has read nothing for CONNECTION_SEND_DEADLINE_USEC while
 * replies waited: close it, which frees what was queued (fds included).
 */
static int connection_on_send_deadline(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct connection *c = userdata;
	uint64_t deadline = c->last_sent_usec + CONNECTION_SEND_DEADLINE_USEC;

	if (!c->queue_head)
		return 0;
	if (usec < deadline) {
		sd_event_source_set_time(s, deadline);
		sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
		return 0;
	}
	log_warning("Dropping connection %llu of pid %d (uid %u): it has not read a reply for "
		    "%llu s (%zu replies, %zu bytes queued)",
		    (unsigned long long)c->serial, (int)c->identity->pid.pid,
		    (unsigned)c->identity->uid,
		    (unsigned long long)(CONNECTION_SEND_DEADLINE_USEC / 1000000), c->n_queued,
		    c->n_queued_bytes);
	connection_close(c, "it does not read its replies");
	return 0;
}

/* The queue was empty and is not: start the send deadline and watch for output. */
static int connection_start_queue(struct connection *c)
{
	uint64_t now = connection_now(c);
	int r;

	c->last_sent_usec = now;
	if (!c->send_timer) {
		r = sd_event_add_time(c->broker->event, &c->send_timer, CLOCK_MONOTONIC,
				      now + CONNECTION_SEND_DEADLINE_USEC, 0,
				      connection_on_send_deadline, c);
		if (r < 0)
			return r;
	} else {
		sd_event_source_set_time(c->send_timer, now + CONNECTION_SEND_DEADLINE_USEC);
	}
	sd_event_source_set_enabled(c->send_timer, SD_EVENT_ONESHOT);
	server_watch_output(c->broker->server, c, true);
	return 0;
}

static int connection_enqueue(struct connection *c, const char *text, size_t len, int fd)
{
	struct packet *p;

	if (c->n_queued >= CONNECTION_MAX_QUEUED ||
	    c->n_queued_bytes + len > CONNECTION_MAX_QUEUED_BYTES ||
	    !server_may_queue(c->broker->server, c, len)) {
		log_warning("Dropping connection %llu of pid %d (uid %u): %zu replies (%zu bytes) "
			    "queued and it does not read them",
			    (unsigned long long)c->serial, (int)c->identity->pid.pid,
			    (unsigned)c->identity->uid, c->n_queued, c->n_queued_bytes);
		connection_close(c, "outgoing queue full");
		return -ENOBUFS;
	}
	p = malloc(sizeof(*p) + len);
	if (!p) {
		connection_close(c, "out of memory");
		return -ENOMEM;
	}
	p->next = NULL;
	p->len = len;
	memcpy(p->data, text, len);
	p->fd = -1;
	if (fd >= 0) {
		/* The queue owns a copy: the same open file description as fd. */
		p->fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
		if (p->fd < 0) {
			int r = -errno;

			free(p);
			connection_close(c, "could not queue a file descriptor");
			return r;
		}
	}
	if (!c->queue_head) {
		int r = connection_start_queue(c);

		if (r < 0) {
			packet_free(p);
			connection_close(c, "out of memory");
			return r;
		}
	}
	if (c->queue_tail)
		c->queue_tail->next = p;
	else
		c->queue_head = p;
	c->queue_tail = p;
	c->n_queued++;
	c->n_queued_bytes += len;
	server_count_queued(c->broker->server, c, (ssize_t)len);
	return 1;
}

int connection_send(struct connection *c, struct json_object *obj, int fd)
{
	return connection_send_fds(c, obj, fd >= 0 ? &fd : NULL, fd >= 0 ? 1 : 0);
}

int connection_send_fds(struct connection *c, struct json_object *obj, const int *fds, size_t n_fds)
{
	/* The broker is single-threaded, and the text is sent or copied before we return. */
	static char text[VB_MAX_PACKET_SIZE];
	size_t len;
	int r;

	if (c->closing)
		return -ECONNRESET;
	r = vb_packet_serialize(obj, text, sizeof(text), &len);
	if (r < 0)
		return log_error_errno(r, "Failed to serialise a reply: %m");
	return connection_send_packet(c, text, len, fds, n_fds);
}

int connection_send_packet(struct connection *c, const char *text, size_t len, const int *fds,
			   size_t n_fds)
{
	int r;

	if (c->closing)
		return -ECONNRESET;
	if (c->n_queued == 0) {
		r = vb_wire_send(c->fd, text, len, fds, n_fds);
		if (r == 0)
			return 0;
		if (r != -EAGAIN) {
			connection_close(c, "sending failed");
			return r;
		}
	}
	/*
	 * A descriptor is never queued: a group file in the broker's queue is out
	 * of the lease's cgroup and of hard removal's reach (issue 13). The caller
	 * takes back what it meant to send; the connection stays open.
	 */
	if (n_fds > 0)
		return -EAGAIN;
	return connection_enqueue(c, text, len, -1);
}

/*
 * The idle timer is pushed back lazily: a request only records when it came,
 * and the timer, when it fires, looks at that. No timer is moved per request
 * (moving the earliest one costs sd-event a timerfd_settime()). It is made at
 * the handshake, and only with an idle timeout: the default has none.
 */
void connection_arm_idle(struct connection *c)
{
	uint64_t idle = c->broker->config.idle_timeout_usec;
	int enabled = SD_EVENT_OFF;

	if (!c->handshaken)
		return;
	c->last_request_usec = connection_now(c);
	if (idle == 0) {
		sd_event_source_set_enabled(c->timer_source, SD_EVENT_OFF);
		return;
	}
	if (!c->timer_source) {
		if (sd_event_add_time(c->broker->event, &c->timer_source, CLOCK_MONOTONIC,
				      c->last_request_usec + idle, 0, connection_on_timer, c) < 0) {
			connection_close(c, "out of memory");
			return;
		}
		c->idle_armed = true;
		return;
	}
	(void)sd_event_source_get_enabled(c->timer_source, &enabled);
	if (enabled != SD_EVENT_OFF && c->idle_armed)
		return;
	c->idle_armed = true;
	sd_event_source_set_time(c->timer_source, c->last_request_usec + idle);
	sd_event_source_set_enabled(c->timer_source, SD_EVENT_ONESHOT);
}

/*
 * The handshake is done: the connection leaves the server's handshake
 * deadline (server.c), whose timer is left as it is (it finds nothing due
 * when it fires), and the idle timeout starts, if there is one.
 */
void connection_set_handshaken(struct connection *c)
{
	c->handshaken = true;
	if (list_is_linked(&c->handshake))
		list_unlink(&c->handshake);
	connection_arm_idle(c);
}

static int connection_on_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct connection *c = userdata;

	/* A request came since the timer was set: wait from that one. */
	if (c->last_request_usec + c->broker->config.idle_timeout_usec > usec) {
		sd_event_source_set_time(s, c->last_request_usec +
						    c->broker->config.idle_timeout_usec);
		sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
		return 0;
	}
	/* An administrator waiting for a removal is not idle. */
	if (c->n_pending > 0 || c->n_queued > 0) {
		connection_arm_idle(c);
		return 0;
	}
	connection_close(c, "idle timeout");
	return 0;
}

bool connection_pending_full(const struct connection *c)
{
	return c->n_pending >= CONNECTION_MAX_PENDING;
}

void connection_pending_add(struct connection *c)
{
	c->n_pending++;
}

void connection_pending_done(struct connection *c)
{
	if (c->n_pending > 0)
		c->n_pending--;
}

/*
 * One recvmsg() of the next packet into buf that can never install or drop
 * a file descriptor in the broker: the control buffer has room for the
 * credentials (SO_PASSCRED is on) and nothing else, and with MSG_PEEK the
 * kernel only drops references of its own while the packet keeps its
 * descriptors. *ret_fds says some were attached (MSG_CTRUNC). Returns the
 * length, -EPIPE at the end of the stream (nothing queued, nothing more can
 * be), or -errno (-EAGAIN: none; -ECONNRESET: the peer closed, maybe with
 * packets still queued).
 */
static ssize_t connection_recv(int fd, int flags, char *buf, size_t size, bool *ret_truncated,
			       bool *ret_fds)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(struct ucred))];
	} control;
	struct iovec iov = {.iov_base = buf, .iov_len = size};
	struct msghdr msg = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = control.buf,
		.msg_controllen = sizeof(control.buf),
	};
	ssize_t n;

	do
		n = recvmsg(fd, &msg, flags | MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	/* Every packet carries credentials; none at all is the end of the stream. */
	if (!CMSG_FIRSTHDR(&msg) && !(msg.msg_flags & MSG_CTRUNC))
		return -EPIPE;
	*ret_truncated = msg.msg_flags & MSG_TRUNC;
	*ret_fds = msg.msg_flags & MSG_CTRUNC;
	return n;
}

/*
 * Receive one packet and hand it to on_packet. A packet that carries file
 * descriptors is only looked at (MSG_PEEK): its descriptors stay in the
 * socket, never in the broker, where a close() or fstat() of them could
 * block the loop for as long as the client likes; on_packet is told, and
 * the connection closes. Returns -EAGAIN when nothing is queued and another
 * negative errno when the connection is to be closed.
 */
static int connection_read_one(struct connection *c)
{
	char buf[VB_MAX_REQUEST_SIZE + 1];
	bool truncated, has_fds, again_truncated, again_fds;
	ssize_t n;

	n = connection_recv(c->fd, MSG_PEEK, buf, sizeof(buf), &truncated, &has_fds);
	if (n < 0)
		return (int)n;
	if (has_fds) {
		c->on_packet(c, buf, (size_t)n,
			     CONNECTION_PACKET_HAS_FDS |
				     (truncated ? CONNECTION_PACKET_TRUNCATED : 0));
		connection_close(c, "it sent file descriptors");
		return 0;
	}
	/* The packet peeked at is the one taken: only the broker reads this socket. */
	n = connection_recv(c->fd, 0, buf, sizeof(buf), &again_truncated, &again_fds);
	if (n < 0)
		return n == -EAGAIN ? -EIO : (int)n;
	c->on_packet(c, buf, (size_t)n, truncated ? CONNECTION_PACKET_TRUNCATED : 0);
	return 0;
}

void connection_read(struct connection *c)
{
	int r;

	if (c->closing)
		return;
	r = connection_read_one(c);
	if (r >= 0 || r == -EAGAIN)
		return;
	c->peer_ended = r == -EPIPE;
	connection_close(c, r == -EPIPE || r == -ECONNRESET ? "closed by the client"
							    : "receiving failed");
	/*
	 * Nothing up the stack holds c here, so free it now rather than one loop
	 * iteration later: a connection per request pays for that iteration.
	 */
	connection_free(c);
}

int connection_new(struct broker *b, int fd, struct identity *id, connection_packet_fn on_packet,
		   struct connection **ret)
{
	struct connection *c;
	int r;

	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->broker = b;
	c->fd = fd;
	c->identity = id;
	c->on_packet = on_packet;
	list_init(&c->link);
	list_init(&c->pid_link);
	list_init(&c->ready);
	list_init(&c->handshake);
	c->serial = ++connection_serial;
	c->admin = id->uid == 0 || (b->has_admin_gid && identity_has_gid(id, b->admin_gid));

	r = sd_event_add_defer(b->event, &c->close_source, connection_on_close, c);
	if (r < 0) {
		free(c);
		return r;
	}
	sd_event_source_set_enabled(c->close_source, SD_EVENT_OFF);
	*ret = c;
	return 0;
}

struct connection *connection_free(struct connection *c)
{
	if (!c)
		return NULL;
	c->closing = true;
	if (list_is_linked(&c->handshake))
		list_unlink(&c->handshake);
	server_remove_connection(c->broker->server, c);
	while (c->queue_head) {
		struct packet *p = c->queue_head;

		c->queue_head = p->next;
		packet_free(p);
	}
	sd_event_source_disable_unref(c->timer_source);
	sd_event_source_disable_unref(c->send_timer);
	sd_event_source_disable_unref(c->close_source);
	if (c->peer_ended)
		closer_close_ended_socket(c->fd);
	else
		closer_close_socket(c->broker->closer, c->fd, c->identity->uid);
	identity_free(c->identity);
	free(c);
	return NULL;
}
