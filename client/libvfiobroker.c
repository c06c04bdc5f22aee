/* SPDX-License-Identifier: MIT */
/*
 * libvfiobroker: one connection to vfio-brokerd, spoken through the shared
 * protocol code (protocol/message.h, protocol/reply.h, protocol/wire.h), and
 * reads every reply through its typed decoder. A call that needs an
 * answer waits for it in one blocking recvmsg(2); vfiobroker_next_event() reads
 * with MSG_DONTWAIT, so it never waits. The library does not rely on the
 * socket's O_NONBLOCK flag either way: where an event loop has set it, a call
 * waits for its answer in poll(2) instead.
 */
#include "client/vfiobroker.h"
#include "common/cleanup.h"
#include "protocol/message.h"
#include "protocol/reply.h"
#include "protocol/wire.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* A reconnect's hello may take at least this long, however little time is left. */
#define VFIOBROKER_RECONNECT_HELLO_MS 1000

#ifndef VB_VERSION
#define VB_VERSION "0"
#endif

struct vfiobroker {
	int fd;
	uint32_t next_id;
	bool broken; /* the broker closed the connection, or it failed for good */
	int wait_ms; /* how long a reply may take: -1 for ever; else -ETIMEDOUT after */
	bool admin;
	uid_t uid;
	char quarantine[8];	    /* the last list reply's "quarantine"; "" when it had none */
	struct sockaddr_un address; /* where the broker was found, for vfiobroker_reconnect */
	socklen_t address_len;

	/* The last refusal; code[0] == '\0' when the last call did not fail that way. */
	char error_code[32];
	char error_message[VB_MESSAGE_MAX];
	struct json_object *error; /* the reply's "error" object, for details; or NULL */

	/* Events that arrived while a call waited for its reply: a ring. */
	struct vfiobroker_event events[VFIOBROKER_EVENT_QUEUE];
	size_t events_head;
	size_t n_events;
	unsigned events_dropped;

	/*
	 * While a list call waits: its request's id, and where broker_receive
	 * decodes its chunks (vb_list_chunk_decode: no json-c tree), to be
	 * taken by list_append_chunk. NULL at any other time.
	 */
	struct vb_list_reply *list_chunk;
	uint32_t list_id;

	char packet[VB_MAX_PACKET_SIZE];
};

/* What one received packet turned out to be. fds belong to it until taken. */
struct packet {
	struct vb_reply reply;
	int fds[VB_MAX_FDS];
	size_t n_fds;
};

static void packet_done(struct packet *p)
{
	vb_reply_done(&p->reply);
	vb_wire_close_fds(p->fds, p->n_fds);
	p->n_fds = 0;
}

/* Moves the first fd out of p; -EBADMSG unless the packet carried exactly one. */
static int packet_take_fd(struct packet *p, int *ret_fd)
{
	if (p->n_fds != 1)
		return -EBADMSG;
	*ret_fd = p->fds[0];
	p->fds[0] = -1;
	p->n_fds = 0;
	return 0;
}

const char *vfiobroker_version(void)
{
	return VB_VERSION;
}

static void broker_clear_error(struct vfiobroker *b)
{
	b->error_code[0] = '\0';
	b->error_message[0] = '\0';
	json_object_put(b->error);
	b->error = NULL;
}

/*
 * Remembers the broker's refusal in r and returns the errno the caller sees;
 * -EBADMSG when the error's details are malformed.
 */
static int broker_set_error(struct vfiobroker *b, const struct vb_reply *r)
{
	struct json_object *e = vb_reply_error_details(r->body);
	struct vb_error_reply err;

	broker_clear_error(b);
	if (vb_error_reply_decode(r, &err) < 0)
		return -EBADMSG;
	snprintf(b->error_code, sizeof(b->error_code), "%s", vb_status_to_string(r->code));
	snprintf(b->error_message, sizeof(b->error_message), "%s", r->message);
	if (e && json_object_is_type(e, json_type_object))
		b->error = json_object_get(e);
	return vb_status_to_errno(r->code);
}

/* Transport errors that leave the connection useless from now on. */
static int broker_transport_error(struct vfiobroker *b, int r)
{
	if (r == -EPIPE || r == -ECONNRESET || r == -ENOTCONN) {
		b->broken = true;
		return -ECONNRESET;
	}
	return r;
}

