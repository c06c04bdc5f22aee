/* SPDX-License-Identifier: MIT */
/*
 * Removal, as the seed's admin does it: ask the holder (soft, with a
 * timeout that fails cleanly), or kill it (hard) and reclaim the group.
 */
#include "tests/integration/it.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

START_TEST(test_soft_remove_is_honoured_by_a_cooperating_holder)
{
	struct outcome *o = outcome_new();
	struct signal_pipe ready;
	pid_t holder =
		spawn_holder(it_broker.socket, UID_ALICE, 7, HOLD_COOPERATE, o, &ready, NULL);

	ck_assert_int_eq(admin_remove(7, false, 5000, NULL, 0), 0);
	ck_assert_int_eq(wait_exit(holder), 0);
	ck_assert_int_eq(o->value, 1); /* the holder saw remove-requested and released */
	ck_assert_int_eq(admin_count_leases(), 0);
	ck_assert(broker_log_wait(&it_broker, "EVENT=remove"));
	outcome_free(o);
}
END_TEST

START_TEST(test_soft_remove_times_out_and_leaves_the_lease_alone)
{
	struct outcome *o = outcome_new();
	struct signal_pipe ready;
	char msg[512];
	pid_t holder = spawn_holder(it_broker.socket, UID_ALICE, 7, HOLD_IGNORE, o, &ready, NULL);

	ck_assert_int_eq(admin_remove(7, false, 300, msg, sizeof(msg)), -ETIMEDOUT);
	ck_assert_msg(strstr(msg, "unchanged"), "message: %s", msg);
	/* The holder lives on and still holds its lease. */
	ck_assert_int_eq(waitpid(holder, NULL, WNOHANG), 0);
	ck_assert_int_eq(admin_count_leases(), 1);
	kill(holder, SIGKILL);
	wait_exit(holder);
	outcome_free(o);
}
END_TEST

static bool group_free(void *arg)
{
	return admin_count_leases() == 0;
}

START_TEST(test_hard_remove_kills_the_holder_and_reclaims_the_group)
{
	struct outcome *o = outcome_new();
	struct signal_pipe ready;
	pid_t holder = spawn_holder(it_broker.socket, UID_ALICE, 7, HOLD_IGNORE, o, &ready, NULL);

	ck_assert_int_eq(admin_remove(7, true, 0, NULL, 0), 0);
	ck_assert_int_eq(wait_exit(holder), 128 + SIGKILL);
	ck_assert(wait_until(group_free, NULL));
	ck_assert(broker_log_wait(&it_broker, "EVENT=remove"));
	outcome_free(o);
}
END_TEST

START_TEST(test_hard_remove_also_kills_a_process_that_inherited_the_group)
{
	struct outcome *o = outcome_new(), *again = outcome_new();
	struct signal_pipe ready, go;
	struct client_args c = {.socket = it_broker.socket, .group = 7, .out = again};
	pid_t holder = spawn_holder(it_broker.socket, UID_ALICE, 7, HOLD_IN_CHILD, o, &ready, &go);

	ck_assert_int_eq(wait_exit(holder), 0);
	/* Only the inheriting child holds the file now; hard remove must find and kill it. */
	ck_assert_int_eq(admin_remove(7, true, 0, NULL, 0), 0);
	ck_assert_int_eq(run_as(UID_CAROL, 0, client_lease, &c), 0);
	ck_assert_int_eq(again->rc, 0);
	outcome_free(o);
	outcome_free(again);
}
END_TEST

static int client_remove(void *arg)
{
	struct client_args *a = arg;
	struct vfiobroker *b;
	int r;

	if ((r = vfiobroker_connect(a->socket, &b)) < 0)
		return 1;
	r = vfiobroker_remove(b, a->group, a->mode, a->mode ? 0 : 100, NULL);
	outcome_record(a->out, b, r);
	vfiobroker_disconnect(b);
	return 0;
}

START_TEST(test_remove_by_a_non_admin_is_denied)
{
	struct outcome *o = outcome_new(), *r = outcome_new();
	struct signal_pipe ready;
	pid_t holder = spawn_holder(it_broker.socket, UID_ALICE, 7, HOLD_IGNORE, o, &ready, NULL);
	struct client_args a = {.socket = it_broker.socket, .group = 7, .out = r, .mode = 1};

	ck_assert_int_eq(run_as(UID_CAROL, 0, client_remove, &a), 0);
	ck_assert_int_eq(r->rc, -EACCES);
	/* Not even the holder's own uid may hard-remove through the admin op. */
	ck_assert_int_eq(run_as(UID_ALICE, 0, client_remove, &a), 0);
	ck_assert_int_eq(r->rc, -EACCES);
	ck_assert_int_eq(waitpid(holder, NULL, WNOHANG), 0);
	kill(holder, SIGKILL);
	wait_exit(holder);
	outcome_free(o);
	outcome_free(r);
}
END_TEST

START_TEST(test_admin_group_members_may_remove)
{
	struct outcome *o = outcome_new(), *r = outcome_new();
	struct signal_pipe ready;
	struct client_args a = {.socket = it_broker.socket, .group = 7, .out = r, .mode = 1};
	pid_t holder;
	char gid[16];

	broker_stop(&it_broker);
	snprintf(gid, sizeof(gid), "%d", GID_USERS);
	broker_start(&it_broker, "--admin-group", gid, NULL);
	holder = spawn_holder(it_broker.socket, UID_ALICE, 7, HOLD_IGNORE, o, &ready, NULL);
	ck_assert_int_eq(run_as(UID_CAROL, GID_USERS, client_remove, &a), 0);
	ck_assert_int_eq(r->rc, 0);
	ck_assert_int_eq(wait_exit(holder), 128 + SIGKILL);
	outcome_free(o);
	outcome_free(r);
}
END_TEST

START_TEST(test_soft_remove_of_a_free_group_is_not_held)
{
	char msg[512];

	ck_assert_int_eq(admin_remove(7, false, 100, msg, sizeof(msg)), -ESRCH);
}
END_TEST

Suite *suite_remove(void)
{
	Suite *s = suite_create("remove");
	TCase *t = tcase_create("remove");

	tcase_add_checked_fixture(t, it_broker_setup, it_broker_teardown);
	tcase_set_timeout(t, 60);
	tcase_add_test(t, test_soft_remove_is_honoured_by_a_cooperating_holder);
	tcase_add_test(t, test_soft_remove_times_out_and_leaves_the_lease_alone);
	tcase_add_test(t, test_hard_remove_kills_the_holder_and_reclaims_the_group);
	tcase_add_test(t, test_hard_remove_also_kills_a_process_that_inherited_the_group);
	tcase_add_test(t, test_remove_by_a_non_admin_is_denied);
	tcase_add_test(t, test_admin_group_members_may_remove);
	tcase_add_test(t, test_soft_remove_of_a_free_group_is_not_held);
	suite_add_tcase(s, t);
	return s;
}
