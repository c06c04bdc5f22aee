/* SPDX-License-Identifier: MIT */
/*
 * Hostile clients: garbage, oversized packets, fd floods, silence, too many
 * connections, exits mid-request, a connection outliving its process while
 * another process gets that pid. After each, the broker is alive, serves a
 * good client, and its fd count is back where it started.
 */
#include "tests/integration/it.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/sched.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int baseline;

static void setup(void)
{
	broker_setup(&it_broker, IT_POLICY);
	broker_start(&it_broker, "--handshake-timeout", "2", NULL);
	/* One good exchange first, so that nothing of start-up is still in flight. */
	{
		int fd = raw_connect(it_broker.socket);
		char buf[256];

		ck_assert_int_ge(fd, 0);
		ck_assert_int_eq(raw_send(fd, "{\"id\":1,\"op\":\"hello\",\"version\":1}"), 0);
		ck_assert_int_gt(raw_recv(fd, buf, sizeof(buf), 5000), 0);
		close(fd);
	}
	baseline = broker_fd_count_settled(&it_broker);
}

static void expect_error(int fd, const char *code)
{
	char buf[4096], want[64];
	int n = raw_recv(fd, buf, sizeof(buf), 5000);

	ck_assert_int_gt(n, 0);
	snprintf(want, sizeof(want), "\"code\":\"%s\"", code);
	ck_assert_msg(strstr(buf, want), "expected %s, got %s", code, buf);
}

static void hello(int fd)
{
	char buf[4096];

	ck_assert_int_eq(raw_send(fd, "{\"id\":1,\"op\":\"hello\",\"version\":1}"), 0);
	ck_assert_int_gt(raw_recv(fd, buf, sizeof(buf), 5000), 0);
	ck_assert_msg(strstr(buf, "\"ok\":true"), "hello failed: %s", buf);
}

START_TEST(test_garbage_gets_bad_request_and_the_connection_survives)
{
	int fd = raw_connect(it_broker.socket);
	char buf[8192];

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(raw_send(fd, "\x01\x02garbage{{{"), 0);
	expect_error(fd, "bad-request");
	ck_assert_int_eq(raw_send(fd, "{\"id\":\"x\"}"), 0);
	expect_error(fd, "bad-request");
	hello(fd);
	ck_assert_int_eq(raw_send(fd, "{\"id\":2,\"op\":\"lease\",\"group\":7,\"extra\":1}"), 0);
	expect_error(fd, "bad-request");
	ck_assert_int_eq(raw_send(fd, "{\"id\":3,\"op\":\"list\"}"), 0);
	ck_assert_int_gt(raw_recv(fd, buf, sizeof(buf), 5000), 0);
	ck_assert_msg(strstr(buf, "\"id\":3") && strstr(buf, "\"ok\":true"), "%s", buf);
	close(fd);
	assert_serves_good_client(&it_broker, baseline);
}
END_TEST

START_TEST(test_request_before_hello_is_refused_until_the_handshake)
{
	int fd = raw_connect(it_broker.socket);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(raw_send(fd, "{\"id\":5,\"op\":\"lease\",\"group\":7}"), 0);
	expect_error(fd, "bad-request");
	hello(fd);
	close(fd);
	assert_serves_good_client(&it_broker, baseline);
}
END_TEST

START_TEST(test_wrong_protocol_version_is_unsupported_version)
{
	int fd = raw_connect(it_broker.socket);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(raw_send(fd, "{\"id\":1,\"op\":\"hello\",\"version\":0}"), 0);
	expect_error(fd, "unsupported-version");
	hello(fd); /* the connection may try again */
	close(fd);
	assert_serves_good_client(&it_broker, baseline);
}
END_TEST

START_TEST(test_oversized_packet_is_refused_with_limit)
{
	int fd = raw_connect(it_broker.socket);
	size_t size = 70000;
	char *big = malloc(size);

	ck_assert_int_ge(fd, 0);
	hello(fd);
	memset(big, ' ', size);
	memcpy(big, "{\"id\":9,\"op\":\"list\"}", 20);
	/* The kernel may refuse a packet this large outright; if it goes, the broker refuses it. */
	if (send(fd, big, size, MSG_NOSIGNAL) == (ssize_t)size)
		expect_error(fd, "limit");
	ck_assert_int_eq(send(fd, big, 8192, MSG_NOSIGNAL), 8192);
	expect_error(fd, "limit");
	free(big);
	close(fd);
	assert_serves_good_client(&it_broker, baseline);
}
END_TEST

START_TEST(test_fd_flood_is_closed_and_refused)
{
	int fd = raw_connect(it_broker.socket), flood[200];
	union {
		struct cmsghdr align;
		char b[CMSG_SPACE(sizeof(int) * 200)];
	} control = {0};
	const char *req = "{\"id\":4,\"op\":\"list\"}";
	struct iovec iov = {.iov_base = (void *)req, .iov_len = strlen(req)};
	struct msghdr msg = {.msg_iov = &iov,
			     .msg_iovlen = 1,
			     .msg_control = control.b,
			     .msg_controllen = sizeof(control.b)};
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);

	ck_assert_int_ge(fd, 0);
	hello(fd);
	for (int i = 0; i < 200; i++)
		ck_assert_int_ge(flood[i] = open("/dev/null", O_RDONLY | O_CLOEXEC), 0);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int) * 200);
	memcpy(CMSG_DATA(c), flood, sizeof(int) * 200);
	ck_assert_int_eq(sendmsg(fd, &msg, MSG_NOSIGNAL), (ssize_t)strlen(req));
	for (int i = 0; i < 200; i++)
		close(flood[i]);
	expect_error(fd, "bad-request");
	close(fd);
	assert_serves_good_client(&it_broker, baseline);
}
END_TEST

/*
 * An fd whose last close() blocks for as long as its owner likes: a TCP
 * connection on loopback to a listener that never reads, with unsent data
 * queued and SO_LINGER 30 s. Whoever drops its last reference waits in
 * close() until the data is sent or the linger time is up. Returns the
 * listener (to keep open: while it is, nothing is read) in *ret_listener.
 */
static int lingering_socket(int *ret_listener)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sa);
	struct linger lg = {.l_onoff = 1, .l_linger = 30};
	int small = 4096, listener, tcp;
	char junk[4096] = {0};
	struct pollfd p;

	listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (listener < 0 ||
	    setsockopt(listener, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small)) < 0 ||
	    bind(listener, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(listener, 1) < 0 ||
	    getsockname(listener, (struct sockaddr *)&sa, &len) < 0)
		return -1;
	tcp = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (tcp < 0 || setsockopt(tcp, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)) < 0)
		return -1;
	if (connect(tcp, (struct sockaddr *)&sa, sizeof(sa)) < 0 && errno != EINPROGRESS)
		return -1;
	p = (struct pollfd){.fd = tcp, .events = POLLOUT};
	if (poll(&p, 1, 5000) != 1)
		return -1;
	/* Fill the peer's receive buffer and our send buffer: data stays unsent. */
	for (int i = 0; i < 100000; i++)
		if (write(tcp, junk, sizeof(junk)) < 0) {
			if (errno != EAGAIN)
				return -1;
			break;
		}
	if (setsockopt(tcp, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)) < 0)
		return -1;
	*ret_listener = listener;
	return tcp;
}

/* Send text with fd attached as SCM_RIGHTS. */
static int send_with_fd(int sock, const char *text, int fd)
{
	union {
		struct cmsghdr align;
		char b[CMSG_SPACE(sizeof(int))];
	} control = {0};
	struct iovec iov = {.iov_base = (void *)text, .iov_len = strlen(text)};
	struct msghdr msg = {.msg_iov = &iov,
			     .msg_iovlen = 1,
			     .msg_control = control.b,
			     .msg_controllen = sizeof(control.b)};
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);

	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	return sendmsg(sock, &msg, MSG_NOSIGNAL) == (ssize_t)strlen(text) ? 0 : -1;
}

/* signal_pipe_wait with up to 30 s: setting up TCP sockets is slow on a loaded machine. */
static char wait_ready_generously(struct signal_pipe *p)
{
	char c = 0;

	for (int i = 0; i < 3 && !c; i++)
		c = signal_pipe_wait(p);
	return c;
}

