/* SPDX-License-Identifier: MIT */
/*
 * The seed's group semantics on the host tier (issue 12, items 5 and 6):
 * who may act on a holder's groups through the broker (the holder, a
 * forked child of it, an unrelated process of the same uid, the process a
 * lease passed to), and the answers to Gibson's merge questions that a
 * simulated tree can reach. PROTOCOL.md, section "Semantics", names each
 * test here beside the question it answers.
 *
 * The simulated group files are regular files, which take no VFIO ioctl:
 * there a merge fails at the kernel step (VFIO_GROUP_SET_CONTAINER on the
 * first group gives ENOTTY), and a merged set is reached only as a restart
 * restores one (the state file names the container). The "merge-standin"
 * case puts a FUSE file system on <dev>/vfio whose group files answer the
 * two container ioctls as the kernel does, refuse them when told, and log
 * them: merge's success path, the union of two sets, the undo of a refused
 * merge, unmerge and release of one member are pinned there.
 */
#include "tests/integration/it.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fuse.h>
#include <linux/vfio.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

/* The outcomes of the steps one scenario's processes take, shared across their forks. */
enum { STEP_MAX = 12 };

struct steps {
	struct outcome *o[STEP_MAX];
	struct signal_pipe ready; /* the holder (or its child) says where it is */
	struct signal_pipe go;	  /* the test lets it go on */
	pid_t child;		  /* written by the holder */
};

static void steps_init(struct steps *s)
{
	memset(s, 0, sizeof(*s));
	for (size_t i = 0; i < STEP_MAX; i++)
		s->o[i] = outcome_new();
	signal_pipe_init(&s->ready);
	signal_pipe_init(&s->go);
}

static void steps_finish(struct steps *s)
{
	for (size_t i = 0; i < STEP_MAX; i++)
		outcome_free(s->o[i]);
}

