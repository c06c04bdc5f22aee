/* SPDX-License-Identifier: MIT */
/*
 * The benchmark driver.
 *
 *   bench [BUILD]       run everything; table on stdout, BUILD/bench/results.json
 *
 * Environment: BENCH_SMOKE=1 (tiny counts, < 60 s, fails only when a scenario errors),
 * BENCH_REPS (3; interleaved repetitions, median reported), BENCH_SCALE (1.0; multiplies
 * op counts), BENCH_CPU (0; "none" leaves processes unpinned), BENCH_CLIENT_UID (2000; 0
 * keeps clients root), CALLGRIND=1 (counts per op), BENCH_TMPFS=0 (keep the host's /tmp),
 * BENCH_ONLY (comma list of floor, broker, dbus, seatd, once, policy: run only those).
 *
 * Internal entry points, for runs under valgrind or perf:
 *   bench --floor-server SOCKET DEVDIR
 *   bench --client-loop floor|floor-fresh|broker|broker-fresh SOCKET DEVDIR GROUP N
 */
#include "tests/bench/bench.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

static struct bench_env env_storage;

unsigned bench_count(const struct bench_env *env, unsigned full, unsigned smoke)
{
	double v;

	if (env->smoke)
		return smoke;
	v = full * env->scale;
	return v < 1 ? 1 : (unsigned)v;
}

static bool only(const char *what)
{
	const char *o = getenv("BENCH_ONLY");
	size_t len = strlen(what);

	if (!o || !*o)
		return true;
	for (const char *p = o; (p = strstr(p, what)); p += len)
		if ((p == o || p[-1] == ',') && (p[len] == ',' || p[len] == '\0'))
			return true;
	return false;
}

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	static uint64_t t0;
	va_list ap;

	if (!t0)
		t0 = now_ns();
	fprintf(stderr, "[bench %6.1fs] ", (double)(now_ns() - t0) / 1e9);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* One device per group, addresses derived from the group number. */
static int make_tree(struct sim_tree *t, unsigned groups)
{
	int r = sim_tree_create(t);

	for (unsigned g = 1; r == 0 && g <= groups; g++) {
		char addr[16];
		struct sim_device d = {addr, "8086", "10d3", "020000", "vfio-pci"};

		bench_fmt(addr, sizeof(addr), "0000:%02x:%02x.%x", (g >> 8) & 0xff, (g >> 3) & 0x1f,
			  g & 7);
		r = sim_tree_add_group(t, g, &d, 1);
	}
	return r;
}

