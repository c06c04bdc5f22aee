/* SPDX-License-Identifier: MIT */
/*
 * vfioctl as users type it: run-with-fds, exit statuses, errors that say
 * what to do next, JSON for scripts, the admin's soft removal and the
 * quarantine's sysfs fallback (the host has no vfio_quarantine module).
 */
#include "tests/integration/it.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <json-c/json.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

static void vfioctl_run(struct cmd_result *r, uid_t uid, ...)
{
	const char *args[32];
	size_t n = 0;
	va_list ap;
	int out, err;
	pid_t pid;

	va_start(ap, uid);
	for (const char *a; (a = va_arg(ap, const char *)) && n < 31;)
		args[n++] = a;
	va_end(ap);
	args[n] = NULL;
	pid = vfioctl_spawn(uid, &out, &err, args);
	cmd_finish(r, pid, out, err);
}

START_TEST(test_lease_runs_the_command_with_the_group_fd_inherited)
{
	struct cmd_result r;

	/* The command sees VFIO_BROKER_FDS=7=N and fd N is the group file. */
	vfioctl_run(&r, UID_ALICE, "lease", "7", "--", "/bin/sh", "-c",
		    "echo \"fds=$VFIO_BROKER_FDS\"; readlink /proc/self/fd/${VFIO_BROKER_FDS#7=}",
		    NULL);
	ck_assert_msg(r.status == 0, "status %d, stderr: %s", r.status, r.err);
	ck_assert_msg(strstr(r.out, "fds=7="), "stdout: %s", r.out);
	ck_assert_msg(strstr(r.out, "/dev/vfio/7"), "stdout: %s", r.out);
}
END_TEST

START_TEST(test_lease_returns_the_commands_exit_status_and_ends_the_lease)
{
	struct cmd_result r;

	vfioctl_run(&r, UID_ALICE, "lease", "0000:01:00.0", "--", "/bin/sh", "-c", "exit 3", NULL);
	ck_assert_int_eq(r.status, 3);
	/* The lease ended with the command: another allowed user gets the group. */
	vfioctl_run(&r, UID_CAROL, "lease", "7", "--", "/bin/true", NULL);
	ck_assert_msg(r.status == 0, "status %d, stderr: %s", r.status, r.err);
}
END_TEST

START_TEST(test_denied_lease_exits_1_with_code_reason_and_hint)
{
	struct cmd_result r;

	vfioctl_run(&r, UID_BOB, "lease", "7", "--", "/bin/true", NULL);
	ck_assert_int_eq(r.status, 1);
	ck_assert_msg(strstr(r.err, "vfioctl: denied:"), "stderr: %s", r.err);
	ck_assert_msg(strstr(r.err, "0000:01:00.0"), "stderr: %s", r.err);
	ck_assert_msg(strstr(r.err, "explain"), "no hint in: %s", r.err);
}
END_TEST

START_TEST(test_list_json_is_machine_readable)
{
	struct cmd_result r;

	vfioctl_run(&r, UID_ALICE, "list", "--json", NULL);
	ck_assert_msg(r.status == 0, "status %d, stderr: %s", r.status, r.err);
	{
		struct json_object *o = json_tokener_parse(r.out), *groups;

		ck_assert_msg(o, "not JSON: %s", r.out);
		ck_assert(json_object_object_get_ex(o, "groups", &groups));
		ck_assert_int_eq(json_object_array_length(groups), 4);
		/* No vfio_quarantine module on the host: the broker says "none". */
		ck_assert(json_object_object_get_ex(o, "quarantine", &groups));
		ck_assert_str_eq(json_object_get_string(groups), "none");
		json_object_put(o);
	}
	vfioctl_run(&r, UID_ALICE, "list", NULL);
	ck_assert_int_eq(r.status, 0);
	ck_assert_msg(strstr(r.out, "0000:05:02.0") && strstr(r.out, "e1000e"), "%s", r.out);
	ck_assert_msg(strstr(r.out, "quarantine: none\n"), "%s", r.out);
}
END_TEST

