/* SPDX-License-Identifier: MIT */
/*
 * vfio-brokerd: hands VFIO group fds to unprivileged clients over a Unix
 * socket, as the administrator's policy files allow. This file reads the
 * command line, sets the modules up in order, runs the event loop and tears
 * everything down in reverse.
 */
#include "broker/broker.h"
#include "broker/closer.h"
#include "broker/connection.h"
#include "broker/hooks.h"
#include "broker/inventory.h"
#include "broker/kmod_link.h"
#include "broker/lease.h"
#include "broker/lease_cgroup.h"
#include "broker/lease_store.h"
#include "broker/list_cache.h"
#include "broker/log.h"
#include "broker/merge.h"
#include "broker/policy_store.h"
#include "broker/remove.h"
#include "broker/sandbox.h"
#include "broker/scanner.h"
#include "broker/server.h"
#include "broker/status.h"
#include "policy/policy.h"

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <systemd/sd-daemon.h>

#ifndef VB_VERSION
#define VB_VERSION "0"
#endif

#define USEC_PER_SEC 1000000ULL
/* Longest timeout accepted on the command line: a day. */
#define MAX_TIMEOUT_SEC (24 * 3600)
/* Highest --max-requests-per-uid and --request-burst-per-uid. */
#define MAX_REQUEST_RATE 1000000

enum {
	ARG_SOCKET = 0x100,
	ARG_POLICY,
	ARG_SYSFS_ROOT,
	ARG_DEV_ROOT,
	ARG_ADMIN_GROUP,
	ARG_STATE_DIR,
	ARG_CGROUP_ROOT,
	ARG_LOG_TARGET,
	ARG_MAX_CONNECTIONS,
	ARG_MAX_CONNECTIONS_PER_UID,
	ARG_MAX_LEASES_PER_UID,
	ARG_MAX_REQUESTS_PER_UID,
	ARG_REQUEST_BURST_PER_UID,
	ARG_HANDSHAKE_TIMEOUT,
	ARG_IDLE_TIMEOUT,
	ARG_REMOVE_TIMEOUT,
	ARG_NO_SANDBOX,
	ARG_VERSION,
};

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: vfio-brokerd [OPTION...]\n"
		"Hand VFIO group file descriptors to unprivileged clients as policy allows.\n\n"
		"  --socket PATH                 listen here when not socket-activated\n"
		"                                (default " BROKER_DEFAULT_SOCKET ")\n"
		"  --policy DIR                  policy directory (default " POLICY_DEFAULT_DIR
		")\n"
		"  --sysfs-root DIR              sysfs root (default /sys)\n"
		"  --dev-root DIR                device root (default /dev)\n"
		"  --admin-group NAME|GID        members of this group are administrators\n"
		"                                (default: none; root always is)\n"
		"  --state-dir DIR               keep the lease table here across restarts\n"
		"                                (default $RUNTIME_DIRECTORY, "
		"else " LEASE_STORE_DEFAULT_DIR ")\n"
		"  --cgroup-root DIR|auto|none   where each lease's cgroup is made (default auto:\n"
		"                                the service's cgroup when systemd delegates it,\n"
		"                                else /sys/fs/cgroup/vfio-broker on cgroup v2)\n"
		"  --log-target auto|journal|stderr   where to log (default auto)\n"
		"  --max-connections N           open connections at most (default 1024)\n"
		"  --max-connections-per-uid N   per uid, root exempt (default 64)\n"
		"  --max-leases-per-uid N        leases per uid when the rule sets no max_leases\n"
		"                                (default 64)\n"
		"  --max-requests-per-uid RATE   requests per second per uid, sustained, root\n"
		"                                exempt (default 200; 0: no limit)\n"
		"  --request-burst-per-uid N     requests a uid may send at once above that rate\n"
		"                                (default 400)\n"
		"  --handshake-timeout SEC       close connections that do not say hello\n"
		"                                (default 10; 0: never)\n"
		"  --idle-timeout SEC            close idle connections (default 0: never)\n"
		"  --remove-timeout SEC          default wait of a soft removal (default 30)\n"
		"  --no-sandbox                  keep every capability and no seccomp filter "
		"(debugging\n"
		"                                under strace or valgrind only)\n"
		"  --version                     print the version and exit\n"
		"  --help                        print this help and exit\n");
}

