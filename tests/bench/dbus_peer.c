/* SPDX-License-Identifier: MIT */
/*
 * The D-Bus peer: the shape of logind's TakeDevice and Chrome OS permission_broker's
 * OpenPath. A private dbus-daemon (its own config file in the scratch dir, allow-all
 * policy), an sd-bus server owning org.vfiobroker.Bench with the method OpenPath(s) -> h
 * (prefix check, open(), reply with the fd as UNIX_FD, close()), and sd-bus clients
 * calling it. One op = one method call; the client's unref of the reply closes the fd.
 */
#include "tests/bench/bench.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-bus.h>
#include <unistd.h>

#define BUS_NAME    "org.vfiobroker.Bench"
#define BUS_PATH    "/org/vfiobroker/Bench"
#define BUS_IFACE   "org.vfiobroker.Bench"
#define DBUS_DAEMON "/usr/bin/dbus-daemon"

static int method_open_path(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
	const char *devdir = userdata, *path;
	size_t len = strlen(devdir);
	int fd, r;

	r = sd_bus_message_read(m, "s", &path);
	if (r < 0)
		return r;
	if (strncmp(path, devdir, len) != 0 || path[len] != '/' || strstr(path, "/.."))
		return sd_bus_error_set_errno(error, EACCES);
	fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return sd_bus_error_set_errno(error, errno);
	r = sd_bus_reply_method_return(m, "h", fd);
	close(fd);
	return r;
}

