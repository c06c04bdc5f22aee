/* SPDX-License-Identifier: MIT */
/*
 * libvfiobroker: one connection to vfio-brokerd, spoken through the shared
 * protocol code (protocol/message.h, protocol/wire.h). A call that needs an
 * answer waits for it in one blocking recvmsg(2); vfiobroker_next_event() reads
 * with MSG_DONTWAIT, so it never waits. The library does not rely on the
 * socket's O_NONBLOCK flag either way: where an event loop has set it, a call
 * waits for its answer in poll(2) instead.
 */
#include "client/vfiobroker.h"
#include "protocol/message.h"
#include "protocol/wire.h"

#include <errno.h>
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

#ifndef VB_VERSION
#define VB_VERSION "0"
#endif

struct vfiobroker {
	int fd;
	uint32_t next_id;
	bool broken; /* the broker closed the connection, or it failed for good */
	bool admin;
	uid_t uid;
	char quarantine[8]; /* the last list reply's "quarantine"; "" when it had none */

	/* The last refusal; code[0] == '\0' when the last call did not fail that way. */
	char error_code[32];
	char error_message[VB_MESSAGE_MAX];
	struct json_object *error; /* the reply's "error" object, for details; or NULL */

	/* Events that arrived while a call waited for its reply: a ring. */
	struct vfiobroker_event events[VFIOBROKER_EVENT_QUEUE];
	size_t events_head;
	size_t n_events;
	unsigned events_dropped;

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

/* Remembers the broker's refusal in r and returns the errno the caller sees. */
static int broker_set_error(struct vfiobroker *b, const struct vb_reply *r)
{
	struct json_object *e = vb_reply_error_details(r->body);

	broker_clear_error(b);
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
	int64_t group = vb_body_int(r->body, "group", -1);
	int64_t timeout = vb_body_int(r->body, "timeout_ms", 0);
	const char *device = vb_body_string(r->body, "device");

	/* An event about no group in particular tells this client nothing it can act on. */
	if ((unsigned)r->event >= _VB_EVENT_MAX || group < 0 || group > VB_MAX_GROUP_ID)
		return;
	if (b->n_events == VFIOBROKER_EVENT_QUEUE) {
		b->events_head = (b->events_head + 1) % VFIOBROKER_EVENT_QUEUE;
		b->n_events--;
		b->events_dropped++;
	}
	ev = &b->events[(b->events_head + b->n_events) % VFIOBROKER_EVENT_QUEUE];
	b->n_events++;
	*ev = (struct vfiobroker_event){
		.type = types[r->event],
		.group = (unsigned)group,
		.timeout_ms = timeout > 0 && timeout <= UINT32_MAX ? (unsigned)timeout : 0,
	};
	if (r->event == VB_EVENT_DEVICE_ADDED && device)
		vb_address_parse(device, ev->device);
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
		if (poll(&pfd, 1, -1) < 0 && errno != EINTR)
			return -errno;
	}
	if (r < 0)
		return broker_transport_error(b, r);

