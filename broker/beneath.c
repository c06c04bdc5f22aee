/* SPDX-License-Identifier: MIT */
#include "broker/beneath.h"
#include "common/cleanup.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define BENEATH_MAX_DEPTH 64
#define BENEATH_MAX_LINKS 40
/* openat2 returns EAGAIN when a rename raced with ".." resolution: retry a few times. */
#define BENEATH_MAX_RETRIES 8

/* Whether the kernel (or the emulator we run under) has openat2; learnt on first use. */
static bool openat2_missing;

static int beneath_openat2(int root_fd, const char *path, int flags, unsigned bflags, int *ret_fd)
{
	struct open_how how = {
		.flags = (uint64_t)flags,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
	};

	if (bflags & BENEATH_NO_SYMLINKS)
		how.resolve |= RESOLVE_NO_SYMLINKS;
	for (int i = 0; i < BENEATH_MAX_RETRIES; i++) {
		long fd = syscall(SYS_openat2, root_fd, path, &how, sizeof(how));

		if (fd >= 0) {
			*ret_fd = (int)fd;
			return 0;
		}
		if (errno != EAGAIN && errno != EINTR)
			return -errno;
	}
	return -EAGAIN;
}

/*
 * The last step of the walk: name inside parent_fd, already opened O_PATH as
 * path_fd with stat st. O_PATH callers get that descriptor; others get a real
 * open of the same name, checked to be the very inode the walk saw.
 */
static int beneath_walk_finish(int parent_fd, const char *name, int path_fd, const struct stat *st,
			       int flags, int *ret_fd)
{
	_cleanup_close_ int fd = -1;
	struct stat st2;

	if ((flags & O_DIRECTORY) && !S_ISDIR(st->st_mode))
		return -ENOTDIR;
	if (flags & O_PATH) {
		fd = fcntl(path_fd, F_DUPFD_CLOEXEC, 3);
		if (fd < 0)
			return -errno;
		*ret_fd = TAKE_FD(fd);
		return 0;
	}
	fd = openat(parent_fd, name, flags | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st2) < 0)
		return -errno;
	if (st2.st_dev != st->st_dev || st2.st_ino != st->st_ino)
		return -EAGAIN; /* replaced while we walked: refuse rather than guess */
	*ret_fd = TAKE_FD(fd);
	return 0;
}

/*
 * The fallback walk: one component at a time with O_PATH|O_NOFOLLOW, keeping
 * a stack of directory descriptors so that ".." pops instead of re-resolving
 * and can never climb above the root. A symlink's target is spliced in front
 * of the rest of the path; absolute targets leave the tree and are refused.
 */
static int beneath_walk(int root_fd, const char *path, int flags, unsigned bflags, int *ret_fd)
{
	int stack[BENEATH_MAX_DEPTH];
	_cleanup_free_ char *rest = strdup(path);
	size_t depth = 0;
	unsigned links = 0;
	const char *pos;
	int r = 0;

	if (!rest)
		return -ENOMEM;
	stack[0] = root_fd;
	pos = rest;
	for (;;) {
		char name[NAME_MAX + 1];
		const char *end;
		struct stat st;
		bool is_last;
		int fd;

		while (*pos == '/')
			pos++;
		if (*pos == '\0') {
			/* The path named a directory we already hold (e.g. "a/.."). */
			struct stat dst;

			if (fstat(stack[depth], &dst) < 0) {
				r = -errno;
				break;
			}
			r = beneath_walk_finish(stack[depth], ".", stack[depth], &dst, flags,
						ret_fd);
			break;
		}
		end = strchrnul(pos, '/');
		if ((size_t)(end - pos) > NAME_MAX) {
			r = -ENAMETOOLONG;
			break;
		}
		memcpy(name, pos, (size_t)(end - pos));
		name[end - pos] = '\0';
		pos = end;
		while (*end == '/')
			end++;
		is_last = *end == '\0';

		if (strcmp(name, ".") == 0)
			continue;
		if (strcmp(name, "..") == 0) {
			if (depth == 0) {
				r = -EXDEV;
				break;
			}
			close(stack[depth--]);
			continue;
		}

		fd = openat(stack[depth], name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0) {
			r = -errno;
			break;
		}
		if (fstat(fd, &st) < 0) {
			r = -errno;
			close(fd);
			break;
		}
		if (S_ISLNK(st.st_mode) && !(is_last && (flags & O_NOFOLLOW))) {
			char target[PATH_MAX];
			ssize_t n;
			char *joined;

			if ((bflags & BENEATH_NO_SYMLINKS) || ++links > BENEATH_MAX_LINKS) {
				r = -ELOOP;
				close(fd);
				break;
			}
			n = readlinkat(fd, "", target, sizeof(target) - 1);
			close(fd);
			if (n < 0) {
				r = -errno;
				break;
			}
			target[n] = '\0';
			if (target[0] == '/') {
				r = -EXDEV;
				break;
			}
			if (asprintf(&joined, "%s/%s", target, pos) < 0) {
				r = -ENOMEM;
				break;
			}
			free(rest);
			rest = joined;
			pos = rest;
			continue;
		}
		if (is_last) {
			if (S_ISLNK(st.st_mode) && !(flags & O_PATH))
				r = -ELOOP;
			else
				r = beneath_walk_finish(stack[depth], name, fd, &st, flags, ret_fd);
			close(fd);
			break;
		}
		if (!S_ISDIR(st.st_mode) || depth + 1 >= BENEATH_MAX_DEPTH) {
			r = S_ISDIR(st.st_mode) ? -ENAMETOOLONG : -ENOTDIR;
			close(fd);
			break;
		}
		stack[++depth] = fd;
	}
	while (depth > 0)
		close(stack[depth--]);
	return r;
}

