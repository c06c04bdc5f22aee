/* SPDX-License-Identifier: MIT */
/*
 * Policy reload: a good new policy takes effect; a broken one is refused,
 * the old one stays in force and the log says why. Never fail open.
 */
#include "tests/integration/it.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int lease_as(uid_t uid, unsigned group, struct outcome *o)
{
	struct client_args a = {.socket = it_broker.socket, .group = group, .out = o};

	run_as(uid, 0, client_lease, &a);
	return o->rc;
}

START_TEST(test_broken_policy_on_sighup_keeps_the_old_policy)
{
	struct outcome *o = outcome_new();

	broker_write_policy(&it_broker, "20-broken.json",
			    "{\"rules\": [\n  {\"name\": \"x\",\n"
			    "   \"users\": [2001], \"devices\": [{\"vendor\": "
			    "\"zzzz\"}]}]}\n");
	kill(it_broker.pid, SIGHUP);
	ck_assert(broker_log_wait(&it_broker, "20-broken.json:3"));
	ck_assert(broker_alive(&it_broker));
	/* Old policy: Alice still allowed, Bob still denied. */
	ck_assert_int_eq(lease_as(UID_ALICE, 7, o), 0);
	ck_assert_int_eq(lease_as(UID_BOB, 7, o), -EACCES);
	outcome_free(o);
}
END_TEST

START_TEST(test_broken_policy_by_reload_op_is_refused_with_file_and_line)
{
	struct vfiobroker *b;

	broker_write_policy(&it_broker, "20-broken.json", "{\"rules\": [}\n");
	ck_assert_int_eq(vfiobroker_connect(it_broker.socket, &b), 0);
	ck_assert_int_eq(vfiobroker_reload(b, NULL, NULL), -EINVAL);
	ck_assert_msg(strstr(vfiobroker_error_message(b), "20-broken.json:1"), "message: %s",
		      vfiobroker_error_message(b));
	vfiobroker_disconnect(b);
	ck_assert(broker_alive(&it_broker));
}
END_TEST

START_TEST(test_good_policy_change_is_picked_up_without_a_signal)
{
	struct outcome *o = outcome_new();

	ck_assert_int_eq(lease_as(UID_BOB, 8, o), -EACCES);
	/* The broker watches its policy directory. */
	broker_write_policy(&it_broker, "30-bob.json",
			    "{\"rules\": [{\"name\": \"bob-8\", \"users\": "
			    "[2001], \"devices\": [{\"iommu_group\": 8}]}]}");
	/*
	 * Not any reload: the watch may reload before the file is renamed into place
	 * (its temporary file changes the directory too). The one that counts it is
	 * logged after the new policy is in force, and the lease comes after.
	 */
	ck_assert(broker_log_wait(
		&it_broker, "Policy reloaded (the policy directory changed): 4 rules in 2 files"));
	ck_assert_int_eq(lease_as(UID_BOB, 8, o), 0);
	outcome_free(o);
}
END_TEST

START_TEST(test_deny_rule_added_by_reload_takes_effect)
{
	struct outcome *o = outcome_new();

	ck_assert_int_eq(lease_as(UID_ALICE, 7, o), 0);
	broker_write_policy(&it_broker, "05-deny.json",
			    "{\"rules\": [{\"name\": \"no-7\", \"effect\": "
			    "\"deny\", \"users\": [2000], \"devices\": "
			    "[{\"iommu_group\": 7}]}]}");
	kill(it_broker.pid, SIGHUP);
	/* The reload SIGHUP made, not one the directory watch may have made earlier. */
	ck_assert(broker_log_wait(&it_broker, "Policy reloaded (SIGHUP)"));
	ck_assert_int_eq(lease_as(UID_ALICE, 7, o), -EACCES);
	ck_assert_msg(strstr(o->message, "no-7"), "message: %s", o->message);
	outcome_free(o);
}
END_TEST

/*
 * Writes name into the policy directory already world-writable: made aside, then
 * renamed in, so that no reload can see it with any other mode.
 */
static void write_world_writable_policy(const char *name, const char *json)
{
	char tmp[PATH_MAX + 64], path[PATH_MAX + 64];
	size_t len = strlen(json);
	int fd;

	snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", it_broker.policy_dir, name);
	snprintf(path, sizeof(path), "%s/%s", it_broker.policy_dir, name);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, json, len), (ssize_t)len);
	ck_assert_int_eq(fchmod(fd, 0666), 0);
	ck_assert_int_eq(close(fd), 0);
	ck_assert_int_eq(rename(tmp, path), 0);
}

START_TEST(test_world_writable_policy_file_is_refused)
{
	struct outcome *o = outcome_new();

	/*
	 * Written then chmod-ed in the directory, the file would be a good policy for
	 * as long as the two calls took: a reload by the directory watch in between
	 * (after its 100 ms debounce) would put bob-8 in force, and the refusal would
	 * keep it. The file never is in the directory with a safe mode.
	 */
	write_world_writable_policy("30-open.json",
				    "{\"rules\": [{\"name\": \"bob-8\", \"users\": "
				    "[2001], \"devices\": [{\"iommu_group\": 8}]}]}");
	kill(it_broker.pid, SIGHUP);
	ck_assert(broker_log_wait(&it_broker, "Policy reload (SIGHUP) refused"));
	ck_assert(broker_log_contains(&it_broker, "30-open.json"));
	ck_assert_int_eq(lease_as(UID_BOB, 8, o), -EACCES);
	outcome_free(o);
}
END_TEST

static int client_reload(void *arg)
{
	struct client_args *a = arg;
	struct vfiobroker *b;
	int r;

	if ((r = vfiobroker_connect(a->socket, &b)) < 0)
		return 1;
	r = vfiobroker_reload(b, NULL, NULL);
	outcome_record(a->out, b, r);
	vfiobroker_disconnect(b);
	return 0;
}

START_TEST(test_reload_by_a_non_admin_is_denied)
{
	struct outcome *o = outcome_new();
	struct client_args a = {.socket = it_broker.socket, .out = o};

	ck_assert_int_eq(run_as(UID_ALICE, 0, client_reload, &a), 0);
	ck_assert_int_eq(o->rc, -EACCES);
	ck_assert_str_eq(o->code, "denied");
	outcome_free(o);
}
END_TEST

Suite *suite_policy_reload(void)
{
	Suite *s = suite_create("policy-reload");
	TCase *t = tcase_create("reload");

	tcase_add_checked_fixture(t, it_broker_setup, it_broker_teardown);
	tcase_set_timeout(t, 60);
	tcase_add_test(t, test_broken_policy_on_sighup_keeps_the_old_policy);
	tcase_add_test(t, test_broken_policy_by_reload_op_is_refused_with_file_and_line);
	tcase_add_test(t, test_good_policy_change_is_picked_up_without_a_signal);
	tcase_add_test(t, test_deny_rule_added_by_reload_takes_effect);
	tcase_add_test(t, test_world_writable_policy_file_is_refused);
	tcase_add_test(t, test_reload_by_a_non_admin_is_denied);
	suite_add_tcase(s, t);
	return s;
}