static void broker_queue_event(struct vfiobroker *b, const struct vb_reply *r)
{
	static const enum vfiobroker_event_type types[_VB_EVENT_MAX] = {
		[VB_EVENT_REMOVE_REQUESTED] = VFIOBROKER_EVENT_REMOVE_REQUESTED,
		[VB_EVENT_REVOKED] = VFIOBROKER_EVENT_REVOKED,
		[VB_EVENT_RELEASED] = VFIOBROKER_EVENT_RELEASED,
		[VB_EVENT_DEVICE_ADDED] = VFIOBROKER_EVENT_DEVICE_ADDED,
	};
	struct vfiobroker_event *ev;
	struct vb_event_msg e;

	/* An event missing a field tells this client nothing it can act on. */
	if (vb_event_decode(r, &e) < 0 || (unsigned)e.type >= _VB_EVENT_MAX)
		return;
	if (b->n_events == VFIOBROKER_EVENT_QUEUE) {
		b->events_head = (b->events_head + 1) % VFIOBROKER_EVENT_QUEUE;
		b->n_events--;
		b->events_dropped++;
	}
	ev = &b->events[(b->events_head + b->n_events) % VFIOBROKER_EVENT_QUEUE];
	b->n_events++;
	*ev = (struct vfiobroker_event){
		.type = types[e.type],
		.group = e.group,
		.timeout_ms = e.timeout_ms,
	};
	memcpy(ev->device, e.device, sizeof(ev->device));
}

/*
 * broker_receive reads one packet. With block set it waits for one (in
 * recvmsg, or in poll when the socket was made non-blocking); otherwise it
 * returns -EAGAIN when none is queued. Returns 0 with
 * *ret filled (a reply or an event; its fds belong to *ret), -ENOMSG for a
 * packet to skip (an event this version does not know), -EBADMSG for one that
 * cannot be read (its fds already closed), or a transport error.
 */
static int broker_receive(struct vfiobroker *b, bool block, struct packet *ret)
{
	struct packet p = {0};
	unsigned flags;
	size_t len;
	int r;

	if (b->broken)
		return -ECONNRESET;
	for (;;) {
		r = vb_wire_recv_flags(b->fd, block ? 0 : MSG_DONTWAIT, b->packet,
				       sizeof(b->packet), &len, p.fds, VB_MAX_FDS, &p.n_fds,
				       &flags);
		if (r != -EAGAIN || !block)
			break;
		struct pollfd pfd = {.fd = b->fd, .events = POLLIN};
		int n = poll(&pfd, 1, b->wait_ms);

		if (n < 0 && errno != EINTR)
			return -errno;
		if (n == 0)
			return -ETIMEDOUT;
	}
	if (r < 0)
		return broker_transport_error(b, r);

	if (flags & VB_WIRE_TRUNCATED) {
		vb_wire_close_fds(p.fds, p.n_fds);
		return -EBADMSG;
	}
	if (b->list_chunk) {
		r = vb_list_chunk_decode(b->packet, len, b->list_id, &p.reply, b->list_chunk);
		r = r > 0 ? 0 : r;
	} else {
		r = vb_reply_decode(b->packet, len, &p.reply);
	}
	if (r < 0) {
		vb_wire_close_fds(p.fds, p.n_fds);
		return r == -ENOMSG ? -ENOMSG : -EBADMSG;
	}
	*ret = p;
	return 0;
}

/*
 * Whether reply answers request `id`. An error without an id ("id": null, the
 * broker could not read ours) answers the request in flight: requests are
 * answered in order, and this library has one in flight at a time.
 */
static bool reply_answers(const struct vb_reply *r, uint32_t id)
{
	return r->id == id || (!r->ok && !r->has_id);
}

/*
 * broker_wait_reply waits for the reply to request `id`, queueing the events
 * that come first and dropping (with their fds) replies to other ids: those
 * answer requests whose caller already gave up on them. Returns 0 with *ret
 * owning the reply, or a negative errno.
 */
static int broker_wait_reply(struct vfiobroker *b, uint32_t id, struct packet *ret)
{
	for (;;) {
		struct packet p;
		int r = broker_receive(b, true, &p);

		if (r == -ENOMSG)
			continue;
		if (r < 0)
			return r;
		if (p.reply.is_event) {
			broker_queue_event(b, &p.reply);
			packet_done(&p);
			continue;
		}
		if (!reply_answers(&p.reply, id)) {
			packet_done(&p);
			continue;
		}
		*ret = p;
		return 0;
	}
}

/* Sends one request, waiting while the broker's receive queue is full. */
static int broker_send(struct vfiobroker *b, const struct vb_request *req, const int *fds,
		       size_t n_fds)
{
	char buf[VB_MAX_REQUEST_SIZE];
	size_t len;
	int r;

	r = vb_request_encode(req, buf, sizeof(buf), &len);
	if (r < 0)
		return r;
	for (;;) {
		r = vb_wire_send(b->fd, buf, len, fds, n_fds);
		if (r != -EAGAIN)
			break;
		struct pollfd pfd = {.fd = b->fd, .events = POLLOUT};
		if (poll(&pfd, 1, -1) < 0 && errno != EINTR)
			return -errno;
	}
	return broker_transport_error(b, r);
}

/*
 * broker_call sends req (with fds attached) and waits for its reply. Returns 0
 * with *ret owning an "ok" reply, the errno of the broker's error code (kept
 * for the accessors), or a transport error. Every call starts by forgetting
 * the previous call's error.
 */
static int broker_call(struct vfiobroker *b, struct vb_request *req, const int *fds, size_t n_fds,
		       struct packet *ret)
{
	struct packet p;
	int r;