/* A decimal number in [1, max] (or [0, max] with allow_zero), nothing else. */
static int parse_unsigned(const char *s, unsigned max, bool allow_zero, unsigned *ret)
{
	unsigned long v;
	char *end;

	if (!s || *s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v > max || (!allow_zero && v == 0))
		return -EINVAL;
	*ret = (unsigned)v;
	return 0;
}

/* Seconds, with up to six decimals ("10", "0.5"), into microseconds. */
static int parse_seconds(const char *s, uint64_t *ret)
{
	uint64_t usec = 0, scale = USEC_PER_SEC / 10;
	unsigned whole;
	const char *dot = strchr(s, '.');
	char buf[16];

	if (dot) {
		if ((size_t)(dot - s) >= sizeof(buf) || dot == s)
			return -EINVAL;
		memcpy(buf, s, (size_t)(dot - s));
		buf[dot - s] = '\0';
		if (!dot[1] || strlen(dot + 1) > 6)
			return -EINVAL;
		for (const char *p = dot + 1; *p; p++, scale /= 10) {
			if (*p < '0' || *p > '9')
				return -EINVAL;
			usec += (uint64_t)(*p - '0') * scale;
		}
		s = buf;
	}
	if (parse_unsigned(s, MAX_TIMEOUT_SEC, true, &whole) < 0)
		return -EINVAL;
	*ret = whole * USEC_PER_SEC + usec;
	return 0;
}

/* Fill config from argv. Returns 0 to run, 1 to exit successfully, -EINVAL on a usage error. */
static int parse_argv(int argc, char **argv, struct broker_config *config)
{
	static const struct option options[] = {
		{"socket", required_argument, NULL, ARG_SOCKET},
		{"policy", required_argument, NULL, ARG_POLICY},
		{"sysfs-root", required_argument, NULL, ARG_SYSFS_ROOT},
		{"dev-root", required_argument, NULL, ARG_DEV_ROOT},
		{"admin-group", required_argument, NULL, ARG_ADMIN_GROUP},
		{"state-dir", required_argument, NULL, ARG_STATE_DIR},
		{"cgroup-root", required_argument, NULL, ARG_CGROUP_ROOT},
		{"log-target", required_argument, NULL, ARG_LOG_TARGET},
		{"max-connections", required_argument, NULL, ARG_MAX_CONNECTIONS},
		{"max-connections-per-uid", required_argument, NULL, ARG_MAX_CONNECTIONS_PER_UID},
		{"max-leases-per-uid", required_argument, NULL, ARG_MAX_LEASES_PER_UID},
		{"max-requests-per-uid", required_argument, NULL, ARG_MAX_REQUESTS_PER_UID},
		{"request-burst-per-uid", required_argument, NULL, ARG_REQUEST_BURST_PER_UID},
		{"handshake-timeout", required_argument, NULL, ARG_HANDSHAKE_TIMEOUT},
		{"idle-timeout", required_argument, NULL, ARG_IDLE_TIMEOUT},
		{"remove-timeout", required_argument, NULL, ARG_REMOVE_TIMEOUT},
		{"no-sandbox", no_argument, NULL, ARG_NO_SANDBOX},
		{"version", no_argument, NULL, ARG_VERSION},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	int c, r;

	while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
		r = 0;
		switch (c) {
		case ARG_SOCKET:
			if (optarg[0] != '/') {
				fprintf(stderr, "vfio-brokerd: --socket needs an absolute path\n");
				return -EINVAL;
			}
			config->socket_path = optarg;
			break;
		case ARG_POLICY:
			config->policy_dir = optarg;
			break;
		case ARG_SYSFS_ROOT:
			config->sysfs_root = optarg;
			break;
		case ARG_DEV_ROOT:
			config->dev_root = optarg;
			break;
		case ARG_ADMIN_GROUP:
			config->admin_group = optarg;
			break;
		case ARG_STATE_DIR:
			if (optarg[0] != '/') {
				fprintf(stderr,
					"vfio-brokerd: --state-dir needs an absolute path\n");
				return -EINVAL;
			}
			config->state_dir = optarg;
			break;
		case ARG_CGROUP_ROOT:
			if (optarg[0] != '/' && strcmp(optarg, "auto") != 0 &&
			    strcmp(optarg, "none") != 0)
				r = -EINVAL;
			config->cgroup_root = optarg;
			break;
		case ARG_LOG_TARGET:
			r = log_target_from_string(optarg);
			if (r >= 0) {
				config->log_target = (enum log_target)r;
				r = 0;
			}
			break;
		case ARG_MAX_CONNECTIONS:
			r = parse_unsigned(optarg, 1000000, false, &config->max_connections);
			break;
		case ARG_MAX_CONNECTIONS_PER_UID:
			r = parse_unsigned(optarg, 1000000, false,
					   &config->max_connections_per_uid);
			break;
		case ARG_MAX_LEASES_PER_UID:
			r = parse_unsigned(optarg, POLICY_MAX_LEASES, false,
					   &config->max_leases_per_uid);
			break;
		case ARG_MAX_REQUESTS_PER_UID:
			r = parse_unsigned(optarg, MAX_REQUEST_RATE, true,
					   &config->max_requests_per_uid);
			break;
		case ARG_REQUEST_BURST_PER_UID:
			r = parse_unsigned(optarg, MAX_REQUEST_RATE, false,
					   &config->request_burst_per_uid);
			break;
		case ARG_HANDSHAKE_TIMEOUT:
			r = parse_seconds(optarg, &config->handshake_timeout_usec);
			break;
		case ARG_IDLE_TIMEOUT:
			r = parse_seconds(optarg, &config->idle_timeout_usec);
			break;
		case ARG_REMOVE_TIMEOUT:
			r = parse_seconds(optarg, &config->remove_timeout_usec);
			if (r == 0 &&
			    (config->remove_timeout_usec < 1000 ||
			     config->remove_timeout_usec / 1000 > VB_MAX_REMOVE_TIMEOUT_MS))
				r = -EINVAL;
			break;
		case ARG_NO_SANDBOX:
			config->sandbox = false;
			break;
		case ARG_VERSION:
			printf("vfio-brokerd " VB_VERSION "\n");
			return 1;
		case 'h':
			usage(stdout);
			return 1;
		default:
			usage(stderr);
			return -EINVAL;
		}
		if (r < 0) {
			fprintf(stderr, "vfio-brokerd: invalid value for --%s: %s\n",
				options[c - ARG_SOCKET].name, optarg);
			return -EINVAL;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "vfio-brokerd: unexpected argument %s\n", argv[optind]);
		return -EINVAL;
	}
	return 0;
}