static struct steps *steps_new(void)
{
	struct steps *s =
		mmap(NULL, sizeof(*s), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	ck_assert_ptr_ne(s, MAP_FAILED);
	steps_init(s);
	return s;
}

static void steps_free(struct steps *s)
{
	steps_finish(s);
	munmap(s, sizeof(*s));
}

static void assert_step(const struct outcome *o, int rc, const char *code, const char *needle)
{
	ck_assert_msg(o->rc == rc, "rc %d, want %d: %s: %s", o->rc, rc, o->code, o->message);
	ck_assert_str_eq(o->code, code);
	ck_assert_msg(!needle || strstr(o->message, needle), "message: %s", o->message);
}

/* ---- mm ownership (item 6) ---- */

/*
 * The child: uses the group file it inherited, then connects on its own (its
 * own pidfd, its own identity) and asks the broker to merge, unmerge and
 * release its parent's groups, and to remove one.
 */
static int child_acts_on_parents_groups(struct steps *s, int fd7)
{
	unsigned both[] = {7, 8};
	struct vfiobroker *b;
	struct stat st;
	bool released = true;
	int container = -1, r;

	/* Use: the inherited file is the group file, open read-write. */
	if (fstat(fd7, &st) < 0 || write(fd7, "c", 1) != 1)
		return 20;
	if (vfiobroker_connect(it_broker.socket, &b) < 0)
		return 21;
	r = vfiobroker_merge(b, both, 2, -1, &container);
	outcome_record(s->o[0], b, r);
	r = vfiobroker_unmerge(b, 7);
	outcome_record(s->o[1], b, r);
	r = vfiobroker_release(b, 7, &released);
	outcome_record(s->o[2], b, r);
	s->o[2]->value = released;
	r = vfiobroker_remove(b, 8, true, 0, NULL);
	outcome_record(s->o[4], b, r);
	vfiobroker_disconnect(b);
	return 0;
}

/* The holder: lease 7 and 8, fork the child, wait for it, report, hold until go. */
static int holder_with_acting_child(void *arg)
{
	struct steps *s = arg;
	struct vfiobroker *b;
	int fd7, fd8, status;
	pid_t child;

	if (vfiobroker_connect(it_broker.socket, &b) < 0 || vfiobroker_lease(b, 7, &fd7) < 0 ||
	    vfiobroker_lease(b, 8, &fd8) < 0)
		return 1;
	child = fork();
	if (child < 0)
		return 2;
	if (child == 0)
		_exit(child_acts_on_parents_groups(s, fd7));
	s->child = child;
	if (waitpid(child, &status, 0) != child)
		return 3;
	s->o[3]->rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	signal_pipe_send(&s->ready, 'C');
	signal_pipe_wait(&s->go);
	close(fd7);
	close(fd8);
	vfiobroker_disconnect(b);
	return 0;
}

/*
 * A forked child of the holder, with the holder's uid and while the holder
 * lives, speaks for it: merge goes on to the kernel step (the refusal is the
 * simulated file's, not the broker's), unmerge reaches the "not merged"
 * check, and release is taken. The file stays open in the holder, so the
 * lease does not end yet: it is "releasing", still the holder's. Removal
 * stays an administrator's act, for the child as for the holder.
 */
START_TEST(
	test_a_forked_child_of_the_holder_may_merge_unmerge_and_release_its_groups_but_not_remove_them)
{
	struct steps *s = steps_new();
	struct vfiobroker_lease l7, l8;
	pid_t holder;

	holder = spawn_as(UID_ALICE, 0, holder_with_acting_child, s);
	ck_assert_int_eq(signal_pipe_wait(&s->ready), 'C');
	ck_assert_msg(s->o[3]->rc == 0, "the child failed at step %d", s->o[3]->rc);
	assert_step(s->o[0], -EPERM, "not-viable", "kernel");
	assert_step(s->o[1], -EINVAL, "bad-request", "not merged");
	assert_step(s->o[2], 0, "", NULL);
	ck_assert_msg(!s->o[2]->value, "released while the holder still has the file open");
	assert_step(s->o[4], -EACCES, "denied", "administrator");

	ck_assert(admin_find_lease(7, &l7));
	ck_assert_int_eq(l7.pid, holder);
	ck_assert_str_eq(l7.state, "releasing");
	ck_assert(admin_find_lease(8, &l8));
	ck_assert_int_eq(l8.pid, holder);
	ck_assert_str_eq(l8.state, "held");

	signal_pipe_send(&s->go, 'G');
	ck_assert_int_eq(wait_exit(holder), 0);
	ck_assert(broker_log_wait(&it_broker, "Group 7 released"));
	steps_free(s);
}
END_TEST

/* A process of the holder's uid that does not descend from it tries everything. */
static int stranger_of_the_same_uid(void *arg)
{
	struct steps *s = arg;
	unsigned seven[] = {7};
	struct vfiobroker *b;
	int fd = -1, container = -1, r;

	if (vfiobroker_connect(it_broker.socket, &b) < 0)
		return 1;
	r = vfiobroker_lease(b, 7, &fd);
	outcome_record(s->o[0], b, r);
	r = vfiobroker_release(b, 7, NULL);
	outcome_record(s->o[1], b, r);
	r = vfiobroker_merge(b, seven, 1, -1, &container);
	outcome_record(s->o[2], b, r);
	r = vfiobroker_unmerge(b, 7);
	outcome_record(s->o[3], b, r);
	r = vfiobroker_remove(b, 7, true, 0, NULL);
	outcome_record(s->o[4], b, r);
	r = vfiobroker_remove(b, 7, false, 1000, NULL);
	outcome_record(s->o[5], b, r);
	vfiobroker_disconnect(b);
	return 0;
}

/*
 * Same uid is not enough: a process that is neither the holder nor its
 * descendant gets busy for a lease, not-held for release, merge and unmerge,
 * and denied for removal (an administrator's act); the lease is untouched.
 */
START_TEST(
	test_an_unrelated_process_of_the_holders_uid_can_neither_take_release_merge_unmerge_nor_remove_its_group)
{
	struct steps *s = steps_new();
	struct outcome *held = outcome_new();
	struct signal_pipe ready, go;
	struct vfiobroker_lease l;
	pid_t holder;

	holder = spawn_holder(it_broker.socket, UID_ALICE, 7, HOLD_UNTIL_GO, held, &ready, &go);
	ck_assert_int_eq(run_as(UID_ALICE, 0, stranger_of_the_same_uid, s), 0);
	assert_step(s->o[0], -EBUSY, "busy", "held by uid 2000");
	assert_step(s->o[1], -ESRCH, "not-held", "another process");
	assert_step(s->o[2], -ESRCH, "not-held", "another process");
	assert_step(s->o[3], -ESRCH, "not-held", "another process");
	assert_step(s->o[4], -EACCES, "denied", "administrator");
	assert_step(s->o[5], -EACCES, "denied", "administrator");

	ck_assert(admin_find_lease(7, &l));
	ck_assert_int_eq(l.pid, holder);
	ck_assert_str_eq(l.state, "held");
	signal_pipe_send(&go, 'G');
	ck_assert_int_eq(wait_exit(holder), 0);
	outcome_free(held);
	steps_free(s);
}
END_TEST

/* The holder leases 7, then asks for it again, as a second open() of /dev/vfio/7 would. */
static int holder_leasing_twice(void *arg)
{
	struct steps *s = arg;
	struct vfiobroker *b;
	int fd, again = -1, r;

	if (vfiobroker_connect(it_broker.socket, &b) < 0 || vfiobroker_lease(b, 7, &fd) < 0)
		return 1;
	r = vfiobroker_lease(b, 7, &again);
	outcome_record(s->o[0], b, r);
	s->o[0]->value = again;
	close(fd);
	vfiobroker_disconnect(b);
	return 0;
}

/*
 * Re-opening a group (Gibson: "re-open /dev/vfio/NNN for one of the groups
 * merged"): there is one open file per group, in the kernel and in the
 * broker. A second lease by the holder itself is busy, and no second file
 * is sent; copies of the one file (dup, fork, SCM_RIGHTS) are how it is shared.
 */
START_TEST(test_leasing_a_held_group_again_is_busy_even_for_its_holder)
{
	struct steps *s = steps_new();

	ck_assert_int_eq(run_as(UID_ALICE, 0, holder_leasing_twice, s), 0);
	assert_step(s->o[0], -EBUSY, "busy", "you already hold group 7");
	ck_assert_int_eq(s->o[0]->value, -1);
	steps_free(s);
}
END_TEST

/*
 * The holder leases 7, forks a child that keeps the file, and exits. The
 * child, told to go on, connects and releases, then closes the file.
 */
static int holder_exits_leaving_a_child(void *arg)
{
	struct steps *s = arg;
	struct vfiobroker *b;
	pid_t child;
	int fd;

	if (vfiobroker_connect(it_broker.socket, &b) < 0 || vfiobroker_lease(b, 7, &fd) < 0)
		return 1;
	child = fork();
	if (child < 0)
		return 2;
	if (child == 0) {
		bool released = true;
		int r;

		vfiobroker_disconnect(b);
		if (signal_pipe_wait(&s->go) != 'G')
			_exit(10);
		if (vfiobroker_connect(it_broker.socket, &b) < 0)
			_exit(11);
		r = vfiobroker_release(b, 7, &released);
		outcome_record(s->o[0], b, r);
		s->o[0]->value = released;
		close(fd);
		vfiobroker_disconnect(b);
		_exit(0);
	}
	s->child = child;
	return 0; /* the holder is gone; its child has the group file */
}

static bool lease_7_passed_to_the_child(void *arg)
{
	const struct steps *s = arg;
	struct vfiobroker_lease l;

	return admin_find_lease(7, &l) && l.pid == s->child;
}

static int carol_leases_7(void *arg)
{
	struct outcome *o = arg;
	struct client_args a = {.socket = it_broker.socket, .group = 7, .out = o};

	return client_lease(&a);
}

/*
 * When the holder exits and a child still has the group file, the lease
 * passes to that child (logged as inherited): `leases` names the child's
 * pid, and the child, now the holder, may release it. Once it closes the
 * file the group is free for another uid.
 */
START_TEST(test_a_child_left_with_the_file_when_the_holder_exits_becomes_the_holder_and_may_release)
{
	struct steps *s = steps_new();
	struct outcome *carol = outcome_new();
	pid_t holder;

	/* The child is orphaned when the holder exits: become its parent, to wait for it. */
	ck_assert_int_eq(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
	holder = spawn_as(UID_ALICE, 0, holder_exits_leaving_a_child, s);
	ck_assert_int_eq(wait_exit(holder), 0);
	ck_assert_int_gt(s->child, 0);
	ck_assert_msg(wait_until(lease_7_passed_to_the_child, s),
		      "the lease of group 7 did not pass to pid %d; see %s", (int)s->child,
		      it_broker.log);
	ck_assert(broker_log_contains(&it_broker, "EVENT=inherit"));

	signal_pipe_send(&s->go, 'G');
	ck_assert_int_eq(wait_exit(s->child), 0);
	assert_step(s->o[0], 0, "", NULL);
	ck_assert(broker_log_wait(&it_broker, "Group 7 released"));
	ck_assert_int_eq(run_as(UID_CAROL, 0, carol_leases_7, carol), 0);
	ck_assert_msg(carol->rc == 0, "carol: %s: %s", carol->code, carol->message);
	outcome_free(carol);
	steps_free(s);
}
END_TEST

/* ---- merge (item 5): what the host tier can reach ---- */

/*
 * The holder leases 7 and 8, says 'L', waits, asks for the merge, says 'M',
 * waits, exits. (A request carries no container of the client's: the broker
 * takes no descriptors.)
 */
static int holder_merging_on_go(void *arg)
{
	struct steps *s = arg;
	unsigned both[] = {7, 8};
	struct vfiobroker *b;
	int fd7, fd8, container = -1, r;

	if (vfiobroker_connect(it_broker.socket, &b) < 0 || vfiobroker_lease(b, 7, &fd7) < 0 ||
	    vfiobroker_lease(b, 8, &fd8) < 0)
		return 1;
	signal_pipe_send(&s->ready, 'L');
	signal_pipe_wait(&s->go);
	r = vfiobroker_merge(b, both, 2, -1, &container);
	outcome_record(s->o[0], b, r);
	signal_pipe_send(&s->ready, 'M');
	signal_pipe_wait(&s->go);
	close(fd7);
	close(fd8);
	vfiobroker_disconnect(b);
	return 0;
}

static void assert_failed_merge_leaves_nothing(void)
{
	struct steps *s = steps_new();
	struct vfiobroker_lease l7, l8;
	int before;
	pid_t holder;

	holder = spawn_as(UID_ALICE, 0, holder_merging_on_go, s);
	ck_assert_int_eq(signal_pipe_wait(&s->ready), 'L');
	before = broker_fd_count_settled(&it_broker);
	signal_pipe_send(&s->go, 'g');
	ck_assert_int_eq(signal_pipe_wait(&s->ready), 'M');

	assert_step(s->o[0], -EPERM, "not-viable", "refused to merge group 7");
	ck_assert(broker_log_wait(&it_broker, "EVENT=merge-failed"));
	ck_assert(admin_find_lease(7, &l7));
	ck_assert(admin_find_lease(8, &l8));
	ck_assert_uint_eq(l7.container, 0);
	ck_assert_uint_eq(l8.container, 0);
	ck_assert_str_eq(l7.state, "held");
	ck_assert_str_eq(l8.state, "held");
	/* No container record and no container file left behind: the broker's fds are as before. */
	ck_assert_int_eq(broker_fd_count_settled(&it_broker), before);

	signal_pipe_send(&s->go, 'G');
	ck_assert_int_eq(wait_exit(holder), 0);
	steps_free(s);
}

/*
 * All or nothing, the half the host tier can force: the kernel refuses the
 * first group, and afterwards no group is recorded in a container, both
 * leases are held as before, and the container the broker opened for the
 * request is closed again. (Undoing groups already attached needs a
 * SET_CONTAINER that succeeds: see PROTOCOL.md, "all or nothing".)
 */
START_TEST(test_a_merge_the_kernel_refuses_leaves_no_group_merged_and_no_container_open)
{
	assert_failed_merge_leaves_nothing();
}
END_TEST

/*
 * A broker killed and started again with leases 7 and 8 in container 5 in its
 * state file: a merged set, as a restart restores it (the only way to one on a
 * simulated tree, whose group files refuse VFIO ioctls).
 */
static void restart_with_7_and_8_merged_in_container_5(void)
{
	broker_crash(&it_broker);
	state_file_set(7, STATE_FIELD_CONTAINER, 5);
	state_file_set(8, STATE_FIELD_CONTAINER, 5);
	broker_start(&it_broker, NULL);
}

/*
 * The holder leases 7 and 8 and says 'L'; after the restart ('G') it closes
 * group 7's file, connects again, releases 7, says 'R', and holds 8 until 'G'.
 */
static int holder_releasing_one_member(void *arg)
{
	struct steps *s = arg;
	struct vfiobroker *b;
	bool released = false;
	int fd7, fd8, r;

	if (vfiobroker_connect(it_broker.socket, &b) < 0 || vfiobroker_lease(b, 7, &fd7) < 0 ||
	    vfiobroker_lease(b, 8, &fd8) < 0)
		return 1;
	signal_pipe_send(&s->ready, 'L');
	signal_pipe_wait(&s->go);
	vfiobroker_disconnect(b); /* closed by the crash anyway */
	close(fd7);
	if (vfiobroker_connect(it_broker.socket, &b) < 0)
		return 2;
	r = vfiobroker_release(b, 7, &released);
	outcome_record(s->o[0], b, r);
	s->o[0]->value = released;
	signal_pipe_send(&s->ready, 'R');
	signal_pipe_wait(&s->go);
	close(fd8);
	vfiobroker_disconnect(b);
	return 0;
}

/*
 * Release of one member of a merged set: only that group leaves; the rest
 * stay merged, with the same container id. The merged set is the one a
 * restart restores from the state file (container 5), the only way to a
 * merged set on a simulated tree.
 */
START_TEST(test_releasing_one_member_of_a_merged_set_leaves_the_others_merged)
{
	struct steps *s = steps_new();
	struct vfiobroker_lease l;
	pid_t holder;

	/* valgrind 3.19 has no pidfd_getfd: nothing is restored (as for the restart suite). */
	if (getenv("VB_VALGRIND")) {
		printf("NOTE: no restored merged set under valgrind; not run\n");
		steps_free(s);
		return;
	}
	holder = spawn_as(UID_ALICE, 0, holder_releasing_one_member, s);
	ck_assert_int_eq(signal_pipe_wait(&s->ready), 'L');
	restart_with_7_and_8_merged_in_container_5();
	ck_assert(admin_find_lease(7, &l));
	ck_assert_uint_eq(l.container, 5);
	ck_assert(admin_find_lease(8, &l));
	ck_assert_uint_eq(l.container, 5);

	signal_pipe_send(&s->go, 'g');
	ck_assert_int_eq(signal_pipe_wait(&s->ready), 'R');
	assert_step(s->o[0], 0, "", NULL);
	ck_assert_msg(s->o[0]->value, "group 7's file was closed: the release should end it");
	ck_assert_msg(!admin_find_lease(7, &l), "group 7 is still leased (%s)", l.state);
	ck_assert(admin_find_lease(8, &l));
	ck_assert_int_eq(l.pid, holder);
	ck_assert_str_eq(l.state, "held");
	ck_assert_uint_eq(l.container, 5);

	signal_pipe_send(&s->go, 'G');
	ck_assert_int_eq(wait_exit(holder), 0);
	steps_free(s);
}
END_TEST

/*
 * The holder leases 7 and 8 and says 'L'; after the restart ('G') it connects
 * again and asks to merge 7 and 8, says 'R' and waits for 'G'.
 */
static int holder_merging_a_restored_set(void *arg)
{
	struct steps *s = arg;
	unsigned both[] = {7, 8};
	struct vfiobroker *b;
	int fd7, fd8, container = -1, r;

	if (vfiobroker_connect(it_broker.socket, &b) < 0 || vfiobroker_lease(b, 7, &fd7) < 0 ||
	    vfiobroker_lease(b, 8, &fd8) < 0)
		return 1;
	signal_pipe_send(&s->ready, 'L');
	signal_pipe_wait(&s->go);
	vfiobroker_disconnect(b);
	if (vfiobroker_connect(it_broker.socket, &b) < 0)
		return 2;
	r = vfiobroker_merge(b, both, 2, -1, &container);
	outcome_record(s->o[0], b, r);
	signal_pipe_send(&s->ready, 'R');
	signal_pipe_wait(&s->go);
	close(fd7);
	close(fd8);
	vfiobroker_disconnect(b);
	return 0;
}

/*
 * A merged set restored after a restart stays as it was: merging into its
 * container is busy (the broker has no copy of it to attach groups to), and
 * says how to get out (unmerge and merge again).
 */
START_TEST(test_merging_into_a_container_restored_after_a_restart_is_busy_and_keeps_the_set)
{
	struct steps *s = steps_new();
	struct vfiobroker_lease l;
	pid_t holder;

	if (getenv("VB_VALGRIND")) {
		printf("NOTE: no restored merged set under valgrind; not run\n");
		steps_free(s);
		return;
	}
	holder = spawn_as(UID_ALICE, 0, holder_merging_a_restored_set, s);
	ck_assert_int_eq(signal_pipe_wait(&s->ready), 'L');
	restart_with_7_and_8_merged_in_container_5();

	signal_pipe_send(&s->go, 'g');
	ck_assert_int_eq(signal_pipe_wait(&s->ready), 'R');
	assert_step(s->o[0], -EBUSY, "busy", "restored after the broker restarted");
	ck_assert(admin_find_lease(7, &l));
	ck_assert_uint_eq(l.container, 5);
	ck_assert(admin_find_lease(8, &l));
	ck_assert_uint_eq(l.container, 5);

	signal_pipe_send(&s->go, 'G');
	ck_assert_int_eq(wait_exit(holder), 0);
	steps_free(s);
}
END_TEST

/* ---- merge against a stand-in for the kernel's group files ---- */

/*
 * The regular files of the simulated tree refuse every VFIO ioctl, so no
 * merge gets past its first group. Here <dev>/vfio is a FUSE file system
 * served by a child of the test: its group files answer
 * VFIO_GROUP_SET_CONTAINER and VFIO_GROUP_UNSET_CONTAINER (FUSE_IOCTL) as
 * the kernel does for a group (EINVAL to attach a group already in a
 * container or to detach one that is in none), can be told to refuse one
 * attach or every detach, and log each call. The broker takes them as
 * simulated nodes (regular files under a dev root that is not /dev). What
 * the stand-in cannot know is which container a group is put in: the
 * argument is a pointer into the broker, which a FUSE ioctl does not copy.
 */
enum { STANDIN_GROUPS = 16, STANDIN_CONTAINER_NODE = 2, STANDIN_GROUP_NODE = 100 };

struct standin_script {
	int refuse_set[STANDIN_GROUPS];	  /* errno the next attach gets, once */
	int refuse_unset[STANDIN_GROUPS]; /* errno every detach gets (EBUSY: device fds open) */
	bool attached[STANDIN_GROUPS];
	char log[4096]; /* "S7 S8! U7": attach, detach; ! marks a refusal */
};

static struct standin {
	char mnt[PATH_MAX + 16];
	pid_t server;
	struct standin_script *script; /* MAP_SHARED with the server */
} S;

static void standin_log(const char *what, unsigned group, int error)
{
	size_t used = strlen(S.script->log);

	snprintf(S.script->log + used, sizeof(S.script->log) - used, "%s%s%u%s", used ? " " : "",
		 what, group, error ? "!" : "");
}

/* The kernel's answer to a group ioctl, with the script's refusals. */
static int standin_group_ioctl(unsigned group, uint32_t cmd)
{
	struct standin_script *sc = S.script;
	int error = 0;

	if (cmd == VFIO_GROUP_SET_CONTAINER) {
		if (sc->refuse_set[group]) {
			error = sc->refuse_set[group];
			sc->refuse_set[group] = 0;
		} else if (sc->attached[group]) {
			error = EINVAL;
		} else {
			sc->attached[group] = true;
		}
		standin_log("S", group, error);
		return -error;
	}
	if (cmd == VFIO_GROUP_UNSET_CONTAINER) {
		if (!sc->attached[group])
			error = EINVAL;
		else if (sc->refuse_unset[group])
			error = sc->refuse_unset[group];
		else
			sc->attached[group] = false;
		standin_log("U", group, error);
		return -error;
	}
	return -ENOTTY;
}

static void standin_attr(uint64_t node, struct fuse_attr *a)
{
	memset(a, 0, sizeof(*a));
	a->ino = node;
	a->nlink = 1;
	a->blksize = 4096;
	if (node == FUSE_ROOT_ID) {
		a->mode = S_IFDIR | 0755;
		a->nlink = 2;
	} else if (node == STANDIN_CONTAINER_NODE) {
		a->mode = S_IFREG | 0666; /* /dev/vfio/vfio is world-usable */
	} else {
		a->mode = S_IFREG | 0600; /* group nodes: root only, as devtmpfs makes them */
	}
}

static void standin_reply(int fd, uint64_t unique, int error, const void *data, size_t len)
{
	struct fuse_out_header h = {
		.len = (uint32_t)(sizeof(h) + (error ? 0 : len)), .error = error, .unique = unique};
	struct iovec iov[2] = {{&h, sizeof(h)}, {(void *)data, error ? 0 : len}};

	(void)!writev(fd, iov, 2);
}

/* The node a name in the root names: "vfio", or a group number below STANDIN_GROUPS. */
static uint64_t standin_lookup(const char *name)
{
	char *end;
	unsigned long g;

	if (strcmp(name, "vfio") == 0)
		return STANDIN_CONTAINER_NODE;
	g = strtoul(name, &end, 10);
	if (*name < '0' || *name > '9' || *end || g >= STANDIN_GROUPS)
		return 0;
	return STANDIN_GROUP_NODE + g;
}

static _Noreturn void standin_serve(int fd)
{
	static char buf[256 * 1024];

	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));
		struct fuse_in_header *h = (void *)buf;
		void *in = buf + sizeof(*h);

		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n < (ssize_t)sizeof(*h))
			_exit(0); /* unmounted (ENODEV) or broken */
		switch (h->opcode) {
		case FUSE_INIT: {
			const struct fuse_init_in *i = in;
			struct fuse_init_out o = {.major = FUSE_KERNEL_VERSION,
						  .minor = FUSE_KERNEL_MINOR_VERSION,
						  .max_readahead = i->max_readahead,
						  .max_write = 65536,
						  .time_gran = 1};

			standin_reply(fd, h->unique, 0, &o, sizeof(o));
			break;
		}
		case FUSE_LOOKUP: {
			struct fuse_entry_out o = {0};
			uint64_t node = h->nodeid == FUSE_ROOT_ID ? standin_lookup(in) : 0;

			if (!node) {
				standin_reply(fd, h->unique, -ENOENT, NULL, 0);
				break;
			}
			o.nodeid = node;
			standin_attr(node, &o.attr);
			standin_reply(fd, h->unique, 0, &o, sizeof(o));
			break;
		}
		case FUSE_GETATTR: {
			struct fuse_attr_out o = {0};

			standin_attr(h->nodeid, &o.attr);
			standin_reply(fd, h->unique, 0, &o, sizeof(o));
			break;
		}
		case FUSE_OPEN:
		case FUSE_OPENDIR: {
			struct fuse_open_out o = {.fh = h->nodeid};

			standin_reply(fd, h->unique, 0, &o, sizeof(o));
			break;
		}
		case FUSE_READDIR:
		case FUSE_FLUSH:
		case FUSE_RELEASE:
		case FUSE_RELEASEDIR:
			standin_reply(fd, h->unique, 0, NULL, 0);
			break;
		case FUSE_IOCTL: {
			const struct fuse_ioctl_in *i = in;
			struct fuse_ioctl_out o = {0};
			int r = -ENOTTY;

			if (h->nodeid >= STANDIN_GROUP_NODE)
				r = standin_group_ioctl((unsigned)(h->nodeid - STANDIN_GROUP_NODE),
							i->cmd);
			standin_reply(fd, h->unique, r, &o, sizeof(o));
			break;
		}
		case FUSE_FORGET:
		case FUSE_BATCH_FORGET:
		case FUSE_INTERRUPT:
			break; /* no reply */
		default:
			standin_reply(fd, h->unique, -ENOSYS, NULL, 0);
		}
	}
}