START_TEST(test_unreachable_broker_exits_3_with_a_hint)
{
	struct cmd_result r;

	broker_stop(&it_broker);
	vfioctl_run(&r, UID_ALICE, "list", NULL);
	ck_assert_int_eq(r.status, 3);
	ck_assert_msg(strstr(r.err, "vfio-brokerd"), "stderr: %s", r.err);
}
END_TEST

START_TEST(test_usage_errors_exit_2)
{
	struct cmd_result r;

	vfioctl_run(&r, UID_ALICE, "frobnicate", NULL);
	ck_assert_int_eq(r.status, 2);
	vfioctl_run(&r, UID_ALICE, "lease", "seven", "--", "/bin/true", NULL);
	ck_assert_int_eq(r.status, 2);
}
END_TEST

START_TEST(test_policy_check_accepts_good_and_names_file_and_line_of_bad)
{
	struct cmd_result r;

	vfioctl_run(&r, 0, "policy", "check", it_broker.policy_dir, NULL);
	ck_assert_msg(r.status == 0, "status %d: %s%s", r.status, r.out, r.err);
	ck_assert_msg(strstr(r.out, "3 rules"), "stdout: %s", r.out);
	broker_write_policy(&it_broker, "20-bad.json",
			    "{\"rules\": [\n{\"name\": \"b\", \"users\": [1],\n"
			    "\"devices\": [{\"colour\": \"red\"}]}]}\n");
	vfioctl_run(&r, 0, "policy", "check", it_broker.policy_dir, NULL);
	ck_assert_int_eq(r.status, 1);
	ck_assert_msg(strstr(r.err, "20-bad.json:3"), "stderr: %s", r.err);
}
END_TEST

START_TEST(test_policy_explain_names_the_rule)
{
	struct cmd_result r;

	vfioctl_run(&r, 0, "policy", "explain", "--uid", "2000", "--group", "7", NULL);
	ck_assert_msg(r.status == 0, "status %d: %s", r.status, r.err);
	ck_assert_msg(strstr(r.out, "alice-nics"), "stdout: %s", r.out);
	vfioctl_run(&r, 0, "policy", "explain", "--uid", "2001", "--group", "7", NULL);
	ck_assert_msg(strstr(r.out, "DENIED") || strstr(r.out, "denied"), "stdout: %s", r.out);
}
END_TEST

static bool holder_is_listed(void *arg)
{
	struct cmd_result r;

	vfioctl_run(&r, 0, "leases", "--json", NULL);
	return r.status == 0 && strstr(r.out, "\"group\": 7,");
}

START_TEST(test_soft_remove_terminates_the_leased_command)
{
	struct cmd_result r;
	const char *args[] = {"lease", "7", "--", "/bin/sleep", "60", NULL};
	int out, err;
	pid_t holder = vfioctl_spawn(UID_ALICE, &out, &err, args);

	ck_assert(wait_until(holder_is_listed, NULL));
	vfioctl_run(&r, 0, "remove", "--soft", "7", "--timeout", "10", NULL);
	ck_assert_msg(r.status == 0, "status %d: %s", r.status, r.err);
	/* vfioctl passed the request on to its command as SIGTERM. */
	ck_assert_int_eq(wait_exit(holder), 128 + SIGTERM);
	close(out);
	close(err);
}
END_TEST

START_TEST(test_hard_remove_of_a_leased_command)
{
	struct cmd_result r;
	const char *args[] = {"lease", "7", "--on-remove=ignore", "--", "/bin/sleep", "60", NULL};
	int out, err;
	pid_t holder = vfioctl_spawn(UID_ALICE, &out, &err, args);

	ck_assert(wait_until(holder_is_listed, NULL));
	vfioctl_run(&r, 0, "remove", "--soft", "7", "--timeout", "1", NULL);
	ck_assert_int_eq(r.status, 1);
	ck_assert_msg(strstr(r.err, "timeout"), "stderr: %s", r.err);
	vfioctl_run(&r, 0, "remove", "--hard", "7", NULL);
	ck_assert_msg(r.status == 0, "status %d: %s", r.status, r.err);
	ck_assert_int_eq(wait_exit(holder), 128 + SIGKILL);
	vfioctl_run(&r, UID_CAROL, "lease", "7", "--", "/bin/true", NULL);
	ck_assert_msg(r.status == 0, "group 7 not free after hard remove: %s", r.err);
	close(out);
	close(err);
}
END_TEST