struct freeze_attack {
	const char *socket;
	struct signal_pipe ready, go;
};

/*
 * The attacker, a uid in no rule that never says hello: sends the lingering
 * socket with its first packet, drops its own copy (the broker's is now the
 * last), and keeps the listener open until told to go.
 */
static int freeze_attacker(void *arg)
{
	struct freeze_attack *a = arg;
	int listener = -1, tcp = lingering_socket(&listener), fd = raw_connect(a->socket);

	if (tcp < 0 || fd < 0 ||
	    send_with_fd(fd, "{\"id\":1,\"op\":\"hello\",\"version\":1}", tcp) < 0)
		return 1;
	close(tcp);
	signal_pipe_send(&a->ready, 'R');
	for (int i = 0; i < 6 && !signal_pipe_wait(&a->go); i++)
		;
	close(fd);
	close(listener);
	return 0;
}

static double seconds_since(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)(t.tv_sec - t0->tv_sec) + (double)(t.tv_nsec - t0->tv_nsec) / 1e9;
}

/*
 * Issue 13, item 1. Before the fix the broker closed the attacker's socket
 * on its event loop and waited there the whole linger time (30 s): Alice's
 * lease and SIGTERM waited with it.
 */
START_TEST(test_an_fd_whose_close_blocks_never_freezes_the_broker)
{
	struct freeze_attack a = {.socket = it_broker.socket};
	struct outcome *o = outcome_new();
	struct client_args args = {.socket = it_broker.socket, .group = 7, .out = o};
	struct timespec t0;
	bool exited = false;
	int status = 0;
	pid_t attacker;

	signal_pipe_init(&a.ready);
	signal_pipe_init(&a.go);
	/*
	 * The broker is stopped while the attacker sends and drops its own copy,
	 * so that the broker's is the last one whatever runs first. Without the
	 * stop an idle broker drops its copy before the attacker does (then the
	 * attacker's close waits the 30 s), a loaded one after.
	 */
	ck_assert_int_eq(kill(it_broker.pid, SIGSTOP), 0);
	attacker = spawn_as(UID_BOB, 0, freeze_attacker, &a);
	status = wait_ready_generously(&a.ready);
	ck_assert_int_eq(kill(it_broker.pid, SIGCONT), 0);
	ck_assert_int_eq(status, 'R');
	status = 0;
	/* Time for the broker to get to the packet (and, before the fix, into close()). */
	usleep(500 * 1000);

	clock_gettime(CLOCK_MONOTONIC, &t0);
	ck_assert_int_eq(run_as(UID_ALICE, 0, client_lease, &args), 0);
	ck_assert_msg(o->rc == 0, "alice's lease failed: %s: %s", o->code, o->message);
	ck_assert_msg(seconds_since(&t0) < 10, "alice's lease took %.1f s: the broker was frozen",
		      seconds_since(&t0));

	/* SIGTERM is served too, while the socket is still lingering in the closer. */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	kill(it_broker.pid, SIGTERM);
	while (!exited && seconds_since(&t0) < 10) {
		exited = waitpid(it_broker.pid, &status, WNOHANG) == it_broker.pid;
		if (!exited)
			usleep(10000);
	}
	ck_assert_msg(exited, "the broker did not stop within 10 s of SIGTERM");
	it_broker.pid = -1;
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "the broker did not exit cleanly (status 0x%x)", status);

	signal_pipe_send(&a.go, 'G');
	ck_assert_int_eq(wait_exit(attacker), 0);
	outcome_free(o);
}
END_TEST

/*
 * The attacker of the test below: says hello and leaves the answer unread,
 * then (the broker stopped) queues the lingering socket behind it and
 * closes. A peer that closes with data unread gives the broker ECONNRESET,
 * not the end of the stream, while the packet with the socket is still in
 * the queue.
 */
static int reset_attacker(void *arg)
{
	struct freeze_attack *a = arg;
	int listener = -1, tcp = lingering_socket(&listener), fd = raw_connect(a->socket);
	const char *hello = "{\"id\":1,\"op\":\"hello\",\"version\":1}";
	struct pollfd p = {.fd = fd, .events = POLLIN};

	if (tcp < 0 || fd < 0 || send(fd, hello, strlen(hello), MSG_NOSIGNAL) < 0 ||
	    poll(&p, 1, 10000) != 1)
		return 1;
	signal_pipe_send(&a->ready, 'H');
	if (wait_ready_generously(&a->go) != 'S' ||
	    send_with_fd(fd, "{\"id\":2,\"op\":\"list\"}", tcp) < 0)
		return 1;
	close(tcp);
	close(fd);
	signal_pipe_send(&a->ready, 'R');
	for (int i = 0; i < 6 && !signal_pipe_wait(&a->go); i++)
		;
	close(listener);
	return 0;
}

/*
 * Issue 13, item 1, with the attacker gone first: only a socket that
 * returned the end of the stream is closed on the event loop without the
 * closer's checks; one that reset (its peer left an answer unread) may
 * still hold a packet whose descriptors linger, and goes through them.
 */
START_TEST(test_a_reset_connection_with_a_queued_fd_never_freezes_the_broker)
{
	struct freeze_attack a = {.socket = it_broker.socket};
	struct outcome *o = outcome_new();
	struct client_args args = {.socket = it_broker.socket, .group = 7, .out = o};
	struct timespec t0;
	pid_t attacker;
	char c;

	signal_pipe_init(&a.ready);
	signal_pipe_init(&a.go);
	attacker = spawn_as(UID_BOB, 0, reset_attacker, &a);
	c = wait_ready_generously(&a.ready);
	ck_assert_int_eq(c, 'H');
	ck_assert_int_eq(kill(it_broker.pid, SIGSTOP), 0);
	signal_pipe_send(&a.go, 'S');
	c = wait_ready_generously(&a.ready);
	ck_assert_int_eq(kill(it_broker.pid, SIGCONT), 0);
	ck_assert_int_eq(c, 'R');
	/* Time for the broker to get to the reset (and, treating it as the end, into close()). */
	usleep(500 * 1000);

	clock_gettime(CLOCK_MONOTONIC, &t0);
	ck_assert_int_eq(run_as(UID_ALICE, 0, client_lease, &args), 0);
	ck_assert_msg(o->rc == 0, "alice's lease failed: %s: %s", o->code, o->message);
	ck_assert_msg(seconds_since(&t0) < 10, "alice's lease took %.1f s: the broker was frozen",
		      seconds_since(&t0));

	signal_pipe_send(&a.go, 'G');
	ck_assert_int_eq(wait_exit(attacker), 0);
	outcome_free(o);
}
END_TEST

#define LINGER_FLOOD 4

struct linger_flood {
	const char *socket;
	struct outcome
		*out; /* value: connections answered bad-request; text: the next one's reply */
	struct signal_pipe ready, go;
	struct signal_pipe sent, cont; /* all sent while the broker is stopped; it runs again */
};

/* As a uid in no rule: LINGER_FLOOD connections, each sending a lingering socket, then one more. */
static int flood_with_lingering_sockets(void *arg)
{
	struct linger_flood *f = arg;
	int listeners[LINGER_FLOOD], conns[LINGER_FLOOD], fd, n;
	char buf[4096];

	f->out->value = 0;
	/* While the broker is stopped (see the test): send all, drop every copy of ours. */
	for (int i = 0; i < LINGER_FLOOD; i++) {
		int tcp = lingering_socket(&listeners[i]);

		conns[i] = raw_connect(f->socket);
		if (tcp < 0 || conns[i] < 0 ||
		    send_with_fd(conns[i], "{\"id\":1,\"op\":\"hello\",\"version\":1}", tcp) < 0)
			return 1;
		close(tcp);
	}
	signal_pipe_send(&f->sent, 'S');
	if (signal_pipe_wait(&f->cont) != 'C')
		return 1;
	for (int i = 0; i < LINGER_FLOOD; i++) {
		n = raw_recv(conns[i], buf, sizeof(buf) - 1, 5000);
		if (n > 0 && (buf[n] = '\0', strstr(buf, "\"bad-request\"")))
			f->out->value++;
		close(conns[i]);
	}
	/* The refusal comes at once, before any request. */
	fd = raw_connect(f->socket);
	if (fd < 0)
		return 1;
	n = raw_recv(fd, f->out->text, sizeof(f->out->text) - 1, 5000);
	close(fd);
	signal_pipe_send(&f->ready, 'R');
	for (int i = 0; i < 6 && !signal_pipe_wait(&f->go); i++)
		;
	for (int i = 0; i < LINGER_FLOOD; i++)
		close(listeners[i]);
	return n > 0 ? 0 : 1;
}