	if (flags & VB_WIRE_TRUNCATED) {
		vb_wire_close_fds(p.fds, p.n_fds);
		return -EBADMSG;
	}
	r = vb_reply_decode(b->packet, len, &p.reply);
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
	return r->id == id || (!r->ok && vb_body_int(r->body, "id", -1) < 0);
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

/* broker_call for requests whose reply carries nothing but "ok". */
static int broker_call_simple(struct vfiobroker *b, struct vb_request *req)
{
	struct packet p;
	int r = broker_call(b, req, NULL, 0, &p);

	if (r < 0)
		return r;
	packet_done(&p);
	return 0;
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
	struct vb_request req;
	struct packet p;
	int64_t uid;
	int r;

	vb_request_init(&req, 0, VB_OP_HELLO);
	req.version = VB_PROTOCOL_VERSION;
	hello_client_name(req.client, sizeof(req.client));
	r = broker_call(b, &req, NULL, 0, &p);
	if (r < 0)
		return r;
	/* The broker answers with the version both will use; we speak only ours. */
	if (vb_body_int(p.reply.body, "version", -1) != VB_PROTOCOL_VERSION) {
		packet_done(&p);
		return -EPROTONOSUPPORT;
	}
	uid = vb_body_int(p.reply.body, "uid", -1);
	b->uid = uid >= 0 && uid < UINT32_MAX ? (uid_t)uid : (uid_t)-1;
	b->admin = vb_body_bool(p.reply.body, "admin", false);
	packet_done(&p);
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
	b->fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (b->fd < 0) {
		r = -errno;
		goto free_broker;
	}
	/*
	 * Blocking connect: a full listen backlog is waited out, not reported as EAGAIN. The
	 * socket stays blocking, so that a call waits for its reply in a single recvmsg().
	 */
	while (connect(b->fd, (struct sockaddr *)&sa, sa_len) < 0) {
		if (errno != EINTR) {
			r = -errno;
			goto close_socket;
		}
	}
	r = broker_hello(b);
	if (r < 0)
		goto close_socket;
	*ret = b;
	return 0;

close_socket:
	close(b->fd);
free_broker:
	broker_clear_error(b);
	free(b);
	return r;
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
	struct vb_request req;
	struct packet p;
	int64_t granted;
	int fd, r;

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
	granted = vb_body_int(p.reply.body, "group", -1);
	if (granted < 0 || granted > VB_MAX_GROUP_ID || (!address && granted != group)) {
		packet_done(&p);
		return -EBADMSG;
	}
	r = packet_take_fd(&p, &fd);
	packet_done(&p);
	if (r < 0)
		return r;
	if (ret_group)
		*ret_group = (unsigned)granted;
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

int vfiobroker_release(struct vfiobroker *b, unsigned group, bool *ret_released)
{
	struct vb_request req;
	struct packet p;
	bool released;
	int r = check_group(group);

	if (r < 0)
		return r;
	vb_request_init(&req, 0, VB_OP_RELEASE);
	req.group = (int32_t)group;
	r = broker_call(b, &req, NULL, 0, &p);
	if (r < 0)
		return r;
	released = vb_body_bool(p.reply.body, "released", true);
	packet_done(&p);
	if (ret_released)
		*ret_released = released;
	return 0;
}

int vfiobroker_merge(struct vfiobroker *b, const unsigned *groups, size_t n, int container_fd,
		     int *ret_fd)
{
	struct vb_request req;
	struct packet p;
	int fd, r;

	if (!groups || !ret_fd || n < 1 || n > VB_MAX_MERGE_GROUPS)
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
	r = broker_call(b, &req, container_fd >= 0 ? &container_fd : NULL, container_fd >= 0, &p);
	if (r < 0)
		return r;
	r = packet_take_fd(&p, &fd);
	packet_done(&p);
	if (r < 0)
		return r;
	*ret_fd = fd;
	return 0;
}

int vfiobroker_unmerge(struct vfiobroker *b, unsigned group)
{
	struct vb_request req;
	int r = check_group(group);

	if (r < 0)
		return r;
	vb_request_init(&req, 0, VB_OP_UNMERGE);
	req.group = (int32_t)group;
	return broker_call_simple(b, &req);
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

	if (info->n_devices > 0) {
		g.devices = calloc(info->n_devices, sizeof(*g.devices));
		if (!g.devices)
			return -ENOMEM;
	}
	for (size_t i = 0; i < info->n_devices; i++) {
		const struct vb_device_info *from = &info->devices[i];
		struct vfiobroker_device *to = &g.devices[i];

		snprintf(to->address, sizeof(to->address), "%s", from->address);
		snprintf(to->vendor, sizeof(to->vendor), "%s", from->vendor);
		snprintf(to->device, sizeof(to->device), "%s", from->device);
		snprintf(to->class_code, sizeof(to->class_code), "%s", from->class_);
		snprintf(to->driver, sizeof(to->driver), "%s", from->driver);
	}
	g.n_devices = info->n_devices;
	*ret = g;
	return 0;
}

/* Appends the "groups" of one list chunk to *groups; notes its "quarantine" mode in b. */
static int list_append_chunk(struct vfiobroker *b, struct json_object *body,
			     struct vfiobroker_group **groups, size_t *n, size_t *capacity)
{
	struct json_object *array, *mode;
	size_t count;
	int r;

	if (!json_object_object_get_ex(body, "groups", &array) ||
	    !json_object_is_type(array, json_type_array))
		return -EBADMSG;
	if (json_object_object_get_ex(body, "quarantine", &mode) &&
	    json_object_is_type(mode, json_type_string))
		snprintf(b->quarantine, sizeof(b->quarantine), "%s", json_object_get_string(mode));
	count = json_object_array_length(array);
	r = grow_array((void **)groups, capacity, *n + count, sizeof(**groups));
	if (r < 0)
		return r;
	for (size_t i = 0; i < count; i++) {
		struct vb_group_info info;

		r = vb_group_info_from_json(json_object_array_get_idx(array, i), &info);
		if (r < 0)
			return r;
		r = group_from_info(&info, &(*groups)[*n]);
		vb_group_info_done(&info);
		if (r < 0)
			return r;
		(*n)++;
	}
	return 0;
}

int vfiobroker_list(struct vfiobroker *b, struct vfiobroker_group **ret, size_t *ret_n)
{
	struct vfiobroker_group *groups = NULL;
	size_t n = 0, capacity = 0;
	struct vb_request req;
	struct packet p;
	bool more;
	int r;

	if (!ret || !ret_n)
		return -EINVAL;
	b->quarantine[0] = '\0';
	vb_request_init(&req, 0, VB_OP_LIST);
	r = broker_call(b, &req, NULL, 0, &p);
	if (r < 0)
		return r;
	for (;;) {
		r = list_append_chunk(b, p.reply.body, &groups, &n, &capacity);
		more = p.reply.more;
		packet_done(&p);
		if (r < 0 || !more)
			break;
		/* The rest of a chunked answer: replies with the same id. */
		r = broker_wait_reply(b, req.id, &p);
		if (r < 0)
			break;
		if (!p.reply.ok) {
			r = broker_set_error(b, &p.reply);
			packet_done(&p);
			break;
		}
	}
	if (r < 0) {
		vfiobroker_groups_free(groups, n);
		return r;
	}
	*ret = groups;
	*ret_n = n;
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

int vfiobroker_leases(struct vfiobroker *b, struct vfiobroker_lease **ret, size_t *ret_n)
{
	struct vfiobroker_lease *leases = NULL;
	struct json_object *array;
	struct vb_request req;
	struct packet p;
	size_t n = 0;
	int r;

	if (!ret || !ret_n)
		return -EINVAL;
	vb_request_init(&req, 0, VB_OP_LEASES);
	r = broker_call(b, &req, NULL, 0, &p);
	if (r < 0)
		return r;
	if (!json_object_object_get_ex(p.reply.body, "leases", &array) ||
	    !json_object_is_type(array, json_type_array)) {
		r = -EBADMSG;
		goto done;
	}
	n = json_object_array_length(array);
	if (n > 0) {
		leases = calloc(n, sizeof(*leases));
		if (!leases) {
			r = -ENOMEM;
			goto done;
		}
	}
	for (size_t i = 0; i < n; i++) {
		struct vb_lease_info info;

		r = vb_lease_info_from_json(json_object_array_get_idx(array, i), &info);
		if (r < 0)
			goto done;
		leases[i] = (struct vfiobroker_lease){
			.group = info.group,
			.uid = info.uid,
			.pid = info.pid,
			.since_usec = info.since_usec,
			.container = info.container_id,
		};
		snprintf(leases[i].rule, sizeof(leases[i].rule), "%s", info.rule);
		snprintf(leases[i].state, sizeof(leases[i].state), "%s", info.state);
	}
done:
	packet_done(&p);
	if (r < 0) {
		free(leases);
		return r;
	}
	*ret = leases;
	*ret_n = n;
	return 0;
}

void vfiobroker_leases_free(struct vfiobroker_lease *leases, size_t n)
{
	(void)n;
	free(leases);
}

static uint64_t monotonic_msec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int vfiobroker_remove(struct vfiobroker *b, unsigned group, bool hard, unsigned timeout_ms,
		      unsigned *ret_elapsed_ms)
{
	struct vb_request req;
	struct packet p;
	uint64_t start = monotonic_msec();
	int64_t elapsed;
	int r = check_group(group);

	if (r < 0 || timeout_ms > VB_MAX_REMOVE_TIMEOUT_MS || (hard && timeout_ms))
		return -EINVAL;
	vb_request_init(&req, 0, VB_OP_REMOVE);
	req.group = (int32_t)group;
	req.mode = hard ? VB_REMOVE_HARD : VB_REMOVE_SOFT;
	req.timeout_ms = timeout_ms;
	r = broker_call(b, &req, NULL, 0, &p);
	if (r < 0)
		return r;
	/* The broker's own measure when it gives one; ours (which adds the round trip) if not. */
	elapsed = vb_body_int(p.reply.body, "elapsed_ms", -1);
	if (elapsed < 0 || elapsed > UINT32_MAX)
		elapsed = (int64_t)(monotonic_msec() - start);
	packet_done(&p);
	if (ret_elapsed_ms)
		*ret_elapsed_ms = (unsigned)elapsed;
	return 0;
}

int vfiobroker_reload(struct vfiobroker *b, unsigned *ret_rules, unsigned *ret_files)
{
	struct vb_request req;
	struct packet p;
	int64_t rules, files;
	int r;

	vb_request_init(&req, 0, VB_OP_RELOAD);
	r = broker_call(b, &req, NULL, 0, &p);
	if (r < 0)
		return r;
	rules = vb_body_int(p.reply.body, "rules", 0);
	files = vb_body_int(p.reply.body, "files", 0);
	packet_done(&p);
	if (ret_rules)
		*ret_rules = rules > 0 && rules <= UINT32_MAX ? (unsigned)rules : 0;
	if (ret_files)
		*ret_files = files > 0 && files <= UINT32_MAX ? (unsigned)files : 0;
	return 0;
}

/* quarantine and unquarantine: one request, the reply's mode and devices into *ret. */
static int quarantine_call(struct vfiobroker *b, enum vb_op op, unsigned group, bool restore,
			   struct vfiobroker_quarantine_result *ret)
{
	struct vb_request req;
	struct json_object *v;
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
	if (ret) {
		memset(ret, 0, sizeof(*ret));
		if (json_object_object_get_ex(p.reply.body, "mode", &v) &&
		    json_object_is_type(v, json_type_string))
			snprintf(ret->mode, sizeof(ret->mode), "%s", json_object_get_string(v));
		if (json_object_object_get_ex(p.reply.body, "devices", &v) &&
		    json_object_is_type(v, json_type_array))
			for (size_t i = 0; i < json_object_array_length(v) &&
					   ret->n_devices < VFIOBROKER_QUARANTINE_MAX_DEVICES;
			     i++) {
				struct json_object *e = json_object_array_get_idx(v, i);

				if (json_object_is_type(e, json_type_string))
					snprintf(ret->devices[ret->n_devices++],
						 sizeof(ret->devices[0]), "%s",
						 json_object_get_string(e));
			}
	}
	packet_done(&p);
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

/* strdup of a string field; NULL when absent. Sets *failed on allocation failure. */
static char *body_strdup(struct json_object *body, const char *key, bool *failed)
{
	const char *s = vb_body_string(body, key);
	char *copy;

	if (!s)
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
	e = calloc(1, sizeof(*e));
	if (!e) {
		packet_done(&p);
		return -ENOMEM;
	}
	e->allowed = vb_body_bool(p.reply.body, "allowed", false);
	e->rule = body_strdup(p.reply.body, "rule", &failed);
	e->device = body_strdup(p.reply.body, "device", &failed);
	e->reason = body_strdup(p.reply.body, "reason", &failed);
	e->text = body_strdup(p.reply.body, "text", &failed);
	packet_done(&p);
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
