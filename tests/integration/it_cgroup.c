/* SPDX-License-Identifier: MIT */
/*
 * Leases bound to a boundary the kernel enforces (issue 13, items 2 and 3):
 * the holder is moved into a cgroup of the lease's own, hard removal kills
 * that cgroup, and a lease never moves to another uid. The cgroup cases run
 * the broker with --cgroup-root in a real cgroup v2 hierarchy; without a
 * writable one they do not run and say so (NOT RUN), never pass.
 */
#include "tests/integration/it.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char cg_root[PATH_MAX + 64]; /* --cgroup-root of the cgroup cases */

/* A directory of ours in a writable cgroup v2 hierarchy, or false. */
static bool find_cgroup2(char *buf, size_t size)
{
	FILE *f = fopen("/proc/self/mounts", "re");
	char dev[256], dir[PATH_MAX], type[64], probe[PATH_MAX + 32];
	bool found = false;

	if (!f)
		return false;
	while (!found && fscanf(f, "%255s %4095s %63s %*[^\n]", dev, dir, type) == 3) {
		if (strcmp(type, "cgroup2") != 0)
			continue;
		snprintf(probe, sizeof(probe), "%s/vb-it-probe-%d", dir, (int)getpid());
		if (mkdir(probe, 0755) == 0) {
			rmdir(probe);
			snprintf(buf, size, "%s", dir);
			found = true;
		}
	}
	fclose(f);
	return found;
}

bool it_cgroup_available(void)
{
	char dir[PATH_MAX];

	return find_cgroup2(dir, sizeof(dir));
}

static void setup_cgroup(void)
{
	char mount[PATH_MAX];

	ck_assert(find_cgroup2(mount, sizeof(mount)));
	snprintf(cg_root, sizeof(cg_root), "%s/vb-it-%d", mount, (int)getpid());
	broker_setup(&it_broker, IT_POLICY);
	broker_start(&it_broker, "--cgroup-root", cg_root, NULL);
}

static void setup_uid_only(void)
{
	cg_root[0] = '\0';
	broker_setup(&it_broker, IT_POLICY);
	broker_start(&it_broker, "--cgroup-root", "none", NULL);
}

/* Remove what is left of the tree (the broker leaves empty lease cgroups behind it). */
static void remove_tree(const char *dir)
{
	char cmd[PATH_MAX * 2];

	snprintf(cmd, sizeof(cmd), "find '%s' -depth -type d -exec rmdir {} + 2>/dev/null", dir);
	(void)system(cmd);
}

static void teardown(void)
{
	broker_teardown(&it_broker);
	if (cg_root[0])
		remove_tree(cg_root);
}

static bool process_gone(pid_t pid)
{
	char path[64], buf[512];
	FILE *f;
	bool gone;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return true;
	/* A zombie is dead too: its files are closed. */
	gone = fgets(buf, sizeof(buf), f) && strstr(buf, ") Z ");
	fclose(f);
	return gone;
}

static bool pid_gone(void *arg)
{
	return process_gone(*(pid_t *)arg);
}

/* The cgroup v2 path of pid ("/vb-it-1/lease-7-..."), from /proc. */
static void cgroup_of(pid_t pid, char *buf, size_t size)
{
	char path[64], line[PATH_MAX];
	FILE *f;

	buf[0] = '\0';
	snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pid);
	f = fopen(path, "re");
	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, "0::", 3) == 0) {
			line[strcspn(line, "\n")] = '\0';
			snprintf(buf, size, "%s", line + 3);
		}
	fclose(f);
}

static bool group_free(void *arg)
{
	return admin_count_leases() == 0;
}

/* The uid the broker lists as the owner of group's lease, or -1. */
static int lease_uid(unsigned group)
{
	struct vfiobroker *b;
	struct vfiobroker_lease *l;
	size_t n;
	int uid = -1;

	ck_assert_int_eq(vfiobroker_connect(it_broker.socket, &b), 0);
	ck_assert_int_eq(vfiobroker_leases(b, &l, &n), 0);
	for (size_t i = 0; i < n; i++)
		if (l[i].group == group)
			uid = (int)l[i].uid;
	vfiobroker_leases_free(l, n);
	vfiobroker_disconnect(b);
	return uid;
}

