/* SPDX-License-Identifier: MIT */
/*
 * Host integration tests: the real broker on a simulated sysfs/dev tree,
 * real sockets and SCM_RIGHTS, clients as real unprivileged processes.
 * Must run as root (the broker needs it, clients setuid to test uids).
 * VB_SUITE=name runs one suite; CK_RUN_CASE/CK_RUN_SUITE work as usual.
 */
#include "tests/integration/it.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(void)
{
	Suite *(*const suites[])(void) = {
		suite_lease,   suite_remove,	suite_policy_reload, suite_hostile,
		suite_limits,  suite_cli,	suite_sandbox,	     suite_restart,
		suite_preload, suite_semantics, suite_reconnect,     suite_identity,
		suite_cgroup,  suite_model,	suite_cdev,	     suite_scanner};
	SRunner *sr;
	int failed;

	if (geteuid() != 0) {
		fprintf(stderr, "integration tests must run as root (they start vfio-brokerd "
				"and setuid clients)\n");
		return 77;
	}
	sr = srunner_create(NULL);
	for (size_t i = 0; i < sizeof(suites) / sizeof(suites[0]); i++) {
		/* Seccomp and valgrind do not mix: under memcheck the broker runs unsandboxed. */
		if ((suites[i] == suite_sandbox || suites[i] == suite_scanner) &&
		    getenv("VB_VALGRIND")) {
			printf("NOTE: the sandbox suite does not run under valgrind (the broker "
			       "runs "
			       "with --no-sandbox there)\n");
			continue;
		}
		/* valgrind 3.19 has no pidfd_open, so no pidfd_getfd: nothing can be restored. */
		if ((suites[i] == suite_restart || suites[i] == suite_reconnect ||
		     suites[i] == suite_model) &&
		    getenv("VB_VALGRIND")) {
			printf("NOTE: the restart suite does not run under valgrind (it has no "
			       "pidfd_getfd, which restoring a lease needs)\n");
			continue;
		}
		if (suites[i] == suite_cgroup && !it_cgroup_available()) {
			printf("NOT RUN: the cgroup suite needs a writable cgroup v2 hierarchy, "
			       "and "
			       "this machine has none\n");
			continue;
		}
		srunner_add_suite(sr, suites[i]());
	}
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
