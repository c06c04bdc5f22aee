/* SPDX-License-Identifier: MIT */
/*
 * Restart without losing a lease (issue 12, item 1), on the host tier: the
 * broker is killed with SIGKILL at each point where it has answered a step
 * (lease, release, a merge attempt and an unmerge, a soft removal in flight,
 * a quarantine), started again on the same tree, socket and state directory,
 * and the invariants are checked: every lease is known again with its
 * holder, uid, rule and container; another uid is told busy by the broker;
 * hard removal still kills the holder and frees the group; a holder that
 * connects again hears a soft removal; a released group is free; entries
 * whose holder is gone, whose pid now names another process, whose node was
 * re-created or that are of another boot are dropped.
 */
#include "tests/integration/it.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

/* Carol (whose rule also allows group 7) asks for group; the outcome is in o. */
static void carol_lease(unsigned group, struct outcome *o)
{
	struct client_args a = {.socket = it_broker.socket, .group = group, .out = o};

	run_as(UID_CAROL, 0, client_lease, &a);
}

/* The restored lease of 7 is Alice's, held by holder under rule alice-nics, unmerged. */
static void assert_alices_lease_known(pid_t holder)
{
	struct vfiobroker_lease l;

	ck_assert_msg(admin_find_lease(7, &l), "the lease of group 7 was lost; see %s",
		      it_broker.log);
	ck_assert_int_eq(l.pid, holder);
	ck_assert_int_eq(l.uid, UID_ALICE);
	ck_assert_str_eq(l.rule, "alice-nics");
	ck_assert_str_eq(l.state, "held");
	ck_assert_uint_eq(l.container, 0);
}

/* The broker itself says busy to another uid: the simulated tree has no kernel EBUSY. */
static void assert_carol_told_busy(void)
{
	struct outcome *o = outcome_new();

	carol_lease(7, o);
	ck_assert_int_lt(o->rc, 0);
	ck_assert_str_eq(o->code, "busy");
	ck_assert_msg(strstr(o->message, "held by uid 2000"), "message: %s", o->message);
	outcome_free(o);
}

static void assert_carol_gets_group_7(void)
{
	struct outcome *o = outcome_new();

	carol_lease(7, o);
	ck_assert_msg(o->rc == 0, "carol's lease failed: %s: %s", o->code, o->message);
	outcome_free(o);
}

START_TEST(test_restart_knows_a_held_lease_and_refuses_it_to_another_uid)
{
	struct outcome *o = outcome_new();
	struct signal_pipe ready, go;
	pid_t holder = spawn_holder(it_broker.socket, UID_ALICE, 7, HOLD_UNTIL_GO, o, &ready, &go);

	it_broker_crash_and_restart();
	assert_alices_lease_known(holder);
	ck_assert(broker_log_contains(&it_broker, "EVENT=restore"));
	assert_carol_told_busy();
	/* Known again means it survives a second crash too: the restore was saved. */
	it_broker_crash_and_restart();
	assert_alices_lease_known(holder);

	signal_pipe_send(&go, 'G');
	ck_assert_int_eq(wait_exit(holder), 0);
	outcome_free(o);
}
END_TEST

START_TEST(test_hard_removal_after_restart_kills_the_holder_and_frees_the_group)
{
	struct outcome *o = outcome_new();
	struct signal_pipe ready;
	pid_t holder = spawn_holder(it_broker.socket, UID_ALICE, 7, HOLD_IGNORE, o, &ready, NULL);

	it_broker_crash_and_restart();
	assert_alices_lease_known(holder);
	ck_assert_int_eq(admin_remove(7, true, 0, NULL, 0), 0);
	ck_assert_int_eq(wait_exit(holder), 128 + SIGKILL);
	ck_assert_int_eq(admin_count_leases(), 0);
	assert_carol_gets_group_7();
	outcome_free(o);
}
END_TEST