	broker_clear_error(b);
	if (b->broken)
		return -ECONNRESET;
	req->id = b->next_id++;
	r = broker_send(b, req, fds, n_fds);
	if (r < 0)
		return r;
	r = broker_wait_reply(b, req->id, &p);
	if (r < 0)
		return r;
	if (!p.reply.ok) {
		r = broker_set_error(b, &p.reply);
		packet_done(&p);
		return r;
	}
	*ret = p;
	return 0;
}

/*
 * broker_call_chunks is broker_call for a reply that comes in chunks (list,
 * leases): chunk() decodes each and says whether another follows (*more).
 * Stops at the first error, of the broker, of the transport or of chunk().
 */
static int broker_call_chunks(struct vfiobroker *b, struct vb_request *req,
			      int (*chunk)(const struct vb_reply *r, bool *more, void *userdata),
			      void *userdata)
{
	struct packet p;
	bool more = false;
	int r;

	r = broker_call(b, req, NULL, 0, &p);
	for (;;) {
		if (r < 0)
			return r;
		r = chunk(&p.reply, &more, userdata);
		packet_done(&p);
		if (r < 0 || !more)
			return r;
		/* The rest of a chunked answer: replies with the same id. */
		r = broker_wait_reply(b, req->id, &p);
		if (r == 0 && !p.reply.ok) {
			r = broker_set_error(b, &p.reply);
			packet_done(&p);
		}
	}
}

static int check_group(unsigned group)
{
	return group <= VB_MAX_GROUP_ID ? 0 : -EINVAL;
}

/* The "client" of hello: the program's name and ours, for the broker's log. */
static void hello_client_name(char *buf, size_t size)
{
	snprintf(buf, size, "%.32s libvfiobroker/%s", program_invocation_short_name, VB_VERSION);
}

static int broker_hello(struct vfiobroker *b)
{
	struct vb_hello_reply hello;
	struct vb_request req;
	struct packet p;
	int r;

	vb_request_init(&req, 0, VB_OP_HELLO);
	req.version = VB_PROTOCOL_VERSION;
	hello_client_name(req.client, sizeof(req.client));
	r = broker_call(b, &req, NULL, 0, &p);
	if (r < 0)
		return r;
	r = vb_hello_reply_decode(&p.reply, &hello);
	packet_done(&p);
	if (r < 0)
		return r;
	/* The broker answers with the version both will use; we speak only ours. */
	if (hello.version != VB_PROTOCOL_VERSION)
		return -EPROTONOSUPPORT;
	b->uid = (uid_t)hello.uid;
	b->admin = hello.admin;
	return 0;
}

static int socket_address(const char *path, struct sockaddr_un *ret, socklen_t *ret_len)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	size_t len = strlen(path);

	if (len == 0)
		return -EINVAL;
	if (len >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, path, len + 1);
	*ret = sa;
	*ret_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + 1);
	return 0;
}

/*
 * broker_open makes a new socket, connects it to b's address and says hello
 * on it; b->fd is the new socket. With wait_ms >= 0 the socket is
 * non-blocking until the hello is answered, and an answer that takes longer
 * than wait_ms is -ETIMEDOUT (a full backlog, -EAGAIN); -1 waits for ever.
 * Returns 0, or -errno with b->fd closed (-1). The old socket, if any, is the
 * caller's to have closed.
 */
static int broker_open(struct vfiobroker *b, int wait_ms)
{
	int r;

	b->broken = false;
	b->fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | (wait_ms >= 0 ? SOCK_NONBLOCK : 0),
		       0);
	if (b->fd < 0)
		return -errno;
	/*
	 * Blocking connect: a full listen backlog is waited out, not reported as EAGAIN (a
	 * reconnect's non-blocking one gets EAGAIN and tries again later). The socket stays
	 * blocking, so that a call waits for its reply in a single recvmsg().
	 */
	while (connect(b->fd, (struct sockaddr *)&b->address, b->address_len) < 0) {
		if (errno != EINTR) {
			r = -errno;
			goto close_socket;
		}
	}
	b->wait_ms = wait_ms;
	r = broker_hello(b);
	b->wait_ms = -1;
	if (r < 0)
		goto close_socket;
	if (wait_ms >= 0 && fcntl(b->fd, F_SETFL, fcntl(b->fd, F_GETFL) & ~O_NONBLOCK) < 0) {
		r = -errno;
		goto close_socket;
	}
	return 0;

close_socket:
	close(b->fd);
	b->fd = -1;
	return r;
}

int vfiobroker_connect(const char *path, struct vfiobroker **ret)
{
	struct vfiobroker *b;
	struct sockaddr_un sa;
	socklen_t sa_len;
	int r;

	if (!ret)
		return -EINVAL;
	if (!path) {
		path = secure_getenv(VFIOBROKER_SOCKET_ENV);
		if (!path || !*path)
			path = VFIOBROKER_DEFAULT_SOCKET;
	}
	r = socket_address(path, &sa, &sa_len);
	if (r < 0)
		return r;

	/* The 64 KiB receive buffer is written before it is read: zeroing it cost two thirds
	 * of a fresh connection's instructions in the client (callgrind). */
	b = malloc(sizeof(*b));
	if (!b)
		return -ENOMEM;
	memset(b, 0, offsetof(struct vfiobroker, packet));
	b->next_id = 1;
	b->uid = (uid_t)-1;
	b->address = sa;
	b->address_len = sa_len;
	b->wait_ms = -1;
	r = broker_open(b, -1);
	if (r < 0) {
		broker_clear_error(b);
		free(b);
		return r;
	}
	*ret = b;
	return 0;
}

