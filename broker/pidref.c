/* SPDX-License-Identifier: MIT */
#include "broker/pidref.h"
#include "broker/log.h"
#include "common/cleanup.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* How often a process referenced only by its /proc directory is checked for exit. */
#define EXIT_POLL_USEC (200 * 1000)
/* Longest ppid chain followed; deeper trees are refused (fail closed). */
#define MAX_ANCESTRY 4096

static int sys_pidfd_open(pid_t pid)
{
	return (int)syscall(SYS_pidfd_open, pid, 0);
}

static int sys_pidfd_send_signal(int pidfd, int sig)
{
	return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0);
}

/* The broker is single-threaded; 0 is never handed out (PIDREF_NULL). */
static uint64_t next_lineage(void)
{
	static uint64_t last;

	return ++last;
}

int pidref_set_pid(struct pidref *ret, pid_t pid)
{
	char path[32];
	int fd;

	if (pid <= 0)
		return -EINVAL;
	fd = sys_pidfd_open(pid);
	if (fd >= 0) {
		*ret = (struct pidref){
			.pid = pid, .fd = fd, .is_pidfd = true, .lineage = next_lineage()};
		return 0;
	}
	if (errno != ENOSYS)
		return -errno;
	snprintf(path, sizeof(path), "/proc/%d", (int)pid);
	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? -ESRCH : -errno;
	*ret = (struct pidref){.pid = pid, .fd = fd, .is_pidfd = false, .lineage = next_lineage()};
	return 0;
}

int pidref_set_pidfd(struct pidref *ret, pid_t pid, int pidfd)
{
	if (pid <= 0 || pidfd < 0) {
		safe_close(pidfd);
		return -EINVAL;
	}
	*ret = (struct pidref){
		.pid = pid, .fd = pidfd, .is_pidfd = true, .lineage = next_lineage()};
	return 0;
}

int pidref_copy(const struct pidref *p, struct pidref *ret)
{
	int fd;

	if (!pidref_is_set(p))
		return -EINVAL;
	fd = fcntl(p->fd, F_DUPFD_CLOEXEC, 3);
	if (fd < 0)
		return -errno;
	*ret = (struct pidref){
		.pid = p->pid, .fd = fd, .is_pidfd = p->is_pidfd, .lineage = p->lineage};
	return 0;
}

void pidref_done(struct pidref *p)
{
	if (!p)
		return;
	safe_close(p->fd);
	*p = PIDREF_NULL;
}

