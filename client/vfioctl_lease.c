/* SPDX-License-Identifier: MIT */
/*
 * lease, run and release. vfioctl lease is the holder: it leases the groups,
 * runs the command with their files, stays to pass on what the broker says
 * (an administrator asking for a group back) and the signals it gets, and
 * gives the groups back when the command exits. vfioctl run leases the same
 * way and then becomes the command (exec): the command, a VMM, is the holder
 * itself, with the preload shim (client/preload.c) to meet its own open() of
 * /dev/vfio/N with the files it inherits.
 */
#include "client/vfioctl.h"
#include "client/vfioctl_placeholder.h"
#include "client/vfioctl_print.h"
#include "client/vfioctl_report.h"
#include "client/vfioctl_spawn.h"
#include "policy/policy.h"
#include "protocol/message.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define LEASE_MAX_TARGETS 64
/* Device cdevs one run --cdev hands on: with the iommufd, all that spawn numbers. */
#define LEASE_MAX_CDEVS (SPAWN_MAX_FDS - 1)
/* How long a holder tries to reach a broker that went away: a restart takes well under. */
#define RECONNECT_FOR_MS 120000
#define PRELOAD_NAME	 "libvfiobroker-preload.so"
#ifndef VB_PRELOAD_PATH
#define VB_PRELOAD_PATH "/usr/local/lib/vfio-broker/" PRELOAD_NAME
#endif

enum on_remove {
	ON_REMOVE_TERM,	  /* send the command SIGTERM: the usual way to ask a VMM to stop */
	ON_REMOVE_IGNORE, /* tell the user only; the command handles it, or the removal times out */
};

/* A group or a device, as named on the command line. */
struct lease_target {
	const char *arg;
	bool by_device;
	unsigned group;
	char address[VB_ADDRESS_MAX];
};

struct lease_request {
	struct lease_target targets[LEASE_MAX_TARGETS];
	size_t n_targets;
	bool merge;
	enum on_remove on_remove;
	uint64_t memlock; /* --memlock: what the command will pin; 0 unasked */
	bool no_preload;  /* run --no-preload */
	bool cdev;	  /* --cdev: device cdevs and an iommufd, placeholders, no shim */
	char **cmd;
};

/* The groups this process holds, and the command it holds them for. */
struct holder {
	struct vfiobroker *broker;
	bool broker_lost; /* the connection broke: no more events, nothing to release through */
	uint64_t reconnect_until_ms; /* broker_lost: keep trying until then (CLOCK_MONOTONIC) */
	uint64_t reconnect_next_ms;  /* ... the next attempt */
	unsigned reconnect_delay_ms; /* ... and the wait after it */
	unsigned groups[LEASE_MAX_TARGETS];
	int fds[LEASE_MAX_TARGETS];
	size_t n_groups;
	int container_fd;
	/* cdev leases (fds[] are then -1): the one iommufd and every device's cdev. */
	bool cdev;
	int iommufd;
	struct placeholder_device cdevs[LEASE_MAX_CDEVS]; /* fd: ours until the exec */
	size_t n_cdevs;
	struct vfiobroker_group *inventory; /* vfioctl list, fetched when a device needs it */
	size_t n_inventory;
	char **cmd;
	const char *socket_path; /* passed on, so that vfioctl run by cmd finds the same broker */
	pid_t child;
	enum on_remove on_remove;
	uint64_t memlock;
};

/*
 * target_parse reads a group number or a PCI address (either the full
 * 0000:01:00.0 or lspci's 01:00.0, domain 0). Returns 0, or reports a usage
 * error and returns its exit status.
 */
static int target_parse(const char *command, const char *arg, bool groups, bool devices,
			struct lease_target *ret)
{
	struct lease_target t = {.arg = arg};
	uint32_t group;
	char full[32];

	if (groups && vb_group_parse(arg, &group) == 0) {
		t.group = group;
		*ret = t;
		return 0;
	}
	snprintf(full, sizeof(full), "0000:%s", arg);
	if (devices && (vb_address_parse(arg, t.address) == 0 ||
			(strlen(arg) == 7 && vb_address_parse(full, t.address) == 0))) {
		t.by_device = true;
		*ret = t;
		return 0;
	}
	if (groups && devices)
		return report_usage("%s: '%s' is neither a group number nor a PCI address", command,
				    arg);
	if (groups)
		return report_usage("%s: '%s' is not a group number", command, arg);
	return report_usage("%s: '%s' is not a PCI address like 0000:01:00.0", command, arg);
}

static int request_add_target(const char *command, struct lease_request *req, const char *arg,
			      bool groups, bool devices)
{
	if (req->n_targets == LEASE_MAX_TARGETS)
		return report_usage("%s: at most %d groups at once", command, LEASE_MAX_TARGETS);
	return target_parse(command, arg, groups, devices, &req->targets[req->n_targets++]);
}

