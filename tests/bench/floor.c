/* SPDX-License-Identifier: MIT */
/*
 * The floor: the least a broker of this design can do per lease. A single-threaded epoll
 * server on a SOCK_SEQPACKET socket that answers a small JSON request
 * {"id":N,"op":"lease","group":G} by open()ing the group file of the simulated tree and
 * passing the fd with SCM_RIGHTS in a JSON reply {"id":N,"ok":true,"group":G}. Both
 * sides use json-c, as the broker and libvfiobroker do. Per connection it does what any
 * broker must: accept4, SO_PEERCRED, pidfd_open. No policy, no lease table, no logging.
 *
 *   floor        one connection per client, one op = one request
 *   floor-fresh  a new connection per op: socket + connect + request + close
 */
#include "tests/bench/bench.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#define FLOOR_PACKET 4096

struct floor_conn {
	int fd;
	int pidfd; /* -1 where pidfd_open is unknown (valgrind 3.19 says ENOSYS) */
	struct ucred cred;
};

void bench_group_path(const char *devdir, unsigned group, char *buf, size_t size)
{
	bench_fmt(buf, size, "%s/vfio/%u", devdir, group);
}

static int unix_address(const char *path, struct sockaddr_un *sa)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa->sun_path))
		return -ENAMETOOLONG;
	strcpy(sa->sun_path, path);
	return 0;
}

static struct floor_conn *floor_accept(int lfd, int ep)
{
	struct floor_conn *c;
	socklen_t len = sizeof(struct ucred);
	struct epoll_event ev = {.events = EPOLLIN};
	int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

	if (fd < 0)
		return NULL;
	c = calloc(1, sizeof(*c));
	if (!c) {
		close(fd);
		return NULL;
	}
	c->fd = fd;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &c->cred, &len) < 0)
		c->cred.pid = 0;
	c->pidfd = c->cred.pid > 0 ? (int)syscall(SYS_pidfd_open, c->cred.pid, 0) : -1;
	ev.data.ptr = c;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
		close(fd);
		if (c->pidfd >= 0)
			close(c->pidfd);
		free(c);
		return NULL;
	}
	return c;
}

static void floor_conn_close(struct floor_conn *c)
{
	close(c->fd); /* also leaves the epoll set */
	if (c->pidfd >= 0)
		close(c->pidfd);
	free(c);
}

/* One request: parse, open, reply with the fd. Returns -1 when the connection is done. */
static int floor_handle(struct floor_conn *c, const char *devdir, struct json_tokener *tok)
{
	char buf[FLOOR_PACKET], path[PATH_MAX];
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * 4)];
	} control;
	struct iovec iov = {.iov_base = buf, .iov_len = sizeof(buf)};
	struct msghdr msg = {.msg_iov = &iov,
			     .msg_iovlen = 1,
			     .msg_control = control.buf,
			     .msg_controllen = sizeof(control.buf)};
	struct json_object *req, *v, *reply;
	const char *out;
	size_t out_len;
	int64_t id = -1, group = -1;
	bool ok = false;
	int fd = -1;
	ssize_t n;

	n = recvmsg(c->fd, &msg, MSG_CMSG_CLOEXEC);
	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : -1;
	if (n == 0)
		return -1;
	json_tokener_reset(tok);
	req = json_tokener_parse_ex(tok, buf, (int)n);
	if (req && json_object_is_type(req, json_type_object)) {
		if (json_object_object_get_ex(req, "id", &v))
			id = json_object_get_int64(v);
		if (json_object_object_get_ex(req, "group", &v))
			group = json_object_get_int64(v);
		ok = json_object_object_get_ex(req, "op", &v) &&
		     !strcmp(json_object_get_string(v), "lease") && group >= 0 &&
		     group <= 0x7fffffff;
	}
	json_object_put(req);
	if (ok) {
		bench_group_path(devdir, (unsigned)group, path, sizeof(path));
		fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
		ok = fd >= 0;
	}
	reply = json_object_new_object();
	json_object_object_add(reply, "id", json_object_new_int64(id));
	json_object_object_add(reply, "ok", json_object_new_boolean(ok));
	if (ok)
		json_object_object_add(reply, "group", json_object_new_int64(group));
	out = json_object_to_json_string_length(reply, JSON_C_TO_STRING_PLAIN, &out_len);

	iov = (struct iovec){.iov_base = (void *)out, .iov_len = out_len};
	msg = (struct msghdr){.msg_iov = &iov, .msg_iovlen = 1};
	if (fd >= 0) {
		struct cmsghdr *cm;

		memset(&control, 0, sizeof(control));
		msg.msg_control = control.buf;
		msg.msg_controllen = CMSG_SPACE(sizeof(int));
		cm = CMSG_FIRSTHDR(&msg);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	}
	n = sendmsg(c->fd, &msg, MSG_NOSIGNAL);
	json_object_put(reply);
	if (fd >= 0)
		close(fd);
	return n < 0 && errno != EAGAIN ? -1 : 0;
}