static const sd_bus_vtable bench_vtable[] = {
	SD_BUS_VTABLE_START(0),
	SD_BUS_METHOD("OpenPath", "s", "h", method_open_path, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_VTABLE_END,
};

static int bus_open(const char *address, sd_bus **ret)
{
	sd_bus *bus = NULL;
	int r;

	r = sd_bus_new(&bus);
	if (r < 0)
		return r;
	if ((r = sd_bus_set_address(bus, address)) < 0 || (r = sd_bus_set_bus_client(bus, 1)) < 0 ||
	    (r = sd_bus_negotiate_fds(bus, 1)) < 0 || (r = sd_bus_start(bus)) < 0) {
		sd_bus_unref(bus);
		return r;
	}
	*ret = bus;
	return 0;
}

static int dbus_serve(const char *address, const char *devdir, int ready_fd)
{
	sd_bus *bus;
	int r;

	r = bus_open(address, &bus);
	if (r < 0 ||
	    (r = sd_bus_add_object_vtable(bus, NULL, BUS_PATH, BUS_IFACE, bench_vtable,
					  (void *)devdir)) < 0 ||
	    (r = sd_bus_request_name(bus, BUS_NAME, 0)) < 0) {
		fprintf(stderr, "dbus server: %s\n", strerror(-r));
		return 1;
	}
	(void)!write(ready_fd, "R", 1);
	close(ready_fd);
	for (;;) {
		r = sd_bus_process(bus, NULL);
		if (r < 0) {
			fprintf(stderr, "dbus server: sd_bus_process: %s\n", strerror(-r));
			return 1;
		}
		if (r > 0)
			continue;
		r = sd_bus_wait(bus, UINT64_MAX);
		if (r < 0 && r != -EINTR)
			return 1;
	}
}

/* Writes the daemon's config, starts it, and reads the address it prints when ready. */
static int dbus_daemon_start(const struct bench_env *env, pid_t *ret_pid, char *address,
			     size_t size, char *err, size_t err_size)
{
	char conf[PATH_MAX + 16], log[PATH_MAX + 16];
	int p[2], r;
	size_t len = 0;
	pid_t pid;
	FILE *f;

	bench_fmt(conf, sizeof(conf), "%s/dbus.conf", env->work);
	bench_fmt(log, sizeof(log), "%s/logs/dbus-daemon.log", env->out);
	f = fopen(conf, "we");
	if (!f) {
		bench_fmt(err, err_size, "cannot write %s: %s", conf, strerror(errno));
		return -errno;
	}
	fprintf(f,
		"<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration "
		"1.0//EN\"\n"
		" \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n"
		"<busconfig>\n"
		"  <type>custom</type>\n"
		"  <listen>unix:path=%s/dbus.sock</listen>\n"
		"  <auth>EXTERNAL</auth>\n"
		"  <limit name=\"max_connections_per_user\">10000</limit>\n"
		"  <limit name=\"max_completed_connections\">10000</limit>\n"
		"  <policy context=\"default\">\n"
		"    <allow user=\"*\"/>\n"
		"    <allow own=\"*\"/>\n"
		"    <allow send_destination=\"*\"/>\n"
		"    <allow receive_sender=\"*\"/>\n"
		"  </policy>\n"
		"</busconfig>\n",
		env->work);
	fclose(f);
	if (pipe(p) < 0)
		return -errno;
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		r = -errno;
		close(p[0]);
		close(p[1]);
		return r;
	}
	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

		child_init(0);
		close(p[0]);
		if (fd >= 0) {
			dup2(fd, STDOUT_FILENO);
			dup2(fd, STDERR_FILENO);
		}
		if (p[1] != 3) {
			dup2(p[1], 3);
			close(p[1]);
		}
		char config_arg[PATH_MAX + 32];

		bench_fmt(config_arg, sizeof(config_arg), "--config-file=%s", conf);
		execl(DBUS_DAEMON, "dbus-daemon", config_arg, "--nofork", "--nopidfile",
		      "--print-address=3", (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	for (;;) {
		struct pollfd pfd = {.fd = p[0], .events = POLLIN};
		ssize_t n;

		if (poll(&pfd, 1, 10000) <= 0) {
			r = -ETIMEDOUT;
			break;
		}
		n = read(p[0], address + len, size - 1 - len);
		if (n <= 0) {
			r = -EPIPE;
			break;
		}
		len += (size_t)n;
		address[len] = '\0';
		if (strchr(address, '\n') || len == size - 1) {
			*strchrnul(address, '\n') = '\0';
			r = 0;
			break;
		}
	}
	close(p[0]);
	if (r < 0) {
		char tail[1024];

		proc_stop(pid);
		bench_log_tail(log, tail, sizeof(tail));
		bench_fmt(err, err_size, "dbus-daemon did not start: %s: %s", strerror(-r), tail);
		return r;
	}
	*ret_pid = pid;
	return 0;
}

/* ---- client ------------------------------------------------------------------------------ */

struct dbus_client_arg {
	const char *address;
	const char *devdir;
};

struct dbus_client {
	sd_bus *bus;
	char path[PATH_MAX];
};

static int dbus_setup(void *arg, unsigned idx, void **state)
{
	const struct dbus_client_arg *a = arg;
	struct dbus_client *c = calloc(1, sizeof(*c));
	int r;

	if (!c)
		return -ENOMEM;
	bench_group_path(a->devdir, idx + 1, c->path, sizeof(c->path));
	r = bus_open(a->address, &c->bus);
	if (r < 0) {
		free(c);
		return r;
	}
	*state = c;
	return 0;
}

static int dbus_op(void *arg, unsigned idx, void *state, uint64_t *split)
{
	struct dbus_client *c = state;
	sd_bus_error error = SD_BUS_ERROR_NULL;
	sd_bus_message *reply = NULL;
	int fd = -1, r;

	r = sd_bus_call_method(c->bus, BUS_NAME, BUS_PATH, BUS_IFACE, "OpenPath", &error, &reply,
			       "s", c->path);
	if (r < 0) {
		fprintf(stderr, "dbus client: OpenPath: %s\n", error.message ?: strerror(-r));
		sd_bus_error_free(&error);
		return r;
	}
	r = sd_bus_message_read(reply, "h", &fd);
	sd_bus_message_unref(reply); /* closes fd */
	return r < 0 ? r : fd >= 0 ? 0 : -EBADF;
}

static void dbus_teardown(void *arg, unsigned idx, void *state)
{
	struct dbus_client *c = state;

	sd_bus_flush_close_unref(c->bus);
	free(c);
}

static uid_t dbus_client_uid(uid_t uid, bool *changed);

static void dbus_run(const struct bench_env *env, unsigned clients, unsigned ops, unsigned warmup)
{
	struct row *row = row_get("dbus", clients);
	char address[512], err[1400];
	struct dbus_client_arg arg = {.address = address, .devdir = env->tree.dev};
	struct client_ops cops = {dbus_setup, dbus_op, dbus_teardown, &arg};
	struct run_spec spec = {
		.clients = clients, .warmup = warmup, .ops = ops, .drop_privs = true};
	struct run_result res;
	pid_t daemon = -1, server;
	int p[2], r;

	static struct bench_env as;
	const struct bench_env *env_as = &as;
	bool changed;

	as = *env;
	as.client_uid = dbus_client_uid(env->client_uid, &changed);
	row->floor_name = "floor";
	if (row->status != ROW_OK)
		return;
	if (changed && !strstr(row->note, "passwd"))
		row_note(row,
			 "clients as uid %u (nobody): dbus-daemon refuses uid %u, which has no "
			 "passwd entry",
			 (unsigned)as.client_uid, (unsigned)env->client_uid);
	if (access(DBUS_DAEMON, X_OK) < 0) {
		row_skip(row, "%s not installed (apt-get install dbus-daemon)", DBUS_DAEMON);
		return;
	}
	if (!env->tree_ok) {
		row_fail(row, "no simulated tree");
		return;
	}
	if (dbus_daemon_start(env, &daemon, address, sizeof(address), err, sizeof(err)) < 0) {
		row_fail(row, "%s", err);
		return;
	}
	if (pipe2(p, O_CLOEXEC) < 0) {
		row_fail(row, "pipe: %s", strerror(errno));
		proc_stop(daemon);
		return;
	}
	fflush(NULL);
	server = fork();
	if (server == 0) {
		close(p[0]);
		child_init(0);
		_exit(dbus_serve(address, env->tree.dev, p[1]));
	}
	close(p[1]);
	r = server < 0 ? -errno : wait_byte(p[0], 10000);
	close(p[0]);
	if (r < 0) {
		row_fail(row, "sd-bus server did not start: %s", strerror(-r));
		if (server > 0)
			proc_stop(server);
		proc_stop(daemon);
		return;
	}
	run_measure(env_as, &spec, &cops, &res);
	if (res.error[0])
		row_fail(row, "%s", res.error);
	else
		row_add_run(row, &res, false);
	run_result_free(&res);
	proc_stop(server);
	proc_stop(daemon);
}

/*
 * dbus-daemon refuses a connection from a uid without a passwd entry (it looks up the
 * user's groups for the policy), and the bench's uid has none: such clients run as nobody.
 */
static uid_t dbus_client_uid(uid_t uid, bool *changed)
{
	struct passwd *pw;

	*changed = false;
	if (uid == 0 || getpwuid(uid))
		return uid;
	pw = getpwnam("nobody");
	if (!pw)
		return uid;
	*changed = true;
	return pw->pw_uid;
}

void bench_dbus(const struct bench_env *env, int rep)
{
	(void)rep;
	dbus_run(env, 1, bench_count(env, 30000, 200), bench_count(env, 1000, 10));
	dbus_run(env, 64, bench_count(env, 400, 5), bench_count(env, 20, 1));
}