/*
 * Mount the stand-in on <dev>/vfio and start serving it. The mount is made
 * in a mount namespace of the test's own, which the broker and clients it
 * starts inherit: a test that fails before its teardown leaves no mount
 * behind on the host, and the server dies with the test (PDEATHSIG).
 */
static void standin_start(void)
{
	char opts[128];
	int fd;

	ck_assert_msg(unshare(CLONE_NEWNS) == 0 &&
			      mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0,
		      "NOT RUN: no mount namespace of the test's own: %s", strerror(errno));

	S.script = mmap(NULL, sizeof(*S.script), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
			-1, 0);
	ck_assert_ptr_ne(S.script, MAP_FAILED);
	memset(S.script, 0, sizeof(*S.script));
	snprintf(S.mnt, sizeof(S.mnt), "%s/vfio", it_broker.sim.dev);
	fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
	ck_assert_msg(fd >= 0, "NOT RUN: /dev/fuse: %s", strerror(errno));
	snprintf(opts, sizeof(opts),
		 "fd=%d,rootmode=40000,user_id=0,group_id=0,allow_other,default_permissions", fd);
	ck_assert_msg(mount("vbstandin", S.mnt, "fuse.vbstandin", MS_NOSUID | MS_NODEV, opts) == 0,
		      "NOT RUN: cannot mount a FUSE file system on %s: %s", S.mnt, strerror(errno));
	S.server = fork();
	ck_assert_int_ge(S.server, 0);
	if (S.server == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		standin_serve(fd);
	}
	close(fd);
}

