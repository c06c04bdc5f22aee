/* SPDX-License-Identifier: MIT */
/*
 * The broker's scenarios: build/vfio-brokerd on a simulated tree, clients through
 * libvfiobroker.
 *
 *   broker-lease        one connection per client; one op = lease + close(fd) + release
 *   broker-lease-fresh  one op = connect (hello) + lease + close + release + disconnect
 *   startup-N-groups    exec to the first answered hello, trees of 1 and 4,096 groups
 *   list-4096-groups    `list` of 4,096 groups
 *   broker-rss          VmRSS with 1,000 connected idle clients
 *   hard-remove         vfiobroker_remove(hard) until the group is free again
 */
#include "tests/bench/bench.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "client/vfiobroker.h"

void bench_log_tail(const char *path, char *buf, size_t size)
{
	char data[4096];
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	off_t end;

	buf[0] = '\0';
	if (fd < 0)
		return;
	end = lseek(fd, 0, SEEK_END);
	lseek(fd, end > (off_t)sizeof(data) - 1 ? end - (off_t)sizeof(data) + 1 : 0, SEEK_SET);
	n = read(fd, data, sizeof(data) - 1);
	close(fd);
	if (n <= 0)
		return;
	data[n] = '\0';
	/* The last three lines, newlines as " | ". */
	char *p = data + n;
	int lines = 0;
	while (p > data && lines < 4)
		if (*--p == '\n')
			lines++;
	if (*p == '\n')
		p++;
	bench_fmt(buf, size, "%s", p);
	for (char *q = buf; *q; q++)
		if (*q == '\n')
			*q = q[1] ? '|' : '\0';
}

static void broker_keep_log(struct broker_proc *bp);