START_TEST(test_the_holder_lands_in_a_root_owned_cgroup_of_its_lease)
{
	struct outcome *o = outcome_new();
	struct signal_pipe ready, go;
	char cg[PATH_MAX], dir[PATH_MAX * 3];
	struct stat st;
	pid_t holder = spawn_holder(it_broker.socket, UID_ALICE, 7, HOLD_UNTIL_GO, o, &ready, &go);

	cgroup_of(holder, cg, sizeof(cg));
	ck_assert_msg(strstr(cg, "/lease-7-"), "holder pid %d is in cgroup %s", (int)holder, cg);
	/* Owned by root, so that the holder cannot write its cgroup.procs (or make children). */
	snprintf(dir, sizeof(dir), "%s/%s", cg_root, strrchr(cg, '/') + 1);
	ck_assert_int_eq(stat(dir, &st), 0);
	ck_assert_int_eq(st.st_uid, 0);
	ck_assert_int_eq(st.st_mode & 0022, 0);
	signal_pipe_send(&go, 'g');
	ck_assert_int_eq(wait_exit(holder), 0);
	ck_assert(wait_until(group_free, NULL));
	outcome_free(o);
}
END_TEST

/*
 * Uid 2000 leases group 7 and forks a child that puts the group file in
 * flight in a socket it keeps (sent, never received) and closes its own
 * descriptor: no /proc/PID/fd names the file any more, as for a VFIO
 * device fd on the real kernel. The child's pid goes to *out->value.
 */
static int client_hide_in_flight(void *arg)
{
	struct client_args *a = arg;
	struct vfiobroker *b;
	int fd, sv[2];
	pid_t child;

	if (vfiobroker_connect(a->socket, &b) < 0 || vfiobroker_lease(b, a->group, &fd) < 0)
		return 1;
	child = fork();
	if (child < 0)
		return 1;
	if (child == 0) {
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0 ||
		    send_fd(sv[0], fd) < 0)
			_exit(1);
		close(fd);
		signal_pipe_send(a->ready, 'L');
		for (;;)
			pause();
	}
	a->out->value = child;
	close(fd);
	vfiobroker_disconnect(b);
	if (signal_pipe_wait(a->ready) != 'L')
		return 1;
	signal_pipe_send(a->ready, 'L'); /* on to the test */
	return 0;
}

START_TEST(test_a_child_keeping_the_file_only_in_flight_dies_with_hard_removal)
{
	struct outcome *o = outcome_new();
	struct signal_pipe ready;
	struct client_args a = {.socket = it_broker.socket, .group = 7, .out = o, .ready = &ready};
	char msg[512];
	pid_t child;

	signal_pipe_init(&ready);
	ck_assert_int_eq(run_as(UID_ALICE, 0, client_hide_in_flight, &a), 0);
	ck_assert_int_eq(signal_pipe_wait(&ready), 'L');
	child = (pid_t)o->value;
	ck_assert_int_gt(child, 0);
	/* The holder has exited; the group is still held, by a file nobody can see. */
	ck_assert_int_eq(admin_count_leases(), 1);
	ck_assert(!process_gone(child));

	ck_assert_msg(admin_remove(7, true, 0, msg, sizeof(msg)) == 0, "remove --hard: %s", msg);
	ck_assert(wait_until(pid_gone, &child));
	ck_assert(wait_until(group_free, NULL));
	outcome_free(o);
}
END_TEST

/*
 * Uid 2000 leases group 7 and passes the file over a socket to a process of
 * uid 2001 (a service that accepts fds), then exits.
 */
struct pass_args {
	const char *socket;
	int sv[2];
	struct signal_pipe ready, go;
};

static int client_pass_to_other_uid(void *arg)
{
	struct pass_args *p = arg;
	struct vfiobroker *b;
	int fd;

	if (vfiobroker_connect(p->socket, &b) < 0 || vfiobroker_lease(b, 7, &fd) < 0)
		return 1;
	return send_fd(p->sv[0], fd) == 0 ? 0 : 1;
}

