/* SPDX-License-Identifier: MIT */
/*
 * libvfiobroker-preload.so and vfioctl run, as an unmodified program meets
 * them: /bin/sh opening /dev/vfio/N by path (`exec 5</dev/vfio/7`) under
 * LD_PRELOAD, as an unprivileged uid. VFIO_BROKER_DEV_ROOT points the shim's
 * same-file check at the simulated tree, whose group nodes are regular files.
 */
#include "tests/integration/it.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/*
 * Runs argv as uid with the environment of this process plus env (NAME=VALUE
 * entries, NULL-terminated, replacing ours), stdout and stderr captured.
 */
static void run_cmd(struct cmd_result *r, uid_t uid, const char *const *env,
		    const char *const *argv)
{
	char *envp[256];
	size_t n = 0;
	int out, err;
	pid_t pid;

	for (size_t i = 0; environ[i] && n < 200; i++) {
		bool replaced = false;
		size_t len = strcspn(environ[i], "=");

		for (size_t j = 0; env[j]; j++)
			if (strncmp(env[j], environ[i], len) == 0 && env[j][len] == '=')
				replaced = true;
		if (!replaced)
			envp[n++] = environ[i];
	}
	for (size_t j = 0; env[j] && n < 254; j++)
		envp[n++] = (char *)env[j];
	envp[n] = NULL;

	pid = cmd_spawn(uid, argv, envp, &out, &err);
	cmd_finish(r, pid, out, err);
}

/* `sh -c script` as uid under the shim, talking to socket, with extra env entries. */
static void shim_sh(struct cmd_result *r, uid_t uid, const char *socket, const char *script,
		    const char *extra)
{
	char preload[PATH_MAX + 16], sock[PATH_MAX + 32], dev[PATH_MAX + 32];
	const char *env[] = {preload, sock, dev, extra, NULL};
	const char *argv[] = {"/bin/sh", "-c", script, NULL};

	snprintf(preload, sizeof(preload), "LD_PRELOAD=%s/libvfiobroker-preload.so",
		 it_build_dir());
	snprintf(sock, sizeof(sock), "VFIO_BROKER_SOCKET=%s", socket);
	snprintf(dev, sizeof(dev), "VFIO_BROKER_DEV_ROOT=%s", it_broker.sim.dev);
	run_cmd(r, uid, env, argv);
}