/*
 * Issue 13, item 1: what the closer holds is bounded. A uid whose sockets
 * wait there (each lingering 30 s behind the first) has them counted as its
 * connections: with --max-connections-per-uid 4, the fifth is refused with
 * limit, the broker holds no more than those four, and other users are
 * served meanwhile. Before the fix the broker froze on the first.
 */
START_TEST(test_sockets_waiting_to_close_count_against_the_uids_connections)
{
	struct outcome *o = outcome_new(), *alice = outcome_new();
	struct linger_flood f = {.socket = it_broker.socket, .out = o};
	struct client_args a = {.socket = it_broker.socket, .group = 7, .out = alice};
	pid_t attacker;
	int fds;

	broker_stop(&it_broker);
	broker_start(&it_broker, "--handshake-timeout", "2", "--max-connections-per-uid", "4",
		     NULL);
	baseline = broker_fd_count_settled(&it_broker);

	signal_pipe_init(&f.ready);
	signal_pipe_init(&f.go);
	signal_pipe_init(&f.sent);
	signal_pipe_init(&f.cont);
	/* Stopped while the attacker sends: the broker's copies are then the last ones. */
	ck_assert_int_eq(kill(it_broker.pid, SIGSTOP), 0);
	attacker = spawn_as(UID_BOB, 0, flood_with_lingering_sockets, &f);
	fds = wait_ready_generously(&f.sent);
	ck_assert_int_eq(kill(it_broker.pid, SIGCONT), 0);
	ck_assert_int_eq(fds, 'S');
	signal_pipe_send(&f.cont, 'C');
	ck_assert_int_eq(wait_ready_generously(&f.ready), 'R');
	ck_assert_int_eq(o->value, LINGER_FLOOD);
	ck_assert_msg(strstr(o->text, "\"code\":\"limit\""), "the fifth got %s", o->text);
	fds = broker_fd_count_settled(&it_broker);
	ck_assert_msg(fds <= baseline + LINGER_FLOOD, "broker holds %d fds, baseline %d", fds,
		      baseline);

	ck_assert_int_eq(run_as(UID_ALICE, 0, client_lease, &a), 0);
	ck_assert_msg(alice->rc == 0, "alice's lease failed: %s: %s", alice->code, alice->message);

	signal_pipe_send(&f.go, 'G');
	ck_assert_int_eq(wait_exit(attacker), 0);
	outcome_free(o);
	outcome_free(alice);
}
END_TEST

struct list_probe {
	const char *socket;
	struct outcome *out; /* value: the pid list shows as group 7's holder; -1 not held */
};

/* Lists the groups and reports what it says about group 7's holder. */
static int list_holder_of_7(void *arg)
{
	struct list_probe *p = arg;
	struct vfiobroker_group *groups = NULL;
	struct vfiobroker *b = NULL;
	size_t n = 0;
	int r;

	p->out->value = -2;
	r = vfiobroker_connect(p->socket, &b);
	if (r == 0)
		r = vfiobroker_list(b, &groups, &n);
	outcome_record(p->out, b, r);
	for (size_t i = 0; r == 0 && i < n; i++)
		if (groups[i].group == 7) {
			p->out->value = groups[i].held ? (int)groups[i].holder_pid : -1;
			snprintf(p->out->text, sizeof(p->out->text), "%u",
				 (unsigned)groups[i].holder_uid);
		}
	vfiobroker_groups_free(groups, n);
	vfiobroker_disconnect(b);
	return 0;
}

/* Issue 13, item 10: before the fix list named every holder's pid to every user. */
START_TEST(test_list_shows_the_holders_pid_only_to_admins_and_the_holders_uid)
{
	struct outcome *held = outcome_new(), *seen = outcome_new();
	struct list_probe p = {.socket = it_broker.socket, .out = seen};
	struct signal_pipe ready, go;
	pid_t holder =
		spawn_holder(it_broker.socket, UID_ALICE, 7, HOLD_UNTIL_GO, held, &ready, &go);

	/* Bob, in no rule: held, by uid 2000 (whom to ask), but not which process. */
	ck_assert_int_eq(run_as(UID_BOB, 0, list_holder_of_7, &p), 0);
	ck_assert_int_eq(seen->rc, 0);
	ck_assert_int_eq(seen->value, 0);
	ck_assert_str_eq(seen->text, "2000");
	/* Another process of Alice's, and root: the holder's pid. */
	ck_assert_int_eq(run_as(UID_ALICE, 0, list_holder_of_7, &p), 0);
	ck_assert_int_eq(seen->value, holder);
	ck_assert_int_eq(list_holder_of_7(&p), 0);
	ck_assert_int_eq(seen->value, holder);

	signal_pipe_send(&go, 'G');
	ck_assert_int_eq(wait_exit(holder), 0);
	outcome_free(held);
	outcome_free(seen);
	assert_serves_good_client(&it_broker, baseline);
}
END_TEST

struct explain_probe {
	const char *socket;
	const char *request;
	struct outcome *out; /* text: the reply */
};

static int raw_request_as_client(void *arg)
{
	struct explain_probe *p = arg;
	int fd = raw_connect(p->socket), n;
	char buf[4096];

	if (fd < 0 || raw_send(fd, "{\"id\":1,\"op\":\"hello\",\"version\":1}") < 0 ||
	    raw_recv(fd, buf, sizeof(buf), 5000) <= 0 || raw_send(fd, p->request) < 0)
		return 1;
	n = raw_recv(fd, p->out->text, sizeof(p->out->text) - 1, 5000);
	close(fd);
	return n > 0 ? 0 : 1;
}

/*
 * Issue 13, item 10: before the fix explain looked the name up first, so a
 * user in no rule learnt which names exist ("there is no user" against
 * "denied") and made the broker wait for NSS.
 */
START_TEST(test_explain_for_another_user_is_denied_before_any_name_lookup)
{
	struct outcome *o = outcome_new();
	struct explain_probe p = {.socket = it_broker.socket, .out = o};

	p.request = "{\"id\":2,\"op\":\"explain\",\"group\":7,\"user\":\"no-such-user-x\"}";
	ck_assert_int_eq(run_as(UID_BOB, 0, raw_request_as_client, &p), 0);
	ck_assert_msg(strstr(o->text, "\"code\":\"denied\""), "got %s", o->text);
	p.request = "{\"id\":2,\"op\":\"explain\",\"group\":7,\"user\":\"root\"}";
	ck_assert_int_eq(run_as(UID_BOB, 0, raw_request_as_client, &p), 0);
	ck_assert_msg(strstr(o->text, "\"code\":\"denied\""), "got %s", o->text);
	/* Explaining for oneself still works, by uid or with nothing named. */
	p.request = "{\"id\":2,\"op\":\"explain\",\"group\":7,\"uid\":2001}";
	ck_assert_int_eq(run_as(UID_BOB, 0, raw_request_as_client, &p), 0);
	ck_assert_msg(strstr(o->text, "\"ok\":true"), "got %s", o->text);
	p.request = "{\"id\":2,\"op\":\"explain\",\"group\":7}";
	ck_assert_int_eq(run_as(UID_BOB, 0, raw_request_as_client, &p), 0);
	ck_assert_msg(strstr(o->text, "\"ok\":true"), "got %s", o->text);
	outcome_free(o);
	assert_serves_good_client(&it_broker, baseline);
}
END_TEST

struct path_opener {
	char path[PATH_MAX];
	struct signal_pipe ready, go;
};

/* A user in no rule opens the group node with O_PATH (no permission needed) and keeps it. */
static int open_path_only(void *arg)
{
	struct path_opener *p = arg;
	int fd = open(p->path, O_PATH | O_CLOEXEC);

	if (fd < 0)
		return 1;
	signal_pipe_send(&p->ready, 'P');
	for (int i = 0; i < 6 && !signal_pipe_wait(&p->go); i++)
		;
	close(fd);
	return 0;
}

