/* SPDX-License-Identifier: MIT */
/*
 * What a caller controls is never taken as proof (issue 13, item 8): the
 * groups a process has (shed in a user namespace of its own) and the unit
 * names of its own systemd --user subtree.
 */
#include "tests/integration/it.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Alice may lease group 7, but not while she is in GID_USERS. */
#define DENY_BY_GROUP_POLICY                                                                       \
	"{\"rules\": [\n"                                                                          \
	"  {\"name\": \"alice-nic\", \"users\": [2000], \"devices\": [{\"iommu_group\": 7}]},\n"   \
	"  {\"name\": \"no-users\", \"effect\": \"deny\", \"unix_groups\": [2100],\n"              \
	"   \"devices\": [{\"iommu_group\": 7}]}\n"                                                \
	"]}\n"

/* Alice may lease group 7 from a qemu-*.scope, and from nowhere else. */
#define UNIT_ONLY_POLICY                                                                           \
	"{\"rules\": [\n"                                                                          \
	"  {\"name\": \"alice-vm\", \"users\": [2000], \"units\": [\"qemu-*.scope\"],\n"           \
	"   \"devices\": [{\"iommu_group\": 7}]}\n"                                                \
	"]}\n"

static void write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);

	ck_assert_msg(fd >= 0, "open %s: %s", path, strerror(errno));
	ck_assert_msg(write(fd, text, strlen(text)) == (ssize_t)strlen(text), "write %s: %s", path,
		      strerror(errno));
	close(fd);
}

static void drop_to(uid_t uid, gid_t extra_gid)
{
	gid_t groups[1] = {extra_gid};

	if (setgroups(extra_gid ? 1 : 0, groups) < 0 || setresgid(uid, uid, uid) < 0 ||
	    setresuid(uid, uid, uid) < 0)
		_exit(120);
}

/*
 * Alice, in GID_USERS, unshares a user namespace; root maps her own uid and
 * gid there with setgroups allowed (what newgidmap does for a subgid range),
 * and she drops GID_USERS inside before she asks for group 7.
 */
static int lease_after_dropping_a_group_in_a_userns(struct client_args *a)
{
	struct signal_pipe unshared, mapped;
	char path[64];
	pid_t pid;

	signal_pipe_init(&unshared);
	signal_pipe_init(&mapped);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		drop_to(UID_ALICE, GID_USERS);
		if (unshare(CLONE_NEWUSER) < 0)
			_exit(121);
		signal_pipe_send(&unshared, 'U');
		if (signal_pipe_wait(&mapped) != 'M')
			_exit(122);
		if (setgroups(0, NULL) < 0 || getgroups(0, NULL) != 0)
			_exit(123);
		_exit(client_lease(a));
	}
	ck_assert_int_eq(signal_pipe_wait(&unshared), 'U');
	snprintf(path, sizeof(path), "/proc/%d/uid_map", (int)pid);
	write_file(path, "2000 2000 1\n");
	snprintf(path, sizeof(path), "/proc/%d/setgroups", (int)pid);
	write_file(path, "allow");
	snprintf(path, sizeof(path), "/proc/%d/gid_map", (int)pid);
	write_file(path, "2000 2000 1\n");
	signal_pipe_send(&mapped, 'M');
	return wait_exit(pid);
}

START_TEST(test_a_group_dropped_in_a_user_namespace_still_meets_its_deny_rule)
{
	struct outcome *o = outcome_new();
	struct client_args a = {.socket = it_broker.socket, .group = 7, .out = o};
	int rc;

	broker_setup(&it_broker, DENY_BY_GROUP_POLICY);
	broker_start(&it_broker, NULL);

	/* The deny rule holds where Alice has the group. */
	ck_assert_int_eq(run_as(UID_ALICE, GID_USERS, client_lease, &a), 1);
	ck_assert_str_eq(o->code, "denied");
	ck_assert_msg(strstr(o->message, "no-users"), "%s", o->message);

	rc = lease_after_dropping_a_group_in_a_userns(&a);
	ck_assert_msg(rc == 0 || rc == 1, "the client in the user namespace failed: %d", rc);
	ck_assert_msg(o->rc < 0, "granted to a process that dropped a denied group");
	ck_assert_str_eq(o->code, "denied");
	ck_assert_msg(strstr(o->message, "user namespace"), "%s", o->message);
	ck_assert(broker_log_contains(&it_broker, "another user namespace"));
	outcome_free(o);
}
END_TEST

/* The cgroup v2 mount point, from /proc/self/mountinfo; false if there is none. */
static bool cgroup2_mount(char *buf, size_t size)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char line[4096], mnt[PATH_MAX], fstype[64];
	bool found = false;

	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f)) {
		const char *dash = strstr(line, " - ");

		if (dash && sscanf(dash, " - %63s", fstype) == 1 &&
		    strcmp(fstype, "cgroup2") == 0 &&
		    sscanf(line, "%*s %*s %*s %*s %4095s", mnt) == 1) {
			snprintf(buf, size, "%s", mnt);
			found = true;
		}
	}
	fclose(f);
	return found;
}