static int parse_memlock(const char *command, const char *arg, uint64_t *ret)
{
	uint64_t bytes;

	if (policy_parse_size(arg, &bytes) < 0 || bytes == 0 || bytes > INT64_MAX)
		return report_usage("%s: --memlock takes a size like 64M, 65792K or 8G, not '%s'",
				    command, arg);
	*ret = bytes;
	return 0;
}

static int parse_on_remove(const char *command, const char *arg, enum on_remove *ret)
{
	if (strcmp(arg, "term") == 0)
		*ret = ON_REMOVE_TERM;
	else if (strcmp(arg, "ignore") == 0)
		*ret = ON_REMOVE_IGNORE;
	else
		return report_usage("%s: --on-remove takes term or ignore, not '%s'", command, arg);
	return 0;
}

static bool holder_has_group(const struct holder *h, unsigned group)
{
	for (size_t i = 0; i < h->n_groups; i++)
		if (h->groups[i] == group)
			return true;
	return false;
}

/*
 * Whether device address is in a group this holder already has. Two devices
 * (or a device and its group) named together must not lease one group twice;
 * the broker would answer busy. Asks the broker for the list once, and only
 * when some group is held already.
 */
static bool holder_has_device(struct holder *h, const char *address)
{
	if (h->n_groups == 0)
		return false;
	if (!h->inventory && vfiobroker_list(h->broker, &h->inventory, &h->n_inventory) < 0)
		return false;
	for (size_t i = 0; i < h->n_inventory; i++)
		for (size_t j = 0; j < h->inventory[i].n_devices; j++)
			if (strcmp(h->inventory[i].devices[j].address, address) == 0)
				return holder_has_group(h, h->inventory[i].group);
	return false;
}

/* A refused lease, reported; the exit status. */
static int holder_report_lease_error(struct holder *h, const struct lease_target *t, int r)
{
	char what[64];

	if (vfiobroker_error_detail(h->broker, "asked")) {
		/* The broker's sentence has both numbers and what to do; add where they come from.
		 */
		report_error(vfiobroker_error_code(h->broker), "%s",
			     vfiobroker_error_message(h->broker));
		report_hint("--memlock is what the command pins for DMA: for QEMU, its -m plus 1M "
			    "(see docs/qemu.md)");
		return VFIOCTL_EXIT_FAILED;
	}
	snprintf(what, sizeof(what), "lease %s", t->arg);
	return report_broker_error(h->broker, r, REPORT_OP_LEASE,
				   t->by_device ? -1 : (int64_t)t->group, what);
}

/*
 * The cdev path: every device's cdev and the holder's iommufd, which the
 * broker sends again with each later lease (the copy is closed: it is the
 * same file).
 */
static int holder_lease_cdev(struct holder *h, const struct lease_target *t)
{
	struct vfiobroker_cdev_lease l;
	int r;

	r = vfiobroker_lease_cdev(h->broker, t->group, t->by_device ? t->address : NULL, h->memlock,
				  &l);
	if (r < 0)
		return holder_report_lease_error(h, t, r);
	h->groups[h->n_groups] = l.group;
	h->fds[h->n_groups] = -1;
	h->n_groups++;
	if (h->iommufd < 0) {
		h->iommufd = l.iommufd;
	} else {
		close(l.iommufd);
		if (!l.iommufd_reused) {
			for (size_t i = 0; i < l.n_devices; i++)
				close(l.devices[i].fd);
			report_error("failed",
				     "the broker sent group %u with an iommufd of its own, not the "
				     "one of the groups before it",
				     l.group);
			return VFIOCTL_EXIT_FAILED;
		}
	}
	for (size_t i = 0; i < l.n_devices; i++) {
		if (h->n_cdevs == LEASE_MAX_CDEVS) {
			for (size_t k = i; k < l.n_devices; k++)
				close(l.devices[k].fd);
			report_error("limit", "run --cdev hands on at most %d devices",
				     LEASE_MAX_CDEVS);
			return VFIOCTL_EXIT_FAILED;
		}
		snprintf(h->cdevs[h->n_cdevs].address, sizeof(h->cdevs[h->n_cdevs].address), "%s",
			 l.devices[i].address);
		h->cdevs[h->n_cdevs++].fd = l.devices[i].fd;
	}
	return 0;
}

