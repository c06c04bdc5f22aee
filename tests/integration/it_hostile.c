/* SPDX-License-Identifier: MIT */
/*
 * Hostile clients: garbage, oversized packets, fd floods, silence, too many
 * connections, exits mid-request. After each, the broker is alive, serves a
 * good client, and its fd count is back where it started.
 */
#include "tests/integration/it.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static struct broker B;
static int baseline;

static void setup(void)
{
	broker_setup(&B, IT_POLICY);
	broker_start(&B, "--handshake-timeout", "2", NULL);
	/* One good exchange first, so that nothing of start-up is still in flight. */
	{
		int fd = raw_connect(B.socket);
		char buf[256];

		ck_assert_int_ge(fd, 0);
		ck_assert_int_eq(raw_send(fd, "{\"id\":1,\"op\":\"hello\",\"version\":1}"), 0);
		ck_assert_int_gt(raw_recv(fd, buf, sizeof(buf), 5000), 0);
		close(fd);
	}
	baseline = broker_fd_count_settled(&B);
}

static void teardown(void)
{
	broker_teardown(&B);
}

static bool fds_back_to_baseline(void *arg)
{
	return broker_fd_count(&B) == baseline;
}

/* The broker still serves a good client: Alice leases and releases group 7. */
static void assert_serves_good_client(void)
{
	struct outcome *o = outcome_new();
	struct client_args a = {.socket = B.socket, .group = 7, .out = o};

	ck_assert(broker_alive(&B));
	ck_assert_int_eq(run_as(UID_ALICE, 0, client_lease, &a), 0);
	ck_assert_int_eq(o->rc, 0);
	outcome_free(o);
	ck_assert_msg(wait_until(fds_back_to_baseline, NULL), "broker holds %d fds, baseline %d",
		      broker_fd_count(&B), baseline);
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
	int fd = raw_connect(B.socket);
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
	assert_serves_good_client();
}
END_TEST

START_TEST(test_request_before_hello_is_refused_until_the_handshake)
{
	int fd = raw_connect(B.socket);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(raw_send(fd, "{\"id\":5,\"op\":\"lease\",\"group\":7}"), 0);
	expect_error(fd, "bad-request");
	hello(fd);
	close(fd);
	assert_serves_good_client();
}
END_TEST

START_TEST(test_wrong_protocol_version_is_unsupported_version)
{
	int fd = raw_connect(B.socket);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(raw_send(fd, "{\"id\":1,\"op\":\"hello\",\"version\":0}"), 0);
	expect_error(fd, "unsupported-version");
	hello(fd); /* the connection may try again */
	close(fd);
	assert_serves_good_client();
}
END_TEST

START_TEST(test_oversized_packet_is_refused_with_limit)
{
	int fd = raw_connect(B.socket);
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
	assert_serves_good_client();
}
END_TEST

START_TEST(test_fd_flood_is_closed_and_refused)
{
	int fd = raw_connect(B.socket), flood[200];
	union {
		struct cmsghdr align;
		char b[CMSG_SPACE(sizeof(int) * 200)];
	} control = {0};
	const char *req = "{\"id\":4,\"op\":\"list\"}";
	struct iovec iov = {.iov_base = (void *)req, .iov_len = strlen(req)};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.b,
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
	assert_serves_good_client();
}
END_TEST

START_TEST(test_silent_connection_does_not_disturb_others_and_times_out)
{
	int silent = raw_connect(B.socket);
	char buf[256];

	ck_assert_int_ge(silent, 0);
	/* While one client says nothing, others are served at once. */
	{
		struct outcome *o = outcome_new();
		struct client_args a = {.socket = B.socket, .group = 7, .out = o};

		for (int i = 0; i < 5; i++) {
			ck_assert_int_eq(run_as(UID_ALICE, 0, client_lease, &a), 0);
			ck_assert_int_eq(o->rc, 0);
		}
		outcome_free(o);
	}
	/* The handshake timeout (2 s here) ends the silent connection. */
	ck_assert_int_eq(raw_recv(silent, buf, sizeof(buf), 10000), 0);
	close(silent);
	assert_serves_good_client();
}
END_TEST

static int open_many(void *arg)
{
	int *result = arg, fds[80], n = 0;
	char buf[4096];

	for (n = 0; n < 80; n++) {
		fds[n] = raw_connect(B.socket);
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
	assert_serves_good_client();
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
		"{\"id\":2,\"op\":\"list\",\"x\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}",
		"{\"id\":2,\"op\":\"remove\",\"group\":7,\"mode\":\"soft\",\"timeout_ms\":1e9}",
		"{\"id\":2,\"op\\u0000x\":\"list\",\"op\":\"list\"}",
		"{'id':2,'op':'list'}",
	};
	int fd = raw_connect(B.socket);

	ck_assert_int_ge(fd, 0);
	hello(fd);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_int_eq(raw_send(fd, bad[i]), 0);
		expect_error(fd, "bad-request");
	}
	close(fd);
	assert_serves_good_client();
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
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.b,
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
	int fd = raw_connect(B.socket);
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
	assert_serves_good_client();
}
END_TEST

static int lease_and_vanish(void *arg)
{
	int fd = raw_connect(B.socket);
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
	assert_serves_good_client();
}
END_TEST

Suite *suite_hostile(void)
{
	Suite *s = suite_create("hostile");
	TCase *t = tcase_create("hostile");

	tcase_add_checked_fixture(t, setup, teardown);
	tcase_set_timeout(t, 60);
	tcase_add_test(t, test_garbage_gets_bad_request_and_the_connection_survives);
	tcase_add_test(t, test_request_before_hello_is_refused_until_the_handshake);
	tcase_add_test(t, test_wrong_protocol_version_is_unsupported_version);
	tcase_add_test(t, test_oversized_packet_is_refused_with_limit);
	tcase_add_test(t, test_fd_flood_is_closed_and_refused);
	tcase_add_test(t, test_silent_connection_does_not_disturb_others_and_times_out);
	tcase_add_test(t, test_connections_per_uid_are_limited);
	tcase_add_test(t, test_client_exiting_mid_request_leaves_no_lease_behind);
	tcase_add_test(t, test_malformed_values_each_get_a_typed_error);
	tcase_add_test(t, test_scm_credentials_never_change_who_a_client_is);
	suite_add_tcase(s, t);
	return s;
}