int beneath_open(int root_fd, const char *path, int flags, unsigned bflags, int *ret_fd)
{
	int r;

	if (!path || path[0] == '/')
		return -EXDEV;
	/* openat2 refuses O_PATH combined with anything but O_DIRECTORY and O_NOFOLLOW. */
	flags |= O_CLOEXEC;
	if (!(flags & O_PATH))
		flags |= O_NOCTTY;
	if (!openat2_missing) {
		r = beneath_openat2(root_fd, path, flags, bflags, ret_fd);
		if (r != -ENOSYS)
			return r;
		openat2_missing = true;
	}
	return beneath_walk(root_fd, path, flags, bflags, ret_fd);
}

int beneath_read_attr(int dir_fd, const char *name, char *buf, size_t size)
{
	_cleanup_close_ int fd = -1;
	struct stat st;
	size_t len = 0;

	if (size < 2)
		return -EINVAL;
	/* O_NONBLOCK: a FIFO planted in a simulated tree must not stall the broker. */
	fd = openat(dir_fd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EBADF;
	while (len < size) {
		ssize_t n = read(fd, buf + len, size - len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if (len >= size)
		return -EFBIG;
	if (len > 0 && buf[len - 1] == '\n')
		len--;
	buf[len] = '\0';
	if (strlen(buf) != len)
		return -EBADMSG;
	return 0;
}

int beneath_read_file(int root_fd, const char *path, char *buf, size_t size, size_t *ret_len)
{
	_cleanup_close_ int fd = -1;
	int r;

	if (size < 2)
		return -EINVAL;
	/* O_NONBLOCK: a FIFO planted in a simulated tree must not stall the broker. */
	r = beneath_open(root_fd, path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK, 0, &fd);
	if (r < 0)
		return r;
	return beneath_read_fd(fd, buf, size, ret_len);
}

int beneath_read_fd(int fd, char *buf, size_t size, size_t *ret_len)
{
	ssize_t n;

	/* One read: sysfs fills a whole attribute in it, and a file this small comes whole. */
	do
		n = read(fd, buf, size);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	if ((size_t)n >= size)
		return -EFBIG;
	buf[n] = '\0';
	if (strlen(buf) != (size_t)n)
		return -EBADMSG;
	*ret_len = (size_t)n;
	return 0;
}

int beneath_readlink_basename(int dir_fd, const char *name, char *buf, size_t size)
{
	char target[PATH_MAX];
	const char *base;
	ssize_t n;

	n = readlinkat(dir_fd, name, target, sizeof(target) - 1);
	if (n < 0)
		return -errno;
	target[n] = '\0';
	while (n > 0 && target[n - 1] == '/')
		target[--n] = '\0';
	base = strrchr(target, '/');
	base = base ? base + 1 : target;
	if (!*base)
		return -EINVAL;
	if (strlen(base) >= size)
		return -ENAMETOOLONG;
	strcpy(buf, base);
	return 0;
}
