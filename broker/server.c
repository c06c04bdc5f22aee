/* SPDX-License-Identifier: MIT */
#include "broker/server.h"
#include "broker/closer.h"
#include "broker/connection.h"
#include "broker/identity.h"
#include "broker/lease.h"
#include "broker/log.h"
#include "broker/rate_limit.h"
#include "common/cleanup.h"
#include "protocol/message.h"
#include "protocol/reply.h"
#include "protocol/wire.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

/* Connections accepted per wake-up. */
#define SERVER_ACCEPT_BURST 32
/* Pause after accept() ran out of descriptors or memory, instead of spinning. */
#define SERVER_ACCEPT_RETRY_USEC (100 * 1000)
/*
 * Packets served per wake-up, across the ready connections, and the most
 * ready connections one epoll_wait() reports. One wake-up serves many
 * requests, as the floor does: the kernel's walk of the ready list and
 * sd-event's dispatch are paid once per batch, not once per request.
 */
#define SERVER_BATCH 64
/* The most turns a uid can owe (server_charge_turns): a list of 16k groups. */
#define SERVER_MAX_OWED 256
/* Buckets of the uid and pid tables. */
#define SERVER_HASH_BITS 10
#define SERVER_HASH_SIZE (1u << SERVER_HASH_BITS)

/*
 * What one uid has in the broker: its connections (counted right after
 * SO_PEERCRED, before any identity work), the bytes of replies queued for
 * it, and its turn in the scheduler. Lives while it has a connection.
 */
struct server_uid {
	struct server_uid *hash_next;
	uid_t uid;
	size_t n_connections;
	size_t n_queued_bytes;
	struct list_node ready; /* its connections with a packet to read, in arrival order */
	struct list_node turn;	/* in the server's ring of uids with ready connections */
	unsigned owed;		/* turns to let other uids take first: server_charge_turns */
};

struct server {
	struct broker *broker;
	const struct server_hooks *hooks;
	int listen_fd;
	sd_event_source *accept_source;
	sd_event_source *retry_source;
	char *path;
	bool created; /* we bound the socket: unlink it at exit if it is still ours */
	dev_t dev;
	ino_t ino;
	struct list_node connections;
	size_t n_connections;
	struct rate_limit requests; /* each uid's request budget, shared by its connections */
	/*
	 * Connections are watched by an epoll instance of the server's own, which
	 * sd-event watches as one source: a wake-up takes up to SERVER_BATCH
	 * ready connections, queues each on its uid, and serves the uids round
	 * robin, one packet at a time, so a uid with many connections gets no
	 * more turns than a uid with one.
	 */
	int epoll_fd;
	sd_event_source *epoll_source;
	struct list_node turns; /* uids with ready connections, next to serve first */
	/*
	 * Connections yet to say hello, oldest first: their deadlines are their
	 * accept times plus one timeout, so the first is the earliest. One timer
	 * for all of them (server_watch_handshake).
	 */
	struct list_node handshakes;
	sd_event_source *handshake_timer;
	struct server_uid *uids[SERVER_HASH_SIZE];
	struct list_node by_pid[SERVER_HASH_SIZE]; /* connections, by their peer's pid */
};

const char *server_socket_path(const struct server *s)
{
	return s->path;
}

size_t server_count_connections(const struct server *s)
{
	return s->n_connections;
}

static size_t server_hash(uint32_t key)
{
	return (key * 2654435761u) >> (32 - SERVER_HASH_BITS);
}

static struct server_uid *server_find_uid(const struct server *s, uid_t uid)
{
	struct server_uid *u;

	for (u = s->uids[server_hash(uid)]; u; u = u->hash_next)
		if (u->uid == uid)
			return u;
	return NULL;
}

/* The entry of uid, created when it has none. */
static struct server_uid *server_get_uid(struct server *s, uid_t uid)
{
	struct server_uid *u = server_find_uid(s, uid);
	size_t h = server_hash(uid);

	if (u)
		return u;
	u = calloc(1, sizeof(*u));
	if (!u)
		return NULL;
	u->uid = uid;
	list_init(&u->ready);
	list_init(&u->turn);
	u->hash_next = s->uids[h];
	s->uids[h] = u;
	return u;
}