/* Failures of a connect and hello that a broker starting again can cure. */
static bool reconnect_may_cure(int r)
{
	return r == -ENOENT || r == -ECONNREFUSED || r == -ECONNRESET || r == -EPIPE ||
	       r == -EAGAIN || r == -ETIMEDOUT;
}

static uint64_t monotonic_msec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Sleeps ms milliseconds; signals do not cut it short. */
static void sleep_msec(unsigned ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

int vfiobroker_reconnect(struct vfiobroker *b, unsigned timeout_ms)
{
	uint64_t deadline = monotonic_msec() + timeout_ms;
	unsigned delay_ms = VFIOBROKER_RECONNECT_FIRST_MS;
	bool was_broken;
	int old_fd, r;

	if (!b)
		return -EINVAL;
	broker_clear_error(b);
	old_fd = b->fd;
	was_broken = b->broken;
	for (;;) {
		uint64_t now;

		/* A broker that accepts but does not answer (a socket unit whose service
		 * does not start) must not hold the caller for ever. */
		now = monotonic_msec();
		r = broker_open(b, now + VFIOBROKER_RECONNECT_HELLO_MS > deadline
					   ? VFIOBROKER_RECONNECT_HELLO_MS
					   : (int)(deadline - now));
		if (r == 0 || !reconnect_may_cure(r))
			break;
		now = monotonic_msec();
		if (now >= deadline)
			break;
		sleep_msec((unsigned)(deadline - now < delay_ms ? deadline - now : delay_ms));
		delay_ms = delay_ms * 2 > VFIOBROKER_RECONNECT_MAX_MS ? VFIOBROKER_RECONNECT_MAX_MS
								      : delay_ms * 2;
	}
	if (r < 0) {
		/* Still the old connection: a broken one keeps failing with -ECONNRESET. */
		b->fd = old_fd;
		b->broken = was_broken;
		return reconnect_may_cure(r) ? -ETIMEDOUT : r;
	}
	/* The new socket takes the old one's number, so that a poll set stays right. */
	if (old_fd >= 0 && dup3(b->fd, old_fd, O_CLOEXEC) >= 0) {
		close(b->fd);
		b->fd = old_fd;
	} else if (old_fd >= 0) {
		close(old_fd);
	}
	return 0;
}

struct vfiobroker *vfiobroker_disconnect(struct vfiobroker *b)
{
	if (!b)
		return NULL;
	close(b->fd);
	broker_clear_error(b);
	free(b);
	return NULL;
}

/* Lease by group (address NULL) or by device; both answer with the group and its fd. */
static int broker_lease(struct vfiobroker *b, int32_t group, const char *address, uint64_t memlock,
			unsigned *ret_group, int *ret_fd)
{
	struct vb_lease_reply lease;
	struct vb_request req;
	struct packet p;
	int fd = -1, r;

	vb_request_init(&req, 0, VB_OP_LEASE);
	if (address) {
		r = vb_address_parse(address, req.device);
		if (r < 0)
			return r;
	} else {
		req.group = group;
	}
	req.memlock = memlock;
	r = broker_call(b, &req, NULL, 0, &p);
	if (r < 0)
		return r;
	r = vb_lease_reply_decode(&p.reply, &lease);
	if (r == 0 && !address && lease.group != (uint32_t)group)
		r = -EBADMSG;
	if (r == 0)
		r = packet_take_fd(&p, &fd);
	packet_done(&p);
	if (r < 0)
		return r;
	if (ret_group)
		*ret_group = lease.group;
	*ret_fd = fd;
	return 0;
}

int vfiobroker_lease(struct vfiobroker *b, unsigned group, int *ret_fd)
{
	if (check_group(group) < 0 || !ret_fd)
		return -EINVAL;
	return broker_lease(b, (int32_t)group, NULL, 0, NULL, ret_fd);
}

int vfiobroker_lease_device(struct vfiobroker *b, const char *address, unsigned *ret_group,
			    int *ret_fd)
{
	if (!address || !ret_fd)
		return -EINVAL;
	return broker_lease(b, -1, address, 0, ret_group, ret_fd);
}

int vfiobroker_lease_memlock(struct vfiobroker *b, unsigned group, const char *address,
			     uint64_t memlock, unsigned *ret_group, int *ret_fd)
{
	if ((!address && check_group(group) < 0) || memlock > INT64_MAX || !ret_fd)
		return -EINVAL;
	return broker_lease(b, address ? -1 : (int32_t)group, address, memlock, ret_group, ret_fd);
}

unsigned vfiobroker_device_paths(const struct vfiobroker_group *g, size_t index)
{
	unsigned paths;

	if (!g || index >= g->n_devices || !g->devices)
		return 0;
	memcpy(&paths, (const char *)(g->devices + g->n_devices) + index * sizeof(paths),
	       sizeof(paths));
	return paths;
}

int vfiobroker_lease_cdev(struct vfiobroker *b, unsigned group, const char *address,
			  uint64_t memlock, struct vfiobroker_cdev_lease *ret)
{
	struct vfiobroker_cdev_lease out = {.iommufd = -1};
	struct vb_lease_reply lease;
	struct vb_request req;
	struct packet p;
	int r;

	if ((!address && check_group(group) < 0) || memlock > INT64_MAX || !ret)
		return -EINVAL;
	vb_request_init(&req, 0, VB_OP_LEASE);
	req.path = VB_PATH_CDEV;
	if (address) {
		r = vb_address_parse(address, req.device);
		if (r < 0)
			return r;
	} else {
		req.group = (int32_t)group;
	}
	req.memlock = memlock;
	r = broker_call(b, &req, NULL, 0, &p);
	if (r < 0)
		return r;
	r = vb_lease_reply_decode(&p.reply, &lease);
	/* Every fd the reply names, and no other: the decoder checked that each index is used once.
	 */
	if (r == 0 && (lease.path != VB_PATH_CDEV || (!address && lease.group != group) ||
		       p.n_fds != 1 + lease.n_devices || lease.iommufd >= p.n_fds))
		r = -EBADMSG;
	for (size_t i = 0; r == 0 && i < lease.n_devices; i++)
		if (lease.devices[i].fd >= p.n_fds)
			r = -EBADMSG;
	if (r < 0) {
		packet_done(&p);
		return r;
	}
	out.group = lease.group;
	out.memlock = lease.memlock;
	out.iommufd_reused = lease.iommufd_reused;
	out.iommufd = p.fds[lease.iommufd];
	p.fds[lease.iommufd] = -1;
	out.n_devices = lease.n_devices;
	for (size_t i = 0; i < lease.n_devices; i++) {
		snprintf(out.devices[i].address, sizeof(out.devices[i].address), "%s",
			 lease.devices[i].address);
		out.devices[i].fd = p.fds[lease.devices[i].fd];
		p.fds[lease.devices[i].fd] = -1;
	}
	packet_done(&p);
	*ret = out;
	return 0;
}

int vfiobroker_release(struct vfiobroker *b, unsigned group, bool *ret_released)
{
	struct vb_release_reply release;
	struct vb_request req;
	struct packet p;
	int r = check_group(group);

	if (r < 0)
		return r;
	vb_request_init(&req, 0, VB_OP_RELEASE);
	req.group = (int32_t)group;
	r = broker_call(b, &req, NULL, 0, &p);
	if (r < 0)
		return r;
	/* A reply that does not say whether the lease ended is an error, never "released". */
	r = vb_release_reply_decode(&p.reply, &release);
	packet_done(&p);
	if (r < 0)
		return r;
	if (ret_released)
		*ret_released = release.released;
	return 0;
}

int vfiobroker_merge(struct vfiobroker *b, const unsigned *groups, size_t n, int container_fd,
		     int *ret_fd)
{
	struct vb_merge_reply merge = {0};
	struct vb_request req;
	struct packet p;
	int fd = -1, r;

	/* The broker takes no fd on any request (it would close the connection): refuse here. */
	if (!groups || !ret_fd || n < 1 || n > VB_MAX_MERGE_GROUPS || container_fd >= 0)
		return -EINVAL;
	vb_request_init(&req, 0, VB_OP_MERGE);
	for (size_t i = 0; i < n; i++) {
		if (check_group(groups[i]) < 0)
			return -EINVAL;
		for (size_t j = 0; j < i; j++)
			if (groups[j] == groups[i])
				return -EINVAL;
		req.groups[i] = groups[i];
	}
	req.n_groups = n;
	r = broker_call(b, &req, NULL, 0, &p);
	if (r < 0)
		return r;
	r = vb_merge_reply_decode(&p.reply, &merge);
	vb_merge_reply_done(&merge);
	if (r == 0)
		r = packet_take_fd(&p, &fd);
	packet_done(&p);
	if (r < 0)
		return r;
	*ret_fd = fd;
	return 0;
}

int vfiobroker_unmerge(struct vfiobroker *b, unsigned group)
{
	struct vb_unmerge_reply unmerge;
	struct vb_request req;
	struct packet p;
	int r = check_group(group);

	if (r < 0)
		return r;
	vb_request_init(&req, 0, VB_OP_UNMERGE);
	req.group = (int32_t)group;
	r = broker_call(b, &req, NULL, 0, &p);
	if (r < 0)
		return r;
	r = vb_unmerge_reply_decode(&p.reply, &unmerge);
	packet_done(&p);
	return r;
}

/* Grows *array (of *n elements of size elem) to hold at least need; -ENOMEM. */
static int grow_array(void **array, size_t *capacity, size_t need, size_t elem)
{
	size_t cap = *capacity ? *capacity : 16;
	void *p;

	if (need <= *capacity)
		return 0;
	while (cap < need) {
		if (cap > SIZE_MAX / 2 / elem)
			return -ENOMEM;
		cap *= 2;
	}
	p = reallocarray(*array, cap, elem);
	if (!p)
		return -ENOMEM;
	*array = p;
	*capacity = cap;
	return 0;
}

/* Converts one protocol group_info into the public shape, taking nothing from it. */
static int group_from_info(const struct vb_group_info *info, struct vfiobroker_group *ret)
{
	struct vfiobroker_group g = {
		.group = info->group,
		.viable = info->viable,
		.allowed = info->allowed,
		.held = info->held,
		.holder_uid = info->holder_uid,
		.holder_pid = info->holder_pid,
	};

	/*
	 * Each device's paths ride behind the array, where a caller built
	 * against VFIOBROKER_0 does not look: struct vfiobroker_device keeps its size.
	 */
	if (info->n_devices > 0) {
		g.devices = calloc(1, info->n_devices * (sizeof(*g.devices) + sizeof(unsigned)));
		if (!g.devices)
			return -ENOMEM;
	}
	for (size_t i = 0; i < info->n_devices; i++) {
		const struct vb_device_info *from = &info->devices[i];
		struct vfiobroker_device *to = &g.devices[i];
		unsigned paths;

		snprintf(to->address, sizeof(to->address), "%s", from->address);
		snprintf(to->vendor, sizeof(to->vendor), "%s", from->vendor);
		snprintf(to->device, sizeof(to->device), "%s", from->device);
		snprintf(to->class_code, sizeof(to->class_code), "%s", from->class_);
		snprintf(to->driver, sizeof(to->driver), "%s", from->driver);
		paths = (from->paths & (1u << VB_PATH_GROUP) ? VFIOBROKER_PATH_GROUP : 0) |
			(from->paths & (1u << VB_PATH_CDEV) ? VFIOBROKER_PATH_CDEV : 0);
		/* Behind an array of char-only structs: not aligned for unsigned. */
		memcpy((char *)(g.devices + info->n_devices) + i * sizeof(paths), &paths,
		       sizeof(paths));
	}
	g.n_devices = info->n_devices;
	*ret = g;
	return 0;
}

struct list_call {
	struct vfiobroker *b;
	struct vfiobroker_group *groups;
	size_t n, capacity;
};

/*
 * Appends the groups of one list chunk; notes its quarantine mode. A chunk
 * broker_receive decoded already (r has no body) is in b->list_chunk.
 */
static int list_append_chunk(const struct vb_reply *r, bool *more, void *userdata)
{
	struct list_call *call = userdata;
	struct vb_list_reply chunk;
	int k;

	if (r->body) {
		k = vb_list_reply_decode(r, &chunk);
		if (k < 0)
			return k;
	} else {
		chunk = *call->b->list_chunk;
		*call->b->list_chunk = (struct vb_list_reply){0};
	}
	if (chunk.quarantine[0])
		memcpy(call->b->quarantine, chunk.quarantine, sizeof(call->b->quarantine));
	k = grow_array((void **)&call->groups, &call->capacity, call->n + chunk.n_groups,
		       sizeof(*call->groups));
	for (size_t i = 0; k == 0 && i < chunk.n_groups; i++) {
		k = group_from_info(&chunk.groups[i], &call->groups[call->n]);
		if (k == 0)
			call->n++;
	}
	*more = chunk.more;
	vb_list_reply_done(&chunk);
	return k;
}

int vfiobroker_list(struct vfiobroker *b, struct vfiobroker_group **ret, size_t *ret_n)
{
	struct vb_list_reply chunk = {0};
	struct list_call call = {.b = b};
	struct vb_request req;
	int r;

	if (!ret || !ret_n)
		return -EINVAL;
	b->quarantine[0] = '\0';
	vb_request_init(&req, 0, VB_OP_LIST);
	/* broker_call gives the request the next id. */
	b->list_id = b->next_id;
	b->list_chunk = &chunk;
	r = broker_call_chunks(b, &req, list_append_chunk, &call);
	b->list_chunk = NULL;
	vb_list_reply_done(&chunk);
	if (r < 0) {
		vfiobroker_groups_free(call.groups, call.n);
		return r;
	}
	*ret = call.groups;
	*ret_n = call.n;
	return 0;
}

const char *vfiobroker_quarantine(const struct vfiobroker *b)
{
	return b && b->quarantine[0] ? b->quarantine : NULL;
}

void vfiobroker_groups_free(struct vfiobroker_group *groups, size_t n)
{
	if (!groups)
		return;
	for (size_t i = 0; i < n; i++)
		free(groups[i].devices);
	free(groups);
}

struct leases_call {
	struct vfiobroker_lease *leases;
	size_t n, capacity;
};

/* Appends the leases of one leases chunk. */
static int leases_append_chunk(const struct vb_reply *r, bool *more, void *userdata)
{
	struct leases_call *call = userdata;
	struct vb_leases_reply chunk;
	int k;

	k = vb_leases_reply_decode(r, &chunk);
	if (k < 0)
		return k;
	k = grow_array((void **)&call->leases, &call->capacity, call->n + chunk.n_leases,
		       sizeof(*call->leases));
	for (size_t i = 0; k == 0 && i < chunk.n_leases; i++) {
		const struct vb_lease_info *info = &chunk.leases[i];
		struct vfiobroker_lease *l = &call->leases[call->n++];

		*l = (struct vfiobroker_lease){
			.group = info->group,
			.uid = info->uid,
			.pid = info->pid,
			.since_usec = info->since_usec,
			.container = info->container_id,
		};
		memcpy(l->rule, info->rule, sizeof(l->rule));
		memcpy(l->state, info->state, sizeof(l->state));
	}
	*more = chunk.more;
	vb_leases_reply_done(&chunk);
	return k;
}

int vfiobroker_leases(struct vfiobroker *b, struct vfiobroker_lease **ret, size_t *ret_n)
{
	struct leases_call call = {0};
	struct vb_request req;
	int r;

	if (!ret || !ret_n)
		return -EINVAL;
	vb_request_init(&req, 0, VB_OP_LEASES);
	r = broker_call_chunks(b, &req, leases_append_chunk, &call);
	if (r < 0) {
		free(call.leases);
		return r;
	}
	*ret = call.leases;
	*ret_n = call.n;
	return 0;
}

void vfiobroker_leases_free(struct vfiobroker_lease *leases, size_t n)
{
	(void)n;
	free(leases);
}

/* The remove request; kill_strays only with hard. */
static int remove_call(struct vfiobroker *b, unsigned group, bool hard, bool kill_strays,
		       unsigned timeout_ms, unsigned *ret_elapsed_ms)
{
	struct vb_remove_reply remove;
	struct vb_request req;
	struct packet p;
	int r = check_group(group);

	if (r < 0 || timeout_ms > VB_MAX_REMOVE_TIMEOUT_MS || (hard && timeout_ms))
		return -EINVAL;
	vb_request_init(&req, 0, VB_OP_REMOVE);
	req.group = (int32_t)group;
	req.mode = hard ? VB_REMOVE_HARD : VB_REMOVE_SOFT;
	req.kill_strays = hard && kill_strays;
	req.timeout_ms = timeout_ms;
	r = broker_call(b, &req, NULL, 0, &p);
	if (r < 0)
		return r;
	r = vb_remove_reply_decode(&p.reply, &remove);
	packet_done(&p);
	if (r < 0)
		return r;
	if (ret_elapsed_ms)
		*ret_elapsed_ms =
			remove.elapsed_ms < UINT32_MAX ? (unsigned)remove.elapsed_ms : UINT32_MAX;
	return 0;
}

int vfiobroker_remove(struct vfiobroker *b, unsigned group, bool hard, unsigned timeout_ms,
		      unsigned *ret_elapsed_ms)
{
	return remove_call(b, group, hard, false, timeout_ms, ret_elapsed_ms);
}

int vfiobroker_remove_kill_strays(struct vfiobroker *b, unsigned group, unsigned *ret_elapsed_ms)
{
	return remove_call(b, group, true, true, 0, ret_elapsed_ms);
}

int vfiobroker_reload(struct vfiobroker *b, unsigned *ret_rules, unsigned *ret_files)
{
	struct vb_reload_reply reload;
	struct vb_request req;
	struct packet p;
	int r;

	vb_request_init(&req, 0, VB_OP_RELOAD);
	r = broker_call(b, &req, NULL, 0, &p);
	if (r < 0)
		return r;
	r = vb_reload_reply_decode(&p.reply, &reload);
	packet_done(&p);
	if (r < 0)
		return r;
	if (ret_rules)
		*ret_rules = reload.rules < UINT32_MAX ? (unsigned)reload.rules : UINT32_MAX;
	if (ret_files)
		*ret_files = reload.files < UINT32_MAX ? (unsigned)reload.files : UINT32_MAX;
	return 0;
}

/* quarantine and unquarantine: one request, the reply's mode and devices into *ret. */
static int quarantine_call(struct vfiobroker *b, enum vb_op op, unsigned group, bool restore,
			   struct vfiobroker_quarantine_result *ret)
{
	struct vb_quarantine_reply q;
	struct vb_request req;
	struct packet p;
	int r;

	if (group > VB_MAX_GROUP_ID)
		return -EINVAL;
	vb_request_init(&req, 0, op);
	req.group = (int32_t)group;
	req.restore = restore;
	r = broker_call(b, &req, NULL, 0, &p);
	if (r < 0)
		return r;
	r = vb_quarantine_reply_decode(&p.reply, &q);
	packet_done(&p);
	if (r < 0 || !ret)
		return r;
	memset(ret, 0, sizeof(*ret));
	snprintf(ret->mode, sizeof(ret->mode), "%s",
		 q.mode == VB_QUARANTINE_KMOD ? "kmod" : "sysfs");
	for (; ret->n_devices < q.n_devices; ret->n_devices++)
		memcpy(ret->devices[ret->n_devices], q.devices[ret->n_devices],
		       sizeof(ret->devices[0]));
	return 0;
}

int vfiobroker_quarantine_group(struct vfiobroker *b, unsigned group,
				struct vfiobroker_quarantine_result *ret)
{
	return quarantine_call(b, VB_OP_QUARANTINE, group, false, ret);
}

int vfiobroker_unquarantine_group(struct vfiobroker *b, unsigned group, bool restore,
				  struct vfiobroker_quarantine_result *ret)
{
	return quarantine_call(b, VB_OP_UNQUARANTINE, group, restore, ret);
}

/* A user id as chown(1) reads one: decimal digits only, below (uid_t)-1. */
static bool parse_uid(const char *s, int64_t *ret)
{
	int64_t v = 0;

	if (!*s)
		return false;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return false;
		v = v * 10 + (*p - '0');
		if (v >= UINT32_MAX)
			return false;
	}
	*ret = v;
	return true;
}