static int on_terminate(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata)
{
	struct broker *b = userdata;

	log_info("Received %s; stopping", strsignal((int)si->ssi_signo));
	sd_notify(0, "STOPPING=1");
	return sd_event_exit(b->event, 0);
}

static int on_reload(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata)
{
	struct broker *b = userdata;

	policy_store_reload(b->policy, "SIGHUP", NULL);
	status_update(b->status);
	return 0;
}

/* Open descriptors of the broker (minus the one reading the directory). */
static size_t count_open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	size_t n = 0;

	if (!d)
		return 0;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n > 0 ? n - 1 : 0;
}

/* SIGUSR1: one log line with what the broker holds, so tests and admins can check for leaks. */
static int on_dump(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata)
{
	struct broker *b = userdata;
	struct log_fields f = LOG_FIELDS("state");

	log_event(LOG_INFO, &f, "State: %zu connections, %zu leases, %zu open fds",
		  server_count_connections(b->server), lease_table_count(b->leases),
		  count_open_fds());
	return 0;
}

/* Connections and leases take descriptors; use all the hard limit allows. */
static void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			log_debug_errno(errno, "Could not raise RLIMIT_NOFILE: %m");
	}
}

/*
 * Model: "start" (tests/model/lease.pml): "recover", then "save".
 * Restore the leases a previous broker recorded (lease_store.c), then write
 * the table back as it now is. Saving starts only afterwards, so that a
 * broker killed during the recovery leaves the file it read untouched.
 */
