/* SPDX-License-Identifier: MIT */
/*
 * Path resolution confined to a tree: every sysfs and /dev path the broker
 * opens is resolved beneath an O_PATH descriptor of its root, so that no
 * symlink (or "..") in a tree someone else populated can lead outside it.
 * openat2(RESOLVE_BENEATH) where the kernel has it; a checked
 * component-by-component walk where it does not (ENOSYS, e.g. valgrind).
 */
#pragma once

#include <stddef.h>

enum beneath_flags {
	BENEATH_NO_SYMLINKS = 1 << 0, /* refuse every symlink, not only escaping ones */
};

/*
 * beneath_open opens path (relative, never absolute) beneath root_fd with
 * open flags (O_CLOEXEC and O_NOCTTY are added; O_NOFOLLOW refuses a
 * symlink as the last component). Symlinks are followed only while they stay
 * inside the tree, magic links never.
 * Returns 0 and *ret_fd, or -errno: -EXDEV when the path would leave the
 * tree, -ELOOP on a refused symlink.
 */
int beneath_open(int root_fd, const char *path, int flags, unsigned beneath_flags, int *ret_fd);

/*
 * beneath_read_attr reads a small attribute file name directly inside
 * dir_fd (one component, not followed if a symlink) into buf as a string
 * with the trailing newline removed. Returns 0, -EFBIG when it does not fit.
 */
int beneath_read_attr(int dir_fd, const char *name, char *buf, size_t size);

/*
 * beneath_read_file reads a small file at path beneath root_fd (the last
 * component not followed if a symlink) with one read(), as sysfs attributes
 * are read, into buf as a string. Returns 0 and its length, -EFBIG when it
 * does not fit, -EBADMSG when it holds a NUL byte.
 */
int beneath_read_file(int root_fd, const char *path, char *buf, size_t size, size_t *ret_len);
/* beneath_read_file's read, of a file fd already open (size >= 2). */
int beneath_read_fd(int fd, char *buf, size_t size, size_t *ret_len);

/* beneath_readlink_basename reads the symlink name inside dir_fd and returns
 * the last component of its target (e.g. the driver of a PCI device). */
int beneath_readlink_basename(int dir_fd, const char *name, char *buf, size_t size);
