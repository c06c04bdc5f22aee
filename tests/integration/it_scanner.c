/* SPDX-License-Identifier: MIT */
/*
 * The holders scanner (broker/scanner.h; issue 13, items 5 and 9): the
 * broker gives up the capabilities that read other processes once start-up
 * is over; the scanner processes keep them, alone, under a filter of their
 * own; a scanner that dies is replaced, and with none left a scan fails
 * closed: the lease is never taken for free because nobody answered.
 */
#include "tests/integration/it.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/syscall.h>
#include <unistd.h>

#define SCAN_CAPS ((1ULL << CAP_SYS_PTRACE) | (1ULL << CAP_DAC_READ_SEARCH))

/* "Key:\tvalue" of /proc/PID/status into value; false if there is none. */
static bool status_of(pid_t pid, const char *key, char *value, size_t size)
{
	char path[64], line[256];
	size_t len = strlen(key);
	bool found = false;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "re");
	while (f && !found && fgets(line, sizeof(line), f)) {
		char *v = line + len + 1;

		if (strncmp(line, key, len) != 0 || line[len] != ':')
			continue;
		while (isspace((unsigned char)*v))
			v++;
		v[strcspn(v, "\n")] = '\0';
		snprintf(value, size, "%s", v);
		found = true;
	}
	if (f)
		fclose(f);
	return found;
}

static unsigned long long status_mask(pid_t pid, const char *key)
{
	char v[64];

	ck_assert_msg(status_of(pid, key, v, sizeof(v)), "no %s for pid %d", key, (int)pid);
	return strtoull(v, NULL, 16);
}

/* The broker's children, which are its scanners: at most max of them, by pid. */
static size_t scanner_pids(pid_t *pids, size_t max)
{
	DIR *d = opendir("/proc");
	struct dirent *de;
	size_t n = 0;

	ck_assert_ptr_nonnull(d);
	while (n < max && (de = readdir(d))) {
		char v[32];
		pid_t pid = (pid_t)atoi(de->d_name);

		if (pid > 0 && status_of(pid, "PPid", v, sizeof(v)) && atoi(v) == it_broker.pid)
			pids[n++] = pid;
	}
	closedir(d);
	return n;
}

static void setup(void)
{
	broker_setup(&it_broker, IT_POLICY);
	broker_start(&it_broker, NULL);
}

/*
 * Issue 13, item 9: with CAP_SYS_PTRACE code that took over the broker wrote
 * into a root process's memory through /proc/PID/mem, and with
 * CAP_DAC_READ_SEARCH it read /etc/shadow. Once serving, the broker has
 * neither, in its effective or permitted set.
 */
START_TEST(test_the_serving_broker_has_neither_cap_sys_ptrace_nor_cap_dac_read_search)
{
	ck_assert_msg((status_mask(it_broker.pid, "CapEff") & SCAN_CAPS) == 0, "CapEff %llx",
		      status_mask(it_broker.pid, "CapEff"));
	ck_assert_msg((status_mask(it_broker.pid, "CapPrm") & SCAN_CAPS) == 0, "CapPrm %llx",
		      status_mask(it_broker.pid, "CapPrm"));
	/* Its writes are confined where the kernel has Landlock, and the log says so. */
	if (syscall(SYS_landlock_create_ruleset, NULL, 0, 1U /* VERSION */) > 0)
		ck_assert_msg(broker_log_contains(&it_broker, "Landlock ABI"),
			      "no Landlock ruleset enforced; see %s", it_broker.log);
	/* And it still finds who inherited a lease: the scanner reads /proc for it. */
	{
		struct outcome *held = outcome_new();
		struct signal_pipe ready, go;
		struct vfiobroker_lease l = {0};
		pid_t holder = spawn_holder(it_broker.socket, UID_ALICE, 7, HOLD_IN_CHILD, held,
					    &ready, &go);

		ck_assert_int_eq(wait_exit(holder), 0);
		ck_assert_msg(broker_log_wait(&it_broker, "EVENT=inherit"), "no inherit in %s",
			      it_broker.log);
		ck_assert(admin_find_lease(7, &l));
		ck_assert_int_ne(l.pid, 0);
		ck_assert_int_ne(l.pid, holder);
		signal_pipe_send(&go, 'g');
		outcome_free(held);
	}
}
END_TEST

/*
 * The scanners keep the two capabilities the broker gave up, and nothing
 * else, and each runs under a seccomp filter of its own (Seccomp: 2, with
 * no_new_privs), installed before it reads any request.
 */
START_TEST(test_each_scanner_has_only_the_two_scan_capabilities_and_its_own_filter)
{
	unsigned long long root = status_mask(getpid(), "CapEff");
	pid_t pids[8];
	size_t n = scanner_pids(pids, 8);
	char v[64];

	ck_assert_uint_eq(n, 3);
	for (size_t i = 0; i < n; i++) {
		ck_assert_msg(status_mask(pids[i], "CapEff") == (SCAN_CAPS & root),
			      "scanner %d: CapEff %llx", (int)pids[i],
			      status_mask(pids[i], "CapEff"));
		ck_assert_msg(status_mask(pids[i], "CapPrm") == (SCAN_CAPS & root),
			      "scanner %d: CapPrm %llx", (int)pids[i],
			      status_mask(pids[i], "CapPrm"));
		ck_assert(status_of(pids[i], "Seccomp", v, sizeof(v)));
		ck_assert_msg(strcmp(v, "2") == 0, "scanner %d: Seccomp: %s", (int)pids[i], v);
		ck_assert(status_of(pids[i], "NoNewPrivs", v, sizeof(v)));
		ck_assert_str_eq(v, "1");
	}
}
END_TEST

