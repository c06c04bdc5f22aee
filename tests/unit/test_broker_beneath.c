/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of broker/beneath.c: no path leaves the tree it is resolved
 * beneath, by "..", by an absolute symlink or by a relative one, on both of
 * its paths. The "openat2" case runs on this kernel's openat2; the
 * "fallback" case installs a seccomp filter that makes openat2 fail with
 * ENOSYS, as valgrind does, so beneath_open takes its component-by-component
 * walk. No root needed.
 *
 * The tree, in a fresh temporary directory:
 *   secret                  a file outside the root
 *   root/a/f                "inside"
 *   root/b/g                "also inside"
 *   root/a/to-b-g      ->   ../b/g        (stays inside)
 *   root/a/to-b        ->   ../b          (a directory inside)
 *   root/a/up          ->   ../../secret  (relative, leaves the root)
 *   root/a/updir       ->   ../..         (relative, a directory outside)
 *   root/abs           ->   <tmp>/secret  (absolute)
 *   root/loop1 <-> root/loop2             (a loop)
 */
#include "broker/beneath.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static char tmp[PATH_MAX];
static int root_fd = -1;

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "we");

	ck_assert_msg(f, "fopen %s: %s", path, strerror(errno));
	fputs(text, f);
	ck_assert_int_eq(fclose(f), 0);
}

static void make_tree(void)
{
	char path[PATH_MAX + 64], target[PATH_MAX + 64];

	snprintf(tmp, sizeof(tmp), "%s/vb-beneath-XXXXXX", getenv("TMPDIR") ?: "/tmp");
	ck_assert_ptr_nonnull(mkdtemp(tmp));
	snprintf(path, sizeof(path), "%s/secret", tmp);
	write_file(path, "outside");
	snprintf(path, sizeof(path), "%s/root", tmp);
	ck_assert_int_eq(mkdir(path, 0755), 0);
	root_fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	ck_assert_int_ge(root_fd, 0);
	ck_assert_int_eq(mkdirat(root_fd, "a", 0755), 0);
	ck_assert_int_eq(mkdirat(root_fd, "b", 0755), 0);
	snprintf(path, sizeof(path), "%s/root/a/f", tmp);
	write_file(path, "inside");
	snprintf(path, sizeof(path), "%s/root/b/g", tmp);
	write_file(path, "also inside");
	ck_assert_int_eq(symlinkat("../b/g", root_fd, "a/to-b-g"), 0);
	ck_assert_int_eq(symlinkat("../b", root_fd, "a/to-b"), 0);
	ck_assert_int_eq(symlinkat("../../secret", root_fd, "a/up"), 0);
	ck_assert_int_eq(symlinkat("../..", root_fd, "a/updir"), 0);
	snprintf(target, sizeof(target), "%s/secret", tmp);
	ck_assert_int_eq(symlinkat(target, root_fd, "abs"), 0);
	ck_assert_int_eq(symlinkat("loop2", root_fd, "loop1"), 0);
	ck_assert_int_eq(symlinkat("loop1", root_fd, "loop2"), 0);
}

/* Each test runs in its own process (see main): the tree goes with rm -r. */
static void remove_tree(void)
{
	char cmd[PATH_MAX + 16];

	if (root_fd >= 0)
		close(root_fd);
	root_fd = -1;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
	ck_assert_int_eq(system(cmd), 0);
}

static long try_openat2(void)
{
	struct open_how how = {.flags = O_PATH | O_CLOEXEC, .resolve = RESOLVE_BENEATH};
	long fd = syscall(SYS_openat2, root_fd, "a", &how, sizeof(how));

	if (fd >= 0)
		close((int)fd);
	return fd < 0 ? -errno : 0;
}

static void setup_openat2(void)
{
	make_tree();
	ck_assert_msg(try_openat2() == 0,
		      "openat2 is not available here: the openat2 case cannot run");
}

/* openat2 fails with ENOSYS from now on, in this test's process only. */
static void setup_fallback(void)
{
	scmp_filter_ctx ctx;

	make_tree();
	ctx = seccomp_init(SCMP_ACT_ALLOW);
	ck_assert_ptr_nonnull(ctx);
	ck_assert_int_eq(seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(openat2), 0), 0);
	ck_assert_int_eq(seccomp_load(ctx), 0);
	seccomp_release(ctx);
	ck_assert_int_eq(try_openat2(), -ENOSYS);
}

/* Opens path beneath the root; returns 0 or -errno, and the content read into buf. */
static int open_and_read(const char *path, int flags, unsigned bflags, char *buf, size_t size)
{
	int fd = -1, r;
	ssize_t n;

	r = beneath_open(root_fd, path, flags, bflags, &fd);
	if (r < 0) {
		ck_assert_int_eq(fd, -1); /* out-params are written only on success */
		return r;
	}
	ck_assert_int_ge(fd, 0);
	buf[0] = '\0';
	if (!(flags & (O_PATH | O_DIRECTORY))) {
		n = read(fd, buf, size - 1);
		ck_assert_int_ge(n, 0);
		buf[n] = '\0';
	}
	close(fd);
	return 0;
}

