/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of broker/pidref.c: a reference to one process, on both of its
 * paths. The "pidfd" case runs on this kernel's pidfds; the "proc" case
 * installs a seccomp filter that makes pidfd_open and pidfd_send_signal fail
 * with ENOSYS, as valgrind does, so references are /proc/<pid> directory fds.
 * No root needed.
 *
 * A pid being reused by another process cannot be forced cheaply, so these
 * tests pin what a reference says about processes that are running, exited
 * but not reaped (zombies) and reaped, about copies and about other processes.
 */
#include "broker/pidref.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <seccomp.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <systemd/sd-event.h>
#include <unistd.h>

/* A child that runs until its pipe closes, then exits 7. */
struct child {
	pid_t pid;
	int release_fd; /* write end: closing it lets the child exit */
};

static struct child child_start(void)
{
	int fds[2];
	pid_t pid;
	char c;

	ck_assert_int_eq(pipe2(fds, O_CLOEXEC), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		close(fds[1]);
		while (read(fds[0], &c, 1) > 0)
			;
		_exit(7);
	}
	close(fds[0]);
	return (struct child){.pid = pid, .release_fd = fds[1]};
}

/* Lets the child exit and waits until it has, leaving it a zombie (not reaped). */
static void child_exit_unreaped(struct child *c)
{
	siginfo_t si = {0};

	close(c->release_fd);
	c->release_fd = -1;
	ck_assert_int_eq(waitid(P_PID, (id_t)c->pid, &si, WEXITED | WNOWAIT), 0);
	ck_assert_int_eq(si.si_pid, c->pid);
}

static void child_reap(struct child *c)
{
	int status;

	if (c->release_fd >= 0)
		child_exit_unreaped(c);
	ck_assert_int_eq(waitpid(c->pid, &status, 0), c->pid);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 7);
}

static bool want_pidfd;

static void setup_pidfd(void)
{
	int fd = (int)syscall(SYS_pidfd_open, getpid(), 0);

	want_pidfd = true;
	ck_assert_msg(fd >= 0, "pidfd_open is not available here: the pidfd case cannot run");
	close(fd);
}

/* pidfd_open and pidfd_send_signal fail with ENOSYS from now on, in this test's process. */
static void setup_proc(void)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);

	want_pidfd = false;
	ck_assert_ptr_nonnull(ctx);
	ck_assert_int_eq(seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(pidfd_open), 0), 0);
	ck_assert_int_eq(
		seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(pidfd_send_signal), 0), 0);
	ck_assert_int_eq(seccomp_load(ctx), 0);
	seccomp_release(ctx);
	ck_assert_int_eq(syscall(SYS_pidfd_open, getpid(), 0), -1);
	ck_assert_int_eq(errno, ENOSYS);
}

static struct pidref ref_of(pid_t pid)
{
	struct pidref p = PIDREF_NULL;

	ck_assert_int_eq(pidref_set_pid(&p, pid), 0);
	ck_assert(pidref_is_set(&p));
	ck_assert_int_eq(p.pid, pid);
	ck_assert_msg(p.is_pidfd == want_pidfd, "is_pidfd is %d in the %s case", p.is_pidfd,
		      want_pidfd ? "pidfd" : "proc");
	return p;
}

START_TEST(test_running_process_is_alive)
{
	struct child c = child_start();
	struct pidref p = ref_of(c.pid), self = ref_of(getpid());

	ck_assert_int_eq(pidref_is_alive(&p), 1);
	ck_assert_int_eq(pidref_is_alive(&self), 1);
	child_reap(&c);
	pidref_done(&p);
	pidref_done(&self);
}
END_TEST

START_TEST(test_zombie_is_not_alive)
{
	struct child c = child_start();
	struct pidref p = ref_of(c.pid);

	child_exit_unreaped(&c);
	ck_assert_int_eq(pidref_is_alive(&p), 0);
	child_reap(&c);
	pidref_done(&p);
}
END_TEST

START_TEST(test_reaped_child_is_not_alive)
{
	struct child c = child_start();
	struct pidref p = ref_of(c.pid);

	child_reap(&c);
	ck_assert_int_eq(pidref_is_alive(&p), 0);
	pidref_done(&p);
}
END_TEST

START_TEST(test_reaped_pid_cannot_be_referred_to)
{
	struct child c = child_start();
	struct pidref p = PIDREF_NULL;

	child_reap(&c);
	/* Unless the number was reused within these microseconds, nothing has it. */
	ck_assert_int_eq(pidref_set_pid(&p, c.pid), -ESRCH);
	ck_assert(!pidref_is_set(&p));
}
END_TEST

START_TEST(test_set_pid_refuses_pids_that_name_no_single_process)
{
	struct pidref p = PIDREF_NULL;

	ck_assert_int_eq(pidref_set_pid(&p, 0), -EINVAL);
	ck_assert_int_eq(pidref_set_pid(&p, -1), -EINVAL);
	ck_assert(!pidref_is_set(&p));
}
END_TEST