START_TEST(test_a_restored_lease_ends_when_its_holder_closes_the_group)
{
	struct outcome *o = outcome_new();
	struct signal_pipe ready, go;
	pid_t holder = spawn_holder(it_broker.socket, UID_ALICE, 7, HOLD_UNTIL_GO, o, &ready, &go);

	it_broker_crash_and_restart();
	assert_alices_lease_known(holder);
	/* The holder closes its file and exits: the broker's restored watch sees it. */
	signal_pipe_send(&go, 'G');
	ck_assert_int_eq(wait_exit(holder), 0);
	ck_assert(broker_log_wait(&it_broker, "Group 7 released"));
	ck_assert_int_eq(admin_count_leases(), 0);
	assert_carol_gets_group_7();
	outcome_free(o);
}
END_TEST

/*
 * Leases 7, holds it across the broker's restart, then connects again (the
 * old connection died with the broker), says 'C', and gives the group back
 * when asked: remove-requested on the new connection, close, release.
 */
static int client_reconnect_and_cooperate(void *arg)
{
	struct client_args *a = arg;
	struct vfiobroker *b;
	bool released = false;
	int fd, r;

	if (vfiobroker_connect(a->socket, &b) < 0 || vfiobroker_lease(b, 7, &fd) < 0)
		return 1;
	signal_pipe_send(a->ready, 'L');
	signal_pipe_wait(a->go);
	vfiobroker_disconnect(b);
	if (vfiobroker_connect(a->socket, &b) < 0)
		return 2;
	signal_pipe_send(a->ready, 'C');
	r = wait_for_remove_request(b, 7);
	if (r == -ETIMEDOUT)
		return 3;
	if (r < 0)
		return 4;
	close(fd);
	r = vfiobroker_release(b, 7, &released);
	a->out->value = r == 0 && released;
	vfiobroker_disconnect(b);
	return 0;
}

START_TEST(test_a_holder_that_reconnects_after_restart_hears_a_soft_removal_and_releases)
{
	struct outcome *o = outcome_new();
	struct signal_pipe ready, go;
	struct client_args a = {.socket = it_broker.socket, .out = o, .ready = &ready, .go = &go};
	pid_t holder;

	signal_pipe_init(&ready);
	signal_pipe_init(&go);
	holder = spawn_as(UID_ALICE, 0, client_reconnect_and_cooperate, &a);
	ck_assert_int_eq(signal_pipe_wait(&ready), 'L');
	it_broker_crash_and_restart();
	assert_alices_lease_known(holder);
	signal_pipe_send(&go, 'G');
	ck_assert_int_eq(signal_pipe_wait(&ready), 'C');
	/* The broker finds the restored holder behind the new connection, and asks it. */
	ck_assert_int_eq(admin_remove(7, false, 5000, NULL, 0), 0);
	ck_assert_int_eq(wait_exit(holder), 0);
	ck_assert_int_eq(o->value, 1);
	ck_assert_int_eq(admin_count_leases(), 0);
	outcome_free(o);
}
END_TEST

START_TEST(test_restart_after_a_release_leaves_the_group_free)
{
	struct outcome *o = outcome_new();
	struct client_args a = {
		.socket = it_broker.socket, .group = 7, .out = o, .mode = HOLD_NONE};

	/* client_lease leases, closes its file, disconnects and exits: released. */
	ck_assert_int_eq(run_as(UID_ALICE, 0, client_lease, &a), 0);
	ck_assert_int_eq(o->rc, 0);
	ck_assert(broker_log_wait(&it_broker, "Group 7 released"));
	it_broker_crash_and_restart();
	ck_assert_int_eq(admin_count_leases(), 0);
	assert_carol_gets_group_7();
	outcome_free(o);
}
END_TEST

/* Leases 7 and 8, tries to merge them (the simulated tree refuses at the kernel step), holds. */
static int client_lease_two_and_merge(void *arg)
{
	struct client_args *a = arg;
	struct vfiobroker *b;
	unsigned groups[] = {7, 8};
	int container = 0;
	int fd7, fd8, r;

	if (vfiobroker_connect(a->socket, &b) < 0 || vfiobroker_lease(b, 7, &fd7) < 0 ||
	    vfiobroker_lease(b, 8, &fd8) < 0)
		return 1;
	r = vfiobroker_merge(b, groups, 2, -1, &container);
	a->out->rc = r;
	snprintf(a->out->code, sizeof(a->out->code), "%s", r < 0 ? vfiobroker_error_code(b) : "");
	r = vfiobroker_unmerge(b, 7);
	a->out->value = r;
	signal_pipe_send(a->ready, 'L');
	signal_pipe_wait(a->go);
	close(fd7);
	close(fd8);
	vfiobroker_disconnect(b);
	return 0;
}