/* Leases one target. Returns 0, or reports the failure and returns the exit status. */
static int holder_lease(struct holder *h, const struct lease_target *t)
{
	char what[64];
	unsigned group = t->group;
	int fd, r;

	if (t->by_device) {
		if (holder_has_device(h, t->address))
			return 0;
	} else if (holder_has_group(h, t->group)) {
		return 0;
	}
	if (h->cdev)
		return holder_lease_cdev(h, t);
	r = vfiobroker_lease_memlock(h->broker, t->group, t->by_device ? t->address : NULL,
				     h->memlock, &group, &fd);
	if (r < 0 && vfiobroker_error_detail(h->broker, "asked")) {
		/* The broker's sentence has both numbers and what to do; add where they come from.
		 */
		report_error(vfiobroker_error_code(h->broker), "%s",
			     vfiobroker_error_message(h->broker));
		report_hint("--memlock is what the command pins for DMA: for QEMU, its -m plus 1M "
			    "(see docs/qemu.md)");
		return VFIOCTL_EXIT_FAILED;
	}
	if (r < 0) {
		snprintf(what, sizeof(what), "lease %s", t->arg);
		return report_broker_error(h->broker, r, REPORT_OP_LEASE,
					   t->by_device ? -1 : (int64_t)t->group, what);
	}
	if (holder_has_group(h, group)) {
		close(fd);
		return 0;
	}
	h->groups[h->n_groups] = group;
	h->fds[h->n_groups] = fd;
	h->n_groups++;
	return 0;
}

static void holder_close_files(struct holder *h)
{
	if (h->container_fd >= 0)
		close(h->container_fd);
	h->container_fd = -1;
	if (h->iommufd >= 0)
		close(h->iommufd);
	h->iommufd = -1;
	for (size_t i = 0; i < h->n_cdevs; i++) {
		if (h->cdevs[i].fd >= 0)
			close(h->cdevs[i].fd);
		h->cdevs[i].fd = -1;
	}
	for (size_t i = 0; i < h->n_groups; i++) {
		if (h->fds[i] >= 0)
			close(h->fds[i]);
		h->fds[i] = -1;
	}
}

/*
 * holder_release_all closes this process's copies of the group files and the
 * container, then releases every group. Failures are warnings: the leases end
 * anyway when this process exits with the files closed.
 */
static void holder_release_all(struct holder *h)
{
	holder_close_files(h);
	for (size_t i = 0; i < h->n_groups && !h->broker_lost; i++) {
		bool released;
		int r = vfiobroker_release(h->broker, h->groups[i], &released);

		if (r == -ECONNRESET) {
			h->broker_lost = true;
		} else if (r < 0) {
			const char *code = vfiobroker_error_code(h->broker);

			report_warning("could not release group %u: %s", h->groups[i],
				       code ? vfiobroker_error_message(h->broker) : strerror(-r));
		} else if (!released) {
			report_warning("group %u is still open in another process; its lease "
				       "ends when that process closes it",
				       h->groups[i]);
		}
	}
	h->n_groups = 0;
}

static int holder_merge(struct holder *h)
{
	int r = vfiobroker_merge(h->broker, h->groups, h->n_groups, -1, &h->container_fd);

	if (r < 0)
		return report_broker_error(h->broker, r, REPORT_OP_MERGE, -1, "merge the groups");
	return 0;
}

static void holder_on_event(struct holder *h, const struct vfiobroker_event *ev)
{
	char within[48] = "";

	if (!holder_has_group(h, ev->group) || h->child <= 0)
		return;
	if (ev->timeout_ms % 1000)
		snprintf(within, sizeof(within), " (within %.1f s)", ev->timeout_ms / 1000.0);
	else if (ev->timeout_ms)
		snprintf(within, sizeof(within), " (within %u s)", ev->timeout_ms / 1000);
	switch (ev->type) {
	case VFIOBROKER_EVENT_REMOVE_REQUESTED:
		if (h->on_remove == ON_REMOVE_IGNORE) {
			report_note("group %u: an administrator asks for it back%s; "
				    "--on-remove=ignore: leaving %s (pid %d) running",
				    ev->group, within, h->cmd[0], (int)h->child);
			break;
		}
		report_note("group %u: an administrator asks for it back%s; sending SIGTERM to %s "
			    "(pid %d)",
			    ev->group, within, h->cmd[0], (int)h->child);
		kill(h->child, SIGTERM);
		break;
	case VFIOBROKER_EVENT_REVOKED:
		report_note("group %u: revoked by an administrator; %s (pid %d) is being killed",
			    ev->group, h->cmd[0], (int)h->child);
		break;
	case VFIOBROKER_EVENT_DEVICE_ADDED:
		report_note("group %u: device %s was added to it", ev->group, ev->device);
		break;
	case VFIOBROKER_EVENT_RELEASED:
		break;
	}
}