static int broker_restore_leases(struct broker *b)
{
	struct lease_store *store;
	size_t restored, dropped;
	int r;

	r = lease_store_new(b->config.state_dir, &store);
	if (r < 0)
		return r;
	r = lease_store_recover(store, b, &restored, &dropped);
	if (r < 0) {
		lease_store_free(store);
		return log_error_errno(r, "Failed to restore the stored leases: %m");
	}
	if (restored || dropped)
		log_info("Restored %zu stored leases, dropped %zu", restored, dropped);
	b->lease_store = store;
	return lease_store_save(store, b->leases) < 0 ? -EIO : 0;
}

static int broker_setup(struct broker *b)
{
	sigset_t mask;
	int r;

	if (b->config.admin_group) {
		/* A name, or a number as chown(1) takes it. */
		struct group *gr = getgrnam(b->config.admin_group);
		unsigned gid;

		if (gr)
			b->admin_gid = gr->gr_gid;
		else if (parse_unsigned(b->config.admin_group, UINT32_MAX - 1, true, &gid) == 0)
			b->admin_gid = (gid_t)gid;
		else
			return log_error_errno(ENOENT, "Unknown --admin-group %s",
					       b->config.admin_group);
		b->has_admin_gid = true;
	}

	/*
	 * Not sd_event_default(): libsystemd checks that the default loop runs in
	 * the thread that made it with a gettid() in every sd_event_prepare(), a
	 * system call per loop iteration. The broker has one loop and one thread.
	 */
	r = sd_event_new(&b->event);
	if (r < 0)
		return log_error_errno(r, "Failed to create the event loop: %m");
	/*
	 * First, while the broker has loaded nothing: the scanner processes are forks
	 * of it that keep CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH, which the broker
	 * drops after start-up (sandbox.h), and it cannot fork once sandboxed.
	 */
	r = scanner_new(b->event, b->config.sandbox, &b->scanner);
	if (r < 0)
		return log_error_errno(r, "Failed to start the holders scanner: %m");
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGUSR1);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
		return log_error_errno(errno, "Failed to block signals: %m");
	if ((r = sd_event_add_signal(b->event, NULL, SIGTERM, on_terminate, b)) < 0 ||
	    (r = sd_event_add_signal(b->event, NULL, SIGINT, on_terminate, b)) < 0 ||
	    (r = sd_event_add_signal(b->event, NULL, SIGHUP, on_reload, b)) < 0 ||
	    (r = sd_event_add_signal(b->event, NULL, SIGUSR1, on_dump, b)) < 0)
		return log_error_errno(r, "Failed to watch signals: %m");

	r = inventory_new(b->config.sysfs_root, b->config.dev_root, &b->inventory);
	if (r < 0)
		return r;
	if (b->inventory->simulated)
		log_warning("dev root %s is not /dev: simulated tree", b->config.dev_root);

	r = policy_store_new(b->event, b->config.policy_dir, &b->policy);
	if (r < 0)
		return log_error_errno(r, "Refusing to start without a valid policy in %s",
				       b->config.policy_dir);

	r = status_new(b, &b->status);
	if (r < 0)
		return log_error_errno(r, "Failed to set up the status line: %m");
	r = lease_table_new(b->event, &hooks_lease, b, &b->leases);
	if (r < 0)
		return log_error_errno(r, "Failed to set up the lease table: %m");
	/* Before the leases are restored: they find their cgroups again under it. */
	r = lease_cgroups_open(b->config.cgroup_root, &b->cgroups);
	if (r < 0)
		return log_error_errno(r, "Failed to set up the lease cgroups under %s: %m",
				       b->config.cgroup_root ? b->config.cgroup_root
							     : "the broker's cgroup tree (auto)");
	lease_table_set_cgroups(b->leases, b->cgroups);
	/* After the restore below too: the restore's own scans run here, with the capabilities
	 * pidfd_getfd needs anyway, before anyone is served. */
	r = containers_new(&b->containers);
	if (r < 0)
		return log_error_errno(r, "Failed to set up containers: %m");
	r = removals_new(b, &b->removals);
	if (r < 0)
		return log_error_errno(r, "Failed to set up removals: %m");
	/* Before any client: every socket of one is closed through it. */
	r = closer_new(b->config.max_connections, &b->closer);
	if (r < 0)
		return log_error_errno(
			r, "Failed to start the thread that closes clients' sockets: %m");
	/* Before the socket is served: no lease is granted that a stored one still holds. */
	r = broker_restore_leases(b);
	if (r < 0)
		return r;
	lease_table_set_scanner(b->leases, b->scanner);
	r = server_new(b, &hooks_server, &b->server);
	if (r < 0)
		return r;
	r = kmod_link_new(b, &b->kmod);
	if (r < 0)
		return r;
	return 0;
}