START_TEST(test_restart_after_merge_and_unmerge_keeps_both_leases)
{
	struct outcome *o = outcome_new();
	struct signal_pipe ready, go;
	struct client_args a = {.socket = it_broker.socket, .out = o, .ready = &ready, .go = &go};
	struct vfiobroker_lease l;
	pid_t holder;

	signal_pipe_init(&ready);
	signal_pipe_init(&go);
	holder = spawn_as(UID_ALICE, 0, client_lease_two_and_merge, &a);
	ck_assert_int_eq(signal_pipe_wait(&ready), 'L');
	/* Regular files take no VFIO ioctl: merge fails at the kernel step, as in it_lease. */
	ck_assert_int_lt(o->rc, 0);
	it_broker_crash_and_restart();
	assert_alices_lease_known(holder);
	ck_assert(admin_find_lease(8, &l));
	ck_assert_int_eq(l.pid, holder);
	ck_assert_uint_eq(l.container, 0);

	signal_pipe_send(&go, 'G');
	ck_assert_int_eq(wait_exit(holder), 0);
	outcome_free(o);
}
END_TEST

/* The administrator's soft removal with a long timeout, as vfioctl remove --soft sends it. */
static int admin_soft_remove(void *arg)
{
	struct outcome *o = arg;
	struct vfiobroker *b;
	int r;

	if (vfiobroker_connect(it_broker.socket, &b) < 0)
		return 1;
	r = vfiobroker_remove(b, 7, false, 60000, NULL);
	outcome_record(o, b, r);
	vfiobroker_disconnect(b);
	return 0;
}

static bool lease_7_is_removing(void *arg)
{
	struct vfiobroker_lease l;

	return admin_find_lease(7, &l) && strcmp(l.state, "removing") == 0;
}

START_TEST(test_a_soft_removal_in_flight_is_abandoned_and_the_lease_stays)
{
	struct outcome *o = outcome_new(), *admin = outcome_new();
	struct signal_pipe ready;
	pid_t holder = spawn_holder(it_broker.socket, UID_ALICE, 7, HOLD_IGNORE, o, &ready, NULL);
	pid_t remover = spawn_as(0, 0, admin_soft_remove, admin);

	ck_assert(wait_until(lease_7_is_removing, NULL));
	it_broker_crash_and_restart();
	/* The administrator's call fails as the connection closes (vfioctl: "disconnected"). */
	ck_assert_int_eq(wait_exit(remover), 0);
	ck_assert_msg(admin->rc == -ECONNRESET, "remove returned %d", admin->rc);
	/* The holder was not touched, and its lease is held, no longer being removed. */
	ck_assert_int_eq(kill(holder, 0), 0);
	assert_alices_lease_known(holder);
	assert_carol_told_busy();
	kill(holder, SIGKILL);
	wait_exit(holder);
	outcome_free(admin);
	outcome_free(o);
}
END_TEST

/* A save is: write .leases.tmp, unlink leases, rename. Killed between the last two: */
START_TEST(test_a_broker_killed_between_unlink_and_rename_of_a_save_restores_the_new_file)
{
	struct outcome *o = outcome_new();
	struct signal_pipe ready, go;
	pid_t holder = spawn_holder(it_broker.socket, UID_ALICE, 7, HOLD_UNTIL_GO, o, &ready, &go);
	char from[PATH_MAX + 16], to[PATH_MAX + 16];

	broker_crash(&it_broker);
	snprintf(from, sizeof(from), "%s/leases", it_broker.state_dir);
	snprintf(to, sizeof(to), "%s/.leases.tmp", it_broker.state_dir);
	ck_assert_int_eq(rename(from, to), 0);
	broker_start(&it_broker, NULL);
	assert_alices_lease_known(holder);

	signal_pipe_send(&go, 'G');
	ck_assert_int_eq(wait_exit(holder), 0);
	outcome_free(o);
}
END_TEST

/*
 * Traces the broker's system calls until its first sendmsg() that carries
 * file descriptors (a lease reply) and stops it there, on the way in: at
 * that moment the fd has not left, and the state file must record the
 * lease already. o->value: 1 it does, 0 it does not. Says 'A' on attached
 * once tracing, 'E' if it cannot trace. Exits (detaching) after 20 s at most.
 */
