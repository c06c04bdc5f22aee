/* SPDX-License-Identifier: MIT */
/*
 * Holders reconnect by themselves after the broker restarts (issue 12, item
 * 1): a program using libvfiobroker (vfiobroker_reconnect) and a `vfioctl
 * lease` holder survive a kill -9 of the broker and its restart on the same
 * tree, socket and state directory, find it again, and hear a soft removal
 * sent after the restart. An administrator's `vfioctl remove --soft` cut by
 * the kill says that the removal was abandoned and the lease stays.
 */
#include "tests/integration/it.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static bool lease_7_is_held(void *arg)
{
	struct vfiobroker_lease l;

	return admin_find_lease(7, &l) && strcmp(l.state, "held") == 0;
}

static bool lease_7_is_removing(void *arg)
{
	struct vfiobroker_lease l;

	return admin_find_lease(7, &l) && strcmp(l.state, "removing") == 0;
}

/*
 * Leases 7 and waits for events. When the broker goes away it reconnects
 * (up to 10 s), checks the socket kept its number, says 'C', and gives the
 * group back when asked. Exit status: what went wrong, 0 for nothing.
 */
static int client_hold_and_reconnect(void *arg)
{
	struct client_args *a = arg;
	struct vfiobroker *b;
	bool released = false;
	int fd, sock, r;

	if (vfiobroker_connect(a->socket, &b) < 0 || vfiobroker_lease(b, 7, &fd) < 0)
		return 1;
	sock = vfiobroker_get_fd(b);
	signal_pipe_send(a->ready, 'L');
	for (;;) {
		struct pollfd pfd = {.fd = vfiobroker_get_fd(b), .events = POLLIN};
		struct vfiobroker_event ev;

		r = vfiobroker_next_event(b, &ev);
		if (r == -EAGAIN) {
			if (poll(&pfd, 1, 20000) != 1)
				return 2;
			continue;
		}
		if (r == -ECONNRESET) {
			if (vfiobroker_reconnect(b, 10000) < 0)
				return 3;
			if (vfiobroker_get_fd(b) != sock)
				return 4;
			signal_pipe_send(a->ready, 'C');
			continue;
		}
		if (r < 0)
			return 5;
		if (ev.type == VFIOBROKER_EVENT_REMOVE_REQUESTED && ev.group == 7)
			break;
	}
	close(fd);
	r = vfiobroker_release(b, 7, &released);
	a->out->value = r == 0 && released;
	vfiobroker_disconnect(b);
	return 0;
}

START_TEST(test_a_library_holder_reconnects_after_a_restart_and_hears_a_soft_removal)
{
	struct outcome *o = outcome_new();
	struct signal_pipe ready;
	struct client_args a = {.socket = it_broker.socket, .out = o, .ready = &ready};
	pid_t holder;

	signal_pipe_init(&ready);
	holder = spawn_as(UID_ALICE, 0, client_hold_and_reconnect, &a);
	ck_assert_int_eq(signal_pipe_wait(&ready), 'L');
	it_broker_crash_and_restart();
	/* Nobody asks it to: the client notices the closed socket and reconnects. */
	ck_assert_int_eq(signal_pipe_wait(&ready), 'C');
	ck_assert_int_eq(admin_remove(7, false, 5000, NULL, 0), 0);
	ck_assert_int_eq(wait_exit(holder), 0);
	ck_assert_int_eq(o->value, 1);
	ck_assert(!lease_7_is_held(NULL));
	outcome_free(o);
}
END_TEST

/* Connects, sees the broker die, tries to reconnect for 300 ms; reports in out. */
static int client_reconnect_to_nobody(void *arg)
{
	struct client_args *a = arg;
	struct vfiobroker *b;
	struct vfiobroker_event ev;
	struct pollfd pfd;

	if (vfiobroker_connect(a->socket, &b) < 0)
		return 1;
	signal_pipe_send(a->ready, 'L');
	pfd = (struct pollfd){.fd = vfiobroker_get_fd(b), .events = POLLIN};
	if (poll(&pfd, 1, 20000) != 1 || vfiobroker_next_event(b, &ev) != -ECONNRESET)
		return 2;
	a->out->rc = vfiobroker_reconnect(b, 300);
	/* Still the broken connection: calls fail as before, not with a stale fd's errors. */
	a->out->value = vfiobroker_next_event(b, &ev);
	vfiobroker_disconnect(b);
	return 0;
}

START_TEST(test_reconnect_without_a_broker_times_out_and_leaves_the_connection_broken)
{
	struct outcome *o = outcome_new();
	struct signal_pipe ready;
	struct client_args a = {.socket = it_broker.socket, .out = o, .ready = &ready};
	pid_t client;

	signal_pipe_init(&ready);
	client = spawn_as(UID_ALICE, 0, client_reconnect_to_nobody, &a);
	ck_assert_int_eq(signal_pipe_wait(&ready), 'L');
	broker_crash(&it_broker);
	ck_assert_int_eq(wait_exit(client), 0);
	ck_assert_int_eq(o->rc, -ETIMEDOUT);
	ck_assert_int_eq(o->value, -ECONNRESET);
	broker_start(&it_broker, NULL);
	outcome_free(o);
}
END_TEST

