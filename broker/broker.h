/* SPDX-License-Identifier: MIT */
/*
 * The daemon's state, created by main.c and passed to every module that
 * acts on more than its own objects (the request handlers, merge, remove,
 * server).
 */
#pragma once

#include "broker/log.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

#define BROKER_DEFAULT_SOCKET "/run/vfio-broker/socket"

struct broker_config {
	const char *socket_path; /* NULL: from systemd, else the default */
	const char *policy_dir;
	const char *sysfs_root;
	const char *dev_root;
	const char *admin_group; /* NULL: only root is an administrator */
	const char *state_dir;	 /* where the lease table is kept across restarts */
	const char *cgroup_root; /* lease cgroups: a directory, "auto" or "none" */
	enum log_target log_target;
	unsigned max_connections;
	unsigned max_connections_per_uid; /* root is exempt */
	unsigned max_leases_per_uid;	  /* when the deciding rule sets no max_leases */
	unsigned max_requests_per_uid;	  /* per second, sustained; 0: no limit; root is exempt */
	unsigned request_burst_per_uid;	  /* requests at once above that rate */
	uint64_t handshake_timeout_usec;
	uint64_t idle_timeout_usec; /* 0: none */
	uint64_t remove_timeout_usec;
	bool sandbox; /* drop capabilities and install the seccomp filter after start-up */
};

struct broker {
	sd_event *event;
	struct broker_config config;
	bool has_admin_gid;
	gid_t admin_gid;
	struct inventory *inventory;
	struct list_cache *list_cache; /* list's replies, serialised (NULL: made on first use) */
	struct policy_store *policy;
	struct lease_table *leases;
	struct lease_cgroups *cgroups;	 /* NULL: leases bound to their uid only */
	struct lease_store *lease_store; /* NULL until the stored leases are restored */
	struct containers *containers;
	struct removals *removals;
	struct server *server;
	struct closer *closer;	 /* closes clients' sockets off the event loop */
	struct scanner *scanner; /* the holders scan's processes (scanner.h) */
	struct kmod_link *kmod;	 /* the vfio_quarantine module's requests and events */
	struct status *status;	 /* STATUS= for systemd */
};