/* strdup of a nullable field: NULL for "". Sets *failed on allocation failure. */
static char *strdup_nullable(const char *s, bool *failed)
{
	char *copy;

	if (!s[0])
		return NULL;
	copy = strdup(s);
	if (!copy)
		*failed = true;
	return copy;
}

int vfiobroker_explain(struct vfiobroker *b, unsigned group, const char *user,
		       struct vfiobroker_explanation **ret)
{
	struct vfiobroker_explanation *e;
	struct vb_explain_reply x;
	struct vb_request req;
	struct packet p;
	bool failed = false;
	int r = check_group(group);

	if (r < 0 || !ret)
		return -EINVAL;
	vb_request_init(&req, 0, VB_OP_EXPLAIN);
	req.group = (int32_t)group;
	if (user && !parse_uid(user, &req.uid)) {
		if (!*user || strlen(user) >= sizeof(req.user))
			return -EINVAL;
		snprintf(req.user, sizeof(req.user), "%s", user);
	}
	r = broker_call(b, &req, NULL, 0, &p);
	if (r < 0)
		return r;
	r = vb_explain_reply_decode(&p.reply, &x);
	packet_done(&p);
	if (r < 0)
		return r;
	e = calloc(1, sizeof(*e));
	if (!e) {
		vb_explain_reply_done(&x);
		return -ENOMEM;
	}
	e->allowed = x.allowed;
	e->rule = strdup_nullable(x.rule, &failed);
	e->device = strdup_nullable(x.device, &failed);
	e->reason = TAKE_PTR(x.reason);
	e->text = TAKE_PTR(x.text);
	if (failed) {
		vfiobroker_explanation_free(e);
		return -ENOMEM;
	}
	*ret = e;
	return 0;
}

