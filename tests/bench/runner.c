/* SPDX-License-Identifier: MIT */
/*
 * The client runner: N forked client processes, one connection each, one request in flight
 * each, a common start after warm-up, and per-op latencies written to shared memory.
 */
#include "tests/bench/bench.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct run_shm {
	size_t size;
	unsigned clients, ops;
	int error_set;
	char error[512];
	uint64_t *start_ns, *end_ns, *lat, *split; /* point into this mapping */
	unsigned char data[];
};

int bench_fmt(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void sleep_us(unsigned us)
{
	struct timespec ts = {.tv_sec = us / 1000000, .tv_nsec = (long)(us % 1000000) * 1000};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

int child_init(uid_t uid)
{
	pid_t parent = getppid();

	if (uid != 0) {
		if (setgroups(0, NULL) < 0 || setresgid(uid, uid, uid) < 0 ||
		    setresuid(uid, uid, uid) < 0)
			return -errno;
	}
	/* After the uid change: changing credentials clears the parent-death signal. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
		return -errno;
	if (getppid() != parent)
		_exit(127);
	return 0;
}

int wait_byte(int fd, int timeout_ms)
{
	struct pollfd pfd = {.fd = fd, .events = POLLIN};
	char c;
	int r;

	do
		r = poll(&pfd, 1, timeout_ms);
	while (r < 0 && errno == EINTR);
	if (r == 0)
		return -ETIMEDOUT;
	if (r < 0)
		return -errno;
	return read(fd, &c, 1) == 1 ? 0 : -EPIPE;
}

int proc_stop(pid_t pid)
{
	int status;

	if (pid <= 0)
		return -ESRCH;
	kill(pid, SIGTERM);
	for (int i = 0; i < 500; i++) {
		pid_t w = waitpid(pid, &status, WNOHANG);

		if (w == pid)
			return status;
		if (w < 0 && errno != EINTR)
			return -errno;
		sleep_us(10000);
	}
	kill(pid, SIGKILL);
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -errno;
	return status;
}

struct run_shm *run_shm_create(const struct run_spec *spec)
{
	size_t n = (size_t)spec->clients * spec->ops;
	size_t size =
		sizeof(struct run_shm) + sizeof(uint64_t) * (2 * (size_t)spec->clients + 2 * n);
	struct run_shm *shm;

	shm = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (shm == MAP_FAILED)
		return NULL;
	shm->size = size;
	shm->clients = spec->clients;
	shm->ops = spec->ops;
	shm->start_ns = (uint64_t *)shm->data;
	shm->end_ns = shm->start_ns + spec->clients;
	shm->lat = shm->end_ns + spec->clients;
	shm->split = shm->lat + n;
	return shm;
}

void run_shm_destroy(struct run_shm *shm)
{
	if (shm)
		munmap(shm, shm->size);
}

void run_shm_set_error(struct run_shm *shm, const char *fmt, ...)
{
	va_list ap;

	if (__atomic_exchange_n(&shm->error_set, 1, __ATOMIC_SEQ_CST))
		return; /* the first error is the interesting one */
	va_start(ap, fmt);
	vsnprintf(shm->error, sizeof(shm->error), fmt, ap);
	va_end(ap);
}

static void write_byte(int fd, char c)
{
	while (write(fd, &c, 1) < 0 && errno == EINTR)
		;
}

static int run_one_client(struct run_shm *shm, const struct bench_env *env,
			  const struct run_spec *spec, const struct client_ops *ops, unsigned idx,
			  int ready_fd, int go_fd)
{
	void *state = NULL;
	uint64_t split;
	size_t base = (size_t)idx * spec->ops;
	char c;
	int r;

	r = child_init(spec->drop_privs ? env->client_uid : 0);
	if (r < 0) {
		run_shm_set_error(shm, "client %u: cannot drop to uid %u: %s", idx,
				  (unsigned)env->client_uid, strerror(-r));
		goto fail;
	}
	if (ops->setup && (r = ops->setup(ops->arg, idx, &state)) < 0) {
		run_shm_set_error(shm, "client %u: setup failed: %s", idx, strerror(-r));
		goto fail;
	}
	for (unsigned i = 0; i < spec->warmup; i++) {
		split = 0;
		r = ops->op(ops->arg, idx, state, &split);
		if (r < 0) {
			run_shm_set_error(shm, "client %u: warm-up op %u failed: %s", idx, i,
					  strerror(-r));
			goto fail;
		}
	}
	write_byte(ready_fd, 'R');
	/* The start: the runner closes the write end of the go pipe. */
	while (read(go_fd, &c, 1) < 0 && errno == EINTR)
		;
	shm->start_ns[idx] = now_ns();
	for (unsigned i = 0; i < spec->ops; i++) {
		uint64_t t0 = now_ns(), t1;

		split = 0;
		r = ops->op(ops->arg, idx, state, &split);
		t1 = now_ns();
		if (r < 0) {
			run_shm_set_error(shm, "client %u: op %u failed: %s", idx, i, strerror(-r));
			return 1;
		}
		shm->lat[base + i] = t1 - t0;
		shm->split[base + i] = split ? split - t0 : 0;
	}
	shm->end_ns[idx] = now_ns();
	if (ops->teardown)
		ops->teardown(ops->arg, idx, state);
	return 0;
fail:
	write_byte(ready_fd, 'E');
	return 1;
}

static void kill_all(const pid_t *pids, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (pids[i] > 0)
			kill(pids[i], SIGKILL);
}

/* Waits for every pid; returns how many did not exit 0 and describes the first one. */
static unsigned reap_all(pid_t *pids, unsigned n, char *first, size_t size)
{
	unsigned bad = 0;

	for (unsigned i = 0; i < n; i++) {
		int status;

		if (pids[i] <= 0)
			continue;
		while (waitpid(pids[i], &status, 0) < 0 && errno == EINTR)
			;
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
			if (!bad++ && first) {
				if (WIFSIGNALED(status))
					bench_fmt(first, size, "client %u killed by signal %d", i,
						  WTERMSIG(status));
				else
					bench_fmt(first, size, "client %u exited with status %d", i,
						  WEXITSTATUS(status));
			}
		}
		pids[i] = -1;
	}
	return bad;
}

int run_clients(struct run_shm *shm, const struct bench_env *env, const struct run_spec *spec,
		const struct client_ops *ops)
{
	int ready[2], go[2], r = 0;
	unsigned got = 0, errors = 0;
	pid_t *pids;
	char first[128] = "";

	pids = calloc(spec->clients, sizeof(*pids));
	if (!pids)
		return -ENOMEM;
	if (pipe2(ready, O_CLOEXEC) < 0 || pipe2(go, O_CLOEXEC) < 0) {
		free(pids);
		return -errno;
	}
	fflush(NULL);
	for (unsigned i = 0; i < spec->clients; i++) {
		pid_t pid = fork();

		if (pid < 0) {
			r = -errno;
			run_shm_set_error(shm, "fork of client %u failed: %s", i, strerror(errno));
			break;
		}
		if (pid == 0) {
			close(ready[0]);
			close(go[1]);
			_exit(run_one_client(shm, env, spec, ops, i, ready[1], go[0]));
		}
		pids[i] = pid;
	}
	close(ready[1]);
	close(go[0]);

	/* Everyone set up and warmed up (or failed)? Poll so that a crashed client is seen. */
	while (r == 0 && got < spec->clients) {
		struct pollfd pfd = {.fd = ready[0], .events = POLLIN};
		char buf[256];
		ssize_t n;

		if (poll(&pfd, 1, 120000) == 0) {
			run_shm_set_error(shm, "clients not ready after 120 s (%u of %u)", got,
					  spec->clients);
			r = -ETIMEDOUT;
			break;
		}
		n = read(ready[0], buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			run_shm_set_error(shm, "a client died during set-up (%u of %u ready)", got,
					  spec->clients);
			r = -EPIPE;
			break;
		}
		for (ssize_t k = 0; k < n; k++)
			if (buf[k] == 'E')
				errors++;
		got += (unsigned)n;
		if (errors) {
			r = -EIO;
			break;
		}
	}
	if (r == 0 && spec->before_start) {
		r = spec->before_start(spec->before_start_arg);
		if (r < 0)
			run_shm_set_error(shm, "measurement before the start failed: %s",
					  strerror(-r));
	}
	if (r < 0)
		kill_all(pids, spec->clients);
	close(go[1]); /* the start */
	if (reap_all(pids, spec->clients, first, sizeof(first)) && r == 0) {
		run_shm_set_error(shm, "%s", first);
		r = -EIO;
	}
	close(ready[0]);
	free(pids);
	if (r == 0 && shm->error_set)
		r = -EIO;
	return r;
}

void run_shm_collect(struct run_shm *shm, struct run_result *res)
{
	size_t n = (size_t)shm->clients * shm->ops;
	uint64_t first = UINT64_MAX, last = 0;

	memset(res, 0, sizeof(*res));
	if (shm->error_set) {
		bench_fmt(res->error, sizeof(res->error), "%s", shm->error);
		return;
	}
	res->lat_ns = malloc(sizeof(uint64_t) * (n ? n : 1));
	res->split_ns = malloc(sizeof(uint64_t) * (n ? n : 1));
	if (!res->lat_ns || !res->split_ns) {
		bench_fmt(res->error, sizeof(res->error), "out of memory");
		return;
	}
	memcpy(res->lat_ns, shm->lat, sizeof(uint64_t) * n);
	memcpy(res->split_ns, shm->split, sizeof(uint64_t) * n);
	res->n = n;
	for (unsigned i = 0; i < shm->clients; i++) {
		if (shm->start_ns[i] < first)
			first = shm->start_ns[i];
		if (shm->end_ns[i] > last)
			last = shm->end_ns[i];
	}
	res->elapsed_s = last > first ? (double)(last - first) / 1e9 : 0;
}

void run_result_free(struct run_result *res)
{
	free(res->lat_ns);
	free(res->split_ns);
	res->lat_ns = res->split_ns = NULL;
}

int run_measure(const struct bench_env *env, const struct run_spec *spec,
		const struct client_ops *ops, struct run_result *res)
{
	struct run_shm *shm = run_shm_create(spec);
	int r;

	memset(res, 0, sizeof(*res));
	if (!shm) {
		bench_fmt(res->error, sizeof(res->error), "mmap: %s", strerror(errno));
		return -ENOMEM;
	}
	r = run_clients(shm, env, spec, ops);
	run_shm_collect(shm, res);
	if (r < 0 && !res->error[0])
		bench_fmt(res->error, sizeof(res->error), "%s", strerror(-r));
	run_shm_destroy(shm);
	return r;
}