struct lease_retry {
	struct client_args a;
	uid_t uid;
};

static bool lease_is_granted(void *arg)
{
	struct lease_retry *r = arg;

	return run_as(r->uid, 0, client_lease, &r->a) == 0 && r->a.out->rc == 0;
}

/*
 * Issue 13, item 6. Alice's holder exits while its child keeps the file, so
 * the broker scans /proc for who has it and the first process found
 * inherits the lease. Before the fix that was Bob (in no rule, lower pid),
 * through a descriptor opened with O_PATH, which needs no permission: the
 * lease went to uid 2001 and stayed busy after Alice's child let go.
 */
START_TEST(test_an_o_path_descriptor_never_makes_its_owner_a_holder)
{
	struct outcome *held = outcome_new(), *again = outcome_new();
	struct lease_retry r = {.a = {.socket = it_broker.socket, .group = 7, .out = again},
				.uid = UID_CAROL};
	struct path_opener p;
	struct signal_pipe ready, go;
	pid_t opener, holder;

	sim_tree_group_path(&it_broker.sim, 7, p.path, sizeof(p.path));
	signal_pipe_init(&p.ready);
	signal_pipe_init(&p.go);
	opener = spawn_as(UID_BOB, 0, open_path_only, &p);
	ck_assert_int_eq(signal_pipe_wait(&p.ready), 'P');

	holder = spawn_holder(it_broker.socket, UID_ALICE, 7, HOLD_IN_CHILD, held, &ready, &go);
	ck_assert_int_eq(wait_exit(holder), 0);
	usleep(200 * 1000);
	/* Alice's child has it, and only it: busy, held by uid 2000. */
	ck_assert_int_ne(run_as(UID_CAROL, 0, client_lease, &r.a), 0);
	ck_assert_int_eq(again->rc, -EBUSY);
	ck_assert_msg(strstr(again->message, "2000"), "message: %s", again->message);
	ck_assert_msg(!broker_log_contains(&it_broker, "(uid 2001)"),
		      "uid 2001 was made holder; see %s", it_broker.log);
	/* Once the child lets go, the group is free, Bob's descriptor notwithstanding. */
	signal_pipe_send(&go, 'g');
	ck_assert_msg(wait_until(lease_is_granted, &r), "group 7 not free: %s: %s", again->code,
		      again->message);

	signal_pipe_send(&p.go, 'G');
	ck_assert_int_eq(wait_exit(opener), 0);
	outcome_free(held);
	outcome_free(again);
	assert_serves_good_client(&it_broker, baseline);
}
END_TEST

/*
 * Descriptors the stallers below keep in all: a few tenths of a second of
 * statx() for a whole scan, several slices. One process may have at most its hard RLIMIT_NOFILE,
 * which root here cannot raise (no CAP_SYS_RESOURCE), so several share them.
 */
#define STALLER_FDS   60000
#define STALLERS_MAX  32
#define STALLER_SPARE 64

struct staller {
	struct signal_pipe ready, go;
	int n_fds;
};

/* Bob, in no rule, keeps n_fds descriptors of /dev/null open until told. */
static int keep_many_fds(void *arg)
{
	struct staller *st = arg;
	struct rlimit rl;
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

	if (fd < 0 || getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return 1;
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
		return 2;
	for (int i = 0; i < st->n_fds; i++)
		if (dup(fd) < 0)
			return 3;
	signal_pipe_send(&st->ready, 'S');
	for (int i = 0; i < 12 && !signal_pipe_wait(&st->go); i++)
		;
	return 0;
}

struct scan_watch {
	pid_t holder;
	bool seen_unowned; /* a leases answer with no holder while the scan went on */
	bool other_tried;
	bool other_served; /* another client's lease granted while the scan went on */
	pid_t heir;
};

/* Alice leases group 8 and lets it go: whether that was granted while 7 stayed unowned. */
static bool other_lease_served_during_scan(void)
{
	struct outcome *o = outcome_new();
	struct client_args a = {.socket = it_broker.socket, .group = 8, .out = o};
	struct vfiobroker_lease l;
	bool granted = run_as(UID_ALICE, 0, client_lease, &a) == 0 && o->rc == 0;

	outcome_free(o);
	return granted && admin_find_lease(7, &l) && l.pid == 0;
}

/* Whether group 7's lease moved to a process other than the holder; notes what it saw. */
static bool lease_inherited(void *arg)
{
	struct scan_watch *w = arg;
	struct vfiobroker_lease l;

	if (!admin_find_lease(7, &l))
		return false;
	if (l.pid == 0)
		w->seen_unowned = true;
	if (l.pid == 0 && !w->other_tried) {
		w->other_tried = true;
		w->other_served = other_lease_served_during_scan();
	}
	if (l.pid == 0 || l.pid == w->holder)
		return false;
	w->heir = l.pid;
	return true;
}

/*
 * Issue 13, item 5. The holders scan reads every descriptor of every
 * process: Bob (in no rule) keeps 60,000 open, and a scan takes a few
 * tenths of a second (500,000 took 2.75 s in the review). Before, that second was spent inside one
 * event-loop iteration (the holder's exit), so no request could be answered until the heir was
 * found: no `leases` answer could ever show the lease without a holder. Now the scan runs in the
 * scanner process (broker/scanner.h), in slices of its own, while the broker serves requests: an
 * admin's `leases` sees the lease unowned while the scan goes on, another client's lease of
 * group 8 is granted meanwhile, the broker logs the slicing, and the scan's answer still makes
 * Alice's child the holder.
 */
START_TEST(test_a_slow_holders_scan_runs_off_the_event_loop_while_others_are_served)
{
	struct outcome *held = outcome_new();
	struct scan_watch w = {0};
	struct staller st[STALLERS_MAX];
	pid_t staller[STALLERS_MAX];
	struct signal_pipe ready, go;
	struct rlimit rl;
	int each, n = 0;

	ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
	each = rl.rlim_max > STALLER_FDS + STALLER_SPARE ? STALLER_FDS
							 : (int)rl.rlim_max - STALLER_SPARE;
	ck_assert_int_gt(each, STALLER_FDS / STALLERS_MAX);
	/* Started first, so their pids are lower than the heir's: the scan meets them first. */
	for (int left = STALLER_FDS; left > 0; left -= each, n++) {
		st[n].n_fds = left < each ? left : each;
		signal_pipe_init(&st[n].ready);
		signal_pipe_init(&st[n].go);
		staller[n] = spawn_as(UID_BOB, 0, keep_many_fds, &st[n]);
		ck_assert_int_eq(signal_pipe_wait(&st[n].ready), 'S');
	}

	w.holder = spawn_holder(it_broker.socket, UID_ALICE, 7, HOLD_IN_CHILD, held, &ready, &go);
	ck_assert_int_eq(wait_exit(w.holder), 0);
	/* Longer than wait_until: under valgrind and load the sliced scan takes long. */
	for (int i = 0; i < 600 && !lease_inherited(&w); i++)
		usleep(50 * 1000);
	ck_assert_msg(w.heir, "group 7 was not inherited; see %s", it_broker.log);
	ck_assert_msg(w.seen_unowned,
		      "no leases answer came while the scan went on: it ran in one piece");
	ck_assert_msg(w.other_served,
		      "Alice's lease of group 8 was not granted while the scan went on; see %s",
		      it_broker.log);
	ck_assert_msg(broker_log_contains(&it_broker, "EVENT=scan-sliced"),
		      "the broker did not log the sliced scan; see %s", it_broker.log);
	ck_assert_msg(broker_log_contains(&it_broker, "EVENT=inherit"), "no inherit in %s",
		      it_broker.log);

	signal_pipe_send(&go, 'g');
	for (int i = 0; i < n; i++) {
		signal_pipe_send(&st[i].go, 'G');
		ck_assert_int_eq(wait_exit(staller[i]), 0);
	}
	outcome_free(held);
	assert_serves_good_client(&it_broker, baseline);
}
END_TEST

START_TEST(test_silent_connection_does_not_disturb_others_and_times_out)
{
	int silent = raw_connect(it_broker.socket);
	char buf[256];

	ck_assert_int_ge(silent, 0);
	/* While one client says nothing, others are served at once. */
	{
		struct outcome *o = outcome_new();
		struct client_args a = {.socket = it_broker.socket, .group = 7, .out = o};

		for (int i = 0; i < 5; i++) {
			ck_assert_int_eq(run_as(UID_ALICE, 0, client_lease, &a), 0);
			ck_assert_int_eq(o->rc, 0);
		}
		outcome_free(o);
	}
	/* The handshake timeout (2 s here) ends the silent connection. */
	ck_assert_int_eq(raw_recv(silent, buf, sizeof(buf), 10000), 0);
	close(silent);
	assert_serves_good_client(&it_broker, baseline);
}
END_TEST

static double it_now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/*
 * One timer serves every connection's handshake deadline: a connection that
 * said hello and left must not take a later silent one's deadline with it,
 * and the later one is closed at its own deadline (2 s after it connected),
 * not at the earlier connection's (1 s after).
 */
START_TEST(test_silent_connection_times_out_at_its_own_deadline_after_others_left)
{
	int early = raw_connect(it_broker.socket), late;
	char buf[256];
	double t0, waited;

	ck_assert_int_ge(early, 0);
	ck_assert_int_eq(raw_send(early, "{\"id\":1,\"op\":\"hello\",\"version\":1}"), 0);
	ck_assert_int_gt(raw_recv(early, buf, sizeof(buf), 5000), 0);
	close(early);
	usleep(1000 * 1000);
	late = raw_connect(it_broker.socket);
	ck_assert_int_ge(late, 0);
	t0 = it_now_s();
	ck_assert_int_eq(raw_recv(late, buf, sizeof(buf), 10000), 0);
	waited = it_now_s() - t0;
	ck_assert_msg(waited >= 1.5, "closed %.2f s after connecting, before its deadline", waited);
	ck_assert_msg(waited < 8, "closed only %.2f s after connecting", waited);
	close(late);
	assert_serves_good_client(&it_broker, baseline);
}
END_TEST

/* Replies the broker must hold itself for the client below: under CONNECTION_MAX_QUEUED (64). */
#define UNREAD_IN_BROKER 32

/*
 * How many packets of len bytes one Unix socket with the default send
 * buffer (as the broker's are) can have waiting in the kernel for a peer
 * that does not read: measured on a socket pair of our own, since it
 * depends on the kernel's accounting.
 */
static int kernel_capacity(size_t len)
{
	char buf[4096] = {0};
	int sv[2], n = 0;

	if (len > sizeof(buf) || socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK, 0, sv) < 0)
		return -1;
	while (send(sv[0], buf, len, MSG_DONTWAIT) >= 0 && n < 100000)
		n++;
	close(sv[0]);
	close(sv[1]);
	return n;
}