struct cgroup_client {
	const char *procs; /* cgroup.procs of the cgroup to join, as root, first */
	struct client_args *args;
};

static int lease_from_cgroup(void *arg)
{
	struct cgroup_client *c = arg;
	int fd = open(c->procs, O_WRONLY | O_CLOEXEC);

	if (fd < 0 || write(fd, "0", 1) != 1)
		_exit(124);
	close(fd);
	drop_to(UID_ALICE, 0);
	return client_lease(c->args);
}

static int run_in_cgroup(const char *dir, struct client_args *a)
{
	char procs[PATH_MAX + 16];
	struct cgroup_client c = {.procs = procs, .args = a};
	pid_t pid;

	snprintf(procs, sizeof(procs), "%s/cgroup.procs", dir);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		_exit(lease_from_cgroup(&c));
	return wait_exit(pid);
}

static void make_cgroup(const char *base, const char *path, char *out, size_t size)
{
	char at[PATH_MAX * 2];
	const char *p = path;

	snprintf(out, size, "%s%s", base, path);
	ck_assert_msg(mkdir(base, 0755) == 0 || errno == EEXIST, "mkdir %s: %m", base);
	/* mkdir -p, one level at a time */
	while ((p = strchr(p + 1, '/')) != NULL) {
		snprintf(at, sizeof(at), "%s%.*s", base, (int)(p - path), path);
		ck_assert_msg(mkdir(at, 0755) == 0 || errno == EEXIST, "mkdir %s: %m", at);
	}
	ck_assert_msg(mkdir(out, 0755) == 0 || errno == EEXIST, "mkdir %s: %m", out);
}

/* rmdir path and its parents up to and including base + first component. */
static void remove_cgroup(const char *base, const char *path)
{
	char at[PATH_MAX * 2];
	size_t len = strlen(path);

	while (len > 0) {
		snprintf(at, sizeof(at), "%s%.*s", base, (int)len, path);
		rmdir(at);
		do
			len--;
		while (len > 0 && path[len] != '/');
	}
}

START_TEST(test_a_qemu_scope_under_the_users_own_manager_does_not_meet_a_units_rule)
{
	static const char user_scope[] =
		"/user.slice/user-2000.slice/user@2000.service/app.slice/qemu-x.scope";
	static const char system_scope[] = "/system.slice/qemu-y.scope";
	struct outcome *o = outcome_new();
	struct client_args a = {.socket = it_broker.socket, .group = 7, .out = o};
	char mnt[PATH_MAX], base[PATH_MAX + 64], dir[PATH_MAX * 2];
	int rc;

	broker_setup(&it_broker, UNIT_ONLY_POLICY);
	broker_start(&it_broker, NULL);
	if (!cgroup2_mount(mnt, sizeof(mnt))) {
		printf("NOTE: no cgroup v2 mount: the user-manager unit test did not run\n");
		outcome_free(o);
		return;
	}
	snprintf(base, sizeof(base), "%s/vb-it-identity-%d", mnt, (int)getpid());

	make_cgroup(base, user_scope, dir, sizeof(dir));
	rc = run_in_cgroup(dir, &a);
	remove_cgroup(base, user_scope);
	ck_assert_int_eq(rc, 1);
	ck_assert_msg(o->rc < 0, "a scope the user made in its own manager met a units rule");
	ck_assert_str_eq(o->code, "denied");

	/* The same name where only the system manager can make it does. */
	make_cgroup(base, system_scope, dir, sizeof(dir));
	rc = run_in_cgroup(dir, &a);
	remove_cgroup(base, system_scope);
	ck_assert_int_eq(rc, 0);
	ck_assert_int_eq(o->rc, 0);
	rmdir(base);
	outcome_free(o);
	/* and the loader said what "units" alone cannot prove, with file and line */
	ck_assert(broker_log_contains(&it_broker,
				      "10-test.json:2: rule \"alice-vm\": \"units\" without"));
}
END_TEST

Suite *suite_identity(void)
{
	Suite *s = suite_create("identity");
	TCase *t = tcase_create("identity");

	tcase_add_checked_fixture(t, NULL, it_broker_teardown);
	tcase_set_timeout(t, 60);
	tcase_add_test(t, test_a_group_dropped_in_a_user_namespace_still_meets_its_deny_rule);
	tcase_add_test(t, test_a_qemu_scope_under_the_users_own_manager_does_not_meet_a_units_rule);
	suite_add_tcase(s, t);
	return s;
}
