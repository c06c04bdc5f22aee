/* SPDX-License-Identifier: MIT */
#include "broker/holders.h"
#include "common/cleanup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

void holders_target_from_stat(const struct stat *st, struct holders_target *ret)
{
	*ret = (struct holders_target){
		.is_chr = S_ISCHR(st->st_mode),
		.rdev = st->st_rdev,
		.dev = st->st_dev,
		.ino = st->st_ino,
	};
}

static bool holders_match(const struct holders_target *t, const struct statx *sx)
{
	if (t->is_chr)
		return S_ISCHR(sx->stx_mode) &&
		       makedev(sx->stx_rdev_major, sx->stx_rdev_minor) == t->rdev;
	return !S_ISCHR(sx->stx_mode) && makedev(sx->stx_dev_major, sx->stx_dev_minor) == t->dev &&
	       sx->stx_ino == t->ino;
}

/*
 * Whether descriptor fd (a name in /proc/<pid>/fd) of the process was
 * opened with O_PATH, from the flags in /proc/<pid>/fdinfo/<fd>. When that
 * cannot be read the descriptor counts (false), unless it is gone.
 */
static bool holders_fd_is_path_only(int proc_fd, const char *pid, const char *fd)
{
	_cleanup_close_ int info = -1;
	char path[sizeof("/fdinfo/") + 2 * 256], buf[256], *flags;
	unsigned long value;
	ssize_t n;

	snprintf(path, sizeof(path), "%s/fdinfo/%s", pid, fd);
	info = openat(proc_fd, path, O_RDONLY | O_CLOEXEC);
	if (info < 0)
		return errno == ENOENT; /* closed meanwhile: nothing to count */
	n = read(info, buf, sizeof(buf) - 1);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	flags = strstr(buf, "flags:");
	if (!flags || sscanf(flags + strlen("flags:"), "%lo", &value) != 1)
		return false;
	return value & O_PATH;
}

/* How many descriptors between two looks at the clock. */
#define HOLDERS_CLOCK_EVERY 64

/*
 * The budget is the calling thread's CPU time, not the wall clock's: on a
 * loaded host a slice of wall time may do almost nothing, and what a slice
 * must bound is the scanner's share of a CPU (scanner.h).
 */
static uint64_t holders_now_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

enum holders_found { HOLDERS_NO, HOLDERS_YES, HOLDERS_OUT_OF_TIME };

/* A slice's time budget: one unit of work per process and per descriptor. */
struct holders_clock {
	uint64_t deadline_usec; /* UINT64_MAX: no budget */
	unsigned work;
};

static bool holders_out_of_time(struct holders_clock *c)
{
	return c->deadline_usec != UINT64_MAX && ++c->work % HOLDERS_CLOCK_EVERY == 0 &&
	       holders_now_usec() >= c->deadline_usec;
}

/*
 * Whether process pid (its /proc entry open as proc_fd) has a descriptor of
 * target, looking at descriptors >= *from_fd only. Out of time before the
 * last descriptor: *from_fd is the first one not looked at.
 */
static enum holders_found holders_process_has(int proc_fd, const char *pid,
					      const struct holders_target *t, int *from_fd,
					      struct holders_clock *clock)
{
	_cleanup_closedir_ DIR *d = NULL;
	char path[64];
	struct dirent *de;
	int fd;