static uint64_t now_msec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* The connection broke: say so, and start trying to reach the broker again. */
static void holder_lose_broker(struct holder *h, int r)
{
	h->broker_lost = true;
	h->reconnect_until_ms = now_msec() + RECONNECT_FOR_MS;
	h->reconnect_next_ms = 0;
	h->reconnect_delay_ms = VFIOBROKER_RECONNECT_FIRST_MS;
	report_warning("lost the connection to vfio-brokerd (%s): it stopped or restarted; %s "
		       "keeps its groups; reconnecting",
		       strerror(-r), h->cmd[0]);
}

/*
 * After a restart, warns about each group the broker no longer knows as this
 * process's lease (it drops what it cannot check against the kernel).
 */
static void holder_check_restored(struct holder *h)
{
	struct vfiobroker_lease *leases = NULL;
	size_t n = 0;

	if (vfiobroker_leases(h->broker, &leases, &n) < 0)
		return;
	for (size_t i = 0; i < h->n_groups; i++) {
		bool known = false;

		for (size_t j = 0; j < n; j++)
			known |= leases[j].group == h->groups[i] && leases[j].pid == getpid();
		if (!known)
			report_warning(
				"vfio-brokerd no longer knows the lease of group %u (its log "
				"says why); %s keeps the group file",
				h->groups[i], h->cmd[0]);
	}
	vfiobroker_leases_free(leases, n);
}

/*
 * holder_try_reconnect makes one attempt to reach the broker again, when one
 * is due, and returns how long until the next (-1: none, connected or given
 * up). The broker restores the leases from the kernel and links the new
 * connection to this process's, so removal requests reach us again.
 */
static int holder_try_reconnect(struct holder *h)
{
	uint64_t now = now_msec();
	unsigned delay_ms;
	int r;

	if (!h->broker_lost || h->reconnect_until_ms == 0)
		return -1;
	if (now < h->reconnect_next_ms)
		return (int)(h->reconnect_next_ms - now);
	r = vfiobroker_reconnect(h->broker, 0);
	if (r == 0) {
		h->broker_lost = false;
		h->reconnect_until_ms = 0;
		report_note("vfio-brokerd restarted; the connection is back: removal requests "
			    "reach %s (pid %d) again",
			    h->cmd[0], (int)h->child);
		holder_check_restored(h);
		return -1;
	}
	now = now_msec();
	if (r != -ETIMEDOUT || now >= h->reconnect_until_ms) {
		h->reconnect_until_ms = 0;
		report_warning("cannot reach vfio-brokerd again (%s): %s keeps its groups, but "
			       "removal requests will not reach it",
			       r == -ETIMEDOUT ? "it did not come back within 120 s" : strerror(-r),
			       h->cmd[0]);
		return -1;
	}
	delay_ms = h->reconnect_delay_ms;
	h->reconnect_next_ms = now + delay_ms;
	h->reconnect_delay_ms = delay_ms * 2 > VFIOBROKER_RECONNECT_MAX_MS
					? VFIOBROKER_RECONNECT_MAX_MS
					: delay_ms * 2;
	return (int)delay_ms;
}

/* Reads every pending event. When the connection breaks, says what that means, once. */
static void holder_read_events(struct holder *h)
{
	struct vfiobroker_event ev;
	int r;

	while (!h->broker_lost) {
		r = vfiobroker_next_event(h->broker, &ev);
		if (r == -EAGAIN)
			return;
		if (r < 0) {
			holder_lose_broker(h, r);
			return;
		}
		holder_on_event(h, &ev);
	}
}

/*
 * Passes a signal on to the command. One the terminal sent (Ctrl-C) already
 * reached the command when it shares our process group; sending it again
 * would make it count twice.
 */
static void holder_forward_signal(struct holder *h, const struct signalfd_siginfo *si)
{
	if (si->ssi_code == SI_KERNEL && getpgid(h->child) == getpgrp())
		return;
	kill(h->child, (int)si->ssi_signo);
}

/*
 * holder_wait waits for the command to exit, forwarding signals and acting on
 * events meanwhile. Returns its wait status, or -errno if waiting failed.
 */
