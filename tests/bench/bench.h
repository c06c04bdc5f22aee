/* SPDX-License-Identifier: MIT */
/*
 * vfio-broker benchmark suite: the broker against its physical floor (a minimal
 * SEQPACKET + SCM_RIGHTS server) and its peers (D-Bus, seatd), with every process
 * of a scenario pinned to one CPU. Not a test: nothing here asserts on time; targets
 * are printed MET or MISSED. See tests/bench/README.md.
 */
#pragma once

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "tests/lib/simtree.h"

#define BENCH_MAX_REPS 9

/* Everything the scenarios need to know about this run. */
struct bench_env {
	bool smoke;		/* tiny counts: exercise everything, measure nothing */
	int reps;		/* repetitions of the client scenarios, interleaved */
	double scale;		/* multiplies every op count (BENCH_SCALE) */
	int cpu;		/* every process of a scenario runs on this CPU; -1: unpinned */
	uid_t client_uid;	/* clients drop to this uid (0: stay root) */
	char build[PATH_MAX];	/* build dir: vfio-brokerd lives there */
	char out[PATH_MAX];	/* build/bench: results.json, logs, callgrind output */
	char work[PATH_MAX];	/* scratch dir of this run: sockets, policy */
	char self[PATH_MAX];	/* this binary, for re-exec under valgrind or perf */
	char brokerd[PATH_MAX]; /* build/vfio-brokerd */
	char policy_dir[PATH_MAX];
	struct sim_tree tree; /* BENCH_SCALE_GROUPS groups: lease scenarios, RSS */
	struct sim_tree big;  /* BENCH_INVENTORY_GROUPS groups: start-up and list */
	bool tree_ok, big_ok;
	bool callgrind;	      /* CALLGRIND=1: instruction counts */
	struct sim_tree tiny; /* one group: the start-up baseline */
	bool tiny_ok;
	bool private_tmp;	 /* /tmp is this run's own tmpfs (BENCH_TMPFS=0: the host's) */
	char loadavg_start[128]; /* /proc/loadavg when the run began: how busy the machine was */
	/* Counters in shared memory, bumped by client processes. */
	unsigned long *shared;
};

enum bench_counter {
	COUNT_NOT_RELEASED, /* release said released:false; the op waited for the event */
	_COUNT_MAX,
};

#define BENCH_SCALE_GROUPS     1100 /* one group per client, 1,000 clients and some spare */
#define BENCH_INVENTORY_GROUPS 4096 /* the inventory target's tree */
#define BENCH_BENCH_UID	       2000 /* the policy's unprivileged user */

/* ---- time ---------------------------------------------------------------------------- */

uint64_t now_ns(void);
void sleep_us(unsigned us);

/* ---- one measured run: latencies of every op of every client ----------------------------- */

/*
 * A client is a forked process. setup runs first (connect, drop nothing: the runner drops
 * privileges before it when asked), then `warmup` untimed ops, then every client waits for
 * the common start, then `ops` timed ops. op returns 0 or a negative errno and may report
 * a split: the time (now_ns()) at which the first part of a compound op ended, or 0.
 */
struct client_ops {
	int (*setup)(void *arg, unsigned idx, void **state);
	int (*op)(void *arg, unsigned idx, void *state, uint64_t *split_ns);
	void (*teardown)(void *arg, unsigned idx, void *state);
	void *arg;
};

struct run_spec {
	unsigned clients;
	unsigned warmup; /* per client */
	unsigned ops;	 /* per client */
	bool drop_privs; /* run clients as env->client_uid */
	/* Called in the runner's process once every client is set up and warmed up, before the
	 * start; a negative return aborts the run. May be NULL. */
	int (*before_start)(void *arg);
	void *before_start_arg;
};

struct run_shm; /* shared memory the clients write their latencies to */

struct run_result {
	uint64_t *lat_ns;   /* ops * clients latencies, in no particular order */
	uint64_t *split_ns; /* same, the first part of each op (0 where op reports none) */
	size_t n;
	double elapsed_s; /* first client's start to last client's end */
	char error[512];  /* non-empty: the run failed */
};

/* Allocates shared memory for a run (before any fork that must see it). NULL on failure. */
struct run_shm *run_shm_create(const struct run_spec *spec);
/* Forks the clients, runs them, waits for them. 0 or -errno; details land in the shm. */
int run_clients(struct run_shm *shm, const struct bench_env *env, const struct run_spec *spec,
		const struct client_ops *ops);
