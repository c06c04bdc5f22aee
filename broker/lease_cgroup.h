/* SPDX-License-Identifier: MIT */
/*
 * Lease cgroups: the boundary the kernel enforces around a lease. At grant
 * the holder process is moved into a cgroup v2 directory of the lease's own
 * under the broker's root (the broker's own cgroup when systemd delegates
 * it, else a directory the broker makes under the cgroup v2 mount). Its
 * children are born there and cannot leave: moving a process needs write
 * access to cgroup.procs of the common ancestor of both cgroups, which is
 * root's. A holder already in a lease cgroup gets its next one nested
 * inside, so that no lease takes a process out of another's. Hard removal
 * writes cgroup.kill, which kills every process of the lease, including
 * those that only have a VFIO device fd (the /proc scan cannot see them).
 *
 * Paths of lease cgroups are relative to the root ("lease-7-1764000.../..."),
 * so the state file names them the same way after a restart.
 */
#pragma once

#include "broker/pidref.h"

#include <stdbool.h>
#include <stdint.h>

struct lease_cgroups;

/*
 * lease_cgroups_open sets up the root: root is a directory on a cgroup v2
 * file system (made if missing), "auto" (the broker's own cgroup when
 * systemd delegated it, else /sys/fs/cgroup/vfio-broker when
 * /sys/fs/cgroup is cgroup v2), or "none". *ret is NULL when there is no
 * root (none, or auto found no cgroup v2): leases are then bound to their
 * uid only (see PROTOCOL.md, remove). An explicit root that cannot be used
 * is an error.
 */
int lease_cgroups_open(const char *root, struct lease_cgroups **ret);
struct lease_cgroups *lease_cgroups_free(struct lease_cgroups *cg);
/* The root's path in the file system, for logs. */
const char *lease_cgroups_root(const struct lease_cgroups *cg);

/* Whether path (relative to the root) is the cgroup of a lease that has not ended. */
typedef bool (*lease_cgroup_live_fn)(const char *path, void *userdata);

/*
 * lease_cgroup_place makes the cgroup of a new lease of group, named for
 * group and since_usec, and moves the process p into it: under the
 * innermost cgroup of a live lease (is_live) p is in already, if any, else
 * under the root. *ret_path (the
 * relative path, allocated) is written on success only. Fails if p exited
 * meanwhile (-ESRCH); the cgroup is then removed again.
 */
int lease_cgroup_place(struct lease_cgroups *cg, const struct pidref *p, uint32_t group,
		       uint64_t since_usec, lease_cgroup_live_fn is_live, void *userdata,
		       char **ret_path);

/* Kill every process in path and below (cgroup.kill, Linux 5.14+). */
int lease_cgroup_kill(struct lease_cgroups *cg, const char *path);

/*
 * 1 when the process p is in path or below it, 0 when not, -errno when it
 * cannot be told (callers treat that as 0: not the lease's).
 */
int lease_cgroup_contains(struct lease_cgroups *cg, const char *path, const struct pidref *p);

/* Whether path exists still (a restored lease's cgroup may be gone). */
bool lease_cgroup_exists(struct lease_cgroups *cg, const char *path);

/*
 * Remove path, and its parents up to the root, while they are empty. A
 * cgroup that still has processes or children stays; it is removed by a
 * later call (the next lease ending, or lease_cgroups_sweep).
 */
void lease_cgroup_remove(struct lease_cgroups *cg, const char *path);

/*
 * Remove the empty cgroups of ended leases at the top of the root: a lease
 * that ends while its last process is still exiting cannot remove its own.
 */
void lease_cgroups_sweep(struct lease_cgroups *cg, lease_cgroup_live_fn is_live, void *userdata);
