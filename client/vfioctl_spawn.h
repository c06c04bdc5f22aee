/* SPDX-License-Identifier: MIT */
/*
 * Running the command a lease is for. The descriptors it inherits are numbered
 * from 3 in the order given (like systemd's LISTEN_FDS, so that
 * `crun --preserve-fds=N` and friends find them), and the environment says
 * which is which.
 */
#pragma once

#include <signal.h>
#include <stddef.h>
#include <sys/types.h>

#define SPAWN_FIRST_FD 3
#define SPAWN_MAX_FDS  80

struct spawn {
	char **argv;	  /* the command, argv[0] looked up in $PATH */
	const int *fds;	  /* inherited as SPAWN_FIRST_FD, SPAWN_FIRST_FD + 1, ... */
	size_t n_fds;	  /* at most SPAWN_MAX_FDS */
	char *const *env; /* "NAME=VALUE" set for the command (replacing any), NULL-terminated */
};

/*
 * spawn_start forks and runs s in the child, with the signal mask set to
 * child_mask and every other descriptor of ours left behind (they are all
 * O_CLOEXEC). Returns 0 and the child's pid once the command is running, or
 * -errno: the reason the command could not be started (the child is then
 * reaped), e.g. -ENOENT when it does not exist.
 */
int spawn_start(const struct spawn *s, const sigset_t *child_mask, pid_t *ret_pid);

/*
 * spawn_exec runs s in place of this process. Returns only on failure, with
 * -errno; by then the descriptors may have been moved.
 */
int spawn_exec(const struct spawn *s);

/* The exit status for a command that could not be started with error r: 127 or 126, as sh. */
int spawn_failure_status(int r);

/* The exit status that stands for a child's wait status: its own, or 128 + signal. */
int spawn_exit_status(int wstatus);