static bool lease_in_state(void *state)
{
	struct cmd_result r;
	char want[64];

	snprintf(want, sizeof(want), "\"state\": \"%s\"", (const char *)state);
	vfioctl_run(&r, 0, "leases", "--json", NULL);
	return r.status == 0 && strstr(r.out, want);
}

/*
 * Without --timeout, vfioctl remove --soft asks for the longest wait (not the
 * broker's 30 s default) and waits; Ctrl-C cancels the removal, and the lease
 * is held as before. (Without the module the reply would also say no device
 * request could be relayed; here nobody answers at all.)
 */
START_TEST(test_soft_remove_without_timeout_waits_until_ctrl_c_cancels_it)
{
	const char *lease_args[] = {"lease", "7", "--on-remove=ignore", "--", "/bin/sleep",
				    "60",    NULL};
	const char *remove_args[] = {"remove", "--soft", "7", NULL};
	struct cmd_result holder_r, admin_r;
	int hout, herr, aout, aerr;
	pid_t holder = vfioctl_spawn(UID_ALICE, &hout, &herr, lease_args), admin;

	ck_assert(wait_until(holder_is_listed, NULL));
	admin = vfioctl_spawn(0, &aout, &aerr, remove_args);
	ck_assert(wait_until(lease_in_state, "removing"));
	ck_assert_int_eq(kill(admin, SIGINT), 0);
	cmd_finish(&admin_r, admin, aout, aerr);
	ck_assert_int_eq(admin_r.status, 128 + SIGINT);
	ck_assert_msg(strstr(admin_r.err, "cancelled") && strstr(admin_r.err, "lease is unchanged"),
		      "stderr: %s", admin_r.err);
	ck_assert(wait_until(lease_in_state, "held"));
	ck_assert_int_eq(kill(holder, SIGTERM), 0);
	cmd_finish(&holder_r, holder, hout, herr);
	ck_assert_msg(strstr(holder_r.err, "asks for it back (within 3600 s)"), "holder: %s",
		      holder_r.err);
}
END_TEST

/* A soft removal that times out without the module says no device request was relayed. */
START_TEST(test_soft_remove_timeout_without_the_module_says_no_device_request_was_relayed)
{
	const char *lease_args[] = {"lease", "7", "--on-remove=ignore", "--", "/bin/sleep",
				    "60",    NULL};
	struct cmd_result r;
	int out, err;
	pid_t holder = vfioctl_spawn(UID_ALICE, &out, &err, lease_args);

	ck_assert(wait_until(holder_is_listed, NULL));
	vfioctl_run(&r, 0, "remove", "--soft", "7", "--timeout", "0.5", NULL);
	ck_assert_int_eq(r.status, 1);
	ck_assert_msg(strstr(r.err, "the lease is unchanged; no VFIO device request could be "
				    "relayed (the vfio_quarantine module is not loaded)"),
		      "stderr: %s", r.err);
	ck_assert(lease_in_state("held"));
	kill(holder, SIGTERM);
	wait_exit(holder);
	close(out);
	close(err);
}
END_TEST

/* The content of a file of the simulated sysfs, newline stripped. */
static void sim_read(const char *rel, char *buf, size_t size)
{
	char p[2 * PATH_MAX];
	int fd;
	ssize_t n;

	snprintf(p, sizeof(p), "%s/%s", it_broker.sim.sys, rel);
	fd = open(p, O_RDONLY | O_CLOEXEC);
	ck_assert_msg(fd >= 0, "%s: %s", p, strerror(errno));
	n = read(fd, buf, size - 1);
	close(fd);
	ck_assert_int_ge(n, 0);
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
}