struct vfiobroker_explanation *vfiobroker_explanation_free(struct vfiobroker_explanation *e)
{
	if (!e)
		return NULL;
	free(e->rule);
	free(e->device);
	free(e->reason);
	free(e->text);
	free(e);
	return NULL;
}

int vfiobroker_get_fd(const struct vfiobroker *b)
{
	return b->fd;
}

int vfiobroker_next_event(struct vfiobroker *b, struct vfiobroker_event *ret)
{
	if (!ret)
		return -EINVAL;
	while (b->n_events == 0) {
		struct packet p;
		int r = broker_receive(b, false, &p);

		if (r == -ENOMSG || r == -EBADMSG)
			continue;
		if (r < 0)
			return r;
		/* With no request in flight, a reply is a stale one: drop it. */
		if (p.reply.is_event)
			broker_queue_event(b, &p.reply);
		packet_done(&p);
	}
	*ret = b->events[b->events_head];
	b->events_head = (b->events_head + 1) % VFIOBROKER_EVENT_QUEUE;
	b->n_events--;
	return 0;
}

unsigned vfiobroker_events_dropped(const struct vfiobroker *b)
{
	return b->events_dropped;
}

const char *vfiobroker_error_code(const struct vfiobroker *b)
{
	return b->error_code[0] ? b->error_code : NULL;
}

const char *vfiobroker_error_message(const struct vfiobroker *b)
{
	return b->error_code[0] ? b->error_message : NULL;
}

const char *vfiobroker_error_detail(const struct vfiobroker *b, const char *key)
{
	struct json_object *v;

	if (!b->error || !key || strcmp(key, "code") == 0 || strcmp(key, "message") == 0)
		return NULL;
	if (!json_object_object_get_ex(b->error, key, &v) || !v)
		return NULL;
	return json_object_get_string(v);
}

bool vfiobroker_is_admin(const struct vfiobroker *b)
{
	return b->admin;
}

uid_t vfiobroker_get_uid(const struct vfiobroker *b)
{
	return b->uid;
}

_Static_assert(VB_MAX_CDEV_DEVICES == VFIOBROKER_CDEV_MAX_DEVICES,
	       "the public cdev lease holds every device a reply may carry");