int floor_serve(const char *socket_path, const char *devdir, int ready_fd)
{
	struct sockaddr_un sa;
	struct epoll_event lev = {.events = EPOLLIN, .data.ptr = NULL}, evs[64];
	struct json_tokener *tok = json_tokener_new();
	int lfd, ep;

	if (unix_address(socket_path, &sa) < 0 || !tok)
		return 1;
	unlink(socket_path);
	lfd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    chmod(socket_path, 0666) < 0 || listen(lfd, 4096) < 0) {
		fprintf(stderr, "floor: cannot listen on %s: %m\n", socket_path);
		return 1;
	}
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev) < 0)
		return 1;
	if (ready_fd >= 0) {
		(void)!write(ready_fd, "R", 1);
		close(ready_fd);
	}
	for (;;) {
		int n = epoll_wait(ep, evs, 64, -1);

		if (n < 0 && errno != EINTR)
			return 1;
		for (int i = 0; i < n; i++) {
			struct floor_conn *c = evs[i].data.ptr;

			if (!c) {
				while (floor_accept(lfd, ep))
					;
				continue;
			}
			if (floor_handle(c, devdir, tok) < 0)
				floor_conn_close(c);
		}
	}
}

int floor_server_start(const struct bench_env *env, const char *socket_path, pid_t *ret_pid)
{
	int p[2], r;
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		r = -errno;
		close(p[0]);
		close(p[1]);
		return r;
	}
	if (pid == 0) {
		close(p[0]);
		child_init(0);
		_exit(floor_serve(socket_path, env->tree.dev, p[1]));
	}
	close(p[1]);
	r = wait_byte(p[0], 10000);
	close(p[0]);
	if (r < 0) {
		proc_stop(pid);
		return r;
	}
	*ret_pid = pid;
	return 0;
}

/* ---- client ------------------------------------------------------------------------------ */

struct floor_client {
	const char *socket;
	bool fresh;
	int fd;
	unsigned group;
	int64_t next_id;
	struct json_tokener *tok;
};

static int floor_connect(const char *path)
{
	struct sockaddr_un sa;
	int fd, r;

	if ((r = unix_address(path, &sa)) < 0)
		return r;
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	while (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		if (errno != EINTR) {
			r = -errno;
			close(fd);
			return r;
		}
	}
	return fd;
}

/* One request on fd: send, receive the reply and its fd, check it, close the fd. */
static int floor_request(struct floor_client *c, int fd)
{
	char buf[FLOOR_PACKET];
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * 4)];
	} control;
	struct iovec iov = {.iov_base = buf, .iov_len = sizeof(buf)};
	struct msghdr msg = {.msg_iov = &iov,
			     .msg_iovlen = 1,
			     .msg_control = control.buf,
			     .msg_controllen = sizeof(control.buf)};
	struct json_object *req = json_object_new_object(), *reply, *v;
	int64_t id = c->next_id++;
	const char *out;
	size_t out_len;
	int got_fd = -1;
	bool ok = false;
	ssize_t n;

	json_object_object_add(req, "id", json_object_new_int64(id));
	json_object_object_add(req, "op", json_object_new_string("lease"));
	json_object_object_add(req, "group", json_object_new_int64(c->group));
	out = json_object_to_json_string_length(req, JSON_C_TO_STRING_PLAIN, &out_len);
	n = send(fd, out, out_len, MSG_NOSIGNAL);
	json_object_put(req);
	if (n < 0)
		return -errno;
	do
		n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n <= 0)
		return n < 0 ? -errno : -ECONNRESET;
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm))
		if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS)
			memcpy(&got_fd, CMSG_DATA(cm), sizeof(int));
	json_tokener_reset(c->tok);
	reply = json_tokener_parse_ex(c->tok, buf, (int)n);
	if (reply && json_object_object_get_ex(reply, "id", &v) && json_object_get_int64(v) == id &&
	    json_object_object_get_ex(reply, "ok", &v))
		ok = json_object_get_boolean(v);
	json_object_put(reply);
	if (got_fd >= 0)
		close(got_fd);
	return ok && got_fd >= 0 ? 0 : -EPROTO;
}