/*
 * Hello, one `leases` to learn the reply's size, then as many requests as
 * the kernel can hold replies for plus UNREAD_IN_BROKER, back to back; no
 * reading for longer than the broker's send deadline (10 s); then count the
 * replies there are to read before the end of the stream. got[0]: replies,
 * got[1]: requests sent.
 */
static int send_and_never_read(void *arg)
{
	int *got = arg, fd = raw_connect(it_broker.socket), n, cap;
	char buf[4096], req[64];

	if (fd < 0)
		return 1;
	if (raw_send(fd, "{\"id\":1,\"op\":\"hello\",\"version\":1}") < 0 ||
	    raw_recv(fd, buf, sizeof(buf), 5000) <= 0)
		return 2;
	if (raw_send(fd, "{\"id\":2,\"op\":\"leases\"}") < 0 ||
	    (n = raw_recv(fd, buf, sizeof(buf), 5000)) <= 0)
		return 3;
	/* The ids below have three digits, two more than this one's. */
	cap = kernel_capacity((size_t)n + 2);
	if (cap < 0)
		return 4;
	got[1] = cap + UNREAD_IN_BROKER;
	for (int i = 0; i < got[1]; i++) {
		snprintf(req, sizeof(req), "{\"id\":%d,\"op\":\"leases\"}", 100 + i);
		if (raw_send(fd, req) < 0)
			return 5;
	}
	sleep(13);
	while (raw_recv(fd, buf, sizeof(buf), 5000) > 0)
		got[0]++;
	close(fd);
	return 0;
}

/*
 * 13.7: replies a client does not read are not kept for as long as it
 * likes. After the send deadline with none read, the broker closes the
 * connection and frees its queue: the client finds only the few replies
 * the kernel held for it, then the end of the stream, not all of them.
 */
START_TEST(test_a_client_that_reads_no_replies_is_closed_and_its_queue_freed)
{
	int *got = (int *)outcome_new();

	got[0] = got[1] = 0;
	ck_assert_int_eq(run_as(UID_BOB, 0, send_and_never_read, got), 0);
	ck_assert_msg(got[0] >= 1, "no reply at all reached the client");
	ck_assert_msg(got[0] < got[1],
		      "all %d replies of %d waited in the broker for a client that read none for "
		      "13 s",
		      got[0], got[1]);
	/* Its descriptors and memory went with it; others are served. */
	assert_serves_good_client(&it_broker, baseline);
	outcome_free((struct outcome *)got);
}
END_TEST

/* 13.7's per-uid turns: 16 connections of one uid, 4 requests on each, against one. */
#define FAIR_CONNS 16
#define FAIR_REQS  4

struct fair_run {
	struct signal_pipe ready, go;
	struct timespec sent[FAIR_CONNS * FAIR_REQS]; /* when the broker sent each reply */
	int n;					      /* replies received */
};

/*
 * One packet from fd with the time the kernel queued it for us (SO_TIMESTAMPNS: when
 * the broker's send() put it in our socket), within timeout_ms. Descriptors that come
 * with it are closed. Its length, or -1.
 */
static int recv_stamped(int fd, char *buf, size_t size, struct timespec *ret, int timeout_ms)
{
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(struct timespec)) + CMSG_SPACE(16 * sizeof(int))];
	} control;
	struct iovec iov = {.iov_base = buf, .iov_len = size - 1};
	struct msghdr mh = {.msg_iov = &iov,
			    .msg_iovlen = 1,
			    .msg_control = control.buf,
			    .msg_controllen = sizeof(control.buf)};
	struct pollfd p = {.fd = fd, .events = POLLIN};
	bool stamped = false;
	ssize_t n;

	if (poll(&p, 1, timeout_ms) != 1)
		return -1;
	n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
			memcpy(ret, CMSG_DATA(c), sizeof(*ret));
			stamped = true;
		} else if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
			for (size_t i = 0; i < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++) {
				int passed;

				memcpy(&passed, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
				close(passed);
			}
		}
	}
	return stamped ? (int)n : -1;
}

/* n connections, each past hello and stamping what it receives; 0 or -1. */
static int fair_connect(int *fds, int n)
{
	char buf[4096];
	int on = 1;

	for (int i = 0; i < n; i++) {
		fds[i] = raw_connect(it_broker.socket);
		if (fds[i] < 0 ||
		    raw_send(fds[i], "{\"id\":1,\"op\":\"hello\",\"version\":1}") < 0 ||
		    raw_recv(fds[i], buf, sizeof(buf), 5000) <= 0 ||
		    setsockopt(fds[i], SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof(on)) < 0)
			return -1;
	}
	return 0;
}

/* Connects conns connections, says 'R', waits for 'g', sends reqs `leases` on each, says
 * 'S', and reads every reply with its time. */
static int fair_client(struct fair_run *run, int conns, int reqs)
{
	int fds[FAIR_CONNS];
	char buf[8192], req[64];

	if (fair_connect(fds, conns) < 0)
		return 1;
	signal_pipe_send(&run->ready, 'R');
	if (signal_pipe_wait(&run->go) != 'g')
		return 2;
	for (int r = 0; r < reqs; r++)
		for (int i = 0; i < conns; i++) {
			snprintf(req, sizeof(req), "{\"id\":%d,\"op\":\"leases\"}", 10 + r);
			if (raw_send(fds[i], req) < 0)
				return 3;
		}
	signal_pipe_send(&run->ready, 'S');
	for (int r = 0; r < reqs; r++)
		for (int i = 0; i < conns; i++)
			if (recv_stamped(fds[i], buf, sizeof(buf), &run->sent[run->n], 20000) > 0)
				run->n++;
	return 0;
}