/* Copies what the clients wrote into *res (the caller frees res with run_result_free). */
void run_shm_collect(struct run_shm *shm, struct run_result *res);
void run_shm_set_error(struct run_shm *shm, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void run_shm_destroy(struct run_shm *shm);
void run_result_free(struct run_result *res);
/* run_shm_create + run_clients + run_shm_collect + run_shm_destroy. */
int run_measure(const struct bench_env *env, const struct run_spec *spec,
		const struct client_ops *ops, struct run_result *res);

/* In a freshly forked child: die with the parent, drop to uid when nonzero. 0 or -errno. */
int child_init(uid_t uid);
/* Waits up to timeout_ms for one byte on fd: 0, -ETIMEDOUT, or -EPIPE at EOF. */
int wait_byte(int fd, int timeout_ms);
/* SIGTERM, up to 5 s, then SIGKILL; reaps pid. Returns its wait status, or -errno. */
int proc_stop(pid_t pid);

/* ---- results --------------------------------------------------------------------------- */

enum row_status { ROW_OK, ROW_SKIPPED, ROW_ERROR };

struct row {
	char name[48];
	unsigned clients;
	enum row_status status;
	bool latency; /* has p50/p99/max (µs) */
	bool has_ops; /* has ops/s */
	int n_reps;
	double p50[BENCH_MAX_REPS], p99[BENCH_MAX_REPS], max[BENCH_MAX_REPS], ops[BENCH_MAX_REPS];
	char note[320]; /* reason for skip/error, or what the numbers mean */
	/* Extra numbers for the JSON object of this row ("rss_kib": ...). */
	struct {
		char key[32];
		double value;
	} extra[8];
	int n_extra;
	const char *floor_name; /* the row this one's "ratio to floor" divides by; NULL: none */
	bool info;		/* informational: a part of another row */
};

struct row *row_get(const char *name, unsigned clients);
struct row *row_find(const char *name, unsigned clients);
/* Adds one repetition's latency stats from res to the row (percentiles of res->lat_ns). */
void row_add_run(struct row *r, const struct run_result *res, bool split);
/* Adds one repetition from raw samples (µs; sorted in place). ops_s < 0: none. */
void row_add_samples(struct row *r, double *us, size_t n, double ops_s);
void row_fail(struct row *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void row_skip(struct row *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void row_note(struct row *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void row_extra(struct row *r, const char *key, double value);
double row_median(const struct row *r, const double *col);
bool row_usable(const struct row *r);

/* Free-form lines printed after the table (instruction counts, profiles). */
void report_section(const char *title, const char *text);
/* Adds a top-level member to results.json (takes the reference). */
struct json_object;
void report_json_add(const char *key, struct json_object *value);
/* The first fields of /proc/loadavg. */
void bench_loadavg(char *buf, size_t size);
/* Prints the table, the targets and writes results.json; returns the number of errored rows. */
int report_finish(const struct bench_env *env, double total_s);

/* ---- scenarios -------------------------------------------------------------------------- */

/* floor.c: the floor server (also run as `bench --floor-server SOCKET DEVDIR`). */
int floor_server_start(const struct bench_env *env, const char *socket, pid_t *ret_pid);
int floor_serve(const char *socket, const char *devdir, int ready_fd);
void bench_floor(const struct bench_env *env, int rep);
int floor_client_loop(const char *socket, const char *devdir, unsigned group, unsigned n,
		      bool fresh);

/* broker.c */
struct broker_proc {
	pid_t pid;
	char socket[PATH_MAX];
	char log[PATH_MAX];   /* the broker's stderr, on the scratch tmpfs: logging to a slow
			       * disk would be timed too (three lines per lease cycle) */
	char keep[PATH_MAX];  /* where its last 256 KiB are copied when it stops */
	char state[PATH_MAX]; /* its --state-dir, on the scratch tmpfs */
};
int broker_proc_start(const struct bench_env *env, const struct sim_tree *tree, const char *tag,
		      const char *const *wrapper, struct broker_proc *bp, double *ready_ms,
		      char *err, size_t err_size);
int broker_proc_stop(struct broker_proc *bp);
void bench_broker_lease(const struct bench_env *env, int rep);
void bench_broker_once(const struct bench_env *env);
int broker_client_loop(const char *socket, unsigned group, unsigned n, bool fresh);

/* dbus_peer.c, seatd_peer.c */
void bench_dbus(const struct bench_env *env, int rep);
void bench_seatd(const struct bench_env *env, int rep);

/* policy_bench.c */
void bench_policy(const struct bench_env *env);

/* counts.c: instruction counts (callgrind; perf stat where the PMU is there) */
void bench_counts(const struct bench_env *env);

/* snprintf that says -ENAMETOOLONG when it truncated (0 otherwise). */
int bench_fmt(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* A group file's path in a tree: DEVDIR/vfio/GROUP. */
void bench_group_path(const char *devdir, unsigned group, char *buf, size_t size);
/* Ops per client for a nominal count, after BENCH_SCALE and smoke. */
unsigned bench_count(const struct bench_env *env, unsigned full, unsigned smoke);
/* Reads the last lines of a log into buf (for error messages). */
void bench_log_tail(const char *path, char *buf, size_t size);