static void standin_stop(void)
{
	if (S.mnt[0])
		umount2(S.mnt, MNT_DETACH);
	S.mnt[0] = '\0';
}

static void standin_reap(void)
{
	if (S.server > 0) {
		kill(S.server, SIGKILL);
		waitpid(S.server, NULL, 0);
	}
	S.server = 0;
	if (S.script)
		munmap(S.script, sizeof(*S.script));
	S.script = NULL;
}

/* Alice may lease and merge four groups: 7, 8, and 11 and 12, added here. */
#define STANDIN_POLICY                                                                             \
	"{\"rules\": [\n"                                                                          \
	"  {\"name\": \"alice-four\", \"users\": [2000],\n"                                        \
	"   \"devices\": [{\"address\": \"0000:01:00.0\"}, {\"address\": \"0000:02:00.0\"},\n"     \
	"                 {\"address\": \"0000:06:00.0\"}, {\"address\": \"0000:07:00.0\"}],\n"    \
	"   \"allow\": [\"lease\", \"merge\"]}\n"                                                  \
	"]}\n"

static void setup_standin(void)
{
	static const struct sim_device g11 = {"0000:06:00.0", "8086", "10d3", "020000", "vfio-pci"};
	static const struct sim_device g12 = {"0000:07:00.0", "8086", "10d3", "020000", "vfio-pci"};

	broker_setup(&it_broker, STANDIN_POLICY);
	ck_assert_int_eq(sim_tree_add_group(&it_broker.sim, 11, &g11, 1), 0);
	ck_assert_int_eq(sim_tree_add_group(&it_broker.sim, 12, &g12, 1), 0);
	standin_start();
	broker_start(&it_broker, NULL);
}

