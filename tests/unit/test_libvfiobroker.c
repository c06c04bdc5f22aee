/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of what libvfiobroker does with a broker's replies, against a
 * scripted broker: a forked process that answers each request with the next
 * packet of its script. A reply with a field missing fails the call; the
 * library assumes nothing from it.
 *
 * The unit tests link the protocol archive, not the client library, so the
 * library's one source file is compiled in here.
 */
#include "client/libvfiobroker.c"

#include <check.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/wait.h>

#define HELLO "{\"id\":%u,\"ok\":true,\"version\":1,\"server\":\"t\",\"uid\":2000,\"admin\":false}"
/* Not a reply: the broker sends this packet unasked, before the next reply. */
#define UNASKED "!"

struct scripted_broker {
	char dir[64], path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	pid_t pid;
};

/* The packet of a script line: its first "%u" replaced by id. */
static size_t script_packet(const char *line, uint32_t id, char *out, size_t size)
{
	const char *hole = strstr(line, "%u");
	size_t head = hole ? (size_t)(hole - line) : strlen(line);
	int n = snprintf(out, size, "%.*s%u%s", (int)head, line, id, hole ? hole + 2 : "");

	if (!hole)
		n = snprintf(out, size, "%s", line);
	return n > 0 && (size_t)n < size ? (size_t)n : 0;
}

/*
 * Answers each request on one connection with the next packet of script, a
 * printf format taking the request's id; a packet starting with UNASKED is
 * sent (without it) before the next one, without waiting for a request.
 */
static void scripted_broker_serve(int listen_fd, const char *const *script)
{
	char buf[VB_MAX_REQUEST_SIZE], out[VB_MAX_PACKET_SIZE];
	int fd = accept(listen_fd, NULL, NULL);

	for (; fd >= 0 && *script; script++) {
		struct vb_decode_error err;
		struct vb_request req;
		size_t len, n_fds;
		unsigned flags;
		int fds[VB_MAX_FDS];

		if ((*script)[0] == UNASKED[0]) {
			vb_wire_send(fd, *script + 1, strlen(*script + 1), NULL, 0);
			continue;
		}
		if (vb_wire_recv(fd, buf, sizeof(buf), &len, fds, VB_MAX_FDS, &n_fds, &flags) < 0 ||
		    vb_request_decode(buf, len, &req, &err) < 0)
			break;
		len = script_packet(*script, req.id, out, sizeof(out));
		vb_wire_send(fd, out, len, NULL, 0);
	}
	/* Wait for the client to hang up, so that nothing it reads is cut short. */
	while (fd >= 0 && recv(fd, buf, sizeof(buf), 0) > 0)
		;
	_exit(0);
}

static void scripted_broker_start(struct scripted_broker *s, const char *const *script)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd;

	snprintf(s->dir, sizeof(s->dir), "/tmp/vb-test-client-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(s->dir));
	snprintf(s->path, sizeof(s->path), "%s/socket", s->dir);
	memcpy(sa.sun_path, s->path, sizeof(sa.sun_path));
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(listen(fd, 1), 0);
	s->pid = fork();
	ck_assert_int_ge(s->pid, 0);
	if (s->pid == 0)
		scripted_broker_serve(fd, script);
	close(fd);
}

static void scripted_broker_stop(struct scripted_broker *s)
{
	int status;

	/* The client has hung up: the broker's script ends and it exits by itself. */
	ck_assert_int_eq(waitpid(s->pid, &status, 0), s->pid);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	unlink(s->path);
	rmdir(s->dir);
}

START_TEST(test_release_reply_without_released_fails_the_call_not_released)
{
	static const char *const script[] = {HELLO, "{\"id\":%u,\"ok\":true,\"group\":7}", NULL};
	struct scripted_broker s;
	struct vfiobroker *b;
	bool released = true;

	scripted_broker_start(&s, script);
	ck_assert_int_eq(vfiobroker_connect(s.path, &b), 0);
	ck_assert_int_eq(vfiobroker_release(b, 7, &released), -EBADMSG);
	vfiobroker_disconnect(b);
	scripted_broker_stop(&s);
}
END_TEST

START_TEST(test_release_reply_with_released_false_says_not_yet)
{
	static const char *const script[] = {
		HELLO, "{\"id\":%u,\"ok\":true,\"group\":7,\"released\":false}", NULL};
	struct scripted_broker s;
	struct vfiobroker *b;
	bool released = true;

	scripted_broker_start(&s, script);
	ck_assert_int_eq(vfiobroker_connect(s.path, &b), 0);
	ck_assert_int_eq(vfiobroker_release(b, 7, &released), 0);
	ck_assert(!released);
	vfiobroker_disconnect(b);
	scripted_broker_stop(&s);
}
END_TEST

