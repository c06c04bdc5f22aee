/* SPDX-License-Identifier: MIT */
/*
 * Counts per op that show regressions where timings on a noisy VM do not (CALLGRIND=1).
 *
 * Every count is a two-point difference: server and client each run under the tool, once
 * for N ops and once for 5N; (count(5N) - count(N)) / 4N is the per-op cost with start-up
 * and shut-down cancelled out.
 *
 *   callgrind   instructions (Ir), user space only; plus the broker's per-function costs
 *               (callgrind_annotate, diffed the same way): where a lease's instructions go
 *   perf stat   instructions (user + kernel) where the machine has a PMU (VMs often do not:
 *               "<not supported>"), and the software events that work everywhere: syscalls
 *               (raw_syscalls:sys_enter), context switches and task-clock (CPU time)
 */
#include "tests/bench/bench.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

enum tool { TOOL_CALLGRIND, TOOL_PERF };

#define MAX_EVENTS 4

struct measure {
	enum tool tool;
	const char *events[MAX_EVENTS]; /* perf events; callgrind: {"Ir"} */
	const char *labels[MAX_EVENTS]; /* column titles */
	double scale[MAX_EVENTS];	/* task-clock is in ms: 1000 gives us */
	size_t n_events;
	char event_arg[256]; /* "-e" argument: the events joined by commas */
	unsigned n;	     /* N */
};

struct kind {
	const char *name; /* row name */
	const char *loop; /* --client-loop argument */
	bool broker;
	/*
	 * Clients at once, each with its own group and N / clients ops. With more
	 * than one, only the server is counted (issue 16.1: the broker's
	 * instructions per cycle at 1, 64 and 1,000 clients); the clients run
	 * without a wrapper. Set-up (a hello per client) is the same in the N and
	 * 5N runs, so it cancels.
	 */
	unsigned clients;
};

static const struct kind kinds[] = {
	{"floor", "floor", false, 1},
	{"floor-fresh", "floor-fresh", false, 1},
	{"broker-lease", "broker", true, 1},
	{"broker-lease-fresh", "broker-fresh", true, 1},
	{"broker-lease@64", "broker", true, 64},
	{"broker-lease@1000", "broker", true, 1000},
};
#define N_KINDS (sizeof(kinds) / sizeof(kinds[0]))

struct text {
	char buf[32768];
	size_t len;
};

static void out(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void out(struct text *t, const char *fmt, ...)
{
	va_list ap;

	if (t->len >= sizeof(t->buf) - 1)
		return;
	va_start(ap, fmt);
	vsnprintf(t->buf + t->len, sizeof(t->buf) - t->len, fmt, ap);
	va_end(ap);
	t->len += strlen(t->buf + t->len);
}

/*
 * The wrapper argv for one measured process, writing its counts to path. Under
 * callgrind every process of the measured one's forks writes a file of its own,
 * path.PID (the broker forks its scanners, whose counts at their exit would
 * otherwise replace the broker's): callgrind_take() keeps the measured one's.
 */
static void wrapper_argv(const struct measure *m, const char *path, char *arg, size_t arg_size,
			 const char **argv)
{
	size_t n = 0;

	if (m->tool == TOOL_CALLGRIND) {
		bench_fmt(arg, arg_size, "--callgrind-out-file=%s.%%p", path);
		argv[n++] = "valgrind";
		argv[n++] = "--tool=callgrind";
		argv[n++] = arg;
	} else {
		argv[n++] = "perf";
		argv[n++] = "stat";
		argv[n++] = "-x,";
		argv[n++] = "-e";
		argv[n++] = m->event_arg;
		argv[n++] = "-o";
		argv[n++] = path;
		argv[n++] = "--";
	}
	argv[n] = NULL;
}

/* The counts a callgrind output or a `perf stat -x,` file reports; NAN where none. */
static void read_counts(const struct measure *m, const char *path, double *v)
{
	char line[1024];
	FILE *f = fopen(path, "re");

	for (size_t i = 0; i < m->n_events; i++)
		v[i] = NAN;
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		if (m->tool == TOOL_CALLGRIND) {
			if (!strncmp(line, "summary:", 8) || !strncmp(line, "totals:", 7))
				v[0] = strtod(strchr(line, ':') + 1, NULL);
			continue;
		}
		/* value,unit,event,... */
		char *end, *ev;
		double x = strtod(line, &end);

		if (end == line || *end != ',' || !(ev = strchr(end + 1, ',')))
			continue;
		ev++;
		for (size_t i = 0; i < m->n_events; i++) {
			size_t len = strlen(m->events[i]);

			if (!strncmp(ev, m->events[i], len) && (ev[len] == ',' || ev[len] == '\n'))
				v[i] = x * m->scale[i];
		}
	}
	fclose(f);
}