static int service_keep_fd(void *arg)
{
	struct pass_args *p = arg;
	int fd = recv_fd(p->sv[1]);

	if (fd < 0)
		return 1;
	signal_pipe_send(&p->ready, 'L');
	if (signal_pipe_wait(&p->go) != 'g')
		return 2;
	close(fd);
	return 0;
}

/*
 * Alice leases 7 and passes the file to a service of Bob's, then exits; the
 * service keeps the file until 'g'. Returns the service's pid.
 */
static pid_t pass_7_from_alice_to_bob(struct pass_args *p)
{
	pid_t service;

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, p->sv), 0);
	signal_pipe_init(&p->ready);
	signal_pipe_init(&p->go);
	service = spawn_as(UID_BOB, 0, service_keep_fd, p);
	ck_assert_int_eq(run_as(UID_ALICE, 0, client_pass_to_other_uid, p), 0);
	ck_assert_int_eq(signal_pipe_wait(&p->ready), 'L');
	return service;
}

START_TEST(test_a_file_passed_to_another_uid_keeps_the_lease_its_lessees_and_is_reported_not_killed)
{
	struct pass_args p = {.socket = it_broker.socket};
	char msg[512], pid[32];
	pid_t service;

	service = pass_7_from_alice_to_bob(&p);
	/* The lessee has exited and the broker has looked for the file: the lease stays uid
	 * 2000's (before, uid 2001's process inherited it). */
	ck_assert(broker_log_wait(&it_broker, "Group 7 is still open in pid"));
	ck_assert_int_eq(lease_uid(7), UID_ALICE);

	/* Hard removal kills nothing of uid 2001's: it names the process and answers busy. */
	ck_assert_int_eq(admin_remove(7, true, 0, msg, sizeof(msg)), -EBUSY);
	snprintf(pid, sizeof(pid), "pid %d (uid %d", (int)service, UID_BOB);
	ck_assert_msg(strstr(msg, pid), "message: %s", msg);
	ck_assert(!process_gone(service));
	ck_assert_int_eq(lease_uid(7), UID_ALICE);

	signal_pipe_send(&p.go, 'g');
	ck_assert_int_eq(wait_exit(service), 0);
	ck_assert(wait_until(group_free, NULL));
	close(p.sv[0]);
	close(p.sv[1]);
}
END_TEST

START_TEST(test_hard_removal_with_kill_strays_kills_the_other_uids_process_too)
{
	struct pass_args p = {.socket = it_broker.socket};
	struct vfiobroker *b;
	pid_t service;

	service = pass_7_from_alice_to_bob(&p);

	ck_assert_int_eq(vfiobroker_connect(it_broker.socket, &b), 0);
	ck_assert_msg(vfiobroker_remove_kill_strays(b, 7, NULL) == 0, "remove: %s",
		      vfiobroker_error_message(b));
	vfiobroker_disconnect(b);
	ck_assert_int_eq(wait_exit(service), 128 + SIGKILL);
	ck_assert(wait_until(group_free, NULL));
	close(p.sv[0]);
	close(p.sv[1]);
}
END_TEST

static bool file_contains(const char *path, const char *needle)
{
	char buf[8192];
	FILE *f = fopen(path, "re");
	size_t n;

	if (!f)
		return false;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	return strstr(buf, needle) != NULL;
}

START_TEST(test_a_restarted_broker_finds_the_leases_cgroup_again_and_hard_removal_kills_it)
{
	struct outcome *o = outcome_new();
	struct signal_pipe ready, go;
	char state[PATH_MAX + 16], msg[512];
	pid_t holder = spawn_holder(it_broker.socket, UID_ALICE, 7, HOLD_UNTIL_GO, o, &ready, &go);

	snprintf(state, sizeof(state), "%s/leases", it_broker.state_dir);
	ck_assert_msg(file_contains(state, " lease-7-"), "the state file names no lease cgroup");
	broker_crash(&it_broker);
	broker_start(&it_broker, "--cgroup-root", cg_root, NULL);
	ck_assert(broker_log_wait(&it_broker, "Restored the lease of group 7"));
	ck_assert(!broker_log_contains(&it_broker, "is gone"));
	/* Written again after the restore: the lease still names its cgroup. */
	ck_assert_msg(file_contains(state, " lease-7-"), "the restored lease lost its cgroup");

	ck_assert_msg(admin_remove(7, true, 0, msg, sizeof(msg)) == 0, "remove --hard: %s", msg);
	ck_assert_int_eq(wait_exit(holder), 128 + SIGKILL);
	ck_assert(wait_until(group_free, NULL));
	outcome_free(o);
}
END_TEST

