/* SPDX-License-Identifier: MIT */
/*
 * Who holds a file: a scan of /proc/<pid>/fd for descriptors of one device
 * node. Used when a group file stays open after its holder released it or
 * died (a child inherited it, or it was passed on), to name the process
 * that now has it and, for a hard removal, to kill it.
 */
#pragma once

#include "broker/pidref.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

/* What "the same file" means: the device number for char devices, else dev and inode. */
struct holders_target {
	bool is_chr;
	dev_t rdev;
	dev_t dev;
	ino_t ino;
};

void holders_target_from_stat(const struct stat *st, struct holders_target *ret);

/*
 * holders_scan stores in refs (at most max, by ascending pid) a reference
 * to every process other than the broker with a descriptor of target, and
 * their number in *ret_n; release them with holders_release(). Each
 * reference (a pidfd) is taken before the process's descriptors are read
 * and checked alive after, so it is the process that had the descriptor,
 * whatever pid reuse did meanwhile: act on it only through the reference.
 * O_PATH descriptors do not count: opening a path with O_PATH needs no
 * permission on the file, and such a descriptor can do nothing with a
 * group. It never blocks on a file system: each descriptor is looked at
 * with statx(AT_STATX_DONT_SYNC), so FUSE or NFS servers are not
 * consulted. Descriptors in flight in a socket, or pinned only by a VFIO
 * device fd, are invisible to it.
 */
int holders_scan(const struct holders_target *target, struct pidref *refs, size_t max,
		 size_t *ret_n);

/* Where a sliced scan goes on: descriptors >= fd of process pid (both 0: the start). */
struct holders_cursor {
	pid_t pid;
	int fd;
};

/*
 * holders_scan_slice is holders_scan from *cursor on, for at most budget_usec
 * of the calling thread's CPU time: a process with a million descriptors costs
 * seconds of statx(); the scanner process (scanner.h) runs it slice by slice
 * and sleeps in between (issue 13, item 5). Process skip (0: none) is passed
 * over besides the caller: the scanner skips the broker. Returns 1 when the scan reached the end of
 * /proc or max processes (*cursor back at the start), 0 when the budget ran out first
 * (*cursor is where to go on; refs has what this slice found), or -errno.
 */
int holders_scan_slice(const struct holders_target *target, struct holders_cursor *cursor,
		       uint64_t budget_usec, pid_t skip, struct pidref *refs, size_t max,
		       size_t *ret_n);
void holders_release(struct pidref *refs, size_t n);

/* "123, 456" (the pids of refs) into buf. */
void holders_format_pids(const struct pidref *refs, size_t n, char *buf, size_t size);