static void teardown_standin(void)
{
	standin_stop();
	broker_teardown(&it_broker);
	standin_reap();
}

/*
 * A holder that runs a script: steps separated by spaces, each recorded in
 * s->o[i] (the steps' outcomes), then says 'D' and holds until 'G'.
 * "L7" lease 7 (keeping its fd), "M7,8" merge 7 and 8 (no container fd),
 * "U7" unmerge 7, "C7" close 7's fd, "R7" release 7, "P" say 'P' and wait for 'g'.
 */
struct script_args {
	struct steps *s;
	char text[256];
};

static int holder_running_a_script(void *arg)
{
	struct script_args *a = arg;
	struct steps *s = a->s;
	int fds[STANDIN_GROUPS];
	struct vfiobroker *b;
	char *step, *save = NULL;
	unsigned i = 0;

	for (size_t k = 0; k < STANDIN_GROUPS; k++)
		fds[k] = -1;
	if (vfiobroker_connect(it_broker.socket, &b) < 0)
		return 1;
	for (step = strtok_r(a->text, " ", &save); step && i < STEP_MAX;
	     step = strtok_r(NULL, " ", &save), i++) {
		unsigned groups[STANDIN_GROUPS], n = 0, g = (unsigned)atoi(step + 1);
		int r = 0, container = -1;

		switch (step[0]) {
		case 'L':
			r = vfiobroker_lease(b, g, &fds[g]);
			break;
		case 'M':
			for (char *p = step + 1; *p && n < STANDIN_GROUPS; p++) {
				groups[n++] = (unsigned)strtoul(p, &p, 10);
				if (!*p)
					break;
			}
			r = vfiobroker_merge(b, groups, n, -1, &container);
			if (r == 0)
				close(container);
			break;
		case 'U':
			r = vfiobroker_unmerge(b, g);
			break;
		case 'C':
			close(fds[g]);
			fds[g] = -1;
			break;
		case 'R':
			r = vfiobroker_release(b, g, NULL);
			break;
		case 'P':
			signal_pipe_send(&s->ready, 'P');
			signal_pipe_wait(&s->go);
			break;
		default:
			return 2;
		}
		outcome_record(s->o[i], b, r);
	}
	signal_pipe_send(&s->ready, 'D');
	signal_pipe_wait(&s->go);
	for (size_t k = 0; k < STANDIN_GROUPS; k++)
		if (fds[k] >= 0)
			close(fds[k]);
	vfiobroker_disconnect(b);
	return 0;
}

