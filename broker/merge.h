/* SPDX-License-Identifier: MIT */
/*
 * Merging: groups of one holder share one VFIO container (one IOMMU
 * context). The broker does VFIO_GROUP_SET_CONTAINER on its own copies of
 * the group files, so the kernel keeps the final veto, and keeps a copy of
 * each container it manages.
 *
 * The answers to the questions David Gibson asked in the 2011 thread:
 * - Merging a group already merged into another container than the one
 *   given: busy ("unmerge it first"); a group is in one container at a time.
 * - Merging groups of two merged sets (no container given): the union. The
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
#include "broker/lease.h"
#include "protocol/message.h"

struct connection;
struct containers;

int containers_new(struct containers **ret);
struct containers *containers_free(struct containers *cs);

/* The id a lease's container has in replies; 0 when not merged. */
uint32_t container_id(const struct container *c);

/* The merge request; container_fd (the caller's own container, or -1) is taken. */
void merge_handle(struct broker *b, struct connection *c, const struct vb_request *req,
		  int container_fd);
void unmerge_handle(struct broker *b, struct connection *c, const struct vb_request *req);

/* Lease hook: take l out of its container before the broker closes its copy. */
void merge_detach_lease(struct broker *b, struct lease *l);
