/* SPDX-License-Identifier: MIT */
#include "tests/lib/harness.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
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

#ifndef BUILD_DIR
#define BUILD_DIR "build"
#endif

static const char *build_dir(void)
{
	const char *b = getenv("VB_BUILD");
	return b && *b ? b : BUILD_DIR;
}

static void write_text(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	size_t len = strlen(text);

	ck_assert_msg(fd >= 0, "open %s: %s", path, strerror(errno));
	ck_assert_int_eq(write(fd, text, len), (ssize_t)len);
	close(fd);
	chmod(path, mode);
}

void broker_write_policy(struct broker *b, const char *name, const char *json)
{
	char path[PATH_MAX + 64], tmp[PATH_MAX + 80];

	snprintf(path, sizeof(path), "%s/%s", b->policy_dir, name);
	snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", b->policy_dir, name);
	/* Write then rename, as an admin's editor would: the broker never sees half a file. */
	write_text(tmp, json, 0644);
	ck_assert_int_eq(rename(tmp, path), 0);
}

void broker_setup(struct broker *b, const char *policy)
{
	static const struct sim_device g7[] = {
		{"0000:01:00.0", "8086", "10d3", "020000", "vfio-pci"}};
	static const struct sim_device g8[] = {
		{"0000:02:00.0", "8086", "10d3", "020000", "vfio-pci"}};
	static const struct sim_device g9[] = {
		{"0000:04:00.0", "1b36", "000e", "060400", NULL}, /* the bridge, driverless */
		{"0000:05:01.0", "8086", "100e", "020000", "vfio-pci"},
		{"0000:05:02.0", "8086", "100e", "020000", "vfio-pci"}};
	static const struct sim_device g10[] = {
		{"0000:03:00.0", "8086", "10d3", "020000", "e1000e"}};

	memset(b, 0, sizeof(*b));
	b->pid = -1;
	snprintf(b->dir, sizeof(b->dir), "/tmp/vbtest.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(b->dir));
	chmod(b->dir, 0755);
	snprintf(b->socket, sizeof(b->socket), "%s/socket", b->dir);
	snprintf(b->policy_dir, sizeof(b->policy_dir), "%s/policy.d", b->dir);
	snprintf(b->log, sizeof(b->log), "%s/broker.log", b->dir);
	snprintf(b->state_dir, sizeof(b->state_dir), "%s/state", b->dir);
	ck_assert_int_eq(mkdir(b->policy_dir, 0755), 0);
	ck_assert_int_eq(sim_tree_create(&b->sim), 0);
	ck_assert_int_eq(sim_tree_add_group(&b->sim, 7, g7, 1), 0);
	ck_assert_int_eq(sim_tree_add_group(&b->sim, 8, g8, 1), 0);
	ck_assert_int_eq(sim_tree_add_group(&b->sim, 9, g9, 3), 0);
	ck_assert_int_eq(sim_tree_add_group(&b->sim, 10, g10, 1), 0);
	if (policy)
		broker_write_policy(b, "10-test.json", policy);
}

/* Whether the broker answers a hello on its socket within 5 s. */
static bool broker_answers(const struct broker *b)
{
	int fd = raw_connect(b->socket);
	char buf[512];
	bool ok;

	if (fd < 0)
		return false;
	ok = raw_send(fd, "{\"id\":1,\"op\":\"hello\",\"version\":1}") == 0 &&
	     raw_recv(fd, buf, sizeof(buf), 5000) > 0 && strstr(buf, "\"ok\":true");
	close(fd);
	return ok;
}

/*
 * broker_spawn forks and execs the broker with the harness's arguments and
 * then extra ones (at most 30), behind b->wrapper when set, after running
 * b->before_exec in the child. Returns the child's pid.
 */
static pid_t broker_spawn(const struct broker *b, va_list ap)
{
	const char *argv[96];
	char exe[PATH_MAX];
	size_t n = 0;
	pid_t pid;

	for (size_t i = 0; b->wrapper && b->wrapper[i] && n < 32; i++)
		argv[n++] = b->wrapper[i];
	snprintf(exe, sizeof(exe), "%s/vfio-brokerd", build_dir());
	/* VB_VALGRIND=1: the broker runs under memcheck; any error or definite leak
	 * makes it exit 99, which broker_stop() fails on. Seccomp and valgrind do
	 * not mix, hence --no-sandbox there. */
	if (getenv("VB_VALGRIND")) {
		argv[n++] = "/usr/bin/valgrind";
		argv[n++] = "--quiet";
		argv[n++] = "--error-exitcode=99";
		argv[n++] = "--leak-check=full";
		argv[n++] = "--errors-for-leak-kinds=definite";
		argv[n++] = "--track-fds=no";
	}
	argv[n++] = exe;
	if (getenv("VB_VALGRIND"))
		argv[n++] = "--no-sandbox";
	argv[n++] = "--socket";
	argv[n++] = b->socket;
	argv[n++] = "--policy";
	argv[n++] = b->policy_dir;
	argv[n++] = "--sysfs-root";
	argv[n++] = b->sim.sys;
	argv[n++] = "--dev-root";
	argv[n++] = b->sim.dev;
	argv[n++] = "--log-target";
	argv[n++] = "stderr";
	/* Never the system's default: each test's broker keeps its own lease table. */
	argv[n++] = "--state-dir";
	argv[n++] = b->state_dir;
	for (const char *a; (a = va_arg(ap, const char *)) && n < 94;)
		argv[n++] = a;
	argv[n] = NULL;

	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		int log = open(b->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(log, STDERR_FILENO);
		dup2(log, STDOUT_FILENO);
		if (b->before_exec)
			b->before_exec(b->before_exec_arg);
		execv(argv[0], (char **)argv);
		_exit(127);
	}
	return pid;
}

void broker_start(struct broker *b, ...)
{
	va_list ap;
	pid_t pid;

	va_start(ap, b);
	pid = broker_spawn(b, ap);
	va_end(ap);
	b->pid = pid;
	for (int i = 0; i < 1000; i++) {
		struct stat st;
		int status;

		/* Ready means answering: the sandbox and the event loop come after the
		 * socket is in place, so its mere existence is not enough. */
		if (stat(b->socket, &st) == 0 && S_ISSOCK(st.st_mode) && broker_answers(b))
			return;
		if (waitpid(pid, &status, WNOHANG) == pid) {
			b->pid = -1;
			ck_abort_msg("vfio-brokerd exited during start-up (status %d); see %s",
				     status, b->log);
		}
		usleep(10000);
	}
	ck_abort_msg("vfio-brokerd did not create %s within 10 s", b->socket);
}

int broker_start_expecting_exit(struct broker *b, ...)
{
	va_list ap;
	pid_t pid;

	va_start(ap, b);
	pid = broker_spawn(b, ap);
	va_end(ap);
	for (int i = 0; i < 1000; i++) {
		int status;

		if (waitpid(pid, &status, WNOHANG) == pid)
			return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
		usleep(10000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	ck_abort_msg("vfio-brokerd was expected to exit during start-up but still ran after 10 s; "
		     "see %s",
		     b->log);
	return -1;
}

bool broker_alive(const struct broker *b)
{
	return b->pid > 0 && kill(b->pid, 0) == 0 && waitpid(b->pid, NULL, WNOHANG) == 0;
}

void broker_crash(struct broker *b)
{
	ck_assert_int_gt(b->pid, 0);
	ck_assert_int_eq(kill(b->pid, SIGKILL), 0);
	ck_assert_int_eq(waitpid(b->pid, NULL, 0), b->pid);
	b->pid = -1;
}

void broker_stop(struct broker *b)
{
	int status;

	if (b->pid <= 0)
		return;
	kill(b->pid, SIGTERM);
	ck_assert_int_eq(waitpid(b->pid, &status, 0), b->pid);
	b->pid = -1;
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "vfio-brokerd did not exit cleanly on SIGTERM (status 0x%x)", status);
}

static int remove_tree(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;

	if (!d)
		return unlink(path);
	while ((e = readdir(d))) {
		char p[PATH_MAX + 256];

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		snprintf(p, sizeof(p), "%s/%s", path, e->d_name);
		remove_tree(p);
	}
	closedir(d);
	return rmdir(path);
}

int broker_fd_count_settled(const struct broker *b)
{
	int prev = -1, now = broker_fd_count(b);

	for (int i = 0; i < 50 && now != prev; i++) {
		usleep(100000);
		prev = now;
		now = broker_fd_count(b);
	}
	return now;
}

void broker_teardown(struct broker *b)
{
	int status = 0, wait_s;
	bool running = b->pid > 0, exited = false;

	/*
	 * Every test ends with a clean shutdown: under VB_VALGRIND that is when
	 * memcheck reports leaks, and a broker that cannot stop is a bug too.
	 * memcheck's leak check at exit alone took over 10 s on a loaded 2-core
	 * machine, so it gets a minute; the bound is for a broker that never
	 * stops, not a speed.
	 */
	wait_s = getenv("VB_VALGRIND") ? 60 : 10;
	if (b->pid > 0) {
		kill(b->pid, SIGTERM);
		for (int i = 0; i < wait_s * 100 && !exited; i++) {
			exited = waitpid(b->pid, &status, WNOHANG) == b->pid;
			if (!exited)
				usleep(10000);
		}
		if (!exited) {
			kill(b->pid, SIGKILL);
			waitpid(b->pid, NULL, 0);
		}
		b->pid = -1;
	}
	if (getenv("VB_KEEP_LOGS") && b->log[0]) {
		char cmd[PATH_MAX + 32];

		snprintf(cmd, sizeof(cmd), "cat %s >&2", b->log);
		if (system(cmd) < 0)
			perror("system");
	}
	sim_tree_destroy(&b->sim);
	if (b->dir[0])
		remove_tree(b->dir);
	b->dir[0] = '\0';
	ck_assert_msg(!exited || (WIFEXITED(status) && WEXITSTATUS(status) == 0),
		      "vfio-brokerd did not exit cleanly at the end of the test (status 0x%x%s)",
		      status, getenv("VB_VALGRIND") ? "; 99 = memcheck errors or leaks" : "");
	ck_assert_msg(!running || exited, "vfio-brokerd did not stop within %d s of SIGTERM",
		      wait_s);
}

int broker_fd_count(const struct broker *b)
{
	char path[64];
	struct dirent *e;
	DIR *d;
	int n = 0;

	snprintf(path, sizeof(path), "/proc/%d/fd", b->pid);
	d = opendir(path);
	ck_assert_ptr_nonnull(d);
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

bool broker_log_contains(const struct broker *b, const char *needle)
{
	FILE *f = fopen(b->log, "re");
	char line[4096];
	bool found = false;

	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f))
		found = strstr(line, needle) != NULL;
	fclose(f);
	return found;
}

bool broker_log_wait(const struct broker *b, const char *needle)
{
	for (int i = 0; i < 2000; i++) {
		if (broker_log_contains(b, needle))
			return true;
		usleep(10000);
	}
	return false;
}

static void drop_to(uid_t uid, gid_t extra_gid)
{
	gid_t groups[1] = {extra_gid};

	if (setgroups(extra_gid ? 1 : 0, groups) < 0 || setresgid(uid, uid, uid) < 0 ||
	    setresuid(uid, uid, uid) < 0)
		_exit(120);
	/* Cleared by the uid change; set again so no client outlives the test. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
}

pid_t spawn_as(uid_t uid, gid_t extra_gid, int (*fn)(void *), void *arg)
{
	pid_t pid = fork();

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		drop_to(uid, extra_gid);
		_exit(fn(arg));
	}
	return pid;
}

int wait_exit(pid_t pid)
{
	int status;

	if (waitpid(pid, &status, 0) != pid)
		return -1;
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
}

int run_as(uid_t uid, gid_t extra_gid, int (*fn)(void *), void *arg)
{
	return wait_exit(spawn_as(uid, extra_gid, fn, arg));
}

void signal_pipe_init(struct signal_pipe *p)
{
	ck_assert_int_eq(pipe2(p->fd, O_CLOEXEC), 0);
}

void signal_pipe_send(struct signal_pipe *p, char c)
{
	ck_assert_int_eq(write(p->fd[1], &c, 1), 1);
}

char signal_pipe_wait(struct signal_pipe *p)
{
	struct pollfd pfd = {.fd = p->fd[0], .events = POLLIN};
	char c = 0;

	if (poll(&pfd, 1, 10000) == 1 && read(p->fd[0], &c, 1) == 1)
		return c;
	return 0;
}

int raw_connect(const char *socket_path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", socket_path);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int r = -errno;
		close(fd);
		return r;
	}
	return fd;
}

int raw_send(int fd, const char *text)
{
	return send(fd, text, strlen(text), MSG_NOSIGNAL) < 0 ? -errno : 0;
}

int raw_recv(int fd, char *buf, size_t size, int timeout_ms)
{
	struct pollfd pfd = {.fd = fd, .events = POLLIN};
	ssize_t n;

	if (poll(&pfd, 1, timeout_ms) != 1)
		return -ETIMEDOUT;
	n = recv(fd, buf, size - 1, 0);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	return (int)n;
}

bool wait_until(bool (*cond)(void *), void *arg)
{
	for (int i = 0; i < 500; i++) {
		if (cond(arg))
			return true;
		usleep(10000);
	}
	return false;
}