int broker_proc_start(const struct bench_env *env, const struct sim_tree *tree, const char *tag,
		      const char *const *wrapper, struct broker_proc *bp, double *ready_ms,
		      char *err, size_t err_size)
{
	const char *argv[48];
	size_t n = 0;
	uint64_t t0, deadline;
	pid_t pid;

	memset(bp, 0, sizeof(*bp));
	bp->pid = -1;
	if (access(env->brokerd, X_OK) < 0) {
		bench_fmt(err, err_size, "%s not built (make all)", env->brokerd);
		return -ENOENT;
	}
	bench_fmt(bp->socket, sizeof(bp->socket), "%s/broker-%s.sock", env->work, tag);
	bench_fmt(bp->log, sizeof(bp->log), "%s/broker-%s.log", env->work, tag);
	bench_fmt(bp->keep, sizeof(bp->keep), "%s/logs/broker-%s.log", env->out, tag);
	bench_fmt(bp->state, sizeof(bp->state), "%s/state-%s", env->work, tag);
	unlink(bp->socket);
	for (; wrapper && wrapper[n]; n++)
		argv[n] = wrapper[n];
	argv[n++] = env->brokerd;
	argv[n++] = "--socket";
	argv[n++] = bp->socket;
	argv[n++] = "--policy";
	argv[n++] = env->policy_dir;
	argv[n++] = "--sysfs-root";
	argv[n++] = tree->sys;
	argv[n++] = "--dev-root";
	argv[n++] = tree->dev;
	argv[n++] = "--log-target";
	argv[n++] = "stderr";
	/* The lease table is saved on every change; on a real host /run is a tmpfs, and so
	 * is the bench's scratch directory (the default /run/vfio-brokerd is ext4 here). */
	argv[n++] = "--state-dir";
	argv[n++] = bp->state;
	argv[n++] = "--max-connections";
	argv[n++] = "2000";
	argv[n++] = "--max-connections-per-uid";
	argv[n++] = "2000";
	/* 1,000 clients of one uid hold up to 1,000 leases at once (default limit: 64) */
	argv[n++] = "--max-leases-per-uid";
	argv[n++] = "2000";
	/* Every client is one uid, asking thousands of times a second (default: 200/s).
	 * The highest rate keeps the token bucket on the measured path without refusing. */
	argv[n++] = "--max-requests-per-uid";
	argv[n++] = "1000000";
	argv[n++] = "--request-burst-per-uid";
	argv[n++] = "1000000";
	/* valgrind 3.19 cannot run seccomp(2) (syscall 317): the broker would refuse to start */
	if (wrapper && wrapper[0] && !strcmp(wrapper[0], "valgrind"))
		argv[n++] = "--no-sandbox";
	argv[n] = NULL;

	fflush(NULL);
	t0 = now_ns();
	pid = fork();
	if (pid < 0) {
		bench_fmt(err, err_size, "fork: %s", strerror(errno));
		return -errno;
	}
	if (pid == 0) {
		int log = open(bp->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

		child_init(0);
		if (log >= 0) {
			dup2(log, STDOUT_FILENO);
			dup2(log, STDERR_FILENO);
		}
		execvp(argv[0], (char **)argv);
		fprintf(stderr, "exec %s: %m\n", argv[0]);
		_exit(127);
	}
	bp->pid = pid;
	/* Ready = a hello is answered. Poll every 200 us; each failed try costs a few us. */
	deadline = t0 + (wrapper ? 300 : 20) * 1000000000ull;
	for (;;) {
		struct vfiobroker *b;
		int status, r = vfiobroker_connect(bp->socket, &b);

		if (r == 0) {
			uint64_t t1 = now_ns();

			vfiobroker_disconnect(b);
			if (ready_ms)
				*ready_ms = (double)(t1 - t0) / 1e6;
			return 0;
		}
		if (waitpid(pid, &status, WNOHANG) == pid) {
			char tail[1024];

			bp->pid = -1;
			bench_log_tail(bp->log, tail, sizeof(tail));
			broker_keep_log(bp);
			bench_fmt(err, err_size,
				  "vfio-brokerd exited during start-up (status 0x%x): %s", status,
				  tail);
			return -ECHILD;
		}
		if (now_ns() > deadline) {
			broker_proc_stop(bp);
			bench_fmt(err, err_size, "vfio-brokerd not ready after %s s (last: %s)",
				  wrapper ? "300" : "20", strerror(-r));
			return -ETIMEDOUT;
		}
		sleep_us(200);
	}
}

static void copy_range(int in, int out, off_t from, off_t to)
{
	char buf[65536];

	lseek(in, from, SEEK_SET);
	while (from < to) {
		size_t want = (size_t)(to - from) < sizeof(buf) ? (size_t)(to - from) : sizeof(buf);
		ssize_t n = read(in, buf, want);

		if (n <= 0 || write(out, buf, (size_t)n) != n)
			return;
		from += n;
	}
}

/*
 * Copies the log to bp->keep, its first 64 KiB (start-up, valgrind's warnings) and last
 * 192 KiB (the end of the run), and removes it from the tmpfs.
 */
static void broker_keep_log(struct broker_proc *bp)
{
	const off_t head = 65536, tail = 196608;
	int in = open(bp->log, O_RDONLY | O_CLOEXEC), out;
	off_t end;

	if (in < 0)
		return;
	out = open(bp->keep, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	end = lseek(in, 0, SEEK_END);
	if (out >= 0 && end <= head + tail) {
		copy_range(in, out, 0, end);
	} else if (out >= 0) {
		char gap[96];

		copy_range(in, out, 0, head);
		bench_fmt(gap, sizeof(gap), "\n[... %lld bytes of log left out ...]\n",
			  (long long)(end - head - tail));
		(void)!write(out, gap, strlen(gap));
		copy_range(in, out, end - tail, end);
	}
	if (out >= 0)
		close(out);
	close(in);
	unlink(bp->log);
}

int broker_proc_stop(struct broker_proc *bp)
{
	int status = 0;

	if (bp->pid > 0)
		status = proc_stop(bp->pid);
	bp->pid = -1;
	unlink(bp->socket);
	broker_keep_log(bp);
	return status;
}

/* ---- clients ------------------------------------------------------------------------------- */

struct broker_client {
	const char *socket;
	bool fresh;
	struct vfiobroker *b;
	unsigned group;
	unsigned long *not_released; /* shared counter */
};

static int client_fail(struct vfiobroker *b, const char *what, unsigned group, int r)
{
	const char *msg = b ? vfiobroker_error_message(b) : NULL;

	fprintf(stderr, "bench client %d: %s group %u: %s%s%s\n", (int)getpid(), what, group,
		strerror(-r), msg ? ": " : "", msg ? msg : "");
	return r;
}

/* After a release that said released:false: the group is free once RELEASED arrives. */
static int wait_released(struct vfiobroker *b, unsigned group)
{
	for (;;) {
		struct vfiobroker_event ev;
		struct pollfd pfd = {.fd = vfiobroker_get_fd(b), .events = POLLIN};
		int r = vfiobroker_next_event(b, &ev);

		if (r == 0 && ev.type == VFIOBROKER_EVENT_RELEASED && ev.group == group)
			return 0;
		if (r == 0)
			continue;
		if (r != -EAGAIN)
			return r;
		r = poll(&pfd, 1, 10000);
		if (r == 0)
			return -ETIMEDOUT;
		if (r < 0 && errno != EINTR)
			return -errno;
	}
}

/* lease + close + release on b; *split (may be NULL) = when the lease call returned. */
static int lease_cycle(struct broker_client *c, struct vfiobroker *b, uint64_t *split)
{
	bool released = true;
	int fd, r;

	r = vfiobroker_lease(b, c->group, &fd);
	if (r < 0)
		return client_fail(b, "lease", c->group, r);
	if (split)
		*split = now_ns();
	close(fd);
	r = vfiobroker_release(b, c->group, &released);
	if (r < 0)
		return client_fail(b, "release", c->group, r);
	if (!released) {
		if (c->not_released)
			__atomic_fetch_add(c->not_released, 1, __ATOMIC_RELAXED);
		r = wait_released(b, c->group);
		if (r < 0)
			return client_fail(b, "wait for RELEASED of", c->group, r);
	}
	return 0;
}

static int broker_setup(void *arg, unsigned idx, void **state)
{
	struct broker_client *c = malloc(sizeof(*c));
	int r;

	if (!c)
		return -ENOMEM;
	*c = *(struct broker_client *)arg;
	c->group = idx + 1;
	c->b = NULL;
	if (!c->fresh) {
		r = vfiobroker_connect(c->socket, &c->b);
		if (r < 0) {
			free(c);
			return client_fail(NULL, "connect for", idx + 1, r);
		}
	}
	*state = c;
	return 0;
}

static int broker_op(void *arg, unsigned idx, void *state, uint64_t *split)
{
	struct broker_client *c = state;
	struct vfiobroker *b;
	int r;

	if (!c->fresh)
		return lease_cycle(c, c->b, split);
	r = vfiobroker_connect(c->socket, &b);
	if (r < 0)
		return client_fail(NULL, "connect for", c->group, r);
	r = lease_cycle(c, b, NULL);
	vfiobroker_disconnect(b);
	return r;
}

static void broker_teardown(void *arg, unsigned idx, void *state)
{
	struct broker_client *c = state;

	vfiobroker_disconnect(c->b);
	free(c);
}

int broker_client_loop(const char *socket, unsigned group, unsigned n, bool fresh)
{
	struct broker_client tmpl = {.socket = socket, .fresh = fresh};
	void *state;
	int r = broker_setup(&tmpl, group - 1, &state);

	for (unsigned i = 0; r == 0 && i < n; i++)
		r = broker_op(&tmpl, 0, state, NULL);
	if (r < 0)
		return 1;
	broker_teardown(&tmpl, 0, state);
	return 0;
}

static long proc_fd_count(pid_t pid);
static long proc_status_kib(pid_t pid, const char *key);

/* The fd count once two readings 100 ms apart agree (start-up's last hello is done). */
static long proc_fd_count_settled(pid_t pid)
{
	long prev = -1, now = proc_fd_count(pid);

	for (int i = 0; i < 50 && now != prev; i++) {
		sleep_us(100000);
		prev = now;
		now = proc_fd_count(pid);
	}
	return now;
}

/*
 * After every client has gone, the broker must hold exactly the fds it held
 * before they came, and its memory must not have grown without bound (a leak
 * per lease would show at these counts). Errors, not timings: they fail the
 * row in every mode, smoke included.
 */
static void broker_check_resources(struct row *row, struct broker_proc *bp, long fds_before,
				   long rss_before_kib)
{
	long fds = proc_fd_count_settled(bp->pid), rss;

	rss = proc_status_kib(bp->pid, "VmRSS");
	if (fds != fds_before)
		row_fail(row, "vfio-brokerd holds %ld fds after the clients left, %ld before", fds,
			 fds_before);
	else if (rss_before_kib > 0 && rss > rss_before_kib + 16 * 1024)
		row_fail(row, "vfio-brokerd grew from %ld to %ld KiB over the run", rss_before_kib,
			 rss);
}

/* Checks the broker's exit and log after a run; fails the row when it crashed. */
static void broker_finish(struct row *row, struct broker_proc *bp)
{
	int status = broker_proc_stop(bp);

	if (status != 0 && row->status == ROW_OK) {
		char tail[1024];

		bench_log_tail(bp->keep, tail, sizeof(tail));
		if (WIFSIGNALED(status))
			row_fail(row, "vfio-brokerd died of signal %d: %s", WTERMSIG(status), tail);
		else
			row_fail(row, "vfio-brokerd exited with status %d on SIGTERM: %s",
				 WEXITSTATUS(status), tail);
	}
}

static void broker_run(const struct bench_env *env, const char *name, bool fresh, unsigned clients,
		       unsigned ops, unsigned warmup)
{
	struct row *row = row_get(name, clients), *split_row = NULL;
	struct broker_client tmpl = {.fresh = fresh,
				     .not_released = &env->shared[COUNT_NOT_RELEASED]};
	struct client_ops cops = {broker_setup, broker_op, broker_teardown, &tmpl};
	struct run_spec spec = {
		.clients = clients, .warmup = warmup, .ops = ops, .drop_privs = true};
	struct broker_proc bp;
	struct run_result res;
	unsigned long not_released_before = env->shared[COUNT_NOT_RELEASED];
	long fds_before, rss_before;
	char err[1400];

	row->floor_name = fresh ? "floor-fresh" : "floor";
	if (!fresh && clients == 1) {
		split_row = row_get("broker-lease.lease", 1);
		split_row->floor_name = "floor";
		split_row->info = true;
		if (!split_row->note[0])
			row_note(split_row, "the lease call alone, within broker-lease");
	}
	if (row->status != ROW_OK)
		return;
	if (!env->tree_ok) {
		row_fail(row, "no simulated tree");
		return;
	}
	if (broker_proc_start(env, &env->tree, name, NULL, &bp, NULL, err, sizeof(err)) < 0) {
		row_fail(row, "%s", err);
		if (split_row)
			row_fail(split_row, "see broker-lease");
		return;
	}
	tmpl.socket = bp.socket;
	fds_before = proc_fd_count_settled(bp.pid);
	rss_before = proc_status_kib(bp.pid, "VmRSS");
	run_measure(env, &spec, &cops, &res);
	if (res.error[0]) {
		char tail[1024];

		bench_log_tail(bp.log, tail, sizeof(tail));
		row_fail(row, "%s (broker log: %s)", res.error, tail);
		if (split_row)
			row_fail(split_row, "see broker-lease");
	} else {
		row_add_run(row, &res, false);
		if (split_row)
			row_add_run(split_row, &res, true);
	}
	run_result_free(&res);
	if (row->status == ROW_OK)
		broker_check_resources(row, &bp, fds_before, rss_before);
	broker_finish(row, &bp);
	if (env->shared[COUNT_NOT_RELEASED] != not_released_before) {
		double prev = 0;

		for (int i = 0; i < row->n_extra; i++)
			if (!strcmp(row->extra[i].key, "release_not_released"))
				prev = row->extra[i].value;
		row_extra(row, "release_not_released",
			  prev + (double)(env->shared[COUNT_NOT_RELEASED] - not_released_before));
	}
}

void bench_broker_lease(const struct bench_env *env, int rep)
{
	(void)rep;
	broker_run(env, "broker-lease", false, 1, bench_count(env, 50000, 300),
		   bench_count(env, 1000, 20));
	broker_run(env, "broker-lease", false, 64, bench_count(env, 400, 5),
		   bench_count(env, 20, 1));
	broker_run(env, "broker-lease", false, 1000, bench_count(env, 30, 2),
		   bench_count(env, 2, 1));
	broker_run(env, "broker-lease-fresh", true, 1, bench_count(env, 10000, 100),
		   bench_count(env, 200, 5));
	broker_run(env, "broker-lease-fresh", true, 64, bench_count(env, 160, 3),
		   bench_count(env, 5, 1));
}

/* ---- one-off measurements -------------------------------------------------------------- */

static void bench_startup(const struct bench_env *env, const struct sim_tree *tree, unsigned groups,
			  bool ok, bool with_list)
{
	char name[48], err[1400];
	struct row *row, *list_row = NULL;
	unsigned reps = env->smoke ? 1 : 7;
	double *ms = calloc(reps, sizeof(double));
	size_t n_ms = 0;

	bench_fmt(name, sizeof(name), "startup-%u-group%s", groups, groups == 1 ? "" : "s");
	row = row_get(name, 0);
	row_note(row, "exec to first answered hello (us)");
	if (with_list) {
		bench_fmt(name, sizeof(name), "list-%u-groups", groups);
		list_row = row_get(name, 1);
	}
	if (!ok || !ms) {
		row_fail(row, "no simulated tree of %u groups", groups);
		if (list_row)
			row_fail(list_row, "no simulated tree");
		free(ms);
		return;
	}
	for (unsigned i = 0; i < reps; i++) {
		struct broker_proc bp;
		double ready;

		if (broker_proc_start(env, tree, name, NULL, &bp, &ready, err, sizeof(err)) < 0) {
			row_fail(row, "%s", err);
			if (list_row)
				row_fail(list_row, "broker did not start");
			free(ms);
			return;
		}
		ms[n_ms++] = ready * 1e3; /* µs, like every other row */
		if (list_row && i == 0) {
			unsigned n = env->smoke ? 2 : 30;
			double *us = calloc(n, sizeof(double));
			struct vfiobroker *b = NULL;
			int r = us ? vfiobroker_connect(bp.socket, &b) : -ENOMEM;

			for (unsigned k = 0; r == 0 && k < n; k++) {
				struct vfiobroker_group *g;
				size_t ng;
				uint64_t t0 = now_ns();

				r = vfiobroker_list(b, &g, &ng);
				us[k] = (double)(now_ns() - t0) / 1e3;
				if (r == 0) {
					vfiobroker_groups_free(g, ng);
					if (ng != groups) {
						row_fail(list_row,
							 "list returned %zu groups, not %u", ng,
							 groups);
						r = -EPROTO;
					}
				} else {
					row_fail(list_row, "list: %s (%s)", strerror(-r),
						 vfiobroker_error_message(b) ?: "");
				}
			}
			if (r == 0 && list_row->status == ROW_OK)
				row_add_samples(list_row, us, n, -1);
			vfiobroker_disconnect(b);
			free(us);
		}
		broker_finish(row, &bp);
	}
	row_add_samples(row, ms, n_ms, -1);
	free(ms);
}

struct rss_probe {
	pid_t pid;
	long rss_kib, hwm_kib, fds;
};

static long proc_status_kib(pid_t pid, const char *key)
{
	char path[64], line[256];
	size_t klen = strlen(key);
	long v = -1;
	FILE *f;

	bench_fmt(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, klen) && line[klen] == ':') {
			v = strtol(line + klen + 1, NULL, 10);
			break;
		}
	fclose(f);
	return v;
}

static long proc_fd_count(pid_t pid)
{
	char path[64];
	struct dirent *e;
	long n = 0;
	DIR *d;

	bench_fmt(path, sizeof(path), "/proc/%d/fd", (int)pid);
	d = opendir(path);
	if (!d)
		return -1;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

static int rss_before_start(void *arg)
{
	struct rss_probe *p = arg;

	sleep_us(200000); /* let the broker finish with the last hello */
	p->rss_kib = proc_status_kib(p->pid, "VmRSS");
	p->hwm_kib = proc_status_kib(p->pid, "VmHWM");
	p->fds = proc_fd_count(p->pid);
	return p->rss_kib < 0 ? -ESRCH : 0;
}

static int idle_op(void *arg, unsigned idx, void *state, uint64_t *split)
{
	return 0;
}

static void bench_rss(const struct bench_env *env)
{
	struct row *row = row_get("broker-rss", 1000);
	struct broker_client tmpl = {.fresh = false};
	struct client_ops cops = {broker_setup, idle_op, broker_teardown, &tmpl};
	struct rss_probe probe;
	struct run_spec spec = {.clients = 1000,
				.ops = 0,
				.drop_privs = true,
				.before_start = rss_before_start,
				.before_start_arg = &probe};
	struct broker_proc bp;
	struct run_result res;
	long idle_kib, idle_fds;
	char err[1400];

	if (!env->tree_ok) {
		row_fail(row, "no simulated tree");
		return;
	}
	if (broker_proc_start(env, &env->tree, "rss", NULL, &bp, NULL, err, sizeof(err)) < 0) {
		row_fail(row, "%s", err);
		return;
	}
	sleep_us(100000);
	idle_kib = proc_status_kib(bp.pid, "VmRSS");
	idle_fds = proc_fd_count(bp.pid);
	probe.pid = bp.pid;
	tmpl.socket = bp.socket;
	run_measure(env, &spec, &cops, &res);
	if (res.error[0]) {
		row_fail(row, "%s", res.error);
	} else {
		row_extra(row, "rss_idle_kib", (double)idle_kib);
		row_extra(row, "rss_kib", (double)probe.rss_kib);
		row_extra(row, "hwm_kib", (double)probe.hwm_kib);
		row_extra(row, "fds_idle", (double)idle_fds);
		row_extra(row, "fds", (double)probe.fds);
		row_note(row,
			 "VmRSS %.2f MiB with 1,000 idle connections (%.2f MiB before; %.1f "
			 "KiB each), %ld fds, tree of %d groups",
			 probe.rss_kib / 1024.0, idle_kib / 1024.0,
			 (double)(probe.rss_kib - idle_kib) / 1000, probe.fds, BENCH_SCALE_GROUPS);
	}
	run_result_free(&res);
	broker_finish(row, &bp);
}

struct holder_arg {
	const char *socket;
	unsigned group;
	int ready_fd;
};

static int holder_main(struct holder_arg *a)
{
	struct vfiobroker *b;
	int fd, r;

	r = vfiobroker_connect(a->socket, &b);
	if (r == 0)
		r = vfiobroker_lease(b, a->group, &fd);
	if (r < 0) {
		client_fail(b, "holder: lease", a->group, r);
		return 1;
	}
	(void)!write(a->ready_fd, "L", 1);
	for (;;)
		pause();
}

static void bench_hard_remove(const struct bench_env *env)
{
	struct row *row = row_get("hard-remove", 1);
	unsigned reps = env->smoke ? 2 : 15, n = 0, killed = 0;
	double *us = calloc(reps, sizeof(double)), broker_ms = 0;
	struct vfiobroker *admin = NULL;
	struct broker_proc bp;
	char err[1400];
	int r;

	row_note(row, "remove(hard) issued until it returns with the group free");
	if (!env->tree_ok || !us) {
		row_fail(row, "no simulated tree");
		free(us);
		return;
	}
	if (broker_proc_start(env, &env->tree, "remove", NULL, &bp, NULL, err, sizeof(err)) < 0) {
		row_fail(row, "%s", err);
		free(us);
		return;
	}
	r = vfiobroker_connect(bp.socket, &admin);
	if (r < 0)
		row_fail(row, "admin connect: %s", strerror(-r));
	for (unsigned i = 0; r == 0 && i < reps; i++) {
		struct holder_arg a = {.socket = bp.socket, .group = 100 + i};
		unsigned elapsed = 0;
		int p[2], status, fd;
		bool released = true;
		uint64_t t0;
		pid_t pid;

		if (pipe2(p, O_CLOEXEC) < 0)
			break;
		fflush(NULL);
		pid = fork();
		if (pid == 0) {
			close(p[0]);
			a.ready_fd = p[1];
			if (child_init(env->client_uid) < 0)
				_exit(1);
			_exit(holder_main(&a));
		}
		close(p[1]);
		r = pid < 0 ? -errno : wait_byte(p[0], 10000);
		close(p[0]);
		if (r < 0) {
			row_fail(row, "holder did not lease group %u: %s", a.group, strerror(-r));
			if (pid > 0)
				proc_stop(pid);
			break;
		}
		t0 = now_ns();
		r = vfiobroker_remove(admin, a.group, true, 0, &elapsed);
		us[n] = (double)(now_ns() - t0) / 1e3;
		if (r < 0) {
			row_fail(row, "remove(hard) of group %u: %s (%s)", a.group, strerror(-r),
				 vfiobroker_error_message(admin) ?: "");
			proc_stop(pid);
			break;
		}
		n++;
		broker_ms += elapsed;
		/* Free again: the administrator can lease it at once. */
		r = vfiobroker_lease(admin, a.group, &fd);
		if (r < 0) {
			row_fail(row, "group %u not free after remove(hard): %s (%s)", a.group,
				 strerror(-r), vfiobroker_error_message(admin) ?: "");
			proc_stop(pid);
			break;
		}
		close(fd);
		r = vfiobroker_release(admin, a.group, &released);
		if (r == 0 && !released)
			r = wait_released(admin, a.group);
		if (r < 0) {
			row_fail(row, "release after remove: %s", strerror(-r));
			proc_stop(pid);
			break;
		}
		/* The broker kills the holder; give it a moment, then make sure. */
		for (int k = 0; k < 500 && waitpid(pid, &status, WNOHANG) == 0; k++)
			sleep_us(1000);
		if (kill(pid, 0) == 0) {
			status = proc_stop(pid);
		}
		if (WIFSIGNALED(status) && WTERMSIG(status) != SIGTERM)
			killed++;
	}
	vfiobroker_disconnect(admin);
	if (row->status == ROW_OK && n > 0) {
		row_add_samples(row, us, n, -1);
		row_extra(row, "broker_elapsed_ms_mean", broker_ms / n);
		row_note(row,
			 "broker-reported elapsed %.1f ms mean; holder killed by the broker in "
			 "%u of %u",
			 broker_ms / n, killed, n);
	}
	broker_finish(row, &bp);
	free(us);
}

void bench_broker_once(const struct bench_env *env)
{
	bench_startup(env, &env->tiny, 1, env->tiny_ok, false);
	bench_startup(env, &env->big, BENCH_INVENTORY_GROUPS, env->big_ok, true);
	bench_rss(env);
	bench_hard_remove(env);
}