static int trace_first_fd_send(pid_t broker, unsigned group, struct outcome *o,
			       struct signal_pipe *attached)
{
	int st;

	alarm(20);
	if (ptrace(PTRACE_SEIZE, broker, 0, PTRACE_O_TRACESYSGOOD) < 0 ||
	    ptrace(PTRACE_INTERRUPT, broker, 0, 0) < 0 || waitpid(broker, &st, __WALL) < 0 ||
	    ptrace(PTRACE_SYSCALL, broker, 0, 0) < 0) {
		snprintf(o->message, sizeof(o->message), "ptrace: %s", strerror(errno));
		signal_pipe_send(attached, 'E');
		return 1;
	}
	signal_pipe_send(attached, 'A');
	for (;;) {
		struct __ptrace_syscall_info info;
		struct msghdr msg;
		struct iovec local = {.iov_base = &msg, .iov_len = sizeof(msg)}, remote;
		int sig = 0;

		if (waitpid(broker, &st, __WALL) < 0 || !WIFSTOPPED(st))
			return 2;
		if (WSTOPSIG(st) == (SIGTRAP | 0x80)) {
			if (ptrace(PTRACE_GET_SYSCALL_INFO, broker, sizeof(info), &info) > 0 &&
			    info.op == PTRACE_SYSCALL_INFO_ENTRY && info.entry.nr == SYS_sendmsg) {
				remote = (struct iovec){
					.iov_base = (void *)(uintptr_t)info.entry.args[1],
					.iov_len = sizeof(msg)};
				if (process_vm_readv(broker, &local, 1, &remote, 1, 0) ==
					    (ssize_t)sizeof(msg) &&
				    msg.msg_controllen > 0) {
					o->value = state_file_records_lease(group) ? 1 : 0;
					ptrace(PTRACE_DETACH, broker, 0, 0);
					return 0;
				}
			}
		} else if ((st >> 16) != PTRACE_EVENT_STOP) {
			sig = WSTOPSIG(st); /* a signal for the broker: deliver it */
		}
		if (ptrace(PTRACE_SYSCALL, broker, 0, sig) < 0)
			return 3;
	}
}

/*
 * The crash point between "saved" and "reply sent", held open: the broker
 * is stopped as it is about to send the lease's fd, and the state file is
 * read then. Killed right after the send, it knows the lease again.
 */
START_TEST(test_a_lease_reply_leaves_only_after_the_state_file_records_the_lease)
{
	struct outcome *o = outcome_new(), *seen = outcome_new();
	struct signal_pipe attached, ready, go;
	pid_t tracer, holder;

	if (getenv("VB_VALGRIND")) {
		printf("NOTE: %s does not trace a broker under valgrind\n", __func__);
		return;
	}
	signal_pipe_init(&attached);
	seen->value = -1;
	tracer = fork();
	ck_assert_int_ge(tracer, 0);
	if (tracer == 0)
		_exit(trace_first_fd_send(it_broker.pid, 7, seen, &attached));
	ck_assert_msg(signal_pipe_wait(&attached) == 'A', "cannot trace the broker: %s",
		      seen->message);
	holder = spawn_holder(it_broker.socket, UID_ALICE, 7, HOLD_UNTIL_GO, o, &ready, &go);
	ck_assert_int_eq(wait_exit(tracer), 0);
	ck_assert_msg(seen->value == 1,
		      "the broker sent the fd of group 7 before the state file recorded its "
		      "lease; see %s",
		      it_broker.log);

	it_broker_crash_and_restart();
	assert_alices_lease_known(holder);
	signal_pipe_send(&go, 'G');
	ck_assert_int_eq(wait_exit(holder), 0);
	outcome_free(seen);
	outcome_free(o);
}
END_TEST

/*
 * A journal transaction counts once its commit line is written: a broker
 * killed in the middle of writing one (here: the end of group 7, cut short
 * before its commit) had not replied to it, and the restore ignores it.
 */