/* The escape is real: outside beneath_open, the same path reaches the secret. */
static void assert_reaches_secret_unconfined(const char *path)
{
	char buf[64];
	int fd = openat(root_fd, path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	ck_assert_msg(fd >= 0, "%s does not even open unconfined: %s", path, strerror(errno));
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	ck_assert_int_ge(n, 0);
	buf[n] = '\0';
	ck_assert_str_eq(buf, "outside");
}

static void assert_escape_refused(const char *path)
{
	char buf[64];

	assert_reaches_secret_unconfined(path);
	ck_assert_int_eq(open_and_read(path, O_RDONLY, 0, buf, sizeof(buf)), -EXDEV);
}

START_TEST(test_dotdot_out_of_the_root_is_exdev)
{
	assert_escape_refused("../secret");
	assert_escape_refused("a/../../secret");
	assert_escape_refused("a/./../b/../../secret");
}
END_TEST

START_TEST(test_relative_symlink_out_of_the_root_is_exdev)
{
	assert_escape_refused("a/up");
	assert_escape_refused("a/updir/secret");
}
END_TEST

START_TEST(test_dotdot_after_a_symlinked_directory_cannot_leave_the_root)
{
	/* a/to-b is root/b: its ".." is the root, and the next ".." would leave it. */
	assert_escape_refused("a/to-b/../../secret");
}
END_TEST

START_TEST(test_absolute_symlink_is_exdev)
{
	assert_escape_refused("abs");
}
END_TEST

START_TEST(test_absolute_path_is_exdev)
{
	char path[PATH_MAX + 16], buf[64];

	snprintf(path, sizeof(path), "%s/secret", tmp);
	ck_assert_int_eq(open_and_read(path, O_RDONLY, 0, buf, sizeof(buf)), -EXDEV);
}
END_TEST

START_TEST(test_symlink_inside_the_root_is_followed)
{
	char buf[64];

	ck_assert_int_eq(open_and_read("a/to-b-g", O_RDONLY, 0, buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "also inside");
	ck_assert_int_eq(open_and_read("a/to-b/g", O_RDONLY, 0, buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "also inside");
}
END_TEST

START_TEST(test_dotdot_that_stays_inside_is_resolved)
{
	char buf[64];

	ck_assert_int_eq(open_and_read("b/../a/f", O_RDONLY, 0, buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "inside");
	ck_assert_int_eq(open_and_read("a/..", O_PATH | O_DIRECTORY, 0, buf, sizeof(buf)), 0);
}
END_TEST

START_TEST(test_no_symlinks_refuses_even_a_symlink_inside)
{
	char buf[64];

	ck_assert_int_eq(open_and_read("a/to-b-g", O_RDONLY, BENEATH_NO_SYMLINKS, buf, sizeof(buf)),
			 -ELOOP);
	ck_assert_int_eq(open_and_read("a/f", O_RDONLY, BENEATH_NO_SYMLINKS, buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "inside");
}
END_TEST

START_TEST(test_nofollow_refuses_a_symlink_as_last_component)
{
	char buf[64];

	ck_assert_int_eq(open_and_read("a/to-b-g", O_RDONLY | O_NOFOLLOW, 0, buf, sizeof(buf)),
			 -ELOOP);
}
END_TEST

START_TEST(test_symlink_loop_is_eloop)
{
	char buf[64];

	ck_assert_int_eq(open_and_read("loop1", O_RDONLY, 0, buf, sizeof(buf)), -ELOOP);
}
END_TEST

START_TEST(test_read_file_refuses_an_escape_and_a_final_symlink)
{
	char buf[64];
	size_t len = 0;

	assert_reaches_secret_unconfined("a/updir/secret");
	ck_assert_int_eq(beneath_read_file(root_fd, "a/updir/secret", buf, sizeof(buf), &len),
			 -EXDEV);
	/* The last component is never followed, even to inside the tree. */
	ck_assert_int_eq(beneath_read_file(root_fd, "a/to-b-g", buf, sizeof(buf), &len), -ELOOP);
	ck_assert_int_eq(beneath_read_file(root_fd, "a/f", buf, sizeof(buf), &len), 0);
	ck_assert_str_eq(buf, "inside");
	ck_assert_uint_eq(len, 6);
}
END_TEST

static void add_tests(TCase *t)
{
	tcase_add_test(t, test_dotdot_out_of_the_root_is_exdev);
	tcase_add_test(t, test_relative_symlink_out_of_the_root_is_exdev);
	tcase_add_test(t, test_dotdot_after_a_symlinked_directory_cannot_leave_the_root);
	tcase_add_test(t, test_absolute_symlink_is_exdev);
	tcase_add_test(t, test_absolute_path_is_exdev);
	tcase_add_test(t, test_symlink_inside_the_root_is_followed);
	tcase_add_test(t, test_dotdot_that_stays_inside_is_resolved);
	tcase_add_test(t, test_no_symlinks_refuses_even_a_symlink_inside);
	tcase_add_test(t, test_nofollow_refuses_a_symlink_as_last_component);
	tcase_add_test(t, test_symlink_loop_is_eloop);
	tcase_add_test(t, test_read_file_refuses_an_escape_and_a_final_symlink);
}

static Suite *beneath_suite(void)
{
	Suite *s = suite_create("beneath");
	TCase *t = tcase_create("openat2");

	tcase_add_checked_fixture(t, setup_openat2, remove_tree);
	add_tests(t);
	suite_add_tcase(s, t);
	t = tcase_create("fallback");
	tcase_add_checked_fixture(t, setup_fallback, remove_tree);
	add_tests(t);
	suite_add_tcase(s, t);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(beneath_suite());
	int failed;

	/*
	 * Forked always, whatever CK_FORK says: the fallback's seccomp filter and
	 * beneath.c's memory of a missing openat2 must end with each test.
	 */
	srunner_set_fork_status(sr, CK_FORK);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
