/* SPDX-License-Identifier: MIT */
/*
 * Merging: groups of one holder share one VFIO container (one IOMMU
 * context). The broker does VFIO_GROUP_SET_CONTAINER on its own copies of
 * the group files, so the kernel keeps the final veto, and keeps a copy of
 * each container it manages.
 *
 * The answers to the questions David Gibson asked in the 2011 thread:
 * - Merging groups of two merged sets: the union. The
 *   target is the container of the first listed group that has one, and
 *   every group of the other sets moves into it, all or nothing.
 * - Unmerging b from a merged set removes only the atomic group b; the
 *   rest stays merged in the same container.
 * - Releasing a group (or its holder exiting) unmerges it: the broker
 *   unsets its container before closing its copy, and the kernel does the
 *   same when the group file's last copy closes.
 * - Groups of different holders are never merged (denied), whatever the
 *   kernel would allow.
 */
#pragma once

#include "broker/broker.h"
#include "broker/identity.h"
#include "broker/lease.h"
#include "broker/reply.h"

#include <stddef.h>
#include <stdint.h>

struct containers;

int containers_new(struct containers **ret);
struct containers *containers_free(struct containers *cs);

/* The id a lease's container has in replies; 0 when not merged. */
uint32_t container_id(const struct container *c);

/* A merge done: the target container and every group now in it. */
struct merge_result {
	uint32_t container;
	int container_fd; /* the broker's copy, borrowed: sent back with the reply */
	uint32_t *groups; /* freed by the caller */
	size_t n_groups;
};

/*
 * merge_groups puts groups[0..n_groups) (held by one holder that caller
 * speaks for, each allowed by the policy to merge) into one container:
 * the container of the first listed group that has one, else a new one (a
 * container of the client's own is never taken: the broker receives no
 * file descriptors; the client can attach groups to it itself). All or
 * nothing. On
 * success *res is set and the merge logged; otherwise *err says why.
 */
int merge_groups(struct broker *b, const struct identity *caller, const uint32_t *groups,
		 size_t n_groups, struct merge_result *res, struct reply_error *err);
/* unmerge_group takes the atomic group out of its container, for its holder caller. */
int unmerge_group(struct broker *b, const struct identity *caller, uint32_t group,
		  struct reply_error *err);

/*
 * containers_restore_lease puts a lease restored after a restart back into
 * the container with id it was in (made, without the broker's copy of the
 * container file, if it is the first). The kernel kept the group in its
 * container; only the broker's record of it is rebuilt. Merging into such a
 * container is refused (the broker has nothing to pass to SET_CONTAINER);
 * unmerge and release work, as they act on the group file.
 */
int containers_restore_lease(struct containers *cs, struct lease *l, uint32_t id);

/*
 * After a restart, the record corrected to what the kernel says
 * (lease_store.c): containers_restore_unnamed puts l into a restored
 * container of its own, with an id no restored lease names (call it once
 * every entry is restored), for a group the kernel has in a container the
 * broker did not record; containers_forget_lease takes l out of its
 * container in the record only, for a group the kernel has in none.
 */
int containers_restore_unnamed(struct containers *cs, struct lease *l);
void containers_forget_lease(struct lease *l);

/* Lease hook: take l out of its container before the broker closes its copy. */
void merge_detach_lease(struct broker *b, struct lease *l);
