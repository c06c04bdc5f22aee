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

/* Whether process pid (its /proc entry open as proc_fd) has a descriptor of target. */
static bool holders_process_has(int proc_fd, const char *pid, const struct holders_target *t)
{
	_cleanup_closedir_ DIR *d = NULL;
	char path[64];
	struct dirent *de;
	int fd;

	snprintf(path, sizeof(path), "%s/fd", pid);
	fd = openat(proc_fd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return false; /* gone, or a kernel thread: holds nothing we can see */
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return false;
	}
	while ((de = readdir(d))) {
		struct statx sx;

		if (de->d_name[0] == '.')
			continue;
		/* DONT_SYNC: take cached attributes; never wait for a (possibly hostile) FUSE
		 * or network file system to answer. Following the magic link itself only
		 * walks the process's file table. */
		if (statx(dirfd(d), de->d_name, AT_STATX_DONT_SYNC, STATX_TYPE | STATX_INO, &sx) <
		    0)
			continue;
		if (holders_match(t, &sx) && !holders_fd_is_path_only(proc_fd, pid, de->d_name))
			return true;
	}
	return false;
}

int holders_scan(const struct holders_target *target, struct pidref *refs, size_t max,
		 size_t *ret_n)
{
	_cleanup_closedir_ DIR *proc = NULL;
	pid_t self = getpid();
	struct dirent *de;
	size_t n = 0;

	proc = opendir("/proc");
	if (!proc)
		return -errno;
	while (n < max && (de = readdir(proc))) {
		struct pidref ref = PIDREF_NULL;
		char *end;
		long pid;

		if (de->d_name[0] < '1' || de->d_name[0] > '9')
			continue;
		errno = 0;
		pid = strtol(de->d_name, &end, 10);
		if (errno || *end || pid <= 0 || pid > INT32_MAX || pid == self)
			continue;
		/*
		 * The reference first, the descriptors second, the liveness check
		 * last: alive after the read, the process referred to is the one whose
		 * /proc/<pid>/fd was read, even if the pid was reused before the
		 * reference was taken.
		 */
		if (pidref_set_pid(&ref, (pid_t)pid) < 0)
			continue; /* exited: holds nothing */
		if (holders_process_has(dirfd(proc), de->d_name, target) &&
		    pidref_is_alive(&ref) > 0)
			refs[n++] = ref;
		else
			pidref_done(&ref);
	}
	/* readdir of /proc returns pids in ascending order, so refs[] already is. */
	*ret_n = n;
	return 0;
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