/* Runs script as Alice's holder; returns its pid once it pauses ('P') or is done ('D'). */
static pid_t run_script(struct steps *s, const char *script)
{
	struct script_args a = {.s = s};
	pid_t holder;
	char c;

	snprintf(a.text, sizeof(a.text), "%s", script);
	holder = spawn_as(UID_ALICE, 0, holder_running_a_script, &a);
	c = signal_pipe_wait(&s->ready);
	ck_assert_msg(c == 'D' || c == 'P', "the script \"%s\" did not run", script);
	return holder;
}

/* Lets a paused script go on, and waits until it is done. */
static void script_continue(struct steps *s)
{
	signal_pipe_send(&s->go, 'g');
	ck_assert_int_eq(signal_pipe_wait(&s->ready), 'D');
}

static void end_script(struct steps *s, pid_t holder)
{
	signal_pipe_send(&s->go, 'G');
	ck_assert_int_eq(wait_exit(holder), 0);
	steps_free(s);
}

static unsigned container_of_group(unsigned group)
{
	struct vfiobroker_lease l;

	ck_assert_msg(admin_find_lease(group, &l), "group %u is not leased", group);
	return l.container;
}

static void assert_log(const char *want)
{
	ck_assert_msg(strcmp(S.script->log, want) == 0, "group ioctls: \"%s\", want \"%s\"",
		      S.script->log, want);
}

