/* SPDX-License-Identifier: MIT */
/*
 * Least privilege: after start-up the broker holds exactly the capabilities
 * its operations need and runs under its seccomp allow-list.
 */
#include "tests/integration/it.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <unistd.h>

static struct broker B;

static void setup(void)
{
	broker_setup(&B, IT_POLICY);
	broker_start(&B, NULL);
}

static void teardown(void)
{
	broker_teardown(&B);
}

/* Reads "Key:\tvalue" from /proc/PID/status. */
static bool status_field(pid_t pid, const char *key, char *value, size_t size)
{
	char path[64], line[256];
	size_t klen = strlen(key);
	bool found = false;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	f = fopen(path, "re");
	ck_assert_ptr_nonnull(f);
	while (!found && fgets(line, sizeof(line), f)) {
		if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
			snprintf(value, size, "%s",
				 line + klen + 1 + strspn(line + klen + 1, "\t "));
			value[strcspn(value, "\n")] = '\0';
			found = true;
		}
	}
	fclose(f);
	return found;
}

static unsigned long long status_hex(pid_t pid, const char *key)
{
	char v[64];

	ck_assert(status_field(pid, key, v, sizeof(v)));
	return strtoull(v, NULL, 16);
}

START_TEST(test_broker_keeps_exactly_its_five_capabilities)
{
	/* What the broker should keep, limited to what this machine's root has. */
	unsigned long long want = (1ULL << CAP_KILL) | (1ULL << CAP_SYS_RESOURCE) |
				  (1ULL << CAP_SYS_PTRACE) | (1ULL << CAP_DAC_READ_SEARCH) |
				  (1ULL << CAP_NET_ADMIN);
	unsigned long long mine = status_hex(getpid(), "CapBnd");

	want &= mine;
	ck_assert_msg(status_hex(B.pid, "CapEff") == want, "CapEff %llx, want %llx",
		      status_hex(B.pid, "CapEff"), want);
	ck_assert_msg(status_hex(B.pid, "CapPrm") == want, "CapPrm %llx, want %llx",
		      status_hex(B.pid, "CapPrm"), want);
	ck_assert_msg(status_hex(B.pid, "CapBnd") == want, "CapBnd %llx, want %llx",
		      status_hex(B.pid, "CapBnd"), want);
	ck_assert_uint_eq(status_hex(B.pid, "CapAmb"), 0);
	if (!(mine & (1ULL << CAP_SYS_RESOURCE)))
		fprintf(stderr, "NOTE: this machine's root has no CAP_SYS_RESOURCE, so the broker "
				"keeps four capabilities here, not five\n");
}
END_TEST

START_TEST(test_broker_runs_under_its_seccomp_filter)
{
	char v[64];

	ck_assert(status_field(B.pid, "Seccomp", v, sizeof(v)));
	ck_assert_msg(strcmp(v, "2") == 0, "Seccomp: %s (2 = filter)", v);
	ck_assert(status_field(B.pid, "NoNewPrivs", v, sizeof(v)));
	ck_assert_str_eq(v, "1");
	/* ... and serves under it: the rest of this suite runs against filtered brokers. */
	{
		struct outcome *o = outcome_new();
		struct client_args a = {.socket = B.socket, .group = 7, .out = o};

		ck_assert_int_eq(run_as(UID_ALICE, 0, client_lease, &a), 0);
		ck_assert_int_eq(o->rc, 0);
		outcome_free(o);
	}
	ck_assert(broker_alive(&B));
}
END_TEST

START_TEST(test_no_sandbox_option_keeps_root_capabilities)
{
	broker_stop(&B);
	broker_start(&B, "--no-sandbox", NULL);
	ck_assert_uint_eq(status_hex(B.pid, "CapEff"), status_hex(getpid(), "CapEff"));
}
END_TEST

Suite *suite_sandbox(void)
{
	Suite *s = suite_create("sandbox");
	TCase *t = tcase_create("sandbox");

	tcase_add_checked_fixture(t, setup, teardown);
	tcase_set_timeout(t, 60);
	tcase_add_test(t, test_broker_keeps_exactly_its_five_capabilities);
	tcase_add_test(t, test_broker_runs_under_its_seccomp_filter);
	tcase_add_test(t, test_no_sandbox_option_keeps_root_capabilities);
	suite_add_tcase(s, t);
	return s;
}