struct group_watch {
	unsigned group;
	bool want_held; /* true: a lease with a holder; false: no lease at all */
};

static bool group_is(void *arg)
{
	const struct group_watch *w = arg;
	struct vfiobroker_lease l;
	bool found = admin_find_lease(w->group, &l);

	return w->want_held ? found && l.pid != 0 : !found;
}

/*
 * Kill scanners: with one left, a lease whose holder exits while its child
 * keeps the file is still inherited (the next scanner took over). With none
 * left the scan fails, and the broker says so and keeps the lease, releasing
 * and without holder, rather than taking "no answer" for "nobody has it":
 * the group is not handed out while the child still has it, and becomes
 * free when the child lets go (the close event needs no scan). Meanwhile
 * the broker serves everyone.
 */
START_TEST(test_a_killed_scanner_is_replaced_and_with_none_left_the_scan_fails_closed)
{
	struct outcome *held = outcome_new(), *other = outcome_new();
	struct client_args carol = {.socket = it_broker.socket, .group = 7, .out = other};
	struct group_watch freed = {.group = 7, .want_held = false};
	struct group_watch inherited = {.group = 7, .want_held = true};
	struct signal_pipe ready, go;
	struct vfiobroker_lease l = {0};
	pid_t pids[8], holder;
	size_t n = scanner_pids(pids, 8);
	int baseline;

	ck_assert_uint_eq(n, 3);
	ck_assert_int_eq(kill(pids[0], SIGKILL), 0);
	ck_assert_int_eq(kill(pids[1], SIGKILL), 0);
	/*
	 * The broker watches only the scanner in service: it sees the second death
	 * once the first one's successor is in service. A job sent to a scanner that
	 * is dying but not yet seen to be is not tried again (it may be what killed
	 * it), so the holder starts once both deaths are seen.
	 */
	ck_assert_msg(broker_log_wait(&it_broker, "takes over (0 left)"),
		      "the broker did not see two of its scanners die; see %s", it_broker.log);

	holder = spawn_holder(it_broker.socket, UID_ALICE, 7, HOLD_IN_CHILD, held, &ready, &go);
	ck_assert_int_eq(wait_exit(holder), 0);
	ck_assert_msg(wait_until(group_is, &inherited), "group 7 was not inherited; see %s",
		      it_broker.log);
	ck_assert_msg(broker_log_contains(&it_broker, "EVENT=scanner-died"),
		      "the broker did not log its scanners' deaths; see %s", it_broker.log);
	signal_pipe_send(&go, 'g');
	ck_assert_msg(wait_until(group_is, &freed), "group 7 not freed; see %s", it_broker.log);

	ck_assert_int_eq(kill(pids[2], SIGKILL), 0);
	ck_assert_msg(broker_log_wait(&it_broker, "none is left"),
		      "the broker did not say it has no scanner left; see %s", it_broker.log);
	baseline = broker_fd_count_settled(&it_broker);

	holder = spawn_holder(it_broker.socket, UID_ALICE, 7, HOLD_IN_CHILD, held, &ready, &go);
	ck_assert_int_eq(wait_exit(holder), 0);
	ck_assert_msg(broker_log_wait(&it_broker, "EVENT=scan-failed"),
		      "the failed scan was not logged; see %s", it_broker.log);
	/* Fail closed: the lease is still there, releasing, and Carol cannot have 7. */
	ck_assert(admin_find_lease(7, &l));
	ck_assert_int_eq(l.pid, 0);
	ck_assert_int_ne(run_as(UID_CAROL, 0, client_lease, &carol), 0);
	ck_assert_int_eq(other->rc, -EBUSY);
	signal_pipe_send(&go, 'g');
	ck_assert_msg(wait_until(group_is, &freed), "group 7 not freed; see %s", it_broker.log);

	outcome_free(held);
	outcome_free(other);
	assert_serves_good_client(&it_broker, baseline);
}
END_TEST

Suite *suite_scanner(void)
{
	Suite *s = suite_create("scanner");
	TCase *t = tcase_create("scanner");

	tcase_add_checked_fixture(t, setup, it_broker_teardown);
	tcase_set_timeout(t, 60);
	tcase_add_test(t,
		       test_the_serving_broker_has_neither_cap_sys_ptrace_nor_cap_dac_read_search);
	tcase_add_test(t, test_each_scanner_has_only_the_two_scan_capabilities_and_its_own_filter);
	tcase_add_test(t,
		       test_a_killed_scanner_is_replaced_and_with_none_left_the_scan_fails_closed);
	suite_add_tcase(s, t);
	return s;
}
