/* SPDX-License-Identifier: MIT */
/*
 * The seatd peer: libseat_open_device + libseat_close_device + close(fd) against Debian's
 * seatd, the lean peer (binary protocol, one round trip per call).
 *
 * seatd 0.7.0 has no socket option (the socket is compiled in as /run/seatd.sock) and
 * opens only evdev (/dev/input/eventN) and DRM (/dev/dri) nodes. So a manager process enters a
 * private mount namespace with tmpfs over /run and /dev (the host's stay untouched), mknods
 * /dev/input/event0 with /dev/null's numbers (1:3; seatd's EVIOCREVOKE on close then fails
 * with ENOTTY, which -l silent hides), starts seatd as root with SEATD_VTBOUND=0 and runs
 * the client there. A seat has one active session, so there is no 64-client seatd figure.
 */
#include "tests/bench/bench.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef HAVE_LIBSEAT
#define HAVE_LIBSEAT 0
#endif
#if HAVE_LIBSEAT
#include <libseat.h>
#endif

#define SEATD	    "/usr/sbin/seatd"
#define SEAT_DEVICE "/dev/input/event0"

#if HAVE_LIBSEAT
struct seat_client {
	struct libseat *seat;
	bool active;
};

static void seat_enable(struct libseat *seat, void *userdata)
{
	((struct seat_client *)userdata)->active = true;
}

static void seat_disable(struct libseat *seat, void *userdata)
{
	((struct seat_client *)userdata)->active = false;
	libseat_disable_seat(seat);
}

static const struct libseat_seat_listener seat_listener = {
	.enable_seat = seat_enable,
	.disable_seat = seat_disable,
};

static int seat_setup(void *arg, unsigned idx, void **state)
{
	struct seat_client *c = calloc(1, sizeof(*c));
	uint64_t deadline = now_ns() + 5000000000ull;

	if (!c)
		return -ENOMEM;
	libseat_set_log_level(LIBSEAT_LOG_LEVEL_ERROR);
	c->seat = libseat_open_seat(&seat_listener, c);
	if (!c->seat) {
		int r = -errno;

		free(c);
		return r ? r : -EIO;
	}
	while (!c->active) {
		if (libseat_dispatch(c->seat, 100) < 0 || now_ns() > deadline) {
			libseat_close_seat(c->seat);
			free(c);
			return -ETIMEDOUT;
		}
	}
	*state = c;
	return 0;
}

static int seat_op(void *arg, unsigned idx, void *state, uint64_t *split)
{
	struct seat_client *c = state;
	int fd = -1, dev;

	dev = libseat_open_device(c->seat, SEAT_DEVICE, &fd);
	if (dev < 0)
		return -errno ? -errno : -EIO;
	if (split)
		*split = now_ns();
	if (libseat_close_device(c->seat, dev) < 0) {
		close(fd);
		return -errno ? -errno : -EIO;
	}
	close(fd);
	return 0;
}

static void seat_teardown(void *arg, unsigned idx, void *state)
{
	struct seat_client *c = state;

	libseat_close_seat(c->seat);
	free(c);
}

/* In the manager: a private /run and /dev with the fake device node. */
static int seat_namespace(void)
{
	if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
	    mount("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755") < 0 ||
	    mount("tmpfs", "/dev", "tmpfs", MS_NOSUID, "mode=0755") < 0)
		return -errno;
	if (mkdir("/dev/input", 0755) < 0 ||
	    mknod(SEAT_DEVICE, S_IFCHR | 0660, makedev(1, 3)) < 0 ||
	    mknod("/dev/null", S_IFCHR | 0666, makedev(1, 3)) < 0)
		return -errno;
	return 0;
}

static int seat_manager(struct run_shm *shm, const struct bench_env *env,
			const struct run_spec *spec)
{
	struct client_ops cops = {seat_setup, seat_op, seat_teardown, NULL};
	int p[2], r;
	pid_t seatd;

	r = seat_namespace();
	if (r < 0) {
		run_shm_set_error(shm, "private mount namespace for seatd: %s", strerror(-r));
		return 1;
	}
	if (pipe(p) < 0)
		return 1;
	seatd = fork();
	if (seatd == 0) {
		int null = open("/dev/null", O_RDWR | O_CLOEXEC);

		child_init(0);
		close(p[0]);
		if (p[1] != 3) {
			dup2(p[1], 3);
			close(p[1]);
		}
		if (null >= 0) {
			dup2(null, STDIN_FILENO);
			dup2(null, STDOUT_FILENO);
		}
		setenv("SEATD_VTBOUND", "0", 1);
		execl(SEATD, "seatd", "-n", "3", "-l", "silent", (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	r = seatd < 0 ? -errno : wait_byte(p[0], 10000);
	close(p[0]);
	if (r < 0) {
		run_shm_set_error(shm, "seatd did not become ready: %s", strerror(-r));
		if (seatd > 0)
			proc_stop(seatd);
		return 1;
	}
	setenv("LIBSEAT_BACKEND", "seatd", 1);
	r = run_clients(shm, env, spec, &cops);
	proc_stop(seatd);
	return r < 0;
}
#endif

void bench_seatd(const struct bench_env *env, int rep)
{
	struct row *row = row_get("seatd", 1), *split_row = row_get("seatd.open_device", 1);
	struct row *many = row_get("seatd", 64);
	struct run_spec spec = {.clients = 1,
				.warmup = bench_count(env, 1000, 10),
				.ops = bench_count(env, 50000, 300)};

	(void)rep;
	row->floor_name = split_row->floor_name = "floor";
	split_row->info = true;
	row_skip(many, "a seat has one active session: seatd answers the other clients' "
		       "open_device with EPERM");
	if (!split_row->note[0])
		row_note(split_row, "open_device alone, within seatd");
	if (row->status != ROW_OK)
		return;
#if !HAVE_LIBSEAT
	(void)spec;
	row_skip(row, "built without libseat (apt-get install libseat-dev)");
	row_skip(split_row, "built without libseat");
#else
	struct run_shm *shm;
	struct run_result res;
	int status;
	pid_t pid;

	if (access(SEATD, X_OK) < 0) {
		row_skip(row, "%s not installed (apt-get install seatd)", SEATD);
		row_skip(split_row, "seatd not installed");
		return;
	}
	if (geteuid() != 0) {
		row_skip(row, "needs root (private mount namespace, seatd)");
		row_skip(split_row, "needs root");
		return;
	}
	shm = run_shm_create(&spec);
	if (!shm) {
		row_fail(row, "mmap: %s", strerror(errno));
		return;
	}
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		child_init(0);
		_exit(seat_manager(shm, env, &spec));
	}
	if (pid < 0 || waitpid(pid, &status, 0) != pid)
		status = -1;
	run_shm_collect(shm, &res);
	run_shm_destroy(shm);
	if (!res.error[0] && status != 0)
		bench_fmt(res.error, sizeof(res.error), "seatd manager failed (status 0x%x)",
			  status);
	if (res.error[0]) {
		row_fail(row, "%s", res.error);
		row_fail(split_row, "see seatd");
	} else {
		row_add_run(row, &res, false);
		row_add_run(split_row, &res, true);
	}
	run_result_free(&res);
#endif
}