static int fair_flooder(void *arg)
{
	return fair_client(arg, FAIR_CONNS, FAIR_REQS);
}

static int fair_victim(void *arg)
{
	return fair_client(arg, 1, 1);
}

static bool stamp_before(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec < b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

/*
 * 13.7: turns are per uid, not per connection. Carol (in no rule) queues 4
 * requests on each of 16 connections and Alice one on one connection while
 * the broker is stopped, so that all of it is waiting when it goes on. With
 * a turn per connection, Alice's reply would come after about one reply per
 * connection of Carol's in front of hers (8 on average, up to 16, and 64 with
 * requests served to the end of each connection in turn); with a turn per uid
 * it comes after at most one of Carol's turns. The kernel's receive
 * timestamps (SO_TIMESTAMPNS: when the broker sent each reply) give the order;
 * no time is measured.
 */
START_TEST(test_one_uids_many_connections_get_its_turns_not_one_each)
{
	struct fair_run *flood = mmap(NULL, sizeof(*flood), PROT_READ | PROT_WRITE,
				      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	struct fair_run *victim = mmap(NULL, sizeof(*victim), PROT_READ | PROT_WRITE,
				       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	pid_t flooder, alice;
	int before = 0;

	ck_assert(flood != MAP_FAILED && victim != MAP_FAILED);
	memset(flood, 0, sizeof(*flood));
	memset(victim, 0, sizeof(*victim));
	signal_pipe_init(&flood->ready);
	signal_pipe_init(&flood->go);
	signal_pipe_init(&victim->ready);
	signal_pipe_init(&victim->go);
	flooder = spawn_as(UID_CAROL, 0, fair_flooder, flood);
	alice = spawn_as(UID_ALICE, 0, fair_victim, victim);
	ck_assert_int_eq(signal_pipe_wait(&flood->ready), 'R');
	ck_assert_int_eq(signal_pipe_wait(&victim->ready), 'R');

	ck_assert_int_eq(kill(it_broker.pid, SIGSTOP), 0);
	signal_pipe_send(&flood->go, 'g');
	ck_assert_int_eq(signal_pipe_wait(&flood->ready), 'S');
	signal_pipe_send(&victim->go, 'g');
	ck_assert_int_eq(signal_pipe_wait(&victim->ready), 'S');
	ck_assert_int_eq(kill(it_broker.pid, SIGCONT), 0);

	ck_assert_int_eq(wait_exit(alice), 0);
	ck_assert_int_eq(wait_exit(flooder), 0);
	ck_assert_int_eq(victim->n, 1);
	ck_assert_int_eq(flood->n, FAIR_CONNS * FAIR_REQS);
	for (int i = 0; i < flood->n; i++)
		before += stamp_before(&flood->sent[i], &victim->sent[0]);
	ck_assert_msg(before <= 2,
		      "%d of Carol's %d replies were sent before Alice's one: turns go by "
		      "connection, not by uid",
		      before, flood->n);
	munmap(flood, sizeof(*flood));
	munmap(victim, sizeof(*victim));
	assert_serves_good_client(&it_broker, baseline);
}
END_TEST

static int open_many(void *arg)
{
	int *result = arg, fds[80], n = 0;
	char buf[4096];

	for (n = 0; n < 80; n++) {
		fds[n] = raw_connect(it_broker.socket);
		if (fds[n] < 0)
			break;
		if (raw_send(fds[n], "{\"id\":1,\"op\":\"hello\",\"version\":1}") < 0 ||
		    raw_recv(fds[n], buf, sizeof(buf), 5000) <= 0 || !strstr(buf, "\"ok\":true")) {
			close(fds[n]);
			break;
		}
	}
	*result = n;
	for (int i = 0; i < n; i++)
		close(fds[i]);
	return 0;
}

START_TEST(test_connections_per_uid_are_limited)
{
	int *n = (int *)outcome_new();

	ck_assert_int_eq(run_as(UID_BOB, 0, open_many, n), 0);
	ck_assert_msg(*n == 64, "uid 2001 got %d connections; the limit is 64", *n);
	/* Another uid is not affected by Bob's connections. */
	assert_serves_good_client(&it_broker, baseline);
	outcome_free((struct outcome *)n);
}
END_TEST

START_TEST(test_malformed_values_each_get_a_typed_error)
{
	static const char *const bad[] = {
		"{\"id\":2,\"op\":\"lease\",\"group\":99999999999999999999}",
		"{\"id\":2,\"op\":\"lease\",\"group\":-7}",
		"{\"id\":2,\"op\":\"lease\",\"group\":\"7\"}",
		"{\"id\":2,\"op\":\"lease\",\"device\":\"../../../../etc/shadow\"}",
		"{\"id\":2,\"op\":\"lease\",\"group\":7,\"group\":8}",
		"{\"id\":2,\"op\":\"list\",\"x\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]"
		"]]]]]]]]]]}",
		"{\"id\":2,\"op\":\"remove\",\"group\":7,\"mode\":\"soft\",\"timeout_ms\":1e9}",
		"{\"id\":2,\"op\\u0000x\":\"list\",\"op\":\"list\"}",
		"{'id':2,'op':'list'}",
	};
	int fd = raw_connect(it_broker.socket);

	ck_assert_int_ge(fd, 0);
	hello(fd);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_int_eq(raw_send(fd, bad[i]), 0);
		expect_error(fd, "bad-request");
	}
	close(fd);
	assert_serves_good_client(&it_broker, baseline);
}
END_TEST

/* Sends an admin op with SCM_CREDENTIALS attached; returns sendmsg's errno or 0. */
static int send_with_creds(int fd, const char *text, pid_t pid, uid_t uid, gid_t gid)
{
	union {
		struct cmsghdr align;
		char b[CMSG_SPACE(sizeof(struct ucred))];
	} control = {0};
	struct ucred cred = {.pid = pid, .uid = uid, .gid = gid};
	struct iovec iov = {.iov_base = (void *)text, .iov_len = strlen(text)};
	struct msghdr msg = {.msg_iov = &iov,
			     .msg_iovlen = 1,
			     .msg_control = control.b,
			     .msg_controllen = sizeof(control.b)};
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);

	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_CREDENTIALS;
	c->cmsg_len = CMSG_LEN(sizeof(cred));
	memcpy(CMSG_DATA(c), &cred, sizeof(cred));
	return sendmsg(fd, &msg, MSG_NOSIGNAL) < 0 ? errno : 0;
}

static int credentials_liar(void *arg)
{
	int fd = raw_connect(it_broker.socket);
	char buf[4096];

	if (fd < 0)
		return 1;
	raw_send(fd, "{\"id\":1,\"op\":\"hello\",\"version\":1}");
	if (raw_recv(fd, buf, sizeof(buf), 5000) <= 0)
		return 2;
	/* Claiming root: the kernel itself refuses to send such a lie. */
	if (send_with_creds(fd, "{\"id\":2,\"op\":\"reload\"}", getpid(), 0, 0) != EPERM)
		return 3;
	/* True credentials attached: still just uid 2001, so the admin op is denied. */
	if (send_with_creds(fd, "{\"id\":3,\"op\":\"reload\"}", getpid(), getuid(), getgid()))
		return 4;
	if (raw_recv(fd, buf, sizeof(buf), 5000) <= 0 || !strstr(buf, "\"code\":\"denied\""))
		return 5;
	close(fd);
	return 0;
}

START_TEST(test_scm_credentials_never_change_who_a_client_is)
{
	ck_assert_int_eq(run_as(UID_BOB, 0, credentials_liar, NULL), 0);
	assert_serves_good_client(&it_broker, baseline);
}
END_TEST

static int lease_and_vanish(void *arg)
{
	int fd = raw_connect(it_broker.socket);
	char buf[256];

	if (fd < 0)
		return 1;
	raw_send(fd, "{\"id\":1,\"op\":\"hello\",\"version\":1}");
	raw_recv(fd, buf, sizeof(buf), 5000);
	raw_send(fd, "{\"id\":2,\"op\":\"lease\",\"group\":7}");
	_exit(0); /* gone before the reply */
}

START_TEST(test_client_exiting_mid_request_leaves_no_lease_behind)
{
	for (int i = 0; i < 10; i++)
		ck_assert_int_eq(run_as(UID_ALICE, 0, lease_and_vanish, NULL), 0);
	assert_serves_good_client(&it_broker, baseline);
}
END_TEST

/* ---- pid reuse ---- */

/* The shared state of the pid-reuse test: A and B write, the test reads. */
struct pid_reuse {
	struct signal_pipe go; /* the test tells B to send its lease */
	pid_t b_pid;	       /* written by A */
	int reply_len;	       /* B: the reply to its lease (raw_recv's result) */
	char reply[4096];
	int after_len; /* B: the next raw_recv on the connection: 0 = closed by the broker */
};

/*
 * A: connect and say hello as uid 2000, fork B (which inherits the
 * connection), exit. B waits for the test, then sends a lease of group 7 over
 * the inherited connection and records the reply and whether the broker
 * closed the connection afterwards.
 */
static int connect_fork_and_exit(void *arg)
{
	struct pid_reuse *p = arg;
	int fd = raw_connect(it_broker.socket);
	char buf[4096];
	pid_t child;

	if (fd < 0)
		return 1;
	if (raw_send(fd, "{\"id\":1,\"op\":\"hello\",\"version\":1}") < 0 ||
	    raw_recv(fd, buf, sizeof(buf), 5000) <= 0 || !strstr(buf, "\"ok\":true"))
		return 2;
	child = fork();
	if (child < 0)
		return 3;
	if (child == 0) {
		if (signal_pipe_wait(&p->go) != 'G')
			_exit(10);
		if (raw_send(fd, "{\"id\":2,\"op\":\"lease\",\"group\":7}") < 0)
			_exit(11);
		p->reply_len = raw_recv(fd, p->reply, sizeof(p->reply), 5000);
		p->after_len = raw_recv(fd, buf, sizeof(buf), 5000);
		_exit(0);
	}
	p->b_pid = child;
	return 0; /* A is gone; B keeps the connection A opened */
}

/*
 * Fork a child whose pid is want (A's, now free): clone3 with set_tid, or
 * else ns_last_pid and fork until the kernel hands out want. Returns 0 in
 * the child, want in the parent, -1 when neither could make it (*how says
 * why).
 */
static pid_t fork_with_pid(pid_t want, char *how, size_t how_size)
{
	pid_t tid = want, pid;
	struct clone_args ca = {
		.exit_signal = SIGCHLD,
		.set_tid = (uint64_t)(uintptr_t)&tid,
		.set_tid_size = 1,
	};
	int clone_errno;

	pid = (pid_t)syscall(SYS_clone3, &ca, CLONE_ARGS_SIZE_VER1);
	if (pid >= 0) {
		snprintf(how, how_size, "clone3 with set_tid");
		return pid;
	}
	clone_errno = errno;
	for (int i = 0; i < 100; i++) {
		char last[16];
		int fd = open("/proc/sys/kernel/ns_last_pid", O_WRONLY | O_CLOEXEC);
		int n = snprintf(last, sizeof(last), "%d", (int)want - 1);

		if (fd < 0 || write(fd, last, (size_t)n) != n) {
			snprintf(how, how_size,
				 "clone3 with set_tid failed (%s) and ns_last_pid is not writable "
				 "(%s)",
				 strerror(clone_errno), strerror(errno));
			if (fd >= 0)
				close(fd);
			return -1;
		}
		close(fd);
		pid = fork();
		if (pid == 0)
			return 0;
		if (pid == want) {
			snprintf(how, how_size, "ns_last_pid, attempt %d", i + 1);
			return pid;
		}
		if (pid > 0) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
		}
	}
	snprintf(how, how_size,
		 "clone3 with set_tid failed (%s) and 100 forks after writing ns_last_pid never "
		 "got pid %d",
		 strerror(clone_errno), (int)want);
	return -1;
}