START_TEST(test_set_pidfd_refers_to_that_process)
{
	struct child c = child_start();
	struct pidref p = PIDREF_NULL;
	int fd = (int)syscall(SYS_pidfd_open, c.pid, 0);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pidref_set_pidfd(&p, c.pid, fd), 0);
	ck_assert(pidref_is_set(&p) && p.is_pidfd && p.fd == fd);
	ck_assert_int_eq(pidref_is_alive(&p), 1);
	child_exit_unreaped(&c);
	ck_assert_int_eq(pidref_is_alive(&p), 0);
	child_reap(&c);
	pidref_done(&p);
	ck_assert_int_eq(p.fd, -1);
	ck_assert_int_eq(fcntl(fd, F_GETFD), -1); /* done closed it */
}
END_TEST

START_TEST(test_set_pidfd_takes_the_fd_even_on_failure)
{
	struct pidref p = PIDREF_NULL;
	int fd = (int)syscall(SYS_pidfd_open, getpid(), 0);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pidref_set_pidfd(&p, 0, fd), -EINVAL);
	ck_assert_int_eq(fcntl(fd, F_GETFD), -1);
	ck_assert_int_eq(errno, EBADF);
	ck_assert(!pidref_is_set(&p));
}
END_TEST

START_TEST(test_copies_are_equal_and_own_their_fd)
{
	struct pidref p = ref_of(getpid()), copy = PIDREF_NULL;

	ck_assert_int_eq(pidref_copy(&p, &copy), 0);
	ck_assert(pidref_equal(&p, &copy));
	ck_assert(pidref_equal(&copy, &p));
	ck_assert_int_ne(copy.fd, p.fd);
	ck_assert(copy.is_pidfd == p.is_pidfd);
	pidref_done(&p);
	/* The copy outlives the original. */
	ck_assert_int_eq(pidref_is_alive(&copy), 1);
	pidref_done(&copy);
}
END_TEST

START_TEST(test_two_references_to_one_live_process_are_equal)
{
	struct pidref a = ref_of(getpid()), b = ref_of(getpid());

	ck_assert(pidref_equal(&a, &b));
	pidref_done(&a);
	pidref_done(&b);
}
END_TEST

START_TEST(test_different_processes_are_not_equal)
{
	struct child c = child_start();
	struct pidref self = ref_of(getpid()), other = ref_of(c.pid);

	ck_assert(!pidref_equal(&self, &other));
	ck_assert(!pidref_equal(&other, &self));
	child_reap(&c);
	pidref_done(&self);
	pidref_done(&other);
}
END_TEST

START_TEST(test_references_to_an_exited_process_are_not_equal)
{
	struct child c = child_start();
	struct pidref p = ref_of(c.pid), copy = PIDREF_NULL;

	ck_assert_int_eq(pidref_copy(&p, &copy), 0);
	child_reap(&c);
	/* Its pid may name another process by now: nothing may match it. */
	ck_assert(!pidref_equal(&p, &copy));
	ck_assert(!pidref_equal(&p, &p));
	pidref_done(&p);
	pidref_done(&copy);
}
END_TEST

/*
 * Copies of one reference are one process without a look (the broker relies on
 * it where it has just checked one of them alive); separate references to one
 * process, and unset ones, are not copies.
 */
START_TEST(test_only_copies_share_a_lineage)
{
	struct child c = child_start();
	struct pidref p = ref_of(c.pid), copy = PIDREF_NULL, again = ref_of(c.pid);
	struct pidref unset = PIDREF_NULL;

	ck_assert_int_eq(pidref_copy(&p, &copy), 0);
	ck_assert(pidref_same_lineage(&p, &copy));
	ck_assert(pidref_same_lineage(&copy, &p));
	ck_assert(!pidref_same_lineage(&p, &again));
	ck_assert(!pidref_same_lineage(&p, &unset));
	ck_assert(!pidref_same_lineage(&unset, &unset));
	child_reap(&c);
	/* Still the same process after it exited, though no longer pidref_equal. */
	ck_assert(pidref_same_lineage(&p, &copy));
	ck_assert(!pidref_equal(&p, &copy));
	pidref_done(&p);
	pidref_done(&copy);
	pidref_done(&again);
}
END_TEST

START_TEST(test_unset_references_are_never_equal)
{
	struct pidref a = PIDREF_NULL, b = PIDREF_NULL, self = ref_of(getpid());

	ck_assert(!pidref_is_set(&a));
	ck_assert(!pidref_equal(&a, &b));
	ck_assert(!pidref_equal(&a, &self));
	ck_assert_int_eq(pidref_is_alive(&a), -EINVAL);
	ck_assert_int_eq(pidref_copy(&a, &b), -EINVAL);
	pidref_done(&self);
	pidref_done(NULL); /* accepts NULL */
}
END_TEST

START_TEST(test_kill_reaches_the_process_and_not_a_reaped_one)
{
	struct child c = child_start();
	struct pidref p = ref_of(c.pid);
	int status;

	ck_assert_int_eq(pidref_kill(&p, SIGKILL), 0);
	ck_assert_int_eq(waitpid(c.pid, &status, 0), c.pid);
	ck_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	close(c.release_fd);
	ck_assert_int_eq(pidref_kill(&p, SIGKILL), -ESRCH);
	pidref_done(&p);
}
END_TEST