static pid_t spawn(const char *const *argv, const char *log)
{
	pid_t pid;

	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);

		child_init(0);
		if (fd >= 0) {
			dup2(fd, STDOUT_FILENO);
			dup2(fd, STDERR_FILENO);
		}
		execvp(argv[0], (char **)argv);
		_exit(127);
	}
	return pid;
}

static int wait_status(pid_t pid, int timeout_s)
{
	int status;

	for (int i = 0; i < timeout_s * 100; i++) {
		pid_t w = waitpid(pid, &status, WNOHANG);

		if (w == pid)
			return status;
		sleep_us(10000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	return -ETIMEDOUT;
}

/*
 * SIGTERM to the measured process and wait long enough for the tool to write its output.
 * valgrind runs the program in its own process; perf stat runs it as its child and writes
 * its counts when that child exits.
 */
static int stop_slowly(pid_t pid, enum tool tool)
{
	char path[64];
	long child = 0;
	FILE *f;

	/* Under valgrind, the process's children are the broker's scanners, not the server. */
	bench_fmt(path, sizeof(path), "/proc/%d/task/%d/children", (int)pid, (int)pid);
	f = tool == TOOL_PERF ? fopen(path, "re") : NULL;
	if (f) {
		if (fscanf(f, "%ld", &child) != 1)
			child = 0;
		fclose(f);
	}
	kill(child > 0 ? (pid_t)child : pid, SIGTERM);
	return wait_status(pid, 60);
}

/* Rename path.PID (pid: the measured process) to path, and remove its forks' files. */
static void callgrind_take(const char *path, pid_t pid)
{
	char from[PATH_MAX + 16], cmd[PATH_MAX * 2 + 32];

	bench_fmt(from, sizeof(from), "%s.%d", path, (int)pid);
	(void)rename(from, path);
	bench_fmt(cmd, sizeof(cmd), "rm -f '%s'.[0-9]*", path);
	(void)!system(cmd);
}

static bool floor_ready(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	bool ok;

	bench_fmt(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	ok = fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	if (fd >= 0)
		close(fd);
	return ok;
}

/*
 * One measured pair: server and client of k with n ops, both under the tool. Fills client[]
 * and server[] (one per event) and the server's output file. 0 or -errno with err filled.
 */
static int count_pair(const struct bench_env *env, const struct measure *m, const struct kind *k,
		      unsigned n, double *client, double *server, char *server_file, size_t sf_size,
		      char *err, size_t err_size)
{
	char cfile[PATH_MAX], sfile[PATH_MAX], arg1[PATH_MAX + 32], arg2[PATH_MAX + 32],
		log[PATH_MAX], sock[PATH_MAX], nbuf[16], devdir[PATH_MAX], tag[64];
	const char *sw[16], *cw[16], *argv[32];
	const char *ext = m->tool == TOOL_CALLGRIND ? "callgrind" : "perf";
	struct broker_proc bp = {.pid = -1};
	pid_t server_pid = -1, client_pid;
	size_t a = 0;
	int status, r = 0;

	bench_fmt(cfile, sizeof(cfile), "%s/counts/%s-client-%u.%s", env->out, k->name, n, ext);
	bench_fmt(sfile, sizeof(sfile), "%s/counts/%s-server-%u.%s", env->out, k->name, n, ext);
	bench_fmt(log, sizeof(log), "%s/logs/counts-%s-%u-%s.log", env->out, k->name, n, ext);
	bench_fmt(nbuf, sizeof(nbuf), "%u", n);
	bench_fmt(devdir, sizeof(devdir), "%s", env->tree.dev);
	unlink(cfile);
	unlink(sfile);
	unlink(log);
	wrapper_argv(m, sfile, arg1, sizeof(arg1), sw);
	wrapper_argv(m, cfile, arg2, sizeof(arg2), cw);

	if (k->broker) {
		bench_fmt(tag, sizeof(tag), "counts-%s-%u-%s", k->name, n, ext);
		if (broker_proc_start(env, &env->tree, tag, sw, &bp, NULL, err, err_size) < 0)
			return -EIO;
		bench_fmt(sock, sizeof(sock), "%s", bp.socket);
	} else {
		bench_fmt(sock, sizeof(sock), "%s/counts-floor.sock", env->work);
		unlink(sock);
		for (size_t i = 0; sw[i]; i++)
			argv[a++] = sw[i];
		argv[a++] = env->self;
		argv[a++] = "--floor-server";
		argv[a++] = sock;
		argv[a++] = devdir;
		argv[a] = NULL;
		server_pid = spawn(argv, log);
		for (int i = 0; i < 6000 && !floor_ready(sock); i++) {
			if (waitpid(server_pid, &status, WNOHANG) == server_pid) {
				bench_fmt(err, err_size, "floor server under %s exited (see %s)",
					  argv[0], log);
				return -EIO;
			}
			sleep_us(10000);
		}
	}

	if (k->clients > 1) {
		pid_t pids[1000];
		char groups[1000][12], each[16];
		unsigned started = 0;

		bench_fmt(each, sizeof(each), "%u", n / k->clients);
		for (unsigned i = 0; i < k->clients && i < 1000; i++) {
			const char *cargv[] = {env->self, "--client-loop", k->loop, sock,
					       devdir,	  groups[i],	   each,    NULL};

			bench_fmt(groups[i], sizeof(groups[i]), "%u", i + 1);
			pids[i] = spawn(cargv, log);
			if (pids[i] > 0)
				started++;
		}
		for (unsigned i = 0; i < started; i++) {
			status = wait_status(pids[i], 900);
			if (status != 0 && r == 0) {
				bench_fmt(err, err_size,
					  "%s client %u failed (status 0x%x; see %s)", k->name, i,
					  status, log);
				r = -EIO;
			}
		}
		if (started < k->clients && r == 0) {
			bench_fmt(err, err_size, "%s: only %u clients started", k->name, started);
			r = -EIO;
		}
		goto stop;
	}
	a = 0;
	for (size_t i = 0; cw[i]; i++)
		argv[a++] = cw[i];
	argv[a++] = env->self;
	argv[a++] = "--client-loop";
	argv[a++] = k->loop;
	argv[a++] = sock;
	argv[a++] = devdir;
	argv[a++] = "1"; /* group */
	argv[a++] = nbuf;
	argv[a] = NULL;
	client_pid = spawn(argv, log);
	status = wait_status(client_pid, 900);
	if (m->tool == TOOL_CALLGRIND)
		callgrind_take(cfile, client_pid);
	if (status != 0) {
		bench_fmt(err, err_size, "%s client under %s failed (status 0x%x; see %s)", k->name,
			  argv[0], status, log);
		r = -EIO;
	}
stop:
	if (k->broker) {
		char cmd[PATH_MAX * 2 + 64];
		pid_t spid = bp.pid;

		status = bp.pid > 0 ? stop_slowly(bp.pid, m->tool) : 0;
		if (m->tool == TOOL_CALLGRIND)
			callgrind_take(sfile, spid);
		bp.pid = -1;
		broker_proc_stop(&bp); /* keeps the log */
		/* the broker's log says which syscalls valgrind did not know */
		bench_fmt(cmd, sizeof(cmd), "cat '%s' >> '%s' 2>/dev/null", bp.keep, log);
		(void)!system(cmd);
	} else {
		status = stop_slowly(server_pid, m->tool);
		if (m->tool == TOOL_CALLGRIND)
			callgrind_take(sfile, server_pid);
	}
	if (r == 0 && status < 0) {
		bench_fmt(err, err_size, "%s server did not stop", k->name);
		r = -EIO;
	}
	if (k->clients > 1)
		for (size_t e = 0; e < m->n_events; e++)
			client[e] = NAN;
	else
		read_counts(m, cfile, client);
	read_counts(m, sfile, server);
	if (r == 0 && ((k->clients == 1 && isnan(client[0])) || isnan(server[0]))) {
		bench_fmt(err, err_size, "no count in %s or %s", cfile, sfile);
		r = -EIO;
	}
	bench_fmt(server_file, sf_size, "%s", sfile);
	return r;
}

/* ---- the broker's functions: two callgrind outputs diffed ----------------------------- */

struct fn_cost {
	char name[200];
	double a, b;
};

static int fn_cmp(const void *x, const void *y)
{
	const struct fn_cost *p = x, *q = y;
	double dp = p->b - p->a, dq = q->b - q->a;

	return dp < dq ? 1 : dp > dq ? -1 : 0;
}

/*
 * Adds the function table of `callgrind_annotate` on file to fns (slot a, or b when second).
 * Names are "file:function" with the source root and the object dropped. The same
 * function can appear under two file spellings ("/src/broker/x.c" and "broker/x.c"):
 * inclusive costs keep the larger, self costs add up.
 */
static size_t annotate(const char *file, bool inclusive, bool second, const char *root,
		       struct fn_cost *fns, size_t n, size_t max)
{
	char cmd[PATH_MAX + 160], line[2048];
	size_t root_len = strlen(root);
	bool in_table = false;
	FILE *p;

	bench_fmt(cmd, sizeof(cmd),
		  "callgrind_annotate --inclusive=%s --auto=no --threshold=100 '%s' 2>/dev/null",
		  inclusive ? "yes" : "no", file);
	p = popen(cmd, "r");
	if (!p)
		return n;
	while (fgets(line, sizeof(line), p)) {
		char *s = line, num[64], *cut;
		size_t k = 0, i;
		double v;

		if (strstr(line, "file:function")) {
			in_table = true;
			continue;
		}
		if (!in_table || line[0] == '-')
			continue;
		if (line[0] == '\n')
			break;
		while (*s == ' ')
			s++;
		while ((*s >= '0' && *s <= '9') || *s == ',') {
			if (*s != ',' && k < sizeof(num) - 1)
				num[k++] = *s;
			s++;
		}
		if (k == 0)
			continue;
		num[k] = '\0';
		v = strtod(num, NULL);
		while (*s == ' ')
			s++;
		if (*s == '(' && (s = strchr(s, ')')))
			s++;
		while (s && *s == ' ')
			s++;
		if (!s || !*s)
			continue;
		s[strcspn(s, "\n")] = '\0';
		if ((cut = strstr(s, " [")))
			*cut = '\0';
		if (root_len && !strncmp(s, root, root_len) && s[root_len] == '/')
			s += root_len + 1;
		for (i = 0; i < n; i++)
			if (!strcmp(fns[i].name, s))
				break;
		if (i == n) {
			if (n == max)
				continue;
			memset(&fns[n], 0, sizeof(fns[n]));
			bench_fmt(fns[n].name, sizeof(fns[n].name), "%s", s);
			n++;
		}
		double *slot = second ? &fns[i].b : &fns[i].a;
		*slot = inclusive ? fmax(*slot, v) : *slot + v;
	}
	pclose(p);
	return n;
}

static bool own_code(const char *name)
{
	return !strncmp(name, "broker/", 7) || !strncmp(name, "protocol/", 9) ||
	       !strncmp(name, "policy/", 7);
}

static void broker_profile(const char *file_n, const char *file_5n, unsigned n, double per_op,
			   struct text *t, struct json_object *j)
{
	size_t max = 8192;
	struct fn_cost *fns = calloc(max, sizeof(*fns));
	char root[PATH_MAX] = "";

	if (!fns || !getcwd(root, sizeof(root))) {
		free(fns);
		return;
	}
	for (int inclusive = 0; inclusive < 2; inclusive++) {
		struct json_object *top = json_object_new_array();
		size_t nf = 0, shown = 0;

		nf = annotate(file_n, inclusive, false, root, fns, nf, max);
		nf = annotate(file_5n, inclusive, true, root, fns, nf, max);
		qsort(fns, nf, sizeof(*fns), fn_cmp);
		if (inclusive)
			out(t, "\n  the broker's own functions, inclusive (callees counted), Ir "
			       "per op:\n");
		else
			out(t,
			    "\nWhere the broker's instructions go per lease+release (broker-lease, "
			    "callgrind, %.0f Ir/op)\n  self cost (the function alone), Ir per "
			    "op:\n",
			    per_op);
		for (size_t i = 0; i < nf && shown < 20; i++) {
			double per = (fns[i].b - fns[i].a) / (4.0 * n);
			struct json_object *o;

			if (per < 50)
				break;
			if (inclusive && (!own_code(fns[i].name) || strstr(fns[i].name, ":main")))
				continue;
			shown++;
			out(t, "  %9.0f %5.1f%%  %s\n", per, 100 * per / per_op, fns[i].name);
			o = json_object_new_object();
			json_object_object_add(o, "function", json_object_new_string(fns[i].name));
			json_object_object_add(o, "ir_per_op", json_object_new_double(round(per)));
			json_object_array_add(top, o);
		}
		json_object_object_add(j, inclusive ? "broker_inclusive" : "broker_self", top);
		memset(fns, 0, sizeof(*fns) * nf);
	}
	free(fns);
}

/* Which syscalls valgrind did not know while the broker ran, from the logs. */
static void unknown_syscalls(const struct bench_env *env, struct text *t, struct json_object *j)
{
	char cmd[PATH_MAX + 256], line[512];
	struct json_object *a = json_object_new_array();
	bool any = false;
	FILE *p;

	bench_fmt(cmd, sizeof(cmd),
		  "cat '%s'/logs/counts-broker-*-callgrind.log 2>/dev/null | "
		  "grep -o 'unhandled [a-z0-9-]* syscall: [0-9]*' | sort | uniq -c",
		  env->out);
	p = popen(cmd, "r");
	if (!p)
		return;
	while (fgets(line, sizeof(line), p)) {
		char *c = strstr(line, "syscall: ");
		int nr = c ? atoi(c + 9) : 0, count = atoi(line);
		const char *name = nr == 434 ? "pidfd_open" : nr == 437 ? "openat2" : "?";

		out(t,
		    "  valgrind 3.19 did not know syscall %d (%s) in the broker (%d times, "
		    "ENOSYS); "
		    "every op still succeeded, so the broker fell back\n",
		    nr, name, count);
		json_object_array_add(a, json_object_new_int(nr));
		any = true;
	}
	pclose(p);
	if (!any)
		out(t, "  valgrind reported no unknown syscall from the broker\n");
	json_object_object_add(j, "unknown_syscalls_in_broker", a);
}

static void count_all(const struct bench_env *env, const struct measure *m, struct text *t,
		      struct json_object *j)
{
	struct json_object *js = json_object_new_array();
	double floor_total[MAX_EVENTS], broker_server = NAN, broker_server_1000 = NAN;
	char broker_n[PATH_MAX] = "", broker_5n[PATH_MAX] = "";

	out(t, "  %-20s", "per op:");
	for (size_t e = 0; e < m->n_events; e++)
		out(t, " %30s", m->labels[e]);
	out(t, "\n  %-20s", "");
	for (size_t e = 0; e < m->n_events; e++)
		out(t, " %10s %9s %9s", "client", "server", "x floor");
	out(t, "\n");
	for (size_t i = 0; i < N_KINDS; i++) {
		double c1[MAX_EVENTS], s1[MAX_EVENTS], c5[MAX_EVENTS], s5[MAX_EVENTS];
		char err[1024], sf1[PATH_MAX], sf5[PATH_MAX];
		struct json_object *o = json_object_new_object();

		json_object_object_add(o, "name", json_object_new_string(kinds[i].name));
		if (count_pair(env, m, &kinds[i], m->n, c1, s1, sf1, sizeof(sf1), err,
			       sizeof(err)) < 0 ||
		    count_pair(env, m, &kinds[i], 5 * m->n, c5, s5, sf5, sizeof(sf5), err,
			       sizeof(err)) < 0) {
			out(t, "  %-20s ERROR: %s\n", kinds[i].name, err);
			row_fail(row_get("counts", 1), "%s: %s", kinds[i].name, err);
			json_object_object_add(o, "error", json_object_new_string(err));
			json_object_array_add(js, o);
			continue;
		}
		out(t, "  %-20s", kinds[i].name);
		for (size_t e = 0; e < m->n_events; e++) {
			double c = (c5[e] - c1[e]) / (4.0 * m->n),
			       s = (s5[e] - s1[e]) / (4.0 * m->n);
			char key[64];

			if (i == 0)
				floor_total[e] = c + s;
			if (isnan(c))
				out(t, " %10s %9.*f %9s", "-", s < 100 ? 2 : 0, s, "-");
			else
				out(t, " %10.*f %9.*f %9.2f", c < 100 ? 2 : 0, c, s < 100 ? 2 : 0,
				    s, (c + s) / floor_total[e]);
			bench_fmt(key, sizeof(key), "%s_client_per_op", m->labels[e]);
			json_object_object_add(o, key,
					       json_object_new_double(round(c * 100) / 100));
			bench_fmt(key, sizeof(key), "%s_server_per_op", m->labels[e]);
			json_object_object_add(o, key,
					       json_object_new_double(round(s * 100) / 100));
			if (e == 0 && !strcmp(kinds[i].name, "broker-lease"))
				broker_server = s;
			if (e == 0 && !strcmp(kinds[i].name, "broker-lease@1000"))
				broker_server_1000 = s;
		}
		out(t, "\n");
		if (!strcmp(kinds[i].name, "broker-lease")) {
			bench_fmt(broker_n, sizeof(broker_n), "%s", sf1);
			bench_fmt(broker_5n, sizeof(broker_5n), "%s", sf5);
		}
		json_object_array_add(js, o);
	}
	json_object_object_add(j, "scenarios", js);
	/* Issue 16.1: the broker's cost per cycle flat from 1 to 1,000 clients. */
	if (!isnan(broker_server) && !isnan(broker_server_1000)) {
		double ratio = broker_server_1000 / broker_server;

		out(t,
		    "  %s  broker %s per cycle at 1,000 clients <= 1.2x at 1 client: %.2f x "
		    "(%.0f / %.0f)\n",
		    ratio <= 1.2 ? "MET   " : "MISSED", m->labels[0], ratio, broker_server_1000,
		    broker_server);
		json_object_object_add(j, "server_1000_over_1",
				       json_object_new_double(round(ratio * 100) / 100));
	}
	if (m->tool == TOOL_CALLGRIND) {
		unknown_syscalls(env, t, j);
		if (broker_n[0])
			broker_profile(broker_n, broker_5n, m->n, broker_server, t, j);
	}
}

/* Whether `perf stat -e event true` counts it (no PMU in many VMs: "<not supported>"). */
static bool perf_counts(const char *event, char *why, size_t size)
{
	char cmd[256], line[512];
	bool ok = false, any = false;
	FILE *p;

	bench_fmt(cmd, sizeof(cmd), "perf stat -x, -e %s true 2>&1", event);
	p = popen(cmd, "r");
	if (!p)
		return false;
	while (fgets(line, sizeof(line), p)) {
		any = true;
		if (strstr(line, event) && line[0] >= '0' && line[0] <= '9')
			ok = true;
		else if (strstr(line, "not supported"))
			bench_fmt(why, size, "`perf stat -e %s true` says <not supported> (no PMU)",
				  event);
	}
	if (pclose(p) != 0 && !ok && !why[0])
		bench_fmt(why, size, any ? "perf cannot count %s here" : "perf not installed",
			  event);
	return ok;
}

static void measure_add(struct measure *m, const char *event, const char *label, double scale)
{
	if (m->n_events == MAX_EVENTS)
		return;
	m->events[m->n_events] = event;
	m->labels[m->n_events] = label;
	m->scale[m->n_events] = scale;
	m->n_events++;
	bench_fmt(m->event_arg + strlen(m->event_arg), sizeof(m->event_arg) - strlen(m->event_arg),
		  "%s%s", m->n_events > 1 ? "," : "", event);
}

void bench_counts(const struct bench_env *env)
{
	struct text *t = calloc(1, sizeof(*t));
	struct json_object *root = json_object_new_object();
	char dir[PATH_MAX + 16], why[512] = "";
	unsigned n = env->smoke ? 100 : 1000;

	if (!t)
		return;
	bench_fmt(dir, sizeof(dir), "%s/counts", env->out);
	mkdir(dir, 0755);

	if (system("valgrind --version >/dev/null 2>&1") != 0) {
		out(t,
		    "  valgrind not installed (apt-get install valgrind): no callgrind counts\n");
		row_skip(row_get("counts", 1), "valgrind not installed");
	} else {
		struct measure m = {.tool = TOOL_CALLGRIND, .n = n};
		struct json_object *j = json_object_new_object();

		measure_add(&m, "Ir", "instructions (user)", 1);
		out(t,
		    "callgrind: user-space instructions, (Ir(5N) - Ir(N)) / 4N with N = %u, "
		    "clients and servers as root; outputs in %s\n",
		    n, dir);
		json_object_object_add(j, "n", json_object_new_int((int)n));
		count_all(env, &m, t, j);
		json_object_object_add(root, "callgrind", j);
	}

	/* perf: instructions where there is a PMU, and what works on any kernel */
	struct measure m = {.tool = TOOL_PERF, .n = n * 4};
	struct json_object *j = json_object_new_object();

	if (perf_counts("instructions", why, sizeof(why)))
		measure_add(&m, "instructions", "instructions", 1);
	else
		out(t, "\nperf stat -e instructions: not measured: %s\n", why);
	json_object_object_add(j, "instructions",
			       json_object_new_string(m.n_events ? "measured" : why));
	why[0] = '\0';
	if (perf_counts("raw_syscalls:sys_enter", why, sizeof(why)))
		measure_add(&m, "raw_syscalls:sys_enter", "syscalls", 1);
	why[0] = '\0';
	if (perf_counts("context-switches", why, sizeof(why)))
		measure_add(&m, "context-switches", "context-switches", 1);
	why[0] = '\0';
	if (perf_counts("task-clock", why, sizeof(why)))
		measure_add(&m, "task-clock", "CPU us (task-clock)", 1000);
	if (m.n_events) {
		out(t,
		    "\nperf stat -e %s, (5N - N) / 4N with N = %u (kernel included; the syscall "
		    "tracepoint itself inflates CPU time):\n",
		    m.event_arg, m.n);
		json_object_object_add(j, "events", json_object_new_string(m.event_arg));
		json_object_object_add(j, "n", json_object_new_int((int)m.n));
		count_all(env, &m, t, j);
	} else {
		out(t, "perf: nothing countable here\n");
	}
	json_object_object_add(root, "perf", j);
	report_section("Counts per op (CALLGRIND=1):", t->buf);
	report_json_add("counts", root);
	free(t);
}