/* RLIMIT_MEMLOCK of pid from /proc/<pid>/limits (prlimit() needs CAP_SYS_RESOURCE). */
static int read_memlock(pid_t pid, unsigned long long *soft, unsigned long long *hard)
{
	char path[64], line[256];
	FILE *f;
	int r = -ENOENT;

	snprintf(path, sizeof(path), "/proc/%d/limits", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Max locked memory %llu %llu", soft, hard) == 2) {
			r = 0;
			break;
		}
	fclose(f);
	return r;
}

#define REUSE_MEMLOCK (1024 * 1024) /* C's limit; rule alice-nics would raise it to 64M */

/*
 * Process A (uid 2000) connects; its child B inherits the connection; A
 * exits; a new process C of the same uid gets A's pid; B sends a lease.
 * SO_PEERCRED still says A's pid, which now names C. Pinned: the broker
 * goes by A's pidfd, not the number: B's lease is refused with `denied`
 * and the connection closed, nothing is granted, and C is not touched (the
 * rule's memlock is not applied to it; before the fix it was, and the lease
 * then failed as `internal`). Group 7 stays free for a real client.
 */
START_TEST(test_connection_outliving_its_process_is_not_taken_for_a_reused_pid)
{
	struct pid_reuse *p =
		mmap(NULL, sizeof(*p), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	struct signal_pipe c_ready, c_go;
	unsigned long long soft, hard;
	char how[256], needle[64];
	pid_t a, c;

	ck_assert_ptr_ne(p, MAP_FAILED);
	memset(p, 0, sizeof(*p));
	p->reply_len = p->after_len = -1;
	/* B is orphaned when A exits: become its parent so it can be waited for. */
	ck_assert_int_eq(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
	signal_pipe_init(&p->go);
	signal_pipe_init(&c_ready);
	signal_pipe_init(&c_go);

	a = spawn_as(UID_ALICE, 0, connect_fork_and_exit, p);
	ck_assert_int_eq(wait_exit(a), 0); /* A is reaped: its pid is free */
	ck_assert_int_gt(p->b_pid, 0);

	c = fork_with_pid(a, how, sizeof(how));
	if (c == 0) {
		struct rlimit low = {REUSE_MEMLOCK, REUSE_MEMLOCK};

		if (setrlimit(RLIMIT_MEMLOCK, &low) < 0 || setgroups(0, NULL) < 0 ||
		    setresgid(UID_ALICE, UID_ALICE, UID_ALICE) < 0 ||
		    setresuid(UID_ALICE, UID_ALICE, UID_ALICE) < 0)
			_exit(120);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		signal_pipe_send(&c_ready, 'C');
		signal_pipe_wait(&c_go);
		_exit(0);
	}
	if (c < 0) {
		/* Never a silent pass: this scenario could not be set up here. */
		kill(p->b_pid, SIGKILL);
		ck_abort_msg("NOT RUN: could not give pid %d to a new process: %s", (int)a, how);
	}
	ck_assert_int_eq(c, a);
	ck_assert_int_eq(signal_pipe_wait(&c_ready), 'C');
	fprintf(stderr,
		"pid reuse: A's pid %d now names a new process of uid %d (%s); B is pid %d\n",
		(int)a, UID_ALICE, how, (int)p->b_pid);

	signal_pipe_send(&p->go, 'G');
	ck_assert_int_eq(wait_exit(p->b_pid), 0);

	ck_assert_msg(p->reply_len > 0, "B got no reply to its lease (%d)", p->reply_len);
	ck_assert_msg(strstr(p->reply, "\"ok\":false") && strstr(p->reply, "\"code\":\"denied\""),
		      "a lease from a connection whose process has exited must be denied: %s",
		      p->reply);
	ck_assert_msg(strstr(p->reply, "has exited"), "the refusal should say why: %s", p->reply);
	ck_assert_msg(p->after_len == 0, "the broker should close the connection (recv: %d)",
		      p->after_len);

	/*
	 * C, the process that now has the pid, was not touched (only visible
	 * where the broker has CAP_SYS_RESOURCE; the reply above pins it anyway).
	 */
	ck_assert_int_eq(read_memlock(c, &soft, &hard), 0);
	ck_assert_msg(soft == REUSE_MEMLOCK && hard == REUSE_MEMLOCK,
		      "the new process with pid %d got the rule's memlock: %llu/%llu", (int)c, soft,
		      hard);
	snprintf(needle, sizeof(needle), "Granted group 7 to pid %d ", (int)a);
	ck_assert_msg(!broker_log_contains(&it_broker, needle),
		      "the broker granted the group to pid %d", (int)a);

	signal_pipe_send(&c_go, 'Q');
	ck_assert_int_eq(wait_exit(c), 0);
	munmap(p, sizeof(*p));
	assert_serves_good_client(&it_broker, baseline);
}
END_TEST

struct holder_with_child {
	const char *socket;
	struct outcome *out; /* value: the child's pid */
	struct signal_pipe ready, go;
};

/* Leases group 7 and forks a child that keeps the file; exits when told, the child stays. */
static int lease_and_fork_a_keeper(void *arg)
{
	struct holder_with_child *h = arg;
	struct vfiobroker *b = NULL;
	int fd = -1, r = vfiobroker_connect(h->socket, &b);
	pid_t child;

	if (r == 0)
		r = vfiobroker_lease(b, 7, &fd);
	outcome_record(h->out, b, r);
	if (r < 0)
		return 1;
	child = fork();
	if (child == 0) {
		for (;;)
			pause(); /* the test kills it */
	}
	h->out->value = (int)child;
	signal_pipe_send(&h->ready, 'L');
	signal_pipe_wait(&h->go);
	return 0;
}

/*
 * Processes with as many descriptors as their hard limit allows each (the
 * test's root may lack CAP_SYS_RESOURCE to raise it): the broker's scan of
 * them takes seconds. Each sends 'S' on ready when full, then waits to be killed.
 */
#define SLOW_SCAN_PROCESSES 16

static void spawn_many_fds(struct signal_pipe *ready, pid_t *pids, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		pids[i] = fork();
		if (pids[i] == 0) {
			struct rlimit rl;
			int null = open("/dev/null", O_RDONLY | O_CLOEXEC);

			if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
				rl.rlim_cur = rl.rlim_max;
				(void)setrlimit(RLIMIT_NOFILE, &rl);
			}
			while (null >= 0 && fcntl(null, F_DUPFD_CLOEXEC, 0) >= 0)
				;
			signal_pipe_send(ready, 'S');
			for (;;)
				pause();
		}
	}
}