START_TEST(test_a_state_file_transaction_without_its_commit_line_is_ignored)
{
	struct outcome *o = outcome_new();
	struct signal_pipe ready, go;
	pid_t holder = spawn_holder(it_broker.socket, UID_ALICE, 7, HOLD_UNTIL_GO, o, &ready, &go);

	broker_crash(&it_broker);
	state_file_append("end 7\nlease 8 he");
	broker_start(&it_broker, NULL);
	assert_alices_lease_known(holder);
	ck_assert_int_eq(admin_count_leases(), 1);
	ck_assert(broker_log_contains(&it_broker, "Ignoring the last 2 records"));

	signal_pipe_send(&go, 'G');
	ck_assert_int_eq(wait_exit(holder), 0);
	outcome_free(o);
}
END_TEST

static int admin_quarantine(unsigned group, char *code, size_t size)
{
	struct vfiobroker *b;
	int r;

	ck_assert_int_eq(vfiobroker_connect(it_broker.socket, &b), 0);
	r = vfiobroker_quarantine_group(b, group, NULL);
	snprintf(code, size, "%s",
		 r < 0 && vfiobroker_error_code(b) ? vfiobroker_error_code(b) : "");
	vfiobroker_disconnect(b);
	return r;
}

START_TEST(test_after_a_quarantine_and_a_restart_the_lease_still_keeps_quarantine_off)
{
	struct outcome *o = outcome_new();
	struct signal_pipe ready, go;
	pid_t holder = spawn_holder(it_broker.socket, UID_ALICE, 7, HOLD_UNTIL_GO, o, &ready, &go);
	char code[32];

	/* Without the module the broker writes sysfs itself: the simulated tree takes it. */
	ck_assert_int_eq(admin_quarantine(10, code, sizeof(code)), 0);
	it_broker_crash_and_restart();
	assert_alices_lease_known(holder);
	/* A leased group is never quarantined: the restored lease still says leased. */
	ck_assert_int_lt(admin_quarantine(7, code, sizeof(code)), 0);
	ck_assert_str_eq(code, "busy");

	signal_pipe_send(&go, 'G');
	ck_assert_int_eq(wait_exit(holder), 0);
	outcome_free(o);
}
END_TEST

START_TEST(test_an_entry_whose_holder_died_while_the_broker_was_down_is_dropped)
{
	struct outcome *o = outcome_new();
	struct signal_pipe ready;
	pid_t holder = spawn_holder(it_broker.socket, UID_ALICE, 7, HOLD_IGNORE, o, &ready, NULL);

	broker_crash(&it_broker);
	kill(holder, SIGKILL);
	ck_assert_int_eq(wait_exit(holder), 128 + SIGKILL);
	broker_start(&it_broker, NULL);
	ck_assert(broker_log_contains(&it_broker, "Dropped the stored lease of group 7"));
	ck_assert(broker_log_contains(&it_broker, "exited while the broker was down"));
	ck_assert_int_eq(admin_count_leases(), 0);
	assert_carol_gets_group_7();
	outcome_free(o);
}
END_TEST

/*
 * A reused pid: the holder exits while the broker is down, and its pid names
 * another process (here pid 1, which never had the file). That process does
 * not inherit: nobody has the file, the entry is dropped. Not the test's own
 * process: it may have started in the same clock tick as the holder it forked
 * (start times count ticks), and then it is the same process as far as the
 * kernel can tell; a real reuse needs the pid space to wrap, far longer.
 */
START_TEST(test_an_entry_whose_pid_now_names_another_process_is_dropped)
{
	struct outcome *o = outcome_new();
	struct signal_pipe ready, go;
	pid_t holder = spawn_holder(it_broker.socket, UID_ALICE, 7, HOLD_UNTIL_GO, o, &ready, &go);

	broker_crash(&it_broker);
	signal_pipe_send(&go, 'G');
	ck_assert_int_eq(wait_exit(holder), 0);
	state_file_shift(7, STATE_FIELD_PID, 1LL - holder);
	broker_start(&it_broker, NULL);
	ck_assert(broker_log_contains(&it_broker, "the pid was reused"));
	ck_assert_int_eq(admin_count_leases(), 0);
	outcome_free(o);
}
END_TEST

static bool no_lease_left(void *arg)
{
	return admin_count_leases() == 0;
}

