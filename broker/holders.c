/* SPDX-License-Identifier: MIT */
#include "broker/holders.h"
#include "common/cleanup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
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
		if (holders_match(t, &sx))
			return true;
	}
	return false;
}

int holders_scan(const struct holders_target *target, pid_t *pids, size_t max, size_t *ret_n)
{
	_cleanup_closedir_ DIR *proc = NULL;
	pid_t self = getpid();
	struct dirent *de;
	size_t n = 0;

	proc = opendir("/proc");
	if (!proc)
		return -errno;
	while (n < max && (de = readdir(proc))) {
		char *end;
		long pid;

		if (de->d_name[0] < '1' || de->d_name[0] > '9')
			continue;
		errno = 0;
		pid = strtol(de->d_name, &end, 10);
		if (errno || *end || pid <= 0 || pid == self)
			continue;
		if (holders_process_has(dirfd(proc), de->d_name, target))
			pids[n++] = (pid_t)pid;
	}
	/* readdir of /proc returns pids in ascending order, so pids[] already is. */
	*ret_n = n;
	return 0;
}

void holders_format_pids(const pid_t *pids, size_t n, char *buf, size_t size)
{
	size_t len = 0;

	if (size == 0)
		return;
	buf[0] = '\0';
	for (size_t i = 0; i < n && len < size; i++) {
		int k = snprintf(buf + len, size - len, "%s%d", i ? ", " : "", (int)pids[i]);

		if (k < 0)
			break;
		len += (size_t)k;
	}
}