START_TEST(test_reconnect_to_a_socket_that_never_answers_gives_up_in_time)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct vfiobroker *b;
	struct vfiobroker_event ev;
	struct timespec t0, t1;
	int listener;

	ck_assert_int_eq(vfiobroker_connect(it_broker.socket, &b), 0);
	broker_crash(&it_broker);
	ck_assert_int_eq(vfiobroker_next_event(b, &ev), -ECONNRESET);
	/* What a socket unit holds while its service does not start: connect works, no hello. */
	unlink(it_broker.socket);
	listener = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	ck_assert_uint_lt(strlen(it_broker.socket), sizeof(sa.sun_path));
	memcpy(sa.sun_path, it_broker.socket, strlen(it_broker.socket) + 1);
	ck_assert_int_eq(bind(listener, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(listen(listener, 16), 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ck_assert_int_eq(vfiobroker_reconnect(b, 300), -ETIMEDOUT);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	/* One hello waited at least 1 s; far less than for ever. */
	ck_assert_int_lt(t1.tv_sec - t0.tv_sec, 10);
	vfiobroker_disconnect(b);
	close(listener);
	unlink(it_broker.socket);
	broker_start(&it_broker, NULL);
}
END_TEST

START_TEST(test_merge_with_a_container_fd_is_refused_before_sending)
{
	struct vfiobroker *b;
	unsigned groups[] = {7};
	int fd = -1;

	ck_assert_int_eq(vfiobroker_connect(it_broker.socket, &b), 0);
	/* Sent, the fd would make the broker close the connection. */
	ck_assert_int_eq(vfiobroker_merge(b, groups, 1, STDIN_FILENO, &fd), -EINVAL);
	ck_assert_int_eq(fd, -1);
	ck_assert_ptr_null(vfiobroker_error_code(b));
	/* Nothing went out: the connection is still good. */
	ck_assert_int_eq(vfiobroker_reload(b, NULL, NULL), 0);
	vfiobroker_disconnect(b);
}
END_TEST

/* --- vfioctl --- */

/* What a running vfioctl has written to stderr so far. */
struct stderr_log {
	int fd;
	char text[8192];
	size_t len;
};

/* Reads fd into log until needle shows up (true) or 10 s pass, or EOF (false). */
static bool stderr_wait_for(struct stderr_log *log, const char *needle)
{
	for (int waited_ms = 0; !strstr(log->text, needle) && waited_ms < 10000;) {
		struct pollfd pfd = {.fd = log->fd, .events = POLLIN};
		ssize_t n;

		if (poll(&pfd, 1, 100) != 1) {
			waited_ms += 100;
			continue;
		}
		n = read(log->fd, log->text + log->len, sizeof(log->text) - 1 - log->len);
		if (n <= 0)
			break;
		log->len += (size_t)n;
		log->text[log->len] = '\0';
	}
	return strstr(log->text, needle) != NULL;
}

START_TEST(test_a_vfioctl_lease_holder_reconnects_after_a_restart_and_passes_a_soft_removal_on)
{
	const char *args[] = {"lease", "7", "--", "/bin/sleep", "60", NULL};
	struct stderr_log log = {0};
	pid_t holder = vfioctl_spawn(UID_ALICE, NULL, &log.fd, args);

	ck_assert(wait_until(lease_7_is_held, NULL));
	it_broker_crash_and_restart();
	ck_assert_msg(stderr_wait_for(&log, "the connection is back"), "stderr: %s", log.text);
	ck_assert_msg(strstr(log.text, "it stopped or restarted"), "stderr: %s", log.text);
	ck_assert_msg(!strstr(log.text, "no longer knows"), "stderr: %s", log.text);
	ck_assert_int_eq(admin_remove(7, false, 10000, NULL, 0), 0);
	/* vfioctl passed the request on to its command as SIGTERM, as before the restart. */
	ck_assert_int_eq(wait_exit(holder), 128 + SIGTERM);
	ck_assert_msg(stderr_wait_for(&log, "asks for it back"), "stderr: %s", log.text);
	close(log.fd);
}
END_TEST

START_TEST(test_a_soft_remove_cut_by_a_broker_kill_says_the_removal_was_abandoned)
{
	const char *hold[] = {"lease", "7", "--on-remove=ignore", "--", "/bin/sleep", "60", NULL};
	const char *remove[] = {"remove", "--soft", "7", "--timeout", "60", NULL};
	struct stderr_log held = {0}, removing = {0};
	pid_t holder = vfioctl_spawn(UID_ALICE, NULL, &held.fd, hold), remover;

	ck_assert(wait_until(lease_7_is_held, NULL));
	remover = vfioctl_spawn(0, NULL, &removing.fd, remove);
	ck_assert(wait_until(lease_7_is_removing, NULL));
	broker_crash(&it_broker);
	ck_assert_int_eq(wait_exit(remover), 3);
	ck_assert_msg(stderr_wait_for(&removing, "the removal of group 7 was abandoned; the "
						 "lease stays as it was"),
		      "stderr: %s", removing.text);
	ck_assert_msg(strstr(removing.text, "stopped or restarted"), "stderr: %s", removing.text);
	broker_start(&it_broker, NULL);
	/* The lease stays, held (no longer being removed) by the same command. */
	ck_assert(wait_until(lease_7_is_held, NULL));
	ck_assert_int_eq(kill(holder, 0), 0);
	ck_assert_msg(stderr_wait_for(&held, "the connection is back"), "stderr: %s", held.text);
	kill(holder, SIGTERM);
	wait_exit(holder);
	close(held.fd);
	close(removing.fd);
}
END_TEST

static bool file_exists(void *path)
{
	return access(path, F_OK) == 0;
}

START_TEST(test_the_shim_leases_again_through_a_broker_that_restarted)
{
	char dir[] = "/tmp/vb-reconnect-XXXXXX", leased[64], go[64], script[512];
	char preload[PATH_MAX + 16], sock[PATH_MAX + 32], dev[PATH_MAX + 32];
	char *const env[] = {preload, sock, dev, "PATH=/usr/bin:/bin", NULL};
	struct stderr_log log = {0};
	int err[2];
	pid_t sh;

	SKIP_UNDER_ASAN();
	ck_assert_ptr_nonnull(mkdtemp(dir));
	ck_assert_int_eq(chmod(dir, 0777), 0);
	snprintf(leased, sizeof(leased), "%s/leased", dir);
	snprintf(go, sizeof(go), "%s/go", dir);
	/* The VMM's opens, one before the crash (its connection dies) and one after. */
	snprintf(script, sizeof(script),
		 "exec 3</dev/vfio/7 && : > %s && while [ ! -e %s ]; do sleep 0.05; done && "
		 "exec 4</dev/vfio/8 && echo 'opened 8' >&2",
		 leased, go);
	snprintf(preload, sizeof(preload), "LD_PRELOAD=%s/libvfiobroker-preload.so",
		 it_build_dir());
	snprintf(sock, sizeof(sock), "VFIO_BROKER_SOCKET=%s", it_broker.socket);
	snprintf(dev, sizeof(dev), "VFIO_BROKER_DEV_ROOT=%s", it_broker.sim.dev);
	ck_assert_int_eq(pipe2(err, O_CLOEXEC), 0);
	sh = fork();
	ck_assert_int_ge(sh, 0);
	if (sh == 0) {
		dup2(err[1], 2);
		if (setgroups(0, NULL) < 0 || setresgid(UID_ALICE, UID_ALICE, UID_ALICE) < 0 ||
		    setresuid(UID_ALICE, UID_ALICE, UID_ALICE) < 0)
			_exit(120);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		execle("/bin/sh", "sh", "-c", script, (char *)NULL, env);
		_exit(127);
	}
	close(err[1]);
	log.fd = err[0];
	ck_assert(wait_until(file_exists, leased));
	it_broker_crash_and_restart();
	ck_assert_int_eq(close(open(go, O_CREAT | O_WRONLY, 0644)), 0);
	ck_assert_msg(stderr_wait_for(&log, "opened 8"), "stderr: %s", log.text);
	ck_assert_int_eq(wait_exit(sh), 0);
	close(log.fd);
	unlink(go);
	unlink(leased);
	rmdir(dir);
}
END_TEST

Suite *suite_reconnect(void)
{
	Suite *s = suite_create("reconnect");
	TCase *t = tcase_create("after a restart");

	tcase_add_checked_fixture(t, it_broker_setup, it_broker_teardown);
	tcase_set_timeout(t, 60);
	tcase_add_test(t,
		       test_a_library_holder_reconnects_after_a_restart_and_hears_a_soft_removal);
	tcase_add_test(t,
		       test_reconnect_without_a_broker_times_out_and_leaves_the_connection_broken);
	tcase_add_test(t, test_reconnect_to_a_socket_that_never_answers_gives_up_in_time);
	tcase_add_test(t, test_merge_with_a_container_fd_is_refused_before_sending);
	tcase_add_test(
		t,
		test_a_vfioctl_lease_holder_reconnects_after_a_restart_and_passes_a_soft_removal_on);
	tcase_add_test(t, test_a_soft_remove_cut_by_a_broker_kill_says_the_removal_was_abandoned);
	tcase_add_test(t, test_the_shim_leases_again_through_a_broker_that_restarted);
	suite_add_tcase(s, t);
	return s;
}