/*
 * The recorded pid's start time does not match (what a reused pid looks
 * like), but the process with that pid has the group file open, in the
 * lease's uid: it is the heir a running broker would have named
 * (lease_check_open), so the lease is restored to it, releasing, never
 * dropped while its file is open.
 */
START_TEST(test_a_process_of_the_leases_uid_with_the_file_inherits_a_lease_whose_pid_was_reused)
{
	struct outcome *o = outcome_new();
	struct signal_pipe ready, go;
	struct vfiobroker_lease l;
	pid_t holder = spawn_holder(it_broker.socket, UID_ALICE, 7, HOLD_UNTIL_GO, o, &ready, &go);

	broker_crash(&it_broker);
	state_file_shift(7, STATE_FIELD_START_TIME, 1);
	broker_start(&it_broker, NULL);
	ck_assert(broker_log_contains(&it_broker, "the pid was reused"));
	ck_assert(broker_log_contains(&it_broker, "EVENT=inherit"));
	ck_assert_msg(admin_find_lease(7, &l), "group 7 is open in pid %d but not known; see %s",
		      (int)holder, it_broker.log);
	ck_assert_int_eq(l.pid, holder);
	ck_assert_int_eq(l.uid, UID_ALICE);
	ck_assert_str_eq(l.state, "releasing");

	signal_pipe_send(&go, 'G');
	ck_assert_int_eq(wait_exit(holder), 0);
	ck_assert(wait_until(no_lease_left, NULL));
	outcome_free(o);
}
END_TEST

/* Alice, passing her group 7 on to a process of another uid over a socket. */
struct pass_args {
	int sock[2];
	struct signal_pipe ready, go;
};

/* Alice: leases 7, sends the file over sock[0], closes hers, says 'L', exits on go. */
static int alice_leases_and_passes_the_file(void *arg)
{
	struct pass_args *a = arg;
	struct vfiobroker *b;
	int fd;

	if (vfiobroker_connect(it_broker.socket, &b) < 0 || vfiobroker_lease(b, 7, &fd) < 0)
		return 1;
	if (send_fd(a->sock[0], fd) < 0)
		return 2;
	close(fd);
	signal_pipe_send(&a->ready, 'L');
	signal_pipe_wait(&a->go);
	vfiobroker_disconnect(b);
	return 0;
}

/* Bob: receives the file over sock[1], says 'K', and keeps it until killed. */
static int bob_keeps_the_file(void *arg)
{
	struct pass_args *a = arg;

	if (recv_fd(a->sock[1]) < 0)
		return 1;
	signal_pipe_send(&a->ready, 'K');
	for (;;)
		pause();
}

/*
 * Never granted twice, across a restart: Alice passed her group file to
 * Bob, and exits while the broker is down. Only another uid has the file, so
 * nobody inherits (a lease never moves to another uid), but the lease is
 * restored, releasing, with no holder: Carol is told busy, where the
 * simulated tree (no kernel EBUSY) would let the broker open the group a
 * second time. It ends when Bob's copy closes.
 */
START_TEST(test_a_lease_whose_file_only_another_uid_has_is_restored_with_no_holder_and_stays_busy)
{
	struct pass_args a;
	struct vfiobroker_lease l;
	struct outcome *o = outcome_new();
	pid_t alice, bob;

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, a.sock), 0);
	signal_pipe_init(&a.ready);
	signal_pipe_init(&a.go);
	bob = spawn_as(UID_BOB, 0, bob_keeps_the_file, &a);
	alice = spawn_as(UID_ALICE, 0, alice_leases_and_passes_the_file, &a);
	ck_assert_int_eq(signal_pipe_wait(&a.ready) + signal_pipe_wait(&a.ready), 'L' + 'K');
	close(a.sock[0]);
	close(a.sock[1]);

	broker_crash(&it_broker);
	signal_pipe_send(&a.go, 'G');
	ck_assert_int_eq(wait_exit(alice), 0);
	broker_start(&it_broker, NULL);

	ck_assert(broker_log_contains(&it_broker, "EVENT=restore-stranger"));
	ck_assert_msg(admin_find_lease(7, &l),
		      "group 7 is open in bob's pid %d but not known; see %s", (int)bob,
		      it_broker.log);
	ck_assert_int_eq(l.uid, UID_ALICE);
	ck_assert_int_eq(l.pid, 0);
	ck_assert_str_eq(l.state, "releasing");
	carol_lease(7, o);
	ck_assert_int_lt(o->rc, 0);
	ck_assert_str_eq(o->code, "busy");

	kill(bob, SIGKILL);
	wait_exit(bob);
	ck_assert(wait_until(no_lease_left, NULL));
	outcome_free(o);
}
END_TEST

