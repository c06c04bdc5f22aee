/* SPDX-License-Identifier: MIT */
/*
 * Integration-test harness: a real vfio-brokerd on a simulated tree, real
 * sockets, and clients that are real unprivileged processes (fork + setuid).
 */
#pragma once

#include "tests/lib/simtree.h"

#include <stdbool.h>
#include <sys/types.h>

/* Test uids and gids: no passwd entries needed. */
#define UID_ALICE 2000
#define UID_BOB	  2001
#define UID_CAROL 2002
#define GID_USERS 2100 /* a supplementary group some tests grant by */

struct broker {
	pid_t pid;
	struct sim_tree sim;
	char dir[256]; /* scratch: socket, policy dir, log */
	char socket[PATH_MAX];
	char policy_dir[PATH_MAX];
	char log[PATH_MAX];
	char state_dir[PATH_MAX]; /* --state-dir: the lease table kept across restarts */
	/* Optional, set before broker_start: how a service manager would start the broker. */
	const char *const *wrapper;  /* argv run in front of the broker ("setpriv", ..., "--") */
	void (*before_exec)(void *); /* runs in the broker's child just before the exec */
	void *before_exec_arg;
};

/*
 * broker_setup creates the scratch dir, a simulated tree with the standard
 * groups and a policy dir holding `policy` as 10-test.json (NULL: none).
 * Standard groups: 7 = 0000:01:00.0 (e1000e NIC, on vfio-pci), 8 = 0000:02:00.0
 * (on vfio-pci), 9 = bridge 0000:04:00.0 (driverless) with 0000:05:01.0 +
 * 0000:05:02.0 behind it (both on vfio-pci), 10 = 0000:03:00.0 still on its host driver e1000e.
 */
void broker_setup(struct broker *b, const char *policy);
/*
 * broker_start runs the daemon with extra args (NULL-terminated list) and returns once it
 * answers a hello on its socket (up to 10 s); a broker that exits meanwhile fails the test.
 */
void broker_start(struct broker *b, ...) __attribute__((sentinel));
/*
 * broker_start_expecting_exit runs the daemon as broker_start does, for a
 * start-up that must fail: waits up to 10 s for it to exit and returns its
 * exit code (128+signal when killed).
 */
int broker_start_expecting_exit(struct broker *b, ...) __attribute__((sentinel));
/*
 * broker_crash kills the broker with SIGKILL and reaps it, leaving its tree,
 * socket file and state directory behind, as a crash would: broker_start
 * then starts a new one on the same.
 */
void broker_crash(struct broker *b);
/* broker_stop sends SIGTERM, waits, and asserts it exited 0. */
void broker_stop(struct broker *b);
/*
 * broker_teardown stops the broker if running (SIGTERM, SIGKILL after 10 s), removes every
 * file, and fails the test unless the broker exited 0 (VB_VALGRIND: 99 is memcheck's verdict).
 */
void broker_teardown(struct broker *b);
/* Writes json as name in the policy dir: made aside (mode 0644), then renamed in. */
void broker_write_policy(struct broker *b, const char *name, const char *json);
/* Number of open fds of the broker process. */
int broker_fd_count(const struct broker *b);
/* The same, once two readings 100 ms apart agree (start-up or a request settled). */
int broker_fd_count_settled(const struct broker *b);
/* Whether a line of the broker's log (its stderr) contains needle now. */
bool broker_log_contains(const struct broker *b, const char *needle);
/* Polls the log every 10 ms until a line contains needle: true, or false after 20 s (a
 * bound for a loaded machine: finding it sooner is the normal case). */
bool broker_log_wait(const struct broker *b, const char *needle);
bool broker_alive(const struct broker *b);

/*
 * run_as forks, drops to uid/gid (no supplementary groups but `extra_gid`
 * when nonzero), runs fn(arg) and returns its exit code (or 128+signal).
 */
int run_as(uid_t uid, gid_t extra_gid, int (*fn)(void *), void *arg);
/* spawn_as is run_as without waiting: returns the child's pid. */
pid_t spawn_as(uid_t uid, gid_t extra_gid, int (*fn)(void *), void *arg);
/* wait_exit waits for a child and returns its exit code or 128+signal. */
int wait_exit(pid_t pid);

/* A pipe-based rendezvous between a test and a spawned client. */
struct signal_pipe {
	int fd[2];
};
void signal_pipe_init(struct signal_pipe *p);
void signal_pipe_send(struct signal_pipe *p, char c);
/* Waits up to 10 s for one byte; returns it, or 0 on timeout/EOF. */
char signal_pipe_wait(struct signal_pipe *p);

/* Raw connection to the broker (no library), for hostile-client tests. */
int raw_connect(const char *socket);
int raw_send(int fd, const char *text);
/* Receives one packet with a timeout in ms; returns length, 0 on EOF, -errno. */
int raw_recv(int fd, char *buf, size_t size, int timeout_ms);

/* Polls cond() every 10 ms for up to 5 s. */
bool wait_until(bool (*cond)(void *), void *arg);