static int write_policy(struct bench_env *env)
{
	static const char policy[] =
		"{\"rules\":[{\"name\":\"bench\",\"users\":[0, 2000],\"devices\":[{\"vendor\":"
		"\"8086\"}]}]}\n";
	char path[PATH_MAX + 32];
	int fd;

	bench_fmt(env->policy_dir, sizeof(env->policy_dir), "%s/policy.d", env->work);
	if (mkdir(env->policy_dir, 0755) < 0 && errno != EEXIST)
		return -errno;
	chmod(env->policy_dir, 0755);
	bench_fmt(path, sizeof(path), "%s/10-bench.json", env->policy_dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	if (write(fd, policy, sizeof(policy) - 1) != (ssize_t)sizeof(policy) - 1) {
		close(fd);
		return -EIO;
	}
	fchmod(fd, 0644);
	return close(fd) < 0 ? -errno : 0;
}

static void remove_work(const char *dir)
{
	char cmd[PATH_MAX + 32];

	if (strncmp(dir, "/tmp/vbbench.", 13) != 0)
		return;
	bench_fmt(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "bench: could not remove %s\n", dir);
}

/*
 * The simulated trees live under /tmp (tests/lib/simtree.c). Give this run a private tmpfs
 * there, in a mount namespace of its own: sysfs and devtmpfs are in-memory file systems, so
 * the broker's inventory and opens are timed on one too, creating and removing 5,000 groups
 * takes a second instead of a minute on a slow disk, and nothing is left behind if the run
 * dies. Every process the bench starts inherits the namespace; the host's /tmp is untouched.
 */
static int private_tmp(const char *build)
{
	const char *v = getenv("BENCH_TMPFS");

	if (v && !strcmp(v, "0"))
		return 0;
	/* A checkout under /tmp (CI clones there) would vanish under the tmpfs. */
	if (strncmp(build, "/tmp/", 5) == 0) {
		fprintf(stderr,
			"bench: %s is under /tmp: keeping the host's /tmp for the "
			"simulated trees\n",
			build);
		return 0;
	}
	if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
	    mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777") < 0)
		return -errno;
	return 1;
}

static int env_init(struct bench_env *env, const char *build)
{
	const char *v;
	struct rlimit rl = {65536, 65536};
	char path[PATH_MAX + 16];
	ssize_t n;
	int r;

	bench_loadavg(env->loadavg_start, sizeof(env->loadavg_start));
	env->smoke = (v = getenv("BENCH_SMOKE")) && *v && strcmp(v, "0");
	env->reps = env->smoke ? 1 : 3;
	if ((v = getenv("BENCH_REPS")) && *v)
		env->reps = atoi(v);
	if (env->reps < 1)
		env->reps = 1;
	if (env->reps > BENCH_MAX_REPS)
		env->reps = BENCH_MAX_REPS;
	env->scale = (v = getenv("BENCH_SCALE")) && *v ? atof(v) : 1.0;
	if (env->scale <= 0)
		env->scale = 1.0;
	env->cpu = 0;
	if ((v = getenv("BENCH_CPU")) && *v)
		env->cpu = !strcmp(v, "none") ? -1 : atoi(v);
	env->client_uid = BENCH_BENCH_UID;
	if ((v = getenv("BENCH_CLIENT_UID")) && *v)
		env->client_uid = (uid_t)atoi(v);
	env->callgrind = (v = getenv("CALLGRIND")) && *v && strcmp(v, "0");

	if (!realpath(build, env->build)) {
		fprintf(stderr, "bench: no build directory %s\n", build);
		return -ENOENT;
	}
	bench_fmt(env->brokerd, sizeof(env->brokerd), "%s/vfio-brokerd", env->build);
	bench_fmt(env->out, sizeof(env->out), "%s/bench", env->build);
	mkdir(env->out, 0755);
	bench_fmt(path, sizeof(path), "%s/logs", env->out);
	mkdir(path, 0755);
	n = readlink("/proc/self/exe", env->self, sizeof(env->self) - 1);
	if (n < 0)
		return -errno;
	env->self[n] = '\0';

	/* 1,000 clients: the broker needs two fds per connection, and inherits this. */
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
		getrlimit(RLIMIT_NOFILE, &rl);
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (env->cpu >= 0) {
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET(env->cpu, &set);
		if (sched_setaffinity(0, sizeof(set), &set) < 0) {
			fprintf(stderr, "bench: cannot pin to CPU %d: %m\n", env->cpu);
			return -errno;
		}
	}
	r = private_tmp(env->build);
	if (r < 0) {
		fprintf(stderr,
			"bench: cannot mount a private tmpfs on /tmp: %s (BENCH_TMPFS=0 "
			"keeps the host's /tmp)\n",
			strerror(-r));
		return r;
	}
	env->private_tmp = r > 0;
	env->shared = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (env->shared == MAP_FAILED)
		return -errno;
	bench_fmt(env->work, sizeof(env->work), "/tmp/vbbench.XXXXXX");
	if (!mkdtemp(env->work))
		return -errno;
	chmod(env->work, 0755);
	return write_policy(env);
}

/* The table's row order. */
static void declare_rows(void)
{
	static const struct {
		const char *name;
		unsigned clients;
	} order[] = {
		{"floor", 1},
		{"floor", 64},
		{"floor", 1000},
		{"floor-fresh", 1},
		{"floor-fresh", 64},
		{"broker-lease", 1},
		{"broker-lease.lease", 1},
		{"broker-lease", 64},
		{"broker-lease", 1000},
		{"broker-lease-fresh", 1},
		{"broker-lease-fresh", 64},
		{"dbus", 1},
		{"dbus", 64},
		{"seatd", 1},
		{"seatd.open_device", 1},
		{"seatd", 64},
		{"startup-1-group", 0},
		{"startup-4096-groups", 0},
		{"list-4096-groups", 1},
		{"broker-rss", 1000},
		{"hard-remove", 1},
		{"policy-decide-10k", 1},
		{"policy-decide-10k-worst", 1},
	};

	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++)
		row_get(order[i].name, order[i].clients);
}