/*
 * Merge two groups: both are attached (the stand-in saw one attach each,
 * none refused) and both leases name one container.
 */
START_TEST(test_merging_two_groups_attaches_both_to_one_container)
{
	struct steps *s = steps_new();
	pid_t holder = run_script(s, "L7 L8 M7,8");

	assert_step(s->o[2], 0, "", NULL);
	assert_log("S7 S8");
	ck_assert_uint_ne(container_of_group(7), 0);
	ck_assert_uint_eq(container_of_group(8), container_of_group(7));
	end_script(s, holder);
}
END_TEST

/*
 * All or nothing, the undo itself: the kernel attaches 7 and refuses 8; the
 * broker detaches 7 again, answers not-viable naming 8, and records no
 * container; its fd count is as before the request.
 */
START_TEST(test_a_merge_refused_at_the_second_group_detaches_the_first_again)
{
	struct steps *s = steps_new();
	int before;
	pid_t holder = run_script(s, "L7 L8 P M7,8");

	before = broker_fd_count_settled(&it_broker);
	S.script->refuse_set[8] = EINVAL; /* the IOMMU cannot share a domain with 8 */
	script_continue(s);
	assert_step(s->o[3], -EPERM, "not-viable", "refused to merge group 8");
	assert_log("S7 S8! U7");
	ck_assert(!S.script->attached[7] && !S.script->attached[8]);
	ck_assert_uint_eq(container_of_group(7), 0);
	ck_assert_uint_eq(container_of_group(8), 0);
	ck_assert_int_eq(broker_fd_count_settled(&it_broker), before);
	end_script(s, holder);
}
END_TEST

/*
 * Merging two merged sets (Gibson: "merge b into a"): naming one group of
 * each, without a container, moves the whole second set into the first
 * listed group's container: 11 and 12 are detached and attached again, and
 * all four leases name the container of 7.
 */
START_TEST(test_merging_a_group_of_each_of_two_merged_sets_merges_their_union)
{
	struct steps *s = steps_new();
	unsigned a;
	pid_t holder = run_script(s, "L7 L8 L11 L12 M7,8 M11,12 P M7,11");

	assert_step(s->o[4], 0, "", NULL);
	assert_step(s->o[5], 0, "", NULL);
	ck_assert_uint_ne(container_of_group(7), container_of_group(11));
	ck_assert_uint_eq(container_of_group(12), container_of_group(11));
	script_continue(s);
	assert_step(s->o[7], 0, "", NULL);
	assert_log("S7 S8 S11 S12 U11 S11 U12 S12");
	a = container_of_group(7);
	ck_assert_uint_eq(container_of_group(8), a);
	ck_assert_uint_eq(container_of_group(11), a);
	ck_assert_uint_eq(container_of_group(12), a);
	end_script(s, holder);
}
END_TEST

/*
 * All or nothing across sets: moving the second set, the kernel refuses
 * 12; 12 goes back to its own container, and 11, already moved, is
 * detached and put back too; both sets are as they were.
 */