START_TEST(test_an_entry_whose_group_node_was_recreated_is_dropped)
{
	struct outcome *o = outcome_new();
	struct signal_pipe ready, go;
	pid_t holder = spawn_holder(it_broker.socket, UID_ALICE, 7, HOLD_UNTIL_GO, o, &ready, &go);
	char node[PATH_MAX + 32];
	FILE *f;

	broker_crash(&it_broker);
	/* A new node under the same name: another file than the one the holder has open. */
	sim_tree_group_path(&it_broker.sim, 7, node, sizeof(node));
	ck_assert_int_eq(unlink(node), 0);
	f = fopen(node, "w");
	ck_assert_ptr_nonnull(f);
	fclose(f);
	broker_start(&it_broker, NULL);
	ck_assert(broker_log_contains(&it_broker, "the group was re-created"));
	ck_assert_int_eq(admin_count_leases(), 0);

	signal_pipe_send(&go, 'G');
	ck_assert_int_eq(wait_exit(holder), 0);
	outcome_free(o);
}
END_TEST

START_TEST(test_a_state_file_of_another_boot_is_ignored)
{
	struct outcome *o = outcome_new();
	struct signal_pipe ready, go;
	pid_t holder = spawn_holder(it_broker.socket, UID_ALICE, 7, HOLD_UNTIL_GO, o, &ready, &go);
	char path[PATH_MAX + 16], text[4096];
	char *boot;
	size_t len;
	FILE *f;

	broker_crash(&it_broker);
	snprintf(path, sizeof(path), "%s/leases", it_broker.state_dir);
	f = fopen(path, "r+");
	ck_assert_ptr_nonnull(f);
	len = fread(text, 1, sizeof(text) - 1, f);
	text[len] = '\0';
	boot = strstr(text, "\nboot ");
	ck_assert_ptr_nonnull(boot);
	/* Flip one digit of the boot id. */
	boot[6] = boot[6] == '0' ? '1' : '0';
	rewind(f);
	fwrite(text, 1, len, f);
	fclose(f);
	broker_start(&it_broker, NULL);
	ck_assert(broker_log_contains(&it_broker, "written before the last boot"));
	ck_assert_int_eq(admin_count_leases(), 0);

	signal_pipe_send(&go, 'G');
	ck_assert_int_eq(wait_exit(holder), 0);
	outcome_free(o);
}
END_TEST

/*
 * The simulated tree takes no VFIO ioctl, so no merge succeeds here: the file
 * says the two leases were merged into container 5, as a real merge records.
 */
START_TEST(test_restored_leases_keep_their_container_id)
{
	struct outcome *o = outcome_new();
	struct signal_pipe ready, go;
	struct client_args a = {.socket = it_broker.socket, .out = o, .ready = &ready, .go = &go};
	struct vfiobroker_lease l7, l8;
	pid_t holder;

	signal_pipe_init(&ready);
	signal_pipe_init(&go);
	holder = spawn_as(UID_ALICE, 0, client_lease_two_and_merge, &a);
	ck_assert_int_eq(signal_pipe_wait(&ready), 'L');
	broker_crash(&it_broker);
	state_file_shift(7, STATE_FIELD_CONTAINER, 5);
	state_file_shift(8, STATE_FIELD_CONTAINER, 5);
	broker_start(&it_broker, NULL);
	ck_assert(admin_find_lease(7, &l7));
	ck_assert(admin_find_lease(8, &l8));
	ck_assert_uint_eq(l7.container, 5);
	ck_assert_uint_eq(l8.container, 5);
	/* ... and keep it through the next restart: the restored container was saved. */
	it_broker_crash_and_restart();
	ck_assert(admin_find_lease(7, &l7));
	ck_assert_uint_eq(l7.container, 5);

	/* Both files closed: both leases end, the container with them. */
	signal_pipe_send(&go, 'G');
	ck_assert_int_eq(wait_exit(holder), 0);
	ck_assert(broker_log_wait(&it_broker, "Group 8 released"));
	ck_assert_int_eq(admin_count_leases(), 0);
	assert_carol_gets_group_7();
	outcome_free(o);
}
END_TEST

