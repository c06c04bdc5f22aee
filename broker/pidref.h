/* SPDX-License-Identifier: MIT */
/*
 * A reference to one process that survives pid reuse: a pid plus a pidfd.
 * Where pidfd_open() is missing (valgrind 3.19 returns ENOSYS), the
 * reference is an fd of the /proc/<pid> directory instead: reads through it
 * fail once that process is gone, even if the number is reused, and its
 * exit is found by polling rather than by epoll (see exit_watch).
 *
 * Everything read from /proc by pid is checked against the reference
 * afterwards: if the process is still alive after the read, the read was
 * of that process.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

struct pidref {
	pid_t pid;
	int fd;	       /* pidfd, or a /proc/<pid> directory fd; -1 when unset */
	bool is_pidfd; /* fd is a real pidfd (pollable, usable with pidfd_send_signal) */
	/*
	 * Which reference this is a copy of: a new number for every reference made
	 * from a pid or a pidfd, kept by pidref_copy(). Equal lineage means the same
	 * process, so pidref_equal() needs one liveness check instead of two.
	 */
	uint64_t lineage;
};

#define PIDREF_NULL ((struct pidref){.pid = 0, .fd = -1, .is_pidfd = false, .lineage = 0})

/* Refer to the process pid now is; the caller checks it is the process it meant. */
int pidref_set_pid(struct pidref *ret, pid_t pid);
/* Refer to pid through pidfd (taken on success and on failure). */
int pidref_set_pidfd(struct pidref *ret, pid_t pid, int pidfd);
int pidref_copy(const struct pidref *p, struct pidref *ret);
void pidref_done(struct pidref *p);

static inline bool pidref_is_set(const struct pidref *p)
{
	return p && p->pid > 0 && p->fd >= 0;
}

/* 1 while the process has not exited (a zombie has), 0 once it has, or -errno. */
int pidref_is_alive(const struct pidref *p);
/* Same process: same pid and both alive (a live pid cannot name two processes). */
bool pidref_equal(const struct pidref *a, const struct pidref *b);
/*
 * Copies of one reference (pidref_copy): the same process, alive or not,
 * known without a system call. Where the caller has just checked one of
 * them alive, this answers what pidref_equal() would.
 */
static inline bool pidref_same_lineage(const struct pidref *a, const struct pidref *b)
{
	return pidref_is_set(a) && pidref_is_set(b) && a->lineage == b->lineage;
}
int pidref_kill(const struct pidref *p, int sig);

/* Read /proc/<pid>/<name> (at most max bytes) into a NUL-terminated allocation. */
int pidref_read_proc(const struct pidref *p, const char *name, size_t max, char **ret,
		     size_t *ret_len);
/* The effective uid from /proc/<pid>/status. */
int pidref_get_euid(const struct pidref *p, uid_t *ret);
/*
 * 1 if child is ancestor or a descendant of it (following the ppid chain in
 * /proc), 0 if not, -errno when it cannot be told; callers treat errors as 0.
 */
int pidref_is_descendant(const struct pidref *child, const struct pidref *ancestor);

/* Called once when the watched process has exited. */
typedef void (*exit_watch_fn)(void *userdata);
struct exit_watch;

/* Watch p (borrowed: it must outlive the watch) for exit: epoll on a pidfd, else a timer. */
int exit_watch_new(sd_event *e, const struct pidref *p, exit_watch_fn fn, void *userdata,
		   struct exit_watch **ret);
struct exit_watch *exit_watch_free(struct exit_watch *w);