static int holder_wait(struct holder *h, int signal_fd)
{
	for (;;) {
		struct pollfd pfd[2] = {
			{.fd = signal_fd, .events = POLLIN},
			{.fd = -1, .events = POLLIN},
		};
		struct signalfd_siginfo si;
		int status, timeout_ms;
		pid_t pid;

		holder_read_events(h);
		timeout_ms = holder_try_reconnect(h);
		/*
		 * A reconnect asks for the leases: an event that arrived meanwhile
		 * (a removal request sent right after the restart) is queued in the
		 * library and does not make the socket readable. Read it before
		 * polling, or it waits for the next packet.
		 */
		holder_read_events(h);
		if (!h->broker_lost)
			pfd[1].fd = vfiobroker_get_fd(h->broker);
		if (poll(pfd, 2, timeout_ms) < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		while (read(signal_fd, &si, sizeof(si)) == sizeof(si))
			if (si.ssi_signo != SIGCHLD)
				holder_forward_signal(h, &si);
		pid = waitpid(h->child, &status, WNOHANG);
		if (pid < 0 && errno != EINTR)
			return -errno;
		if (pid == h->child)
			return status;
	}
}

/* "VFIO_BROKER_FDS=7=3,8=4": which inherited descriptor is which group. */
static void format_fd_map(const struct holder *h, char *buf, size_t size)
{
	size_t len = (size_t)snprintf(buf, size, "VFIO_BROKER_FDS=");

	for (size_t i = 0; i < h->n_groups && len < size; i++)
		len += (size_t)snprintf(buf + len, size - len, "%s%u=%zu", i ? "," : "",
					h->groups[i], SPAWN_FIRST_FD + i);
}

/* What the command's environment gets besides ours; the strings live in env. */
struct holder_env {
	char fd_map[LEASE_MAX_TARGETS * 24 + 32];
	char container[64];
	char *socket;
	char *preload;
	char *entries[5];
	int fds[LEASE_MAX_TARGETS + 1];
	size_t n_fds;
};

static void holder_env_done(struct holder_env *e)
{
	free(e->socket);
	free(e->preload);
}

/*
 * holder_env_init says which inherited descriptor is which group (and the
 * container), where the broker is, and with preload (a path, or NULL) puts
 * the shim first in LD_PRELOAD. Returns 0 or -ENOMEM.
 */
static int holder_env_init(const struct holder *h, const char *preload, struct holder_env *e)
{
	const char *old = getenv("LD_PRELOAD");
	size_t n = 0;

	*e = (struct holder_env){0};
	format_fd_map(h, e->fd_map, sizeof(e->fd_map));
	e->entries[n++] = e->fd_map;
	memcpy(e->fds, h->fds, h->n_groups * sizeof(int));
	e->n_fds = h->n_groups;
	if (h->container_fd >= 0) {
		e->fds[e->n_fds] = h->container_fd;
		snprintf(e->container, sizeof(e->container), "VFIO_BROKER_CONTAINER_FD=%zu",
			 SPAWN_FIRST_FD + e->n_fds);
		e->n_fds++;
		e->entries[n++] = e->container;
	}
	if (asprintf(&e->socket, "%s=%s", VFIOBROKER_SOCKET_ENV, h->socket_path) < 0) {
		e->socket = NULL;
		return -ENOMEM;
	}
	e->entries[n++] = e->socket;
	if (preload) {
		if (asprintf(&e->preload, "LD_PRELOAD=%s%s%s", preload, old && *old ? " " : "",
			     old ? old : "") < 0) {
			e->preload = NULL;
			holder_env_done(e);
			return -ENOMEM;
		}
		e->entries[n++] = e->preload;
	}
	return 0;
}

/*
 * holder_run runs the command with the group files (and the container) as
 * descriptors 3..., and waits for it (holder_run_spawn: as s says). Returns the exit status: the
 * command's, 128 + the signal that killed it, or 126/127 when it could not be started. The
 * forwarded signals stay blocked after it returns: a late Ctrl-C must not cut the release that
 * follows short (it would only be a little less tidy: the leases end anyway when this process
 * exits).
 */
static int holder_run_spawn(struct holder *h, const struct spawn *s)
{
	static const int forwarded[] = {SIGCHLD, SIGINT, SIGTERM, SIGHUP};
	sigset_t mask, old_mask;
	int signal_fd, status, r;

	/* Blocked before fork, so that no signal (nor the child's exit) slips past signal_fd. */
	sigemptyset(&mask);
	for (size_t i = 0; i < sizeof(forwarded) / sizeof(forwarded[0]); i++)
		sigaddset(&mask, forwarded[i]);
	sigprocmask(SIG_BLOCK, &mask, &old_mask);
	signal_fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (signal_fd < 0) {
		r = -errno;
		report_error("failed", "cannot watch signals: %s", strerror(-r));
		return VFIOCTL_EXIT_FAILED;
	}

	r = spawn_start(s, &old_mask, &h->child);
	if (r < 0) {
		report_error("failed", "cannot run %s: %s", h->cmd[0], strerror(-r));
		status = spawn_failure_status(r);
		goto close_signal_fd;
	}
	r = holder_wait(h, signal_fd);
	if (r < 0) {
		/* Cannot happen short of a kernel bug; the lease then ends when we exit. */
		report_error("failed", "cannot wait for %s: %s", h->cmd[0], strerror(-r));
		status = VFIOCTL_EXIT_FAILED;
	} else {
		status = spawn_exit_status(r);
	}
	h->child = 0;

close_signal_fd:
	close(signal_fd);
	return status;
}

static int holder_run(struct holder *h)
{
	struct holder_env e;
	struct spawn s;
	int status;

	if (holder_env_init(h, NULL, &e) < 0) {
		report_error("failed", "cannot run %s: %s", h->cmd[0], strerror(ENOMEM));
		return VFIOCTL_EXIT_FAILED;
	}
	s = (struct spawn){.argv = h->cmd, .fds = e.fds, .n_fds = e.n_fds, .env = e.entries};
	status = holder_run_spawn(h, &s);
	holder_env_done(&e);
	return status;
}

/*
 * The shim: beside this vfioctl (a build tree), in ../lib/vfio-broker from it
 * (an install under any PREFIX, even one other than the build's), else at
 * VB_PRELOAD_PATH. It lives in a private directory: it is a plugin, not a
 * library anything links against, so it has no soname.
 */
static int preload_find(char *buf, size_t size)
{
	static const char *const beside[] = {"", "../lib/vfio-broker/"};
	char exe[PATH_MAX], *slash;
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	if (n > 0) {
		exe[n] = '\0';
		slash = strrchr(exe, '/');
		if (slash) {
			*slash = '\0';
			for (size_t i = 0; i < sizeof(beside) / sizeof(beside[0]); i++)
				if (snprintf(buf, size, "%s/%s%s", exe, beside[i], PRELOAD_NAME) <
					    (int)size &&
				    access(buf, R_OK) == 0)
					return 0;
		}
	}
	snprintf(buf, size, "%s", VB_PRELOAD_PATH);
	return access(buf, R_OK) == 0 ? 0 : -ENOENT;
}

/*
 * holder_exec becomes the command, which thereby holds the groups: same
 * process, same pidfd, the RLIMIT_MEMLOCK the broker raised. Returns only
 * when it could not: the exit status to end with (the leases are still ours
 * and are released by the caller).
 */
static int holder_exec(struct holder *h, bool preload)
{
	char path[PATH_MAX];
	struct holder_env e;
	struct spawn s;
	int r;

	if (preload && preload_find(path, sizeof(path)) < 0) {
		report_error("failed", "cannot find %s beside vfioctl nor at %s", PRELOAD_NAME,
			     VB_PRELOAD_PATH);
		report_hint("reinstall vfio-broker, or pass --no-preload to a command that takes "
			    "the group files from VFIO_BROKER_FDS");
		return VFIOCTL_EXIT_FAILED;
	}
	if (holder_env_init(h, preload ? path : NULL, &e) < 0) {
		report_error("failed", "cannot run %s: %s", h->cmd[0], strerror(ENOMEM));
		return VFIOCTL_EXIT_FAILED;
	}
	s = (struct spawn){.argv = h->cmd, .fds = e.fds, .n_fds = e.n_fds, .env = e.entries};
	/* Our connection is O_CLOEXEC and goes with the exec; the leases stay (the process). */
	r = spawn_exec(&s);
	report_error("failed", "cannot run %s: %s", h->cmd[0], strerror(-r));
	holder_env_done(&e);
	return spawn_failure_status(r);
}

/* The cdev path's command: CMD with its placeholders replaced, its descriptors, its env. */
struct holder_cdev_cmd {
	char iommufd_env[64];
	char cdev_env[LEASE_MAX_CDEVS * 32 + 32];
	char *entries[4];
	char **argv;
	size_t n_args;
	int fds[SPAWN_MAX_FDS];
	struct spawn spawn;
};

static void holder_cdev_cmd_done(struct holder_cdev_cmd *c)
{
	for (size_t i = 0; c->argv && i < c->n_args; i++)
		free(c->argv[i]);
	free(c->argv);
	c->argv = NULL;
	free(c->entries[2]);
	c->entries[2] = NULL;
}

/*
 * holder_cdev_cmd_init prepares c->spawn: the iommufd as descriptor 3 and
 * the device cdevs after it, CMD's placeholders replaced by those numbers,
 * and VFIO_BROKER_IOMMUFD and VFIO_BROKER_CDEV_FDS saying the same. Returns
 * 0, or reports the failure and returns the exit status (c is then done).
 */
static int holder_cdev_cmd_init(const struct holder *h, struct holder_cdev_cmd *c)
{
	struct placeholder_device numbered[LEASE_MAX_CDEVS];
	struct placeholder_map m = {
		.iommufd = SPAWN_FIRST_FD, .devices = numbered, .n_devices = h->n_cdevs};
	char why[1024];
	size_t len;
	int r;

	*c = (struct holder_cdev_cmd){0};
	c->entries[0] = c->iommufd_env;
	c->entries[1] = c->cdev_env;
	c->fds[0] = h->iommufd;
	len = (size_t)snprintf(c->cdev_env, sizeof(c->cdev_env), "VFIO_BROKER_CDEV_FDS=");
	for (size_t i = 0; i < h->n_cdevs; i++) {
		numbered[i] = h->cdevs[i];
		numbered[i].fd = SPAWN_FIRST_FD + 1 + (int)i;
		c->fds[1 + i] = h->cdevs[i].fd;
		if (len < sizeof(c->cdev_env))
			len += (size_t)snprintf(c->cdev_env + len, sizeof(c->cdev_env) - len,
						"%s%s=%d", i ? "," : "", numbered[i].address,
						numbered[i].fd);
	}
	snprintf(c->iommufd_env, sizeof(c->iommufd_env), "VFIO_BROKER_IOMMUFD=%d", SPAWN_FIRST_FD);
	if (asprintf(&c->entries[2], "%s=%s", VFIOBROKER_SOCKET_ENV, h->socket_path) < 0) {
		c->entries[2] = NULL;
		report_error("failed", "cannot run %s: %s", h->cmd[0], strerror(ENOMEM));
		return VFIOCTL_EXIT_FAILED;
	}
	while (h->cmd[c->n_args])
		c->n_args++;
	c->argv = calloc(c->n_args + 1, sizeof(*c->argv));
	if (!c->argv) {
		report_error("failed", "cannot run %s: %s", h->cmd[0], strerror(ENOMEM));
		holder_cdev_cmd_done(c);
		return VFIOCTL_EXIT_FAILED;
	}
	for (size_t i = 0; i < c->n_args; i++) {
		r = placeholder_expand(h->cmd[i], &m, &c->argv[i], why, sizeof(why));
		if (r == -EINVAL) {
			report_error("bad-placeholder", "argument %zu of the command: %s", i, why);
			report_hint("see PLACEHOLDERS in vfioctl(1)");
			holder_cdev_cmd_done(c);
			return VFIOCTL_EXIT_USAGE;
		}
		if (r < 0) {
			report_error("failed", "cannot run %s: %s", h->cmd[0], strerror(-r));
			holder_cdev_cmd_done(c);
			return VFIOCTL_EXIT_FAILED;
		}
	}
	c->spawn = (struct spawn){
		.argv = c->argv, .fds = c->fds, .n_fds = 1 + h->n_cdevs, .env = c->entries};
	return 0;
}

/*
 * holder_exec_cdev becomes the command as holder_cdev_cmd_init prepares it.
 * No shim: a VMM on this path takes descriptors (QEMU 9.0+: fd=). Returns
 * only when it could not: the exit status to end with.
 */
static int holder_exec_cdev(struct holder *h)
{
	struct holder_cdev_cmd c;
	int status = holder_cdev_cmd_init(h, &c), r;

	if (status)
		return status;
	/* Our connection is O_CLOEXEC and goes with the exec; the leases stay (the process). */
	r = spawn_exec(&c.spawn);
	report_error("failed", "cannot run %s: %s", h->cmd[0], strerror(-r));
	holder_cdev_cmd_done(&c);
	return spawn_failure_status(r);
}

/*
 * holder_run_cdev runs the command as holder_cdev_cmd_init prepares it and
 * waits for it, as holder_run does: vfioctl lease --cdev stays the holder.
 */
static int holder_run_cdev(struct holder *h)
{
	struct holder_cdev_cmd c;
	int status = holder_cdev_cmd_init(h, &c);

	if (status)
		return status;
	status = holder_run_spawn(h, &c.spawn);
	holder_cdev_cmd_done(&c);
	return status;
}

/* lease and run, once their command lines are read. */
static int lease_and_run(struct vfioctl *ctl, const char *command, struct lease_request *req)
{
	struct holder h = {
		.container_fd = -1,
		.cdev = req->cdev,
		.iommufd = -1,
		.cmd = req->cmd,
		.socket_path = ctl->socket_path,
		.on_remove = req->on_remove,
		.memlock = req->memlock,
	};
	int status;

	if (req->n_targets == 0)
		return report_usage("%s needs at least one group or device", command);
	if (!req->cmd)
		return report_usage("%s needs -- CMD: the leases last as long as CMD runs",
				    command);
	if (req->cdev && req->merge)
		return report_usage("%s: --merge is for the group path; the cdev leases of one "
				    "holder share one iommufd already",
				    command);
	if (req->merge && req->n_targets > VB_MAX_MERGE_GROUPS)
		return report_usage("%s: --merge takes at most %d groups", command,
				    VB_MAX_MERGE_GROUPS);

	status = vfioctl_open_broker(ctl, &h.broker);
	if (status)
		return status;
	for (size_t i = 0; i < req->n_targets && status == 0; i++)
		status = holder_lease(&h, &req->targets[i]);
	if (status == 0 && req->merge)
		status = holder_merge(&h);
	vfiobroker_groups_free(h.inventory, h.n_inventory);
	h.inventory = NULL;
	/* Nothing is run with part of what was asked for. */
	if (status == 0 && req->cdev && strcmp(command, "run") == 0)
		status = holder_exec_cdev(&h);
	else if (status == 0 && req->cdev)
		status = holder_run_cdev(&h);
	else if (status == 0 && strcmp(command, "run") == 0)
		status = holder_exec(&h, !req->no_preload);
	else if (status == 0)
		status = holder_run(&h);
	holder_release_all(&h);
	vfiobroker_disconnect(h.broker);
	return status;
}

int vfioctl_lease(struct vfioctl *ctl, int argc, char **argv)
{
	static const struct option options[] = {
		{"merge", no_argument, NULL, 'm'},
		{"memlock", required_argument, NULL, 'M'},
		{"on-remove", required_argument, NULL, 'r'},
		{"cdev", no_argument, NULL, 'c'},
		{0},
	};
	struct lease_request req = {0};
	int c, r;

	vfioctl_split_command(&argc, argv, &req.cmd);
	while ((c = getopt_long(argc, argv, ":", options, NULL)) != -1) {
		switch (c) {
		case 'c':
			req.cdev = true;
			break;
		case 'm':
			req.merge = true;
			break;
		case 'M':
			r = parse_memlock("lease", optarg, &req.memlock);
			if (r)
				return r;
			break;
		case 'r':
			r = parse_on_remove("lease", optarg, &req.on_remove);
			if (r)
				return r;
			break;
		default:
			return vfioctl_bad_option("lease", c, argv);
		}
	}
	for (int i = optind; i < argc; i++) {
		r = request_add_target("lease", &req, argv[i], true, true);
		if (r)
			return r;
	}
	return lease_and_run(ctl, "lease", &req);
}

int vfioctl_run(struct vfioctl *ctl, int argc, char **argv)
{
	static const struct option options[] = {
		{"device", required_argument, NULL, 'd'},
		{"group", required_argument, NULL, 'g'},
		{"merge", no_argument, NULL, 'm'},
		{"memlock", required_argument, NULL, 'M'},
		{"no-preload", no_argument, NULL, 'P'},
		{"cdev", no_argument, NULL, 'c'},
		{0},
	};
	struct lease_request req = {0};
	int c, r;

	vfioctl_split_command(&argc, argv, &req.cmd);
	while ((c = getopt_long(argc, argv, ":", options, NULL)) != -1) {
		switch (c) {
		case 'd':
		case 'g':
			r = request_add_target("run", &req, optarg, c == 'g', c == 'd');
			if (r)
				return r;
			break;
		case 'm':
			req.merge = true;
			break;
		case 'M':
			r = parse_memlock("run", optarg, &req.memlock);
			if (r)
				return r;
			break;
		case 'P':
			req.no_preload = true;
			break;
		case 'c':
			req.cdev = true;
			break;
		default:
			return vfioctl_bad_option("run", c, argv);
		}
	}
	if (optind < argc)
		return report_usage("run: name devices with --device ('%s')", argv[optind]);
	return lease_and_run(ctl, "run", &req);
}

int vfioctl_release(struct vfioctl *ctl, int argc, char **argv)
{
	static const struct option options[] = {
		{"json", no_argument, NULL, 'j'},
		{0},
	};
	struct vfiobroker *b;
	unsigned group;
	bool released;
	int c, r;

	while ((c = getopt_long(argc, argv, ":", options, NULL)) != -1) {
		if (c != 'j')
			return vfioctl_bad_option("release", c, argv);
		ctl->json = true;
	}
	if (argc - optind != 1)
		return report_usage("release takes one group");
	r = vfioctl_parse_group("release", argv[optind], &group);
	if (r)
		return r;
	r = vfioctl_open_broker(ctl, &b);
	if (r)
		return r;
	r = vfioctl_close_broker(b, vfiobroker_release(b, group, &released), REPORT_OP_RELEASE,
				 group, "release");
	if (r)
		return r;

	print_start(ctl->json);
	print_text("group ");
	print_uint("group", 0, group);
	print_text(": ");
	print_bool("released", 0, released, "released",
		   "still open elsewhere; the lease ends when it is closed");
	print_text("\n");
	return print_finish() < 0 ? VFIOCTL_EXIT_FAILED : VFIOCTL_EXIT_OK;
}