START_TEST(test_quarantine_without_the_module_writes_sysfs)
{
	struct cmd_result r;
	char buf[64];

	vfioctl_run(&r, 0, "quarantine", "10", "--json", NULL);
	ck_assert_msg(r.status == 0, "status %d: %s", r.status, r.err);
	ck_assert_msg(strstr(r.out, "\"mode\": \"sysfs\""), "stdout: %s", r.out);
	ck_assert_msg(strstr(r.out, "0000:03:00.0"), "stdout: %s", r.out);
	sim_read("devices/pci0000:00/0000:03:00.0/driver_override", buf, sizeof(buf));
	ck_assert_str_eq(buf, "vfio-pci");
	sim_read("bus/pci/drivers/e1000e/unbind", buf, sizeof(buf));
	ck_assert_str_eq(buf, "0000:03:00.0");
	sim_read("bus/pci/drivers_probe", buf, sizeof(buf));
	ck_assert_str_eq(buf, "0000:03:00.0");
	vfioctl_run(&r, 0, "unquarantine", "10", "--restore", NULL);
	ck_assert_msg(r.status == 0, "status %d: %s", r.status, r.err);
	ck_assert_msg(strstr(r.out, "sysfs"), "stdout: %s", r.out);
	sim_read("devices/pci0000:00/0000:03:00.0/driver_override", buf, sizeof(buf));
	ck_assert_str_eq(buf, "");
}
END_TEST

START_TEST(test_quarantine_is_for_administrators_and_not_of_a_leased_group)
{
	struct cmd_result r;
	const char *args[] = {"lease", "7", "--", "/bin/sleep", "60", NULL};
	int out, err;
	pid_t holder;

	vfioctl_run(&r, UID_ALICE, "quarantine", "10", NULL);
	ck_assert_int_eq(r.status, 1);
	ck_assert_msg(strstr(r.err, "denied"), "stderr: %s", r.err);
	holder = vfioctl_spawn(UID_ALICE, &out, &err, args);
	ck_assert(wait_until(holder_is_listed, NULL));
	vfioctl_run(&r, 0, "quarantine", "7", NULL);
	ck_assert_int_eq(r.status, 1);
	ck_assert_msg(strstr(r.err, "busy"), "stderr: %s", r.err);
	kill(holder, SIGTERM);
	wait_exit(holder);
	close(out);
	close(err);
}
END_TEST

Suite *suite_cli(void)
{
	Suite *s = suite_create("vfioctl");
	TCase *t = tcase_create("cli");

	tcase_add_checked_fixture(t, it_broker_setup, it_broker_teardown);
	tcase_set_timeout(t, 60);
	tcase_add_test(t, test_lease_runs_the_command_with_the_group_fd_inherited);
	tcase_add_test(t, test_lease_returns_the_commands_exit_status_and_ends_the_lease);
	tcase_add_test(t, test_denied_lease_exits_1_with_code_reason_and_hint);
	tcase_add_test(t, test_list_json_is_machine_readable);
	tcase_add_test(t, test_unreachable_broker_exits_3_with_a_hint);
	tcase_add_test(t, test_usage_errors_exit_2);
	tcase_add_test(t, test_policy_check_accepts_good_and_names_file_and_line_of_bad);
	tcase_add_test(t, test_policy_explain_names_the_rule);
	tcase_add_test(t, test_soft_remove_terminates_the_leased_command);
	tcase_add_test(t, test_hard_remove_of_a_leased_command);
	tcase_add_test(t, test_soft_remove_without_timeout_waits_until_ctrl_c_cancels_it);
	tcase_add_test(
		t, test_soft_remove_timeout_without_the_module_says_no_device_request_was_relayed);
	tcase_add_test(t, test_quarantine_without_the_module_writes_sysfs);
	tcase_add_test(t, test_quarantine_is_for_administrators_and_not_of_a_leased_group);
	suite_add_tcase(s, t);
	return s;
}