/*
 * As uid 2000 on a raw connection: hello, then 120 lists without reading
 * (the broker's socket buffer, 208 KiB by default, takes about 90 of them
 * here; the broker queues the rest, fewer than its 64), then a lease of
 * group 7. The lease's reply (id 99) goes to
 * out->text once everything has been read.
 */
static int client_lease_without_reading(void *arg)
{
	struct client_args *a = arg;
	char buf[65536], req[64];
	int fd = raw_connect(a->socket), n;

	if (fd < 0 || raw_send(fd, "{\"id\": 1, \"op\": \"hello\", \"version\": 1}") < 0)
		return 1;
	for (int i = 0; i < 120; i++) {
		snprintf(req, sizeof(req), "{\"id\": %d, \"op\": \"list\"}", 10 + i);
		if (raw_send(fd, req) < 0)
			return 1;
	}
	usleep(300 * 1000); /* the broker answers them all, queueing what does not fit */
	if (raw_send(fd, "{\"id\": 99, \"op\": \"lease\", \"group\": 7}") < 0)
		return 1;
	usleep(300 * 1000);
	while ((n = raw_recv(fd, buf, sizeof(buf), 1000)) > 0)
		if (strstr(buf, "\"id\": 99") || strstr(buf, "\"id\":99"))
			snprintf(a->out->text, sizeof(a->out->text), "%.*s",
				 (int)sizeof(a->out->text) - 1, buf);
	close(fd);
	return 0;
}

START_TEST(test_a_lease_reply_that_cannot_be_sent_at_once_is_taken_back_not_queued)
{
	struct outcome *o = outcome_new();
	struct client_args a = {.socket = it_broker.socket, .out = o};

	ck_assert_int_eq(run_as(UID_ALICE, 0, client_lease_without_reading, &a), 0);
	ck_assert_msg(strstr(o->text, "\"busy\"") && strstr(o->text, "unread"),
		      "the lease reply: %s", o->text);
	/* Nothing was kept for the client: the group is free. */
	ck_assert(wait_until(group_free, NULL));
	outcome_free(o);
}
END_TEST

Suite *suite_cgroup(void)
{
	Suite *s = suite_create("cgroup");
	TCase *t = tcase_create("cgroup");
	TCase *u = tcase_create("uid-only");

	tcase_add_checked_fixture(t, setup_cgroup, teardown);
	tcase_set_timeout(t, 60);
	tcase_add_test(t, test_the_holder_lands_in_a_root_owned_cgroup_of_its_lease);
	tcase_add_test(t, test_a_child_keeping_the_file_only_in_flight_dies_with_hard_removal);
	tcase_add_test(
		t,
		test_a_file_passed_to_another_uid_keeps_the_lease_its_lessees_and_is_reported_not_killed);
	tcase_add_test(t, test_hard_removal_with_kill_strays_kills_the_other_uids_process_too);
	/* valgrind 3.19 has no pidfd_getfd, so no lease is restored there (as it_main.c says). */
	if (!getenv("VB_VALGRIND"))
		tcase_add_test(
			t,
			test_a_restarted_broker_finds_the_leases_cgroup_again_and_hard_removal_kills_it);
	suite_add_tcase(s, t);

	/* Without cgroups (--cgroup-root none) the uid rule holds all the same. */
	tcase_add_checked_fixture(u, setup_uid_only, teardown);
	tcase_set_timeout(u, 60);
	tcase_add_test(
		u,
		test_a_file_passed_to_another_uid_keeps_the_lease_its_lessees_and_is_reported_not_killed);
	tcase_add_test(u, test_hard_removal_with_kill_strays_kills_the_other_uids_process_too);
	tcase_add_test(u, test_a_lease_reply_that_cannot_be_sent_at_once_is_taken_back_not_queued);
	suite_add_tcase(s, u);
	return s;
}