/* Drop u once nothing refers to it. */
static void server_put_uid(struct server *s, struct server_uid *u)
{
	struct server_uid **p;

	if (!u || u->n_connections > 0 || u->n_queued_bytes > 0 || !list_is_empty(&u->ready))
		return;
	for (p = &s->uids[server_hash(u->uid)]; *p; p = &(*p)->hash_next)
		if (*p == u) {
			*p = u->hash_next;
			break;
		}
	if (list_is_linked(&u->turn))
		list_unlink(&u->turn);
	free(u);
}

static size_t server_count_uid(const struct server *s, uid_t uid)
{
	const struct server_uid *u = server_find_uid(s, uid);

	return u ? u->n_connections : 0;
}

/* CLOCK_MONOTONIC of this loop iteration (cheap: no system call), in µs. */
static uint64_t server_now_usec(const struct server *s)
{
	struct timespec ts;
	uint64_t now;

	if (sd_event_now(s->broker->event, CLOCK_MONOTONIC, &now) >= 0)
		return now;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

void server_charge_turns(struct server *s, struct connection *c, unsigned turns)
{
	struct server_uid *u = c->peer_uid;

	if (!s || !u || turns <= 1)
		return;
	u->owed = turns - 1 > SERVER_MAX_OWED - u->owed ? SERVER_MAX_OWED : u->owed + turns - 1;
}

int server_charge_request(struct server *s, struct connection *c, uint64_t *ret_retry_ms)
{
	if (!s || !c->budget)
		return 0;
	return rate_limit_charge(&s->requests, c->budget, server_now_usec(s), ret_retry_ms);
}

void server_remove_connection(struct server *s, struct connection *c)
{
	if (!s || !list_is_linked(&c->link))
		return;
	/* Before the socket goes to the closer, which may keep it open for a while. */
	(void)epoll_ctl(s->epoll_fd, EPOLL_CTL_DEL, c->fd, NULL);
	list_unlink(&c->link);
	list_unlink(&c->pid_link);
	if (list_is_linked(&c->ready))
		list_unlink(&c->ready);
	s->n_connections--;
	if (c->holder) {
		struct holder *h = c->holder;

		c->holder = NULL;
		holder_unref_connection(h);
	}
	rate_limit_put(&s->requests, c->budget, server_now_usec(s));
	c->budget = NULL;
	if (c->peer_uid) {
		c->peer_uid->n_connections--;
		c->peer_uid->n_queued_bytes -= c->n_queued_bytes;
		server_put_uid(s, c->peer_uid);
		c->peer_uid = NULL;
	}
	if (s->hooks->closed)
		s->hooks->closed(c);
}

bool server_may_queue(struct server *s, struct connection *c, size_t len)
{
	if (!s || !c->peer_uid || c->identity->uid == 0)
		return true;
	return c->peer_uid->n_queued_bytes + len <= SERVER_MAX_QUEUED_BYTES_PER_UID;
}

void server_count_queued(struct server *s, struct connection *c, ssize_t delta)
{
	if (s && c->peer_uid)
		c->peer_uid->n_queued_bytes += delta;
}

void server_watch_output(struct server *s, struct connection *c, bool output)
{
	struct epoll_event ev = {.events = EPOLLIN | (output ? EPOLLOUT : 0), .data.ptr = c};

	if (s && list_is_linked(&c->link))
		(void)epoll_ctl(s->epoll_fd, EPOLL_CTL_MOD, c->fd, &ev);
}

static struct list_node *server_pid_bucket(struct server *s, pid_t pid)
{
	return &s->by_pid[server_hash((uint32_t)pid)];
}

/*
 * Whether c's peer is h's process. A holder made for a request has a copy of
 * its connection's reference, which says so without a system call.
 */
static bool server_is_holder_peer(const struct connection *c, const struct holder *h)
{
	return pidref_same_lineage(&c->identity->pid, &h->pid) ||
	       pidref_equal(&c->identity->pid, &h->pid);
}

void server_attach_holder(struct server *s, struct holder *h)
{
	struct list_node *bucket = server_pid_bucket(s, h->pid.pid);
	struct connection *c;

	list_for_each_entry(c, bucket, pid_link) if (!c->holder && server_is_holder_peer(c, h))
	{
		c->holder = h;
		holder_ref_connection(h);
	}
}

void server_detach_holder(struct server *s, const struct holder *h)
{
	struct connection *c;

	if (!s)
		return;
	list_for_each_entry(c, server_pid_bucket(s, h->pid.pid), pid_link) if (c->holder == h)
		c->holder = NULL;
}

size_t server_send_to_holder(struct server *s, const struct holder *h, struct json_object *obj)
{
	struct connection *c, *next;
	size_t n = 0;

	if (!s || !h)
		return 0;
	/* A failed send closes a connection (deferred): none is freed here. */
	list_for_each_entry_safe(c, next, server_pid_bucket(s, h->pid.pid),
				 pid_link) if (!c->closing && c->holder == h &&
					       connection_send(c, obj, -1) >= 0) n++;
	return n;
}

/*
 * One wake-up of the connections' epoll instance: take up to SERVER_BATCH
 * ready connections, queue those with input on their uid, and serve up to
 * SERVER_BATCH packets, one per turn, the uids in turn. A connection still
 * queued when the batch ends keeps its place; the epoll instance (level
 * triggered) stays readable while any connection has input, so sd-event
 * wakes us again after its other sources (signals, timers, accept) had
 * their turn.
 */
static int server_on_connections(sd_event_source *src, int fd, uint32_t revents, void *userdata)
{
	struct server *s = userdata;
	struct epoll_event ev[SERVER_BATCH];
	int n;

	n = epoll_wait(s->epoll_fd, ev, SERVER_BATCH, 0);
	for (int i = 0; i < n; i++) {
		struct connection *c = ev[i].data.ptr;

		if (c->closing)
			continue;
		if (ev[i].events & EPOLLOUT)
			connection_flush(c);
		if (c->closing || !(ev[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) ||
		    list_is_linked(&c->ready))
			continue;
		list_append(&c->peer_uid->ready, &c->ready);
		if (!list_is_linked(&c->peer_uid->turn))
			list_append(&s->turns, &c->peer_uid->turn);
	}
	for (int served = 0; served < SERVER_BATCH && !list_is_empty(&s->turns); served++) {
		struct server_uid *u = container_of(s->turns.next, struct server_uid, turn);
		struct connection *c = container_of(u->ready.next, struct connection, ready);

		/*
		 * A uid that owes turns passes this one to the next uid; alone in
		 * the ring, it ends the wake-up instead, so that a request another
		 * uid sends meanwhile finds its place before the next one of it.
		 */
		if (u->owed > 0) {
			u->owed--;
			if (u->turn.next == &s->turns)
				break;
			list_unlink(&u->turn);
			list_append(&s->turns, &u->turn);
			served--;
			continue;
		}
		/* Whoever is served, the uid goes to the back of the ring. */
		list_unlink(&c->ready);
		list_unlink(&u->turn);
		if (!list_is_empty(&u->ready))
			list_append(&s->turns, &u->turn);
		if (!c->closing)
			connection_read(c);
	}
	return 0;
}

/*
 * Close the connections whose handshake deadline has passed, and wait for
 * the next one, if any. Nothing disarms this timer when a connection says
 * hello or goes: it fires for nothing at worst, once per timeout.
 */
static int server_on_handshake_deadline(sd_event_source *src, uint64_t usec, void *userdata)
{
	struct server *s = userdata;

	while (!list_is_empty(&s->handshakes)) {
		struct connection *c =
			container_of(s->handshakes.next, struct connection, handshake);

		if (c->handshake_deadline_usec > usec) {
			sd_event_source_set_time(src, c->handshake_deadline_usec);
			sd_event_source_set_enabled(src, SD_EVENT_ONESHOT);
			return 0;
		}
		list_unlink(&c->handshake);
		connection_close(c, "no hello before the handshake timeout");
	}
	return 0;
}

/*
 * Close c unless it says hello within the handshake timeout. A timer per
 * connection would cost two timerfd_settime() per connection (armed at
 * accept as the earliest, disarmed at hello); the shared one is armed only
 * when it is not already, for an earlier deadline.
 */
static void server_watch_handshake(struct server *s, struct connection *c)
{
	int enabled = SD_EVENT_OFF;

	c->handshake_deadline_usec = server_now_usec(s) + s->broker->config.handshake_timeout_usec;
	list_append(&s->handshakes, &c->handshake);
	(void)sd_event_source_get_enabled(s->handshake_timer, &enabled);
	if (enabled != SD_EVENT_OFF)
		return;
	sd_event_source_set_time(s->handshake_timer, c->handshake_deadline_usec);
	sd_event_source_set_enabled(s->handshake_timer, SD_EVENT_ONESHOT);
}

/* Refuse a connection of uid over a limit with a reply saying so, then close it. */
static void server_refuse(struct server *s, int fd, uid_t uid, const char *message)
{
	_cleanup_json_ struct json_object *o = NULL;
	struct vb_error_reply e = {.code = VB_E_LIMIT};
	char text[VB_MAX_REQUEST_SIZE];
	size_t len;

	snprintf(e.message, sizeof(e.message), "%s", message);
	o = vb_error_reply_encode(false, 0, &e);
	if (o && vb_packet_serialize(o, text, sizeof(text), &len) == 0)
		(void)vb_wire_send(fd, text, len, NULL, 0);
	closer_close_socket(s->broker->closer, fd, uid);
}

static void server_accept_one(struct server *s, int fd)
{
	struct broker *b = s->broker;
	struct identity *id = NULL;
	struct rate_bucket *budget = NULL;
	struct server_uid *u;
	struct epoll_event ev = {.events = EPOLLIN};
	struct connection *c;
	struct ucred cred;
	socklen_t len = sizeof(cred);
	char message[VB_MESSAGE_MAX];
	int r;

	if (s->n_connections >= b->config.max_connections) {
		log_warning("Refusing a connection: %zu connections open, the limit",
			    s->n_connections);
		snprintf(message, sizeof(message),
			 "the broker has %u connections open, its limit; try again later",
			 b->config.max_connections);
		server_refuse(s, fd, (uid_t)-1, message);
		return;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 || len != sizeof(cred)) {
		log_warning_errno(errno, "Refusing a connection: cannot read its credentials: %m");
		closer_close_socket(b->closer, fd, (uid_t)-1);
		return;
	}
	/* Sockets of the uid still being closed count: each holds a descriptor of the broker. */
	if (cred.uid != 0 && server_count_uid(s, cred.uid) + closer_pending(b->closer, cred.uid) >=
				     b->config.max_connections_per_uid) {
		log_warning(
			"Refusing a connection of uid %u: it has %u connections open, the limit",
			(unsigned)cred.uid, b->config.max_connections_per_uid);
		snprintf(message, sizeof(message),
			 "uid %u has %u connections open to the broker, the most it may have; "
			 "close some first",
			 (unsigned)cred.uid, b->config.max_connections_per_uid);
		server_refuse(s, fd, cred.uid, message);
		return;
	}
	r = identity_from_socket(fd, &cred, &id);
	if (r < 0) {
		/* Fail closed: a peer we cannot identify gets nothing. */
		log_warning_errno(
			r, "Refusing a connection of pid %d (uid %u): cannot identify it: %m",
			(int)cred.pid, (unsigned)cred.uid);
		closer_close_socket(b->closer, fd, cred.uid);
		return;
	}
	/* Root is exempt, as from the connection limit; 0: no request limit. */
	if (id->uid != 0) {
		r = rate_limit_get(&s->requests, id->uid, server_now_usec(s), &budget);
		if (r < 0) {
			log_error_errno(r, "Failed to set up a connection: %m");
			identity_free(id);
			closer_close_socket(b->closer, fd, cred.uid);
			return;
		}
	}
	r = connection_new(b, fd, id, s->hooks->packet, &c);
	if (r < 0) {
		log_error_errno(r, "Failed to set up a connection: %m");
		rate_limit_put(&s->requests, budget, server_now_usec(s));
		identity_free(id);
		closer_close_socket(b->closer, fd, cred.uid);
		return;
	}
	u = server_get_uid(s, cred.uid);
	ev.data.ptr = c;
	if (!u || epoll_ctl(s->epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		r = u ? -errno : -ENOMEM;
		log_error_errno(r, "Failed to set up a connection: %m");
		server_put_uid(s, u);
		rate_limit_put(&s->requests, budget, server_now_usec(s));
		c->closing = true;
		connection_free(c);
		return;
	}
	c->budget = budget;
	c->peer_uid = u;
	u->n_connections++;
	list_prepend(&s->connections, &c->link);
	list_prepend(server_pid_bucket(s, id->pid.pid), &c->pid_link);
	s->n_connections++;
	if (b->config.handshake_timeout_usec > 0)
		server_watch_handshake(s, c);
	c->holder = lease_table_find_holder(b->leases, &id->pid);
	if (c->holder)
		holder_ref_connection(c->holder);
	log_debug("Connection %llu from pid %d (uid %u%s%s%s)", (unsigned long long)c->serial,
		  (int)id->pid.pid, (unsigned)id->uid, id->unit ? ", unit " : "",
		  id->unit ? id->unit : "", c->admin ? ", admin" : "");
	if (s->hooks->opened)
		s->hooks->opened(c);
}

static int server_on_retry(sd_event_source *src, uint64_t usec, void *userdata)
{
	struct server *s = userdata;

	sd_event_source_set_enabled(s->accept_source, SD_EVENT_ON);
	return 0;
}

/* Stop accepting for a while; server_on_retry starts again. */
static void server_pause_accepting(struct server *s)
{
	sd_event_source_set_enabled(s->accept_source, SD_EVENT_OFF);
	sd_event_source_set_time_relative(s->retry_source, SERVER_ACCEPT_RETRY_USEC);
	sd_event_source_set_enabled(s->retry_source, SD_EVENT_ONESHOT);
}

static int server_on_accept(sd_event_source *src, int fd, uint32_t revents, void *userdata)
{
	struct server *s = userdata;

	for (int i = 0; i < SERVER_ACCEPT_BURST; i++) {
		int cfd;

		/*
		 * Every socket accepted may have to go to the closer, which holds it until
		 * a client's close() returns. While it holds that many, new connections
		 * wait in the listen backlog; open ones, and signals, are served.
		 */
		if (closer_saturated(s->broker->closer)) {
			log_warning("Pausing accept(): %u sockets of clients that sent file "
				    "descriptors are still being closed",
				    s->broker->config.max_connections);
			server_pause_accepting(s);
			return 0;
		}
		cfd = accept4(s->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (cfd >= 0) {
			server_accept_one(s, cfd);
			continue;
		}
		if (errno == EAGAIN || errno == EINTR)
			return 0;
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
			log_warning_errno(errno, "Failed to accept a connection: %m; pausing");
			server_pause_accepting(s);
			return 0;
		}
		/* ECONNABORTED and friends: that one connection is gone; go on. */
		log_debug_errno(errno, "accept() failed: %m");
	}
	return 0;
}

/* mkdir -p for the socket's directory, each new component 0755. */
static int server_mkdir_parents(const char *path)
{
	char buf[PATH_MAX];
	char *p;

	if (strlen(path) >= sizeof(buf))
		return -ENAMETOOLONG;
	strcpy(buf, path);
	p = strrchr(buf, '/');
	if (!p || p == buf)
		return 0;
	*p = '\0';
	for (p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, 0755) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

/*
 * Bind our own socket at path. A socket already there is replaced only if
 * nobody answers on it (a stale one from a previous run); anything that is
 * not a socket is never removed. The socket is bound and listening under a
 * temporary name first and then renamed into place, so that whoever sees
 * the path can connect at once.
 */
static int server_bind(struct server *s, const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX}, tmp = {.sun_family = AF_UNIX};
	_cleanup_close_ int fd = -1;
	const char *base = strrchr(path, '/');
	struct stat st;
	int r, k;

	if (strlen(path) >= sizeof(sa.sun_path))
		return log_error_errno(ENAMETOOLONG, "Socket path %s is too long", path);
	strcpy(sa.sun_path, path);
	/* "sock" and "/run/x/sock" alike: the temporary name sits beside the socket. */
	if (base)
		k = snprintf(tmp.sun_path, sizeof(tmp.sun_path), "%.*s/.%s.%d", (int)(base - path),
			     path, base + 1, (int)getpid());
	else
		k = snprintf(tmp.sun_path, sizeof(tmp.sun_path), ".%s.%d", path, (int)getpid());
	if (k < 0 || (size_t)k >= sizeof(tmp.sun_path))
		return log_error_errno(ENAMETOOLONG, "Socket path %s is too long", path);
	r = server_mkdir_parents(path);
	if (r < 0)
		return log_error_errno(r, "Failed to create the directory of %s: %m", path);
	if (lstat(path, &st) == 0) {
		_cleanup_close_ int probe = -1;

		if (!S_ISSOCK(st.st_mode))
			return log_error_errno(
				EEXIST, "%s exists and is not a socket; refusing to replace it",
				path);
		probe = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
		if (probe >= 0 && connect(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			return log_error_errno(EADDRINUSE, "Another broker is listening on %s",
					       path);
	} else if (errno != ENOENT) {
		return log_error_errno(errno, "Failed to look at %s: %m", path);
	}

	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return log_error_errno(errno, "Failed to create a socket: %m");
	if (unlink(tmp.sun_path) < 0 && errno != ENOENT)
		return log_error_errno(errno, "Failed to remove %s: %m", tmp.sun_path);
	if (bind(fd, (struct sockaddr *)&tmp, sizeof(tmp)) < 0)
		return log_error_errno(errno, "Failed to bind %s: %m", tmp.sun_path);
	/* Anyone may connect; what they get is decided per request by the policy. */
	if (chmod(tmp.sun_path, 0666) < 0 || listen(fd, SOMAXCONN) < 0 ||
	    rename(tmp.sun_path, path) < 0) {
		r = log_error_errno(errno, "Failed to set up %s: %m", path);
		unlink(tmp.sun_path);
		return r;
	}
	if (stat(path, &st) < 0)
		return log_error_errno(errno, "Failed to look at %s: %m", path);
	s->created = true;
	s->dev = st.st_dev;
	s->ino = st.st_ino;
	s->listen_fd = TAKE_FD(fd);
	return 0;
}

/* The socket systemd passed: exactly one listening AF_UNIX SOCK_SEQPACKET socket. */
static int server_take_systemd(struct server *s, int n)
{
	struct sockaddr_un sa;
	socklen_t len = sizeof(sa);
	int fd = SD_LISTEN_FDS_START, r, fl;

	if (n != 1) {
		for (int i = 0; i < n; i++)
			close(SD_LISTEN_FDS_START + i);
		return log_error_errno(EINVAL, "systemd passed %d sockets; expected exactly one",
				       n);
	}
	r = sd_is_socket_unix(fd, SOCK_SEQPACKET, 1, NULL, 0);
	if (r <= 0) {
		close(fd);
		return log_error_errno(r < 0 ? r : EINVAL,
				       "The socket systemd passed is not a listening AF_UNIX "
				       "SOCK_SEQPACKET socket");
	}
	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 ||
	    fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
		r = -errno;
		close(fd);
		return log_error_errno(r, "Failed to configure the socket systemd passed: %m");
	}
	s->listen_fd = fd;
	if (getsockname(fd, (struct sockaddr *)&sa, &len) == 0 && len > sizeof(sa.sun_family) &&
	    sa.sun_path[0])
		s->path = strndup(sa.sun_path, len - sizeof(sa.sun_family));
	else
		s->path = strdup("(socket from systemd)");
	return s->path ? 0 : -ENOMEM;
}

int server_new(struct broker *b, const struct server_hooks *hooks, struct server **ret)
{
	struct server *s;
	int n, r;

	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->broker = b;
	s->hooks = hooks;
	s->listen_fd = -1;
	list_init(&s->connections);
	list_init(&s->turns);
	list_init(&s->handshakes);
	for (size_t i = 0; i < SERVER_HASH_SIZE; i++)
		list_init(&s->by_pid[i]);
	s->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	if (s->epoll_fd < 0) {
		free(s);
		return -errno;
	}
	/* Live budgets are at most max_connections, so twice that leaves room for idle ones. */
	rate_limit_init(&s->requests, b->config.max_requests_per_uid,
			b->config.request_burst_per_uid, 2 * (size_t)b->config.max_connections);

	n = sd_listen_fds(1);
	if (n < 0) {
		r = log_error_errno(n, "Failed to read the sockets systemd passed: %m");
		goto fail;
	}
	if (n > 0) {
		if (b->config.socket_path)
			log_warning("Using the socket systemd passed; ignoring --socket %s",
				    b->config.socket_path);
		r = server_take_systemd(s, n);
	} else {
		const char *path =
			b->config.socket_path ? b->config.socket_path : BROKER_DEFAULT_SOCKET;

		s->path = strdup(path);
		r = s->path ? server_bind(s, path) : -ENOMEM;
	}
	if (r < 0)
		goto fail;
	/*
	 * Credentials on every packet (connection.h). Set once here: an accepted
	 * socket inherits SO_PASSCRED from its listener (unix_accept() since Linux
	 * 3.12, at connect() since 6.16), and the kernel attaches credentials to
	 * what is sent before accept() anyway, so no socket needs it set again.
	 */
	if (setsockopt(s->listen_fd, SOL_SOCKET, SO_PASSCRED, &(int){1}, sizeof(int)) < 0) {
		r = log_error_errno(errno, "Failed to turn on SO_PASSCRED on the socket: %m");
		goto fail;
	}

	r = sd_event_add_io(b->event, &s->accept_source, s->listen_fd, EPOLLIN, server_on_accept,
			    s);
	if (r < 0)
		goto fail;
	r = sd_event_add_io(b->event, &s->epoll_source, s->epoll_fd, EPOLLIN, server_on_connections,
			    s);
	if (r < 0)
		goto fail;
	r = sd_event_add_time_relative(b->event, &s->retry_source, CLOCK_MONOTONIC,
				       SERVER_ACCEPT_RETRY_USEC, 0, server_on_retry, s);
	if (r < 0)
		goto fail;
	sd_event_source_set_enabled(s->retry_source, SD_EVENT_OFF);
	r = sd_event_add_time(b->event, &s->handshake_timer, CLOCK_MONOTONIC, 0, 0,
			      server_on_handshake_deadline, s);
	if (r < 0)
		goto fail;
	sd_event_source_set_enabled(s->handshake_timer, SD_EVENT_OFF);
	*ret = s;
	return 0;
fail:
	server_free(s);
	return r;
}

struct server *server_free(struct server *s)
{
	struct stat st;

	if (!s)
		return NULL;
	while (!list_is_empty(&s->connections))
		connection_free(container_of(s->connections.next, struct connection, link));
	rate_limit_done(&s->requests);
	sd_event_source_disable_unref(s->accept_source);
	sd_event_source_disable_unref(s->retry_source);
	sd_event_source_disable_unref(s->epoll_source);
	sd_event_source_disable_unref(s->handshake_timer);
	safe_close(s->epoll_fd);
	for (size_t i = 0; i < SERVER_HASH_SIZE; i++)
		while (s->uids[i]) {
			struct server_uid *u = s->uids[i];

			s->uids[i] = u->hash_next;
			free(u);
		}
	safe_close(s->listen_fd);
	/* Remove the socket we bound, unless something else has replaced it since. */
	if (s->created && lstat(s->path, &st) == 0 && st.st_dev == s->dev && st.st_ino == s->ino)
		unlink(s->path);
	free(s->path);
	free(s);
	return NULL;
}