static int internal_main(int argc, char **argv)
{
	/* Under perf stat this process is perf's child: go when perf goes. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (!strcmp(argv[1], "--floor-server") && argc == 4)
		return floor_serve(argv[2], argv[3], -1);
	if (!strcmp(argv[1], "--client-loop") && argc == 7) {
		const char *kind = argv[2];
		unsigned group = (unsigned)atoi(argv[5]), n = (unsigned)atoi(argv[6]);

		if (!strcmp(kind, "floor") || !strcmp(kind, "floor-fresh"))
			return floor_client_loop(argv[3], argv[4], group, n,
						 !strcmp(kind, "floor-fresh"));
		if (!strcmp(kind, "broker") || !strcmp(kind, "broker-fresh"))
			return broker_client_loop(argv[3], group, n, !strcmp(kind, "broker-fresh"));
	}
	fprintf(stderr, "bench: bad internal invocation\n");
	return 2;
}

int main(int argc, char **argv)
{
	struct bench_env *env = &env_storage;
	uint64_t t0 = now_ns();
	int errors, r;

	if (argc > 1 && !strncmp(argv[1], "--", 2))
		return internal_main(argc, argv);
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (geteuid() != 0) {
		fprintf(stderr,
			"bench: must run as root: it starts vfio-brokerd, drops clients to "
			"uid %d and runs seatd in a private mount namespace\n",
			BENCH_BENCH_UID);
		return 1;
	}
	r = env_init(env, argc > 1 ? argv[1] : "build");
	if (r < 0) {
		fprintf(stderr, "bench: set-up failed: %s\n", strerror(-r));
		return 1;
	}
	say("%s%s, %d rep(s), scale %.2g, cpu %s, clients as uid %u, scratch %s%s",
	    env->smoke ? "SMOKE " : "", env->brokerd, env->reps, env->scale,
	    env->cpu >= 0 ? "pinned" : "unpinned", (unsigned)env->client_uid, env->work,
	    env->private_tmp ? " (private tmpfs)" : "");
	declare_rows();

	env->tiny_ok = make_tree(&env->tiny, 1) == 0;
	env->tree_ok = make_tree(&env->tree, BENCH_SCALE_GROUPS) == 0;
	if (only("once"))
		env->big_ok = make_tree(&env->big, BENCH_INVENTORY_GROUPS) == 0;
	say("simulated trees: 1, %d%s groups (%s)", BENCH_SCALE_GROUPS,
	    only("once") ? ", 4096" : "", env->tree_ok && env->tiny_ok ? "ok" : "FAILED");

	for (int rep = 0; rep < env->reps; rep++) {
		if (only("floor")) {
			say("rep %d: floor", rep + 1);
			bench_floor(env, rep);
		}
		if (only("broker")) {
			say("rep %d: broker-lease", rep + 1);
			bench_broker_lease(env, rep);
		}
		if (only("dbus")) {
			say("rep %d: dbus", rep + 1);
			bench_dbus(env, rep);
		}
		if (only("seatd")) {
			say("rep %d: seatd", rep + 1);
			bench_seatd(env, rep);
		}
	}
	if (only("once")) {
		say("start-up, list, RSS, hard removal");
		bench_broker_once(env);
	}
	if (only("policy")) {
		say("policy decisions");
		bench_policy(env);
	}
	if (env->callgrind) {
		say("instruction counts (callgrind)");
		bench_counts(env);
	}
	say("done");

	errors = report_finish(env, (double)(now_ns() - t0) / 1e9);
	if (!env->private_tmp) { /* else the tmpfs goes with the namespace */
		sim_tree_destroy(&env->tiny);
		sim_tree_destroy(&env->tree);
		sim_tree_destroy(&env->big);
		remove_work(env->work);
	}
	return errors ? 1 : 0;
}
