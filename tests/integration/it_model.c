/* SPDX-License-Identifier: MIT */
/*
 * What the lease life cycle model (tests/model/lease.pml) found, pinned in
 * the code: each test here is a counterexample spin printed, replayed
 * against the real broker on the simulated tree.
 *
 * no_lost_lease: alice leases a group, forks a child that keeps the group
 * file, the broker is killed, alice exits, the broker is started again. The
 * child has the group open, as a child that inherits a lease while the
 * broker runs has it (lease_check_open passes the lease to it). The restore
 * used to drop the entry because its recorded holder was gone; now the
 * child, of the lease's uid, inherits it there too (recover_one).
 */
#include "tests/integration/it.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Whether pid has exited (gone, or a zombie nobody reaps: it holds no files then). */
static bool pid_gone(void *arg)
{
	pid_t pid = *(pid_t *)arg;
	char path[64], buf[256], *paren;
	FILE *f;
	bool zombie;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return true;
	zombie = fgets(buf, sizeof(buf), f) && (paren = strrchr(buf, ')')) && paren[2] == 'Z';
	fclose(f);
	return zombie;
}

/*
 * Leases 7, forks a child that keeps the group file until it is killed,
 * reports the child's pid, says 'L', and exits when told to.
 */
static int client_lease_fork_and_exit(void *arg)
{
	struct client_args *a = arg;
	struct vfiobroker *b;
	pid_t child;
	int fd;

	if (vfiobroker_connect(a->socket, &b) < 0 || vfiobroker_lease(b, 7, &fd) < 0)
		return 1;
	child = fork();
	if (child < 0)
		return 2;
	if (child == 0) {
		vfiobroker_disconnect(b);
		for (;;)
			pause();
	}
	a->out->value = (int)child;
	signal_pipe_send(a->ready, 'L');
	signal_pipe_wait(a->go);
	return 0;
}

START_TEST(test_a_child_holding_the_group_when_its_parent_exits_during_a_restart_keeps_the_lease)
{
	struct outcome *o = outcome_new();
	struct signal_pipe ready, go;
	struct client_args a = {.socket = it_broker.socket, .out = o, .ready = &ready, .go = &go};
	struct vfiobroker_lease l;
	pid_t holder, child;
	bool known;

	signal_pipe_init(&ready);
	signal_pipe_init(&go);
	holder = spawn_as(UID_ALICE, 0, client_lease_fork_and_exit, &a);
	ck_assert_int_eq(signal_pipe_wait(&ready), 'L');
	child = (pid_t)o->value;
	ck_assert_int_gt(child, 0);

	/* The model's counterexample: the broker dies before it sees the holder exit. */
	broker_crash(&it_broker);
	signal_pipe_send(&go, 'G');
	ck_assert_int_eq(wait_exit(holder), 0);
	broker_start(&it_broker, NULL);

	known = admin_find_lease(7, &l);
	if (!known)
		kill(child, SIGKILL);
	ck_assert_msg(known,
		      "group 7 is open in pid %d (alice's child) but the restarted broker does "
		      "not know its lease; see %s",
		      (int)child, it_broker.log);
	ck_assert_int_eq(l.pid, child);
	ck_assert_int_eq(l.uid, UID_ALICE);
	ck_assert_str_eq(l.rule, "alice-nics");

	/* Known again means a hard removal reaches the child, and frees the group. */
	{
		struct vfiobroker *b;

		ck_assert_int_eq(vfiobroker_connect(it_broker.socket, &b), 0);
		ck_assert_int_eq(vfiobroker_remove(b, 7, true, 0, NULL), 0);
		vfiobroker_disconnect(b);
	}
	ck_assert(wait_until(pid_gone, &child));
	ck_assert(!admin_find_lease(7, &l));
	outcome_free(o);
}
END_TEST

Suite *suite_model(void)
{
	Suite *s = suite_create("model");
	TCase *t = tcase_create("counterexamples");

	tcase_add_checked_fixture(t, it_broker_setup, it_broker_teardown);
	tcase_set_timeout(t, 60);
	tcase_add_test(
		t,
		test_a_child_holding_the_group_when_its_parent_exits_during_a_restart_keeps_the_lease);
	suite_add_tcase(s, t);
	return s;
}