/* The state letter of /proc/<pid>/stat read through a /proc/<pid> directory fd. */
static int proc_dir_state(int dir_fd, char *ret)
{
	_cleanup_close_ int fd = -1;
	char buf[1024], *paren;
	ssize_t n;

	fd = openat(dir_fd, "stat", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	/* "pid (comm) S ...": comm may hold spaces and parentheses, so take the last ')'. */
	paren = strrchr(buf, ')');
	if (!paren || paren[1] != ' ' || !paren[2])
		return -EBADMSG;
	*ret = paren[2];
	return 0;
}

int pidref_is_alive(const struct pidref *p)
{
	char state;
	int r;

	if (!pidref_is_set(p))
		return -EINVAL;
	if (p->is_pidfd) {
		struct pollfd pfd = {.fd = p->fd, .events = POLLIN};

		r = poll(&pfd, 1, 0);
		if (r < 0)
			return -errno;
		return r == 0;
	}
	r = proc_dir_state(p->fd, &state);
	if (r == -ESRCH || r == -ENOENT)
		return 0;
	if (r < 0)
		return r;
	return state != 'Z' && state != 'X' && state != 'x';
}

bool pidref_equal(const struct pidref *a, const struct pidref *b)
{
	if (!pidref_is_set(a) || !pidref_is_set(b) || a->pid != b->pid)
		return false;
	/* Copies of one reference: one process, so one check says whether it is alive. */
	if (a->lineage == b->lineage)
		return pidref_is_alive(a) > 0;
	return pidref_is_alive(a) > 0 && pidref_is_alive(b) > 0;
}

int pidref_kill(const struct pidref *p, int sig)
{
	int r;

	if (!pidref_is_set(p))
		return -EINVAL;
	if (p->is_pidfd) {
		if (sys_pidfd_send_signal(p->fd, sig) >= 0)
			return 0;
		if (errno != ENOSYS)
			return -errno;
	}
	/*
	 * No pidfd_send_signal (valgrind): check the process is alive, then
	 * kill by pid. The window between the two is the residual pid-reuse
	 * race of this fallback; it only exists where pidfds are unsupported.
	 */
	r = pidref_is_alive(p);
	if (r < 0)
		return r;
	if (r == 0)
		return -ESRCH;
	return kill(p->pid, sig) < 0 ? -errno : 0;
}

/*
 * Whether /proc/<pid>/name is a single-record seq_file (single_open(): fs/proc/base.c's
 * ONE() entries and comm): a read() that leaves room in the buffer has then returned all
 * of it. seq_read_iter() formats the one record whole and copies as much as fits; only
 * a file of several records (uid_map, gid_map) can stop short of the room left, at a
 * record that did not fit, with more to come.
 */
static bool proc_file_is_one_record(const char *name)
{
	static const char *const one[] = {"stat", "status", "cgroup", "comm"};

	for (size_t i = 0; i < sizeof(one) / sizeof(one[0]); i++)
		if (!strcmp(name, one[i]))
			return true;
	return false;
}

int pidref_read_proc(const struct pidref *p, const char *name, size_t max, char **ret,
		     size_t *ret_len)
{
	_cleanup_close_ int fd = -1;
	_cleanup_free_ char *buf = NULL;
	size_t len = 0, size = 1024;
	bool one_record = proc_file_is_one_record(name);
	int r;

	if (!pidref_is_set(p))
		return -EINVAL;
	if (p->is_pidfd) {
		char path[64];

		snprintf(path, sizeof(path), "/proc/%d/%s", (int)p->pid, name);
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	} else {
		fd = openat(p->fd, name, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	}
	if (fd < 0)
		return errno == ENOENT ? -ESRCH : -errno;

	buf = malloc(size);
	if (!buf)
		return -ENOMEM;
	for (;;) {
		ssize_t n;

		if (len + 1 >= size) {
			char *bigger;

			if (size >= max)
				return -EFBIG;
			size = size * 2 > max ? max : size * 2;
			bigger = realloc(buf, size);
			if (!bigger)
				return -ENOMEM;
			buf = bigger;
		}
		n = read(fd, buf + len, size - len - 1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		/* Room left: that was all of it, and a read() more would only say 0. */
		if (one_record && len + 1 < size)
			break;
	}
	buf[len] = '\0';

	/* Alive after the read: the pid named our process while we read it. */
	r = pidref_is_alive(p);
	if (r < 0)
		return r;
	if (r == 0)
		return -ESRCH;
	*ret = TAKE_PTR(buf);
	if (ret_len)
		*ret_len = len;
	return 0;
}

int pidref_get_euid(const struct pidref *p, uid_t *ret)
{
	_cleanup_free_ char *status = NULL;
	unsigned long ruid, euid;
	const char *line;
	int r;

	r = pidref_read_proc(p, "status", 64 * 1024, &status, NULL);
	if (r < 0)
		return r;
	line = strstr(status, "\nUid:");
	if (!line || sscanf(line + 5, "%lu %lu", &ruid, &euid) != 2)
		return -EBADMSG;
	*ret = (uid_t)euid;
	return 0;
}

/* The parent of pid, read by bare pid: only ever used in the ancestry walk below. */
static int proc_get_ppid(pid_t pid, pid_t *ret)
{
	_cleanup_close_ int fd = -1;
	char path[64], buf[1024], *paren;
	int ppid;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? -ESRCH : -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	paren = strrchr(buf, ')');
	if (!paren || sscanf(paren + 1, " %*c %d", &ppid) != 1)
		return -EBADMSG;
	*ret = (pid_t)ppid;
	return 0;
}

/*
 * Walk the ppid chain from child up to pid 1. Both ends are re-checked
 * alive afterwards, so the pids at the ends named the right processes for
 * the whole walk; an intermediate process could exit and its pid be reused
 * mid-walk (a residual race needing a pid wrap-around within microseconds),
 * and any read error refuses.
 */
int pidref_is_descendant(const struct pidref *child, const struct pidref *ancestor)
{
	pid_t cur;
	int r;

	if (!pidref_is_set(child) || !pidref_is_set(ancestor))
		return -EINVAL;
	cur = child->pid;
	for (unsigned i = 0;; i++) {
		if (cur == ancestor->pid)
			break;
		if (cur <= 1 || i >= MAX_ANCESTRY)
			return 0;
		r = proc_get_ppid(cur, &cur);
		if (r < 0)
			return r;
	}
	if (pidref_is_alive(child) <= 0 || pidref_is_alive(ancestor) <= 0)
		return -ESRCH;
	return 1;
}

struct exit_watch {
	const struct pidref *pid;
	exit_watch_fn fn;
	void *userdata;
	sd_event_source *source;
	bool fired;
};

static void exit_watch_fire(struct exit_watch *w)
{
	if (w->fired)
		return;
	w->fired = true;
	sd_event_source_set_enabled(w->source, SD_EVENT_OFF);
	/* fn may free w: nothing after this line touches it. */
	w->fn(w->userdata);
}

static int exit_watch_on_pidfd(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	exit_watch_fire(userdata);
	return 0;
}

static int exit_watch_on_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct exit_watch *w = userdata;
	int r = pidref_is_alive(w->pid);

	if (r == 0) {
		exit_watch_fire(w);
		return 0;
	}
	if (r < 0)
		log_debug_errno(r, "Could not check whether pid %d is alive: %m", (int)w->pid->pid);
	sd_event_source_set_time_relative(s, EXIT_POLL_USEC);
	sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
	return 0;
}

int exit_watch_new(sd_event *e, const struct pidref *p, exit_watch_fn fn, void *userdata,
		   struct exit_watch **ret)
{
	struct exit_watch *w;
	int r;

	if (!pidref_is_set(p))
		return -EINVAL;
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	*w = (struct exit_watch){.pid = p, .fn = fn, .userdata = userdata};
	if (p->is_pidfd)
		r = sd_event_add_io(e, &w->source, p->fd, EPOLLIN, exit_watch_on_pidfd, w);
	else
		r = sd_event_add_time_relative(e, &w->source, CLOCK_MONOTONIC, EXIT_POLL_USEC, 0,
					       exit_watch_on_timer, w);
	if (r < 0) {
		free(w);
		return r;
	}
	*ret = w;
	return 0;
}

struct exit_watch *exit_watch_free(struct exit_watch *w)
{
	if (!w)
		return NULL;
	sd_event_source_disable_unref(w->source);
	free(w);
	return NULL;
}