START_TEST(test_hello_without_admin_does_not_connect)
{
	static const char *const script[] = {
		"{\"id\":%u,\"ok\":true,\"version\":1,\"server\":\"t\",\"uid\":0}", NULL};
	struct scripted_broker s;
	struct vfiobroker *b = NULL;

	scripted_broker_start(&s, script);
	ck_assert_int_eq(vfiobroker_connect(s.path, &b), -EBADMSG);
	ck_assert_ptr_null(b);
	scripted_broker_stop(&s);
}
END_TEST

START_TEST(test_leases_reads_every_chunk)
{
	static const char *const script[] = {
		HELLO,
		"{\"id\":%u,\"ok\":true,\"leases\":[{\"group\":7,\"uid\":2000,\"pid\":42,"
		"\"since_usec\":1,\"rule\":\"r\",\"state\":\"held\",\"container\":0}],\"more\":"
		"true}",
		UNASKED "{\"id\":2,\"ok\":true,\"leases\":[{\"group\":8,\"uid\":2000,\"pid\":42,"
			"\"since_usec\":2,\"rule\":\"r\",\"state\":\"held\",\"container\":0}],"
			"\"more\":false}",
		NULL};
	struct vfiobroker_lease *leases;
	struct scripted_broker s;
	struct vfiobroker *b;
	size_t n;

	scripted_broker_start(&s, script);
	ck_assert_int_eq(vfiobroker_connect(s.path, &b), 0);
	ck_assert_int_eq(vfiobroker_leases(b, &leases, &n), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_uint_eq(leases[0].group, 7);
	ck_assert_uint_eq(leases[1].group, 8);
	vfiobroker_leases_free(leases, n);
	vfiobroker_disconnect(b);
	scripted_broker_stop(&s);
}
END_TEST

START_TEST(test_an_event_missing_a_field_is_dropped_and_a_whole_one_kept)
{
	static const char *const script[] = {
		HELLO, UNASKED "{\"event\":\"remove-requested\",\"group\":7}",
		UNASKED "{\"event\":\"remove-requested\",\"group\":8,\"timeout_ms\":30000}",
		"{\"id\":%u,\"ok\":true,\"group\":9}", NULL};
	struct scripted_broker s;
	struct vfiobroker_event ev;
	struct vfiobroker *b;

	scripted_broker_start(&s, script);
	ck_assert_int_eq(vfiobroker_connect(s.path, &b), 0);
	/* the events arrive while the call waits for its reply */
	ck_assert_int_eq(vfiobroker_unmerge(b, 9), 0);
	ck_assert_int_eq(vfiobroker_next_event(b, &ev), 0);
	ck_assert_int_eq(ev.type, VFIOBROKER_EVENT_REMOVE_REQUESTED);
	ck_assert_uint_eq(ev.group, 8);
	ck_assert_uint_eq(ev.timeout_ms, 30000);
	ck_assert_int_eq(vfiobroker_next_event(b, &ev), -EAGAIN);
	vfiobroker_disconnect(b);
	scripted_broker_stop(&s);
}
END_TEST

START_TEST(test_an_error_keeps_its_code_message_and_details)
{
	static const char *const script[] = {HELLO,
					     "{\"id\":%u,\"ok\":false,\"error\":{\"code\":\"busy\","
					     "\"message\":\"held\",\"uid\":2001}}",
					     NULL};
	struct scripted_broker s;
	struct vfiobroker *b;
	int fd = -1;

	scripted_broker_start(&s, script);
	ck_assert_int_eq(vfiobroker_connect(s.path, &b), 0);
	ck_assert_int_eq(vfiobroker_lease(b, 7, &fd), -EBUSY);
	ck_assert_int_eq(fd, -1);
	ck_assert_str_eq(vfiobroker_error_code(b), "busy");
	ck_assert_str_eq(vfiobroker_error_message(b), "held");
	ck_assert_str_eq(vfiobroker_error_detail(b, "uid"), "2001");
	vfiobroker_disconnect(b);
	scripted_broker_stop(&s);
}
END_TEST

static Suite *client_suite(void)
{
	Suite *s = suite_create("libvfiobroker");
	TCase *t = tcase_create("replies");

	tcase_add_test(t, test_release_reply_without_released_fails_the_call_not_released);
	tcase_add_test(t, test_release_reply_with_released_false_says_not_yet);
	tcase_add_test(t, test_hello_without_admin_does_not_connect);
	tcase_add_test(t, test_leases_reads_every_chunk);
	tcase_add_test(t, test_an_event_missing_a_field_is_dropped_and_a_whole_one_kept);
	tcase_add_test(t, test_an_error_keeps_its_code_message_and_details);
	suite_add_tcase(s, t);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(client_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