START_TEST(test_a_malformed_state_file_is_ignored_and_the_broker_starts)
{
	static const char *const files[] = {
		"garbage\n",
		"vfio-brokerd leases 1\n",
		"vfio-brokerd leases 1\nboot x\n",
	};
	char path[PATH_MAX + 16], boot[64] = "", text[512];
	FILE *f = fopen("/proc/sys/kernel/random/boot_id", "r");

	ck_assert_ptr_nonnull(f);
	ck_assert_ptr_nonnull(fgets(boot, sizeof(boot), f));
	fclose(f);
	snprintf(path, sizeof(path), "%s/leases", it_broker.state_dir);
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]) + 1; i++) {
		broker_crash(&it_broker);
		f = fopen(path, "w");
		ck_assert_ptr_nonnull(f);
		if (i < sizeof(files) / sizeof(files[0])) {
			fputs(files[i], f);
		} else {
			/* This boot, and a line that overflows every field. */
			snprintf(text, sizeof(text), "vfio-brokerd leases 1\nboot %s", boot);
			fputs(text, f);
			fputs("lease 7 held 1 1 1 1 0 0 0 0 0 ", f);
			for (int k = 0; k < 5000; k++)
				fputc('a', f);
			fputs(" -\nlease 7 held -1 x\n", f);
		}
		fclose(f);
		broker_start(&it_broker, NULL);
		ck_assert_int_eq(admin_count_leases(), 0);
	}
	ck_assert(broker_log_contains(&it_broker, "not a lease table of this version"));
	ck_assert(broker_log_contains(&it_broker, "malformed"));
	assert_carol_gets_group_7();
}
END_TEST

Suite *suite_restart(void)
{
	Suite *s = suite_create("restart");
	TCase *t = tcase_create("crash points");

	tcase_add_checked_fixture(t, it_broker_setup, it_broker_teardown);
	tcase_set_timeout(t, 60);
	tcase_add_test(t, test_restart_knows_a_held_lease_and_refuses_it_to_another_uid);
	tcase_add_test(t, test_hard_removal_after_restart_kills_the_holder_and_frees_the_group);
	tcase_add_test(t, test_a_restored_lease_ends_when_its_holder_closes_the_group);
	tcase_add_test(
		t, test_a_holder_that_reconnects_after_restart_hears_a_soft_removal_and_releases);
	tcase_add_test(t, test_restart_after_a_release_leaves_the_group_free);
	tcase_add_test(t, test_restart_after_merge_and_unmerge_keeps_both_leases);
	tcase_add_test(t, test_restored_leases_keep_their_container_id);
	tcase_add_test(t, test_a_soft_removal_in_flight_is_abandoned_and_the_lease_stays);
	tcase_add_test(
		t, test_a_broker_killed_between_unlink_and_rename_of_a_save_restores_the_new_file);
	tcase_add_test(t, test_a_lease_reply_leaves_only_after_the_state_file_records_the_lease);
	tcase_add_test(t, test_a_state_file_transaction_without_its_commit_line_is_ignored);
	tcase_add_test(t,
		       test_after_a_quarantine_and_a_restart_the_lease_still_keeps_quarantine_off);
	tcase_add_test(t, test_an_entry_whose_holder_died_while_the_broker_was_down_is_dropped);
	tcase_add_test(t, test_an_entry_whose_pid_now_names_another_process_is_dropped);
	tcase_add_test(
		t,
		test_a_process_of_the_leases_uid_with_the_file_inherits_a_lease_whose_pid_was_reused);
	tcase_add_test(
		t,
		test_a_lease_whose_file_only_another_uid_has_is_restored_with_no_holder_and_stays_busy);
	tcase_add_test(t, test_an_entry_whose_group_node_was_recreated_is_dropped);
	tcase_add_test(t, test_a_state_file_of_another_boot_is_ignored);
	tcase_add_test(t, test_a_malformed_state_file_is_ignored_and_the_broker_starts);
	suite_add_tcase(s, t);
	return s;
}