START_TEST(test_proc_reads_are_of_the_referred_process)
{
	struct child c = child_start();
	struct pidref self = ref_of(getpid()), p = ref_of(c.pid);
	char *text = NULL;
	size_t len = 0;
	uid_t euid = (uid_t)-1;

	ck_assert_int_eq(pidref_get_euid(&self, &euid), 0);
	ck_assert_uint_eq(euid, geteuid());
	ck_assert_int_eq(pidref_read_proc(&p, "stat", 4096, &text, &len), 0);
	ck_assert_uint_gt(len, 0);
	ck_assert_int_eq(atoi(text), c.pid);
	free(text);
	text = NULL;
	child_reap(&c);
	ck_assert_int_eq(pidref_read_proc(&p, "stat", 4096, &text, &len), -ESRCH);
	ck_assert_ptr_null(text);
	pidref_done(&self);
	pidref_done(&p);
}
END_TEST

START_TEST(test_a_child_descends_from_us_and_not_the_reverse)
{
	struct child c = child_start();
	struct pidref self = ref_of(getpid()), p = ref_of(c.pid);

	ck_assert_int_eq(pidref_is_descendant(&p, &self), 1);
	ck_assert_int_eq(pidref_is_descendant(&self, &p), 0);
	ck_assert_int_eq(pidref_is_descendant(&self, &self), 1);
	child_reap(&c);
	pidref_done(&self);
	pidref_done(&p);
}
END_TEST

static void on_exit_seen(void *userdata)
{
	(*(int *)userdata)++;
}

START_TEST(test_exit_watch_fires_once_when_the_process_exits)
{
	struct child c = child_start();
	struct pidref p = ref_of(c.pid);
	struct exit_watch *w = NULL;
	sd_event *e = NULL;
	int fired = 0;

	ck_assert_int_eq(sd_event_new(&e), 0);
	ck_assert_int_eq(exit_watch_new(e, &p, on_exit_seen, &fired, &w), 0);
	ck_assert_int_ge(sd_event_run(e, 0), 0);
	ck_assert_int_eq(fired, 0);
	child_exit_unreaped(&c);
	/* The proc case polls every 200 ms: wait up to 3 s, within Check's 4 s timeout. */
	for (int i = 0; i < 30 && !fired; i++)
		ck_assert_int_ge(sd_event_run(e, 100 * 1000), 0);
	ck_assert_int_eq(fired, 1);
	for (int i = 0; i < 3; i++)
		ck_assert_int_ge(sd_event_run(e, 0), 0);
	ck_assert_int_eq(fired, 1);
	ck_assert_ptr_null(exit_watch_free(w));
	sd_event_unref(e);
	child_reap(&c);
	pidref_done(&p);
}
END_TEST

static void add_tests(TCase *t)
{
	tcase_add_test(t, test_running_process_is_alive);
	tcase_add_test(t, test_zombie_is_not_alive);
	tcase_add_test(t, test_reaped_child_is_not_alive);
	tcase_add_test(t, test_reaped_pid_cannot_be_referred_to);
	tcase_add_test(t, test_set_pid_refuses_pids_that_name_no_single_process);
	tcase_add_test(t, test_copies_are_equal_and_own_their_fd);
	tcase_add_test(t, test_two_references_to_one_live_process_are_equal);
	tcase_add_test(t, test_different_processes_are_not_equal);
	tcase_add_test(t, test_references_to_an_exited_process_are_not_equal);
	tcase_add_test(t, test_unset_references_are_never_equal);
	tcase_add_test(t, test_only_copies_share_a_lineage);
	tcase_add_test(t, test_kill_reaches_the_process_and_not_a_reaped_one);
	tcase_add_test(t, test_proc_reads_are_of_the_referred_process);
	tcase_add_test(t, test_a_child_descends_from_us_and_not_the_reverse);
	tcase_add_test(t, test_exit_watch_fires_once_when_the_process_exits);
}

static Suite *pidref_suite(void)
{
	Suite *s = suite_create("pidref");
	TCase *t = tcase_create("pidfd");

	tcase_add_checked_fixture(t, setup_pidfd, NULL);
	add_tests(t);
	/* pidref_set_pidfd needs a pidfd to be handed one. */
	tcase_add_test(t, test_set_pidfd_refers_to_that_process);
	tcase_add_test(t, test_set_pidfd_takes_the_fd_even_on_failure);
	suite_add_tcase(s, t);
	t = tcase_create("proc");
	tcase_add_checked_fixture(t, setup_proc, NULL);
	add_tests(t);
	suite_add_tcase(s, t);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(pidref_suite());
	int failed;

	/* Forked always, whatever CK_FORK says: the proc case's seccomp filter must end with
	 * each test, and each test reaps its own children. */
	srunner_set_fork_status(sr, CK_FORK);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