/*
 * Issue 13, item 4. The holder exits while its child keeps the file; the
 * broker's /proc scan finds the child, then spends seconds in a process
 * with a million descriptors. Meanwhile the child dies and its pid goes to
 * a process of Bob's, in no rule. Before the fix the scan returned the bare
 * pid and the broker made Bob's process the holder ("inherited", uid 2001),
 * so the group stayed busy; acting through the pidfd taken before the read,
 * nothing of Bob's is touched and the group is free once the file closes.
 */
START_TEST(test_a_pid_reused_during_the_holder_scan_is_never_made_holder)
{
	struct outcome *held = outcome_new(), *again = outcome_new();
	struct holder_with_child h = {.socket = it_broker.socket, .out = held};
	struct lease_retry r = {.a = {.socket = it_broker.socket, .group = 7, .out = again},
				.uid = UID_CAROL};
	struct signal_pipe fds_ready;
	pid_t holder, keeper, reused, slow[SLOW_SCAN_PROCESSES];
	char how[256];

	ck_assert_int_eq(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
	signal_pipe_init(&h.ready);
	signal_pipe_init(&h.go);
	holder = spawn_as(UID_ALICE, 0, lease_and_fork_a_keeper, &h);
	ck_assert_int_eq(signal_pipe_wait(&h.ready), 'L');
	ck_assert_int_eq(held->rc, 0);
	keeper = (pid_t)held->value;

	/* Created after the keeper: /proc lists them later, so the scan is slow after the keeper.
	 */
	signal_pipe_init(&fds_ready);
	spawn_many_fds(&fds_ready, slow, SLOW_SCAN_PROCESSES);
	for (size_t i = 0; i < SLOW_SCAN_PROCESSES; i++) {
		ck_assert_int_eq(signal_pipe_wait(&fds_ready), 'S');
		ck_assert_msg(slow[i] > keeper, "pids wrapped (keeper %d, then %d); run again",
			      (int)keeper, (int)slow[i]);
	}

	/* The holder exits: the broker scans for who still has the file. */
	signal_pipe_send(&h.go, 'G');
	ck_assert_int_eq(wait_exit(holder), 0);
	usleep(300 * 1000);
	kill(keeper, SIGKILL);
	ck_assert_int_eq(waitpid(keeper, NULL, 0), keeper);
	reused = fork_with_pid(keeper, how, sizeof(how));
	if (reused == 0) {
		if (setgroups(0, NULL) < 0 || setgid(UID_BOB) < 0 || setuid(UID_BOB) < 0)
			_exit(1);
		for (;;)
			pause();
	}
	ck_assert_msg(reused == keeper, "could not reuse pid %d: %s", (int)keeper, how);

	/* Bob's process is never the holder, and the group is free again. */
	ck_assert_msg(wait_until(lease_is_granted, &r), "group 7 not free: %s: %s", again->code,
		      again->message);
	ck_assert_msg(!broker_log_contains(&it_broker, "(uid 2001)"),
		      "Bob's process (pid %d) was made a holder; see %s", (int)reused,
		      it_broker.log);
	ck_assert_int_eq(kill(reused, 0), 0);

	kill(reused, SIGKILL);
	waitpid(reused, NULL, 0);
	for (size_t i = 0; i < SLOW_SCAN_PROCESSES; i++) {
		kill(slow[i], SIGKILL);
		waitpid(slow[i], NULL, 0);
	}
	ck_assert_int_eq(prctl(PR_SET_CHILD_SUBREAPER, 0), 0);
	outcome_free(held);
	outcome_free(again);
	assert_serves_good_client(&it_broker, baseline);
}
END_TEST

Suite *suite_hostile(void)
{
	Suite *s = suite_create("hostile");
	TCase *t = tcase_create("hostile");

	tcase_add_checked_fixture(t, setup, it_broker_teardown);
	tcase_set_timeout(t, 60);
	tcase_add_test(t, test_garbage_gets_bad_request_and_the_connection_survives);
	tcase_add_test(t, test_request_before_hello_is_refused_until_the_handshake);
	tcase_add_test(t, test_silent_connection_times_out_at_its_own_deadline_after_others_left);
	tcase_add_test(t, test_wrong_protocol_version_is_unsupported_version);
	tcase_add_test(t, test_oversized_packet_is_refused_with_limit);
	tcase_add_test(t, test_fd_flood_is_closed_and_refused);
	tcase_add_test(t, test_an_fd_whose_close_blocks_never_freezes_the_broker);
	tcase_add_test(t, test_a_reset_connection_with_a_queued_fd_never_freezes_the_broker);
	tcase_add_test(t, test_sockets_waiting_to_close_count_against_the_uids_connections);
	tcase_add_test(t, test_list_shows_the_holders_pid_only_to_admins_and_the_holders_uid);
	tcase_add_test(t, test_explain_for_another_user_is_denied_before_any_name_lookup);
	tcase_add_test(t, test_an_o_path_descriptor_never_makes_its_owner_a_holder);
	tcase_add_test(t, test_a_pid_reused_during_the_holder_scan_is_never_made_holder);
	tcase_add_test(t, test_a_slow_holders_scan_runs_off_the_event_loop_while_others_are_served);
	tcase_add_test(t, test_silent_connection_does_not_disturb_others_and_times_out);
	tcase_add_test(t, test_connections_per_uid_are_limited);
	tcase_add_test(t, test_a_client_that_reads_no_replies_is_closed_and_its_queue_freed);
	tcase_add_test(t, test_one_uids_many_connections_get_its_turns_not_one_each);
	tcase_add_test(t, test_client_exiting_mid_request_leaves_no_lease_behind);
	tcase_add_test(t, test_malformed_values_each_get_a_typed_error);
	tcase_add_test(t, test_scm_credentials_never_change_who_a_client_is);
	tcase_add_test(t, test_connection_outliving_its_process_is_not_taken_for_a_reused_pid);
	suite_add_tcase(s, t);
	return s;
}