static void broker_teardown(struct broker *b)
{
	/* Reverse order: connections first (they point at removals and holders). */
	b->kmod = kmod_link_free(b->kmod);
	b->server = server_free(b->server);
	b->removals = removals_free(b->removals);
	b->leases = lease_table_free(b->leases);
	b->scanner = scanner_free(b->scanner); /* after the leases: they cancel their scans */
	b->cgroups = lease_cgroups_free(b->cgroups);
	b->lease_store = lease_store_free(b->lease_store);
	b->containers = containers_free(b->containers);
	b->closer = closer_free(b->closer);
	b->status = status_free(b->status);
	b->policy = policy_store_free(b->policy);
	b->list_cache = list_cache_free(b->list_cache);
	b->inventory = inventory_free(b->inventory);
	b->event = sd_event_unref(b->event);
}

int main(int argc, char **argv)
{
	struct broker b = {
		.config =
			{
				.policy_dir = POLICY_DEFAULT_DIR,
				.sysfs_root = "/sys",
				.dev_root = "/dev",
				.log_target = LOG_TARGET_AUTO,
				.max_connections = 1024,
				.max_connections_per_uid = 64,
				.max_leases_per_uid = 64,
				/*
				 * A person's vfioctl sends 2-3 requests; a VMM or a
				 * management daemon a few per guest started. 200 a
				 * second, 400 at once, never bites those, while one
				 * uid cannot keep the broker busy for everyone else
				 * (it serves several thousand a second in all).
				 */
				.max_requests_per_uid = 200,
				.request_burst_per_uid = 400,
				.handshake_timeout_usec = 10 * USEC_PER_SEC,
				.idle_timeout_usec = 0,
				.remove_timeout_usec = 30 * USEC_PER_SEC,
				.sandbox = true,
			},
	};
	struct log_fields f = LOG_FIELDS("start");
	int r;

	r = parse_argv(argc, argv, &b.config);
	if (r != 0)
		return r > 0 ? EXIT_SUCCESS : 2;
	if (!b.config.state_dir) {
		/* systemd's RuntimeDirectory= (absolute; the first, if it names several). */
		const char *env = getenv("RUNTIME_DIRECTORY");

		if (env && env[0] == '/' && !strchr(env, ':'))
			b.config.state_dir = env;
		else
			b.config.state_dir = LEASE_STORE_DEFAULT_DIR;
	}
	log_setup(b.config.log_target);
	signal(SIGPIPE, SIG_IGN);
	raise_nofile();

	r = broker_setup(&b);
	if (r < 0) {
		broker_teardown(&b);
		return EXIT_FAILURE;
	}

	/* Start-up is done (pidfd_getfd of the restore included): from here on the broker
	 * needs only its three capabilities and the system calls of its event loop; the
	 * scanner processes keep the two that reading /proc/PID/fd needs. */
	if (b.config.sandbox &&
	    (sandbox_drop_capabilities() < 0 ||
	     sandbox_restrict_writes(&(struct sandbox_paths){
		     .state_dir = b.config.state_dir,
		     .cgroup_root = b.cgroups ? lease_cgroups_root(b.cgroups) : NULL,
		     .dev_root = b.config.dev_root,
		     .sysfs_root = b.config.sysfs_root,
	     }) < 0 ||
	     sandbox_install_seccomp() < 0)) {
		broker_teardown(&b);
		return EXIT_FAILURE;
	}

	sd_notifyf(0, "READY=1\nSTATUS=Listening on %s", server_socket_path(b.server));
	status_update(b.status);
	log_event(LOG_INFO, &f, "vfio-brokerd " VB_VERSION " listening on %s (policy %s)",
		  server_socket_path(b.server), b.config.policy_dir);

	r = sd_event_loop(b.event);
	if (r < 0)
		log_error_errno(r, "The event loop failed: %m");
	f.event = "stop";
	log_event(LOG_INFO, &f, "vfio-brokerd stopping with %zu leases",
		  lease_table_count(b.leases));
	broker_teardown(&b);
	return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