static int floor_setup(void *arg, unsigned idx, void **state)
{
	struct floor_client *c = calloc(1, sizeof(*c));
	const struct floor_client *tmpl = arg;

	if (!c)
		return -ENOMEM;
	*c = *tmpl;
	c->group = idx + 1;
	c->next_id = 1;
	c->tok = json_tokener_new();
	c->fd = -1;
	if (!c->fresh) {
		c->fd = floor_connect(c->socket);
		if (c->fd < 0)
			return c->fd;
	}
	*state = c;
	return 0;
}

static int floor_op(void *arg, unsigned idx, void *state, uint64_t *split)
{
	struct floor_client *c = state;
	int fd, r;

	if (!c->fresh)
		return floor_request(c, c->fd);
	fd = floor_connect(c->socket);
	if (fd < 0)
		return fd;
	r = floor_request(c, fd);
	close(fd);
	return r;
}

static void floor_teardown(void *arg, unsigned idx, void *state)
{
	struct floor_client *c = state;

	if (c->fd >= 0)
		close(c->fd);
	json_tokener_free(c->tok);
	free(c);
}

/* `bench --client-loop floor|floor-fresh`: n ops as one client, for instruction counts. */
int floor_client_loop(const char *socket_path, const char *devdir, unsigned group, unsigned n,
		      bool fresh)
{
	struct floor_client tmpl = {.socket = socket_path, .fresh = fresh};
	void *state;
	int r;

	(void)devdir;
	r = floor_setup(&tmpl, group - 1, &state);
	for (unsigned i = 0; r == 0 && i < n; i++)
		r = floor_op(&tmpl, 0, state, NULL);
	if (r < 0) {
		fprintf(stderr, "floor client: %s\n", strerror(-r));
		return 1;
	}
	floor_teardown(&tmpl, 0, state);
	return 0;
}

static void floor_run(const struct bench_env *env, const char *name, bool fresh, unsigned clients,
		      unsigned ops, unsigned warmup)
{
	struct row *row = row_get(name, clients);
	char sock[PATH_MAX];
	struct floor_client tmpl = {.socket = sock, .fresh = fresh};
	struct client_ops cops = {floor_setup, floor_op, floor_teardown, &tmpl};
	struct run_spec spec = {
		.clients = clients, .warmup = warmup, .ops = ops, .drop_privs = true};
	struct run_result res;
	pid_t server;
	int r;

	row->floor_name = fresh ? "floor-fresh" : "floor";
	if (row->status != ROW_OK)
		return;
	if (!env->tree_ok) {
		row_fail(row, "no simulated tree");
		return;
	}
	bench_fmt(sock, sizeof(sock), "%s/floor.sock", env->work);
	r = floor_server_start(env, sock, &server);
	if (r < 0) {
		row_fail(row, "floor server did not start: %s", strerror(-r));
		return;
	}
	run_measure(env, &spec, &cops, &res);
	proc_stop(server);
	if (res.error[0])
		row_fail(row, "%s", res.error);
	else
		row_add_run(row, &res, false);
	run_result_free(&res);
}

void bench_floor(const struct bench_env *env, int rep)
{
	(void)rep;
	floor_run(env, "floor", false, 1, bench_count(env, 100000, 300),
		  bench_count(env, 2000, 20));
	floor_run(env, "floor", false, 64, bench_count(env, 1600, 5), bench_count(env, 100, 1));
	/* The broker's 1,000-client row needs a floor of its own to be a ratio. */
	floor_run(env, "floor", false, 1000, bench_count(env, 100, 2), bench_count(env, 5, 1));
	floor_run(env, "floor-fresh", true, 1, bench_count(env, 20000, 100),
		  bench_count(env, 500, 5));
	floor_run(env, "floor-fresh", true, 64, bench_count(env, 320, 3), bench_count(env, 10, 1));
}