START_TEST(test_a_refused_union_puts_every_moved_group_back_into_its_own_container)
{
	struct steps *s = steps_new();
	unsigned a, b;
	int before;
	pid_t holder = run_script(s, "L7 L8 L11 L12 M7,8 M11,12 P M7,11");

	a = container_of_group(7);
	b = container_of_group(11);
	before = broker_fd_count_settled(&it_broker);
	S.script->refuse_set[12] = EINVAL;
	script_continue(s);
	assert_step(s->o[7], -EPERM, "not-viable", "refused to merge group 12");
	assert_log("S7 S8 S11 S12 U11 S11 U12 S12! S12 U11 S11");
	ck_assert_uint_eq(container_of_group(7), a);
	ck_assert_uint_eq(container_of_group(8), a);
	ck_assert_uint_eq(container_of_group(11), b);
	ck_assert_uint_eq(container_of_group(12), b);
	ck_assert_int_eq(broker_fd_count_settled(&it_broker), before);
	end_script(s, holder);
}
END_TEST

/*
 * Unmerge of a group that others were merged into (Gibson: "unmerge b from
 * a", "unmerge a from the merged group"): only the atomic group named
 * leaves; the rest stay in their container, whichever group came first.
 */
START_TEST(test_unmerging_one_group_leaves_the_rest_of_its_set_merged)
{
	struct steps *s = steps_new();
	unsigned a;
	pid_t holder = run_script(s, "L7 L8 L11 M7,8,11 U7");

	assert_step(s->o[4], 0, "", NULL);
	assert_log("S7 S8 S11 U7");
	a = container_of_group(8);
	ck_assert_uint_ne(a, 0);
	ck_assert_uint_eq(container_of_group(7), 0);
	ck_assert_uint_eq(container_of_group(11), a);
	end_script(s, holder);
}
END_TEST

/*
 * Unmerge while that group's device fds are open: the kernel says EBUSY,
 * the broker says busy, "close them first", and the set stays as it was.
 */
START_TEST(test_unmerging_a_group_with_open_device_fds_is_busy_and_changes_nothing)
{
	struct steps *s = steps_new();
	unsigned a;
	pid_t holder;

	S.script->refuse_unset[8] = EBUSY; /* the container has other users: device fds */
	holder = run_script(s, "L7 L8 M7,8 U8");
	assert_step(s->o[3], -EBUSY, "busy", "device fds of group 8 are still open");
	a = container_of_group(7);
	ck_assert_uint_ne(a, 0);
	ck_assert_uint_eq(container_of_group(8), a);
	ck_assert(S.script->attached[8]);
	S.script->refuse_unset[8] = 0;
	end_script(s, holder);
}
END_TEST

/*
 * Release of one member: only that group leaves the container (detached on
 * the broker's copy before it closes it); the others stay merged.
 */
START_TEST(test_releasing_one_member_detaches_only_that_group)
{
	struct steps *s = steps_new();
	struct vfiobroker_lease l;
	unsigned a;
	pid_t holder = run_script(s, "L7 L8 L11 M7,8,11 C8 R8");

	assert_step(s->o[5], 0, "", NULL);
	assert_log("S7 S8 S11 U8");
	ck_assert(!admin_find_lease(8, &l));
	a = container_of_group(7);
	ck_assert_uint_ne(a, 0);
	ck_assert_uint_eq(container_of_group(11), a);
	end_script(s, holder);
}
END_TEST

Suite *suite_semantics(void)
{
	Suite *s = suite_create("semantics");
	TCase *t = tcase_create("semantics");

	tcase_add_checked_fixture(t, it_broker_setup, it_broker_teardown);
	tcase_set_timeout(t, 60);
	tcase_add_test(
		t,
		test_a_forked_child_of_the_holder_may_merge_unmerge_and_release_its_groups_but_not_remove_them);
	tcase_add_test(
		t,
		test_an_unrelated_process_of_the_holders_uid_can_neither_take_release_merge_unmerge_nor_remove_its_group);
	tcase_add_test(t, test_leasing_a_held_group_again_is_busy_even_for_its_holder);
	tcase_add_test(
		t,
		test_a_child_left_with_the_file_when_the_holder_exits_becomes_the_holder_and_may_release);
	tcase_add_test(
		t, test_a_merge_the_kernel_refuses_leaves_no_group_merged_and_no_container_open);
	tcase_add_test(t, test_releasing_one_member_of_a_merged_set_leaves_the_others_merged);
	tcase_add_test(
		t,
		test_merging_into_a_container_restored_after_a_restart_is_busy_and_keeps_the_set);
	suite_add_tcase(s, t);

	t = tcase_create("merge-standin");
	tcase_add_checked_fixture(t, setup_standin, teardown_standin);
	tcase_set_timeout(t, 60);
	tcase_add_test(t, test_merging_two_groups_attaches_both_to_one_container);
	tcase_add_test(t, test_a_merge_refused_at_the_second_group_detaches_the_first_again);
	tcase_add_test(t, test_merging_a_group_of_each_of_two_merged_sets_merges_their_union);
	tcase_add_test(t, test_a_refused_union_puts_every_moved_group_back_into_its_own_container);
	tcase_add_test(t, test_unmerging_one_group_leaves_the_rest_of_its_set_merged);
	tcase_add_test(t, test_unmerging_a_group_with_open_device_fds_is_busy_and_changes_nothing);
	tcase_add_test(t, test_releasing_one_member_detaches_only_that_group);
	suite_add_tcase(s, t);
	return s;
}