	snprintf(path, sizeof(path), "%s/fd", pid);
	fd = openat(proc_fd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return HOLDERS_NO; /* gone, or a kernel thread: holds nothing we can see */
	/* A slice that goes on starts at descriptor *from_fd: /proc/PID/fd's
	 * position is the descriptor number plus 2 (after . and ..). */
	if (*from_fd > 0 && lseek(fd, (off_t)*from_fd + 2, SEEK_SET) < 0) {
		close(fd);
		return HOLDERS_NO;
	}
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return HOLDERS_NO;
	}
	/* The kernel lists a process's descriptors in ascending order. */
	while ((de = readdir(d))) {
		struct statx sx;
		long n;

		if (de->d_name[0] == '.')
			continue;
		n = strtol(de->d_name, NULL, 10);
		if (n < *from_fd)
			continue;
		if (holders_out_of_time(clock)) {
			*from_fd = (int)n;
			return HOLDERS_OUT_OF_TIME;
		}
		/* DONT_SYNC: take cached attributes; never wait for a (possibly hostile) FUSE
		 * or network file system to answer. Following the magic link itself only
		 * walks the process's file table. */
		if (statx(dirfd(d), de->d_name, AT_STATX_DONT_SYNC, STATX_TYPE | STATX_INO, &sx) <
		    0)
			continue;
		if (holders_match(t, &sx) && !holders_fd_is_path_only(proc_fd, pid, de->d_name))
			return HOLDERS_YES;
	}
	return HOLDERS_NO;
}

int holders_scan_slice(const struct holders_target *target, struct holders_cursor *cursor,
		       uint64_t budget_usec, pid_t skip, struct pidref *refs, size_t max,
		       size_t *ret_n)
{
	_cleanup_closedir_ DIR *proc = NULL;
	struct holders_clock clock = {
		.deadline_usec =
			budget_usec == UINT64_MAX ? UINT64_MAX : holders_now_usec() + budget_usec,
	};
	pid_t self = getpid();
	struct dirent *de;
	size_t n = 0;

	*ret_n = 0;
	proc = opendir("/proc");
	if (!proc)
		return -errno;
	while (n < max && (de = readdir(proc))) {
		struct pidref ref = PIDREF_NULL;
		enum holders_found found;
		int from_fd = 0;
		char *end;
		long pid;

		if (de->d_name[0] < '1' || de->d_name[0] > '9')
			continue;
		errno = 0;
		pid = strtol(de->d_name, &end, 10);
		if (errno || *end || pid <= 0 || pid > INT32_MAX || pid == self || pid == skip ||
		    pid < cursor->pid)
			continue;
		if (pid == cursor->pid)
			from_fd = cursor->fd;
		else if (holders_out_of_time(&clock)) {
			*cursor = (struct holders_cursor){.pid = (pid_t)pid};
			*ret_n = n;
			return 0;
		}
		/*
		 * The reference first, the descriptors second, the liveness check
		 * last: alive after the read, the process referred to is the one whose
		 * /proc/<pid>/fd was read, even if the pid was reused before the
		 * reference was taken.
		 */
		if (pidref_set_pid(&ref, (pid_t)pid) < 0)
			continue; /* exited: holds nothing */
		found = holders_process_has(dirfd(proc), de->d_name, target, &from_fd, &clock);
		if (found == HOLDERS_YES && pidref_is_alive(&ref) > 0)
			refs[n++] = ref;
		else
			pidref_done(&ref);
		if (found == HOLDERS_OUT_OF_TIME) {
			*cursor = (struct holders_cursor){.pid = (pid_t)pid, .fd = from_fd};
			*ret_n = n;
			return 0;
		}
	}
	/* readdir of /proc returns pids in ascending order, so refs[] already is. */
	*cursor = (struct holders_cursor){0};
	*ret_n = n;
	return 1;
}

int holders_scan(const struct holders_target *target, struct pidref *refs, size_t max,
		 size_t *ret_n)
{
	struct holders_cursor from = {0};
	int r = holders_scan_slice(target, &from, UINT64_MAX, 0, refs, max, ret_n);

	return r < 0 ? r : 0;
}

void holders_release(struct pidref *refs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		pidref_done(&refs[i]);
}

void holders_format_pids(const struct pidref *refs, size_t n, char *buf, size_t size)
{
	size_t len = 0;

	if (size == 0)
		return;
	buf[0] = '\0';
	for (size_t i = 0; i < n && len < size; i++) {
		int k = snprintf(buf + len, size - len, "%s%d", i ? ", " : "", (int)refs[i].pid);

		if (k < 0)
			break;
		len += (size_t)k;
	}
}