/* How many lines of text contain needle. */
static int count_lines_with(const char *text, const char *needle)
{
	int n = 0;

	for (const char *p = text; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

START_TEST(test_shim_open_of_dev_vfio_n_returns_the_group_file_leased_from_the_broker)
{
	struct cmd_result r;
	char want[PATH_MAX];

	SKIP_UNDER_ASAN();
	sim_tree_group_path(&it_broker.sim, 7, want, sizeof(want));
	shim_sh(&r, UID_ALICE, it_broker.socket, "exec 5</dev/vfio/7 && readlink /proc/self/fd/5",
		NULL);
	ck_assert_msg(r.status == 0, "status %d, stderr: %s", r.status, r.err);
	ck_assert_msg(strstr(r.out, want), "fd 5 is %s, expected %s", r.out, want);
	ck_assert_msg(!strstr(r.err, "vfio-broker-preload"), "stderr: %s", r.err);
	/* The same through a path that only normalises to it. */
	shim_sh(&r, UID_ALICE, it_broker.socket,
		"exec 5<//dev/./vfio/../vfio/7 && readlink /proc/self/fd/5", NULL);
	ck_assert_msg(r.status == 0 && strstr(r.out, want), "status %d, out %s, err %s", r.status,
		      r.out, r.err);
}
END_TEST

START_TEST(test_shim_denied_group_fails_with_eacces_and_the_reason_once_on_stderr)
{
	struct cmd_result r;

	SKIP_UNDER_ASAN();
	shim_sh(&r, UID_BOB, it_broker.socket, "exec 5</dev/vfio/7", NULL);
	ck_assert_int_ne(r.status, 0);
	ck_assert_msg(strstr(r.err, strerror(EACCES)), "stderr: %s", r.err);
	ck_assert_msg(count_lines_with(r.err, "vfio-broker-preload: cannot open /dev/vfio/7: "
					      "denied: ") == 1,
		      "expected the broker's reason once, stderr: %s", r.err);
}
END_TEST

START_TEST(test_shim_second_open_of_a_group_it_has_open_fails_with_ebusy)
{
	struct cmd_result r;

	SKIP_UNDER_ASAN();
	shim_sh(&r, UID_ALICE, it_broker.socket, "exec 5</dev/vfio/7; exec 6</dev/vfio/7", NULL);
	ck_assert_int_ne(r.status, 0);
	ck_assert_msg(strstr(r.err, strerror(EBUSY)), "stderr: %s", r.err);
}
END_TEST

START_TEST(test_shim_passes_other_paths_through_without_a_broker)
{
	struct cmd_result r;

	SKIP_UNDER_ASAN();
	/* No broker at this socket: only /dev/vfio/N would need one. */
	shim_sh(&r, UID_ALICE, "/nonexistent/socket",
		"exec 5</dev/null && readlink /proc/self/fd/5; cat /dev/vfio/vfio /dev/vfio/7x "
		"/dev/vfio/7/; echo done",
		NULL);
	ck_assert_msg(strstr(r.out, "/dev/null\n") && strstr(r.out, "done"), "out %s err %s", r.out,
		      r.err);
	ck_assert_msg(strstr(r.err, "/dev/vfio/7x"), "cat did not try: %s", r.err);
	ck_assert_msg(!strstr(r.err, "vfio-broker-preload"), "the shim spoke up: %s", r.err);
}
END_TEST

START_TEST(test_shim_without_a_broker_fails_the_open_with_econnrefused_and_a_reason)
{
	struct cmd_result r;

	SKIP_UNDER_ASAN();
	shim_sh(&r, UID_ALICE, "/nonexistent/socket", "exec 5</dev/vfio/7", NULL);
	ck_assert_int_ne(r.status, 0);
	ck_assert_msg(strstr(r.err, strerror(ECONNREFUSED)), "stderr: %s", r.err);
	ck_assert_msg(strstr(r.err, "cannot reach vfio-brokerd at /nonexistent/socket"),
		      "stderr: %s", r.err);
}
END_TEST

START_TEST(test_shim_with_a_broker_that_never_answers_fails_with_etimedout_in_time)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct cmd_result r;
	struct timespec t0, t1;
	int fd;

	SKIP_UNDER_ASAN();
	/* A socket that accepts connections into its backlog and never says a word. */
	ck_assert_int_lt(snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/mute.sock", it_broker.dir),
			 (int)sizeof(sa.sun_path));
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(chmod(sa.sun_path, 0666), 0);
	ck_assert_int_eq(listen(fd, 4), 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	shim_sh(&r, UID_ALICE, sa.sun_path, "exec 5</dev/vfio/7", "VFIO_BROKER_TIMEOUT=1");
	clock_gettime(CLOCK_MONOTONIC, &t1);
	close(fd);
	ck_assert_int_ne(r.status, 0);
	ck_assert_msg(strstr(r.err, strerror(ETIMEDOUT)), "stderr: %s", r.err);
	ck_assert_msg(strstr(r.err, "did not answer within 1 s"), "stderr: %s", r.err);
	ck_assert_msg(t1.tv_sec - t0.tv_sec < 5, "the open took %ld s",
		      (long)(t1.tv_sec - t0.tv_sec));
}
END_TEST

START_TEST(test_shim_ignores_garbage_in_vfio_broker_fds_with_a_warning)
{
	struct cmd_result r;
	char want[PATH_MAX];

	SKIP_UNDER_ASAN();
	sim_tree_group_path(&it_broker.sim, 7, want, sizeof(want));
	/* fd 1 is a pipe, not group 7; "x" is not GROUP=FD; 8=999 is not open. */
	shim_sh(&r, UID_ALICE, it_broker.socket, "exec 5</dev/vfio/7 && readlink /proc/self/fd/5",
		"VFIO_BROKER_FDS=7=1,x,8=999");
	ck_assert_msg(r.status == 0, "status %d, stderr: %s", r.status, r.err);
	ck_assert_msg(strstr(r.out, want), "fd 5 is %s: the garbage was trusted", r.out);
	ck_assert_msg(strstr(r.err, "ignoring '7=1' in VFIO_BROKER_FDS: fd 1 is not "
				    "/dev/vfio/7"),
		      "stderr: %s", r.err);
	ck_assert_msg(strstr(r.err, "ignoring 'x'"), "stderr: %s", r.err);
	ck_assert_msg(strstr(r.err, "ignoring '8=999'"), "stderr: %s", r.err);
}
END_TEST

/* `vfioctl --socket SOCK args...` as uid, with VFIO_BROKER_DEV_ROOT for the shim. */
static void vfioctl_cmd(struct cmd_result *r, uid_t uid, ...)
{
	char exe[PATH_MAX], dev[PATH_MAX + 32], vb[PATH_MAX + 16];
	const char *argv[32], *env[] = {dev, vb, NULL};
	size_t n = 0;
	va_list ap;

	snprintf(exe, sizeof(exe), "%s/vfioctl", it_build_dir());
	snprintf(dev, sizeof(dev), "VFIO_BROKER_DEV_ROOT=%s", it_broker.sim.dev);
	snprintf(vb, sizeof(vb), "VFIOCTL=%s", exe);
	argv[n++] = exe;
	argv[n++] = "--socket";
	argv[n++] = it_broker.socket;
	va_start(ap, uid);
	for (const char *a; (a = va_arg(ap, const char *)) && n < 31;)
		argv[n++] = a;
	va_end(ap);
	argv[n] = NULL;
	run_cmd(r, uid, env, argv);
}

START_TEST(test_run_execs_the_command_as_holder_and_its_open_gets_the_handed_fd)
{
	struct cmd_result r;
	char want[PATH_MAX], script[PATH_MAX + 1024];

	SKIP_UNDER_ASAN();
	sim_tree_group_path(&it_broker.sim, 7, want, sizeof(want));
	/*
	 * fd 3 is the handed file, and the open gets exactly it (sh then moves it to 5): a
	 * lease of its own would be refused, as this very process holds group 7 ($$ is the
	 * lease's pid). The shim's connection would show up as a socket.
	 */
	snprintf(script, sizeof(script),
		 "echo \"fds=$VFIO_BROKER_FDS\"; exec 5</dev/vfio/7 || exit 9; "
		 "[ -e /proc/self/fd/3 ] || echo fd3-taken; ls -l /proc/$$/fd | grep -c socket; "
		 "readlink /proc/self/fd/5; "
		 "\"$VFIOCTL\" --socket %s leases --json | grep -q \"\\\"pid\\\": $$\" && "
		 "echo holder-is-me",
		 it_broker.socket);
	vfioctl_cmd(&r, UID_ALICE, "run", "--group", "7", "--", "/bin/sh", "-c", script, NULL);
	ck_assert_msg(r.status == 0, "status %d, out %s, stderr: %s", r.status, r.out, r.err);
	ck_assert_msg(strstr(r.out, "fds=7=3\n"), "out: %s", r.out);
	ck_assert_msg(strstr(r.out, "fd3-taken\n"), "out: %s", r.out);
	ck_assert_msg(strstr(r.out, "\n0\n"), "the shim connected to the broker: %s", r.out);
	ck_assert_msg(strstr(r.out, want), "out: %s", r.out);
	ck_assert_msg(strstr(r.out, "holder-is-me\n"), "the lease is not the command's: %s", r.out);
	ck_assert_msg(!strstr(r.err, "vfio-broker-preload"), "stderr: %s", r.err);
}
END_TEST

START_TEST(test_run_memlock_above_the_rule_is_refused_with_both_sizes_before_the_command)
{
	struct cmd_result r;
	char marker[PATH_MAX + 32];

	snprintf(marker, sizeof(marker), "touch %s/started", it_broker.dir);
	/* alice-nics gives 64M. */
	vfioctl_cmd(&r, UID_ALICE, "run", "--device", "0000:01:00.0", "--memlock", "65792K",
		    "--no-preload", "--", "/bin/sh", "-c", marker, NULL);
	ck_assert_int_eq(r.status, 1);
	ck_assert_msg(strstr(r.err, "vfioctl: denied: rule alice-nics gives 64M of locked memory "
				    "(memlock), but 65792K was asked for"),
		      "stderr: %s", r.err);
	ck_assert_msg(strstr(r.err, "\"memlock\": \"65792K\""), "no remedy: %s", r.err);
	ck_assert_msg(strstr(r.err, "hint: --memlock"), "stderr: %s", r.err);
	snprintf(marker, sizeof(marker), "%s/started", it_broker.dir);
	ck_assert_msg(access(marker, F_OK) < 0, "the command ran");
	/* The refusal left nothing held: the same lease without the ask goes through. */
	vfioctl_cmd(&r, UID_ALICE, "run", "--group", "7", "--no-preload", "--", "/bin/true", NULL);
	ck_assert_msg(r.status == 0, "status %d, stderr: %s", r.status, r.err);
}
END_TEST

START_TEST(test_run_memlock_within_the_rule_runs_the_command_with_the_rules_limit)
{
	struct cmd_result r;

	vfioctl_cmd(&r, UID_ALICE, "run", "--group", "7", "--memlock", "64M", "--no-preload", "--",
		    "/bin/sh", "-c", "ulimit -l", NULL);
	ck_assert_msg(r.status == 0, "status %d, stderr: %s", r.status, r.err);
	/* The raise needs CAP_SYS_RESOURCE in the broker, which some hosts withhold. */
	ck_assert_msg(strcmp(r.out, "65536\n") == 0 ||
			      broker_log_contains(&it_broker, "lacks CAP_SYS_RESOURCE"),
		      "ulimit -l says %s", r.out);
}
END_TEST

/*
 * A rootless OCI bundle for runc as uid 2000: the host's /usr read-only under
 * an empty root, no cgroup or /sys mounts (this host has neither delegated),
 * /dev/vfio/vfio bound in when the host has one. The process prints what its
 * fd 3 is, by fstat() of its stdin (no /proc needed).
 */
static void runc_bundle(const char *dir)
{
	static const char *const links[] = {"bin", "lib", "lib64", "sbin"};
	char path[PATH_MAX + 64], vfio_mount[256] = "";
	FILE *f;

	snprintf(path, sizeof(path), "%s/rootfs", dir);
	ck_assert_int_eq(mkdir(dir, 0755), 0);
	ck_assert_int_eq(mkdir(path, 0755), 0);
	for (const char *const *d = (const char *const[]){"usr", "proc", "dev", NULL}; *d; d++) {
		snprintf(path, sizeof(path), "%s/rootfs/%s", dir, *d);
		ck_assert_int_eq(mkdir(path, 0755), 0);
	}
	for (size_t i = 0; i < sizeof(links) / sizeof(links[0]); i++) {
		char target[32];

		snprintf(target, sizeof(target), "usr/%s", links[i]);
		snprintf(path, sizeof(path), "%s/rootfs/%s", dir, links[i]);
		ck_assert_int_eq(symlink(target, path), 0);
	}
	if (access("/dev/vfio/vfio", F_OK) == 0)
		snprintf(vfio_mount, sizeof(vfio_mount),
			 ", {\"destination\": \"/dev/vfio/vfio\", \"type\": \"bind\", "
			 "\"source\": \"/dev/vfio/vfio\", \"options\": [\"bind\"]}");
	snprintf(path, sizeof(path), "%s/config.json", dir);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fprintf(f,
		"{\"ociVersion\": \"1.0.2-dev\",\n"
		" \"process\": {\"terminal\": false, \"user\": {\"uid\": 0, \"gid\": 0},\n"
		"  \"args\": [\"/bin/sh\", \"-c\", \"stat -L -c inside=%%d:%%i - <&3\"],\n"
		"  \"env\": [\"PATH=/usr/sbin:/usr/bin:/sbin:/bin\"], \"cwd\": \"/\",\n"
		"  \"noNewPrivileges\": true},\n"
		" \"root\": {\"path\": \"rootfs\", \"readonly\": true}, \"hostname\": \"vb\",\n"
		" \"mounts\": [{\"destination\": \"/proc\", \"type\": \"proc\", \"source\": "
		"\"proc\"},\n"
		"  {\"destination\": \"/dev\", \"type\": \"tmpfs\", \"source\": \"tmpfs\",\n"
		"   \"options\": [\"nosuid\", \"mode=755\", \"size=64k\"]},\n"
		"  {\"destination\": \"/usr\", \"type\": \"bind\", \"source\": \"/usr\",\n"
		"   \"options\": [\"rbind\", \"ro\"]}%s],\n"
		" \"linux\": {\"uidMappings\": [{\"containerID\": 0, \"hostID\": %d, \"size\": "
		"1}],\n"
		"  \"gidMappings\": [{\"containerID\": 0, \"hostID\": %d, \"size\": 1}],\n"
		"  \"namespaces\": [{\"type\": \"pid\"}, {\"type\": \"ipc\"}, {\"type\": "
		"\"uts\"},\n"
		"   {\"type\": \"mount\"}, {\"type\": \"user\"}]}}\n",
		vfio_mount, UID_ALICE, UID_ALICE);
	ck_assert_int_eq(fclose(f), 0);
}

/* Where runc is, or NULL. */
static const char *runc_path(void)
{
	static const char *const paths[] = {"/usr/sbin/runc", "/usr/bin/runc"};

	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
		if (access(paths[i], X_OK) == 0)
			return paths[i];
	return NULL;
}

START_TEST(test_runc_rootless_container_gets_the_leased_group_file_as_fd_3)
{
	char bundle[PATH_MAX], state[PATH_MAX], node[PATH_MAX], want[64];
	const char *runc = runc_path();
	struct cmd_result r;
	struct stat st;

	if (!runc) {
		printf("NOTE: %s did not run: no runc (scripts/deps.sh installs it)\n", __func__);
		return;
	}
	snprintf(bundle, sizeof(bundle), "%s/bundle", it_broker.dir);
	snprintf(state, sizeof(state), "%s/runc-2000", it_broker.dir);
	runc_bundle(bundle);
	ck_assert_int_eq(mkdir(state, 0700), 0);
	ck_assert_int_eq(chown(state, UID_ALICE, UID_ALICE), 0);
	sim_tree_group_path(&it_broker.sim, 7, node, sizeof(node));
	ck_assert_int_eq(stat(node, &st), 0);
	snprintf(want, sizeof(want), "inside=%llu:%llu\n", (unsigned long long)st.st_dev,
		 (unsigned long long)st.st_ino);
	/* docs/containers.md shows this command. */
	vfioctl_cmd(&r, UID_ALICE, "lease", "7", "--", runc, "--root", state, "run",
		    "--preserve-fds=1", "--bundle", bundle, "vb-it-runc", NULL);
	ck_assert_msg(r.status == 0, "status %d, out %s, stderr: %s", r.status, r.out, r.err);
	ck_assert_msg(strstr(r.out, want), "fd 3 in the container is %s, the lease is %s", r.out,
		      want);
}
END_TEST

Suite *suite_preload(void)
{
	Suite *s = suite_create("preload");
	TCase *tc = tcase_create("shim");

	tcase_add_checked_fixture(tc, it_broker_setup, it_broker_teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc,
		       test_shim_open_of_dev_vfio_n_returns_the_group_file_leased_from_the_broker);
	tcase_add_test(tc, test_shim_denied_group_fails_with_eacces_and_the_reason_once_on_stderr);
	tcase_add_test(tc, test_shim_second_open_of_a_group_it_has_open_fails_with_ebusy);
	tcase_add_test(tc, test_shim_passes_other_paths_through_without_a_broker);
	tcase_add_test(tc,
		       test_shim_without_a_broker_fails_the_open_with_econnrefused_and_a_reason);
	tcase_add_test(tc, test_shim_with_a_broker_that_never_answers_fails_with_etimedout_in_time);
	tcase_add_test(tc, test_shim_ignores_garbage_in_vfio_broker_fds_with_a_warning);
	tcase_add_test(tc, test_run_execs_the_command_as_holder_and_its_open_gets_the_handed_fd);
	tcase_add_test(
		tc, test_run_memlock_above_the_rule_is_refused_with_both_sizes_before_the_command);
	tcase_add_test(tc, test_run_memlock_within_the_rule_runs_the_command_with_the_rules_limit);
	suite_add_tcase(s, tc);

	tc = tcase_create("runc");
	tcase_add_checked_fixture(tc, it_broker_setup, it_broker_teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_runc_rootless_container_gets_the_leased_group_file_as_fd_3);
	suite_add_tcase(s, tc);
	return s;
}
