/* SPDX-License-Identifier: MIT */
#include "broker/merge.h"
#include "broker/access.h"
#include "broker/devnode.h"
#include "broker/inventory.h"
#include "broker/log.h"
#include "common/cleanup.h"

#include <errno.h>
#include <linux/vfio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

/* A VFIO container the broker keeps a copy of, shared by the leases merged into it. */
struct container {
	struct list_node link; /* in the set's list */
	uint32_t id;
	int fd;
	unsigned n_members;
};

struct containers {
	struct list_node list;
	uint32_t next_id;
};

int containers_new(struct containers **ret)
{
	struct containers *cs = calloc(1, sizeof(*cs));

	if (!cs)
		return -ENOMEM;
	cs->next_id = 1;
	list_init(&cs->list);
	*ret = cs;
	return 0;
}

static void container_free(struct container *c)
{
	list_unlink(&c->link);
	safe_close(c->fd);
	free(c);
}

struct containers *containers_free(struct containers *cs)
{
	if (!cs)
		return NULL;
	while (!list_is_empty(&cs->list))
		container_free(container_of(cs->list.next, struct container, link));
	free(cs);
	return NULL;
}

uint32_t container_id(const struct container *c)
{
	return c ? c->id : 0;
}

/* Wrap fd (taken on success) as a new, empty container. */
static int container_new(struct containers *cs, int fd, struct container **ret)
{
	struct container *c = calloc(1, sizeof(*c));

	if (!c)
		return -ENOMEM;
	c->fd = fd;
	c->id = cs->next_id++;
	if (cs->next_id == 0)
		cs->next_id = 1;
	list_prepend(&cs->list, &c->link);
	*ret = c;
	return 0;
}

static struct container *containers_find_id(struct containers *cs, uint32_t id)
{
	struct container *c;

	list_for_each_entry(c, &cs->list, link) if (c->id == id) return c;
	return NULL;
}

int containers_restore_lease(struct containers *cs, struct lease *l, uint32_t id)
{
	struct container *c;

	if (id == 0 || l->container)
		return -EINVAL;
	c = containers_find_id(cs, id);
	if (!c) {
		c = calloc(1, sizeof(*c));
		if (!c)
			return -ENOMEM;
		c->fd = -1;
		c->id = id;
		list_prepend(&cs->list, &c->link);
		/* New containers get ids above every restored one. */
		if (cs->next_id <= id)
			cs->next_id = id + 1 ? id + 1 : 1;
	}
	l->container = c;
	c->n_members++;
	return 0;
}

static void container_unref(struct container *c)
{
	if (c && --c->n_members == 0)
		container_free(c);
}

int containers_restore_unnamed(struct containers *cs, struct lease *l)
{
	return containers_restore_lease(cs, l, cs->next_id);
}

void containers_forget_lease(struct lease *l)
{
	container_unref(l->container);
	l->container = NULL;
}

/* Model: "detach" (tests/model/lease.pml), with a crash point after the ioctl. */
void merge_detach_lease(struct broker *b, struct lease *l)
{
	struct container *c = l->container;

	if (!c)
		return;
	/* Unset now so a group whose holder keeps its file still leaves the container; the
	 * kernel would do it on the last close anyway, so a refusal (EBUSY) is only noted. */
	if (l->fd >= 0 && ioctl(l->fd, VFIO_GROUP_UNSET_CONTAINER) < 0)
		log_debug_errno(errno, "Could not unset the container of group %u: %m", l->group);
	l->container = NULL;
	container_unref(c);
}

/* One group being put into the target, and where it came from (for undoing). */
struct merge_move {
	struct lease *lease;
	struct container *from;
};

static bool moves_contain(const struct merge_move *moves, size_t n, const struct lease *l)
{
	for (size_t i = 0; i < n; i++)
		if (moves[i].lease == l)
			return true;
	return false;
}

/* Put a group back where it was after a failed merge; failures here can only be logged. */
static void merge_undo(const struct merge_move *moves, size_t n_done)
{
	for (size_t i = n_done; i-- > 0;) {
		const struct merge_move *m = &moves[i];

		if (ioctl(m->lease->fd, VFIO_GROUP_UNSET_CONTAINER) < 0)
			log_error_errno(errno, "Failed to undo the merge of group %u: %m",
					m->lease->group);
		if (m->from && ioctl(m->lease->fd, VFIO_GROUP_SET_CONTAINER, &m->from->fd) < 0)
			log_error_errno(errno, "Failed to put group %u back into container %u: %m",
					m->lease->group, m->from->id);
	}
}

/* The kernel's refusal: EBUSY is busy, a refusal in principle is not-viable. */
static int merge_kernel_error(uint32_t group, int error, struct reply_error *err)
{
	if (error == EBUSY)
		return reply_error_set(err, VB_E_BUSY,
				       "the kernel refused to merge group %u: %s; close its device "
				       "fds or unmerge it first",
				       group, strerror(error));
	if (error == ENOTTY || error == EINVAL || error == EPERM)
		return reply_error_set(err, VB_E_NOT_VIABLE,
				       "the kernel refused to merge group %u: %s", group,
				       strerror(error));
	return reply_error_set(err, VB_E_INTERNAL, "the kernel failed to merge group %u: %s", group,
			       strerror(error));
}

/* Check that every listed group is held by one holder the caller speaks for. */
static int merge_check_leases(struct broker *b, const struct identity *caller,
			      const uint32_t *groups, size_t n_groups, struct lease **leases,
			      struct reply_error *err)
{
	for (size_t i = 0; i < n_groups; i++) {
		struct lease *l = lease_table_find(b->leases, groups[i]);

		if (!l || l->state != LEASE_HELD)
			return reply_error_set(err, VB_E_NOT_HELD,
					       l ? "group %u was released; lease it again first"
						 : "group %u is not leased; lease it first",
					       groups[i]);
		leases[i] = l;
	}
	for (size_t i = 1; i < n_groups; i++)
		if (leases[i]->holder != leases[0]->holder)
			return reply_error_set(
				err, VB_E_DENIED,
				"groups %u and %u have different holders; only groups of one "
				"process can be merged",
				groups[0], groups[i]);
	if (!lease_caller_is_holder(leases[0], caller))
		return reply_error_set(
			err, VB_E_NOT_HELD,
			"group %u is held by another process; only its holder or a child of it "
			"may merge it",
			groups[0]);
	return 0;
}

/*
 * Choose the container to merge into: the container of the first listed
 * group that is merged, else a new one. *ret_new says the container was
 * made for this request (freed on failure).
 */
static int merge_pick_target(struct broker *b, struct lease **leases, size_t n_groups,
			     struct container **ret, bool *ret_new, struct reply_error *err)
{
	struct container *target = NULL;
	int fd = -1, r;

	for (size_t i = 0; i < n_groups && !target; i++)
		target = leases[i]->container;
	if (target) {
		*ret = target;
		*ret_new = false;
		return 0;
	}
	r = devnode_open_container(b->inventory, &fd);
	if (r < 0) {
		log_error_errno(r, "Failed to open %s/vfio/vfio: %m", b->inventory->dev_root);
		return reply_error_set(err, VB_E_INTERNAL,
				       "the broker could not open a VFIO container: %s",
				       strerror(-r));
	}
	r = container_new(b->containers, fd, ret);
	if (r < 0) {
		close(fd);
		return reply_error_set(err, VB_E_INTERNAL, "out of memory");
	}
	*ret_new = true;
	return 0;
}

/*
 * Model: "merge" (tests/model/lease.pml): a crash point after each
 * VFIO_GROUP_SET_CONTAINER, before the caller's save; the kernel's veto is
 * merge_undo.
 */
int merge_groups(struct broker *b, const struct identity *caller, const uint32_t *groups,
		 size_t n_groups, struct merge_result *res, struct reply_error *err)
{
	struct lease *leases[VB_MAX_MERGE_GROUPS] = {0};
	_cleanup_free_ struct merge_move *moves = NULL;
	_cleanup_free_ uint32_t *merged = NULL;
	struct container *target = NULL;
	struct log_fields f;
	struct lease *l;
	size_t n_moves = 0, n_done = 0, n_merged = 0;
	bool target_new = false;
	char list[256] = "";
	int r;

	if (n_groups > VB_MAX_MERGE_GROUPS)
		return reply_error_set(err, VB_E_BAD_REQUEST, "at most %d groups can be merged",
				       VB_MAX_MERGE_GROUPS);
	r = merge_check_leases(b, caller, groups, n_groups, leases, err);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n_groups; i++) {
		struct inventory_group *g = NULL;
		struct policy_decision d;

		r = access_check_group(b, caller, groups[i], POLICY_ACTION_MERGE, &g, &d, err);
		if (r < 0)
			return r;
		inventory_group_free(g);
	}
	r = merge_pick_target(b, leases, n_groups, &target, &target_new, err);
	if (r < 0)
		return r;
	if (target->fd < 0) {
		r = reply_error_set(
			err, VB_E_BUSY,
			"container %u was restored after the broker restarted, without "
			"the broker's copy of it; unmerge its groups and merge them again",
			target->id);
		err->has_container = true;
		err->container = target->id;
		return r;
	}

	/* Everything that moves: the listed groups, and every group of their other sets. */
	moves = calloc(lease_table_count(b->leases), sizeof(*moves));
	merged = calloc(lease_table_count(b->leases), sizeof(*merged));
	if (!moves || !merged) {
		r = reply_error_set(err, VB_E_INTERNAL, "out of memory");
		goto fail;
	}
	for (size_t i = 0; i < n_groups; i++) {
		struct container *from = leases[i]->container;

		if (from == target || moves_contain(moves, n_moves, leases[i]))
			continue;
		moves[n_moves++] = (struct merge_move){leases[i], from};
		if (!from)
			continue;
		for (l = lease_table_first(b->leases); l; l = lease_table_next(b->leases, l))
			if (l->container == from && !moves_contain(moves, n_moves, l))
				moves[n_moves++] = (struct merge_move){l, from};
	}

	for (; n_done < n_moves; n_done++) {
		struct merge_move *m = &moves[n_done];
		int error = 0;

		if (m->from && ioctl(m->lease->fd, VFIO_GROUP_UNSET_CONTAINER) < 0)
			error = errno;
		else if (ioctl(m->lease->fd, VFIO_GROUP_SET_CONTAINER, &target->fd) < 0) {
			error = errno;
			if (m->from &&
			    ioctl(m->lease->fd, VFIO_GROUP_SET_CONTAINER, &m->from->fd) < 0)
				log_error_errno(errno,
						"Failed to put group %u back into container %u: %m",
						m->lease->group, m->from->id);
		}
		if (error) {
			f = LOG_FIELDS("merge-failed");
			f.uid = caller->uid;
			f.pid = caller->pid.pid;
			f.group = m->lease->group;
			log_event(LOG_NOTICE, &f, "The kernel refused to merge group %u: %s",
				  m->lease->group, strerror(error));
			merge_undo(moves, n_done);
			r = merge_kernel_error(m->lease->group, error, err);
			goto fail;
		}
	}

	for (size_t i = 0; i < n_moves; i++) {
		container_unref(moves[i].from);
		moves[i].lease->container = target;
		target->n_members++;
	}
	for (l = lease_table_first(b->leases); l; l = lease_table_next(b->leases, l))
		if (l->container == target) {
			size_t len = strlen(list);

			merged[n_merged++] = l->group;
			snprintf(list + len, sizeof(list) - len, "%s%u", len ? "," : "", l->group);
		}
	f = LOG_FIELDS("merge");
	f.uid = caller->uid;
	f.pid = caller->pid.pid;
	f.group = groups[0];
	log_event(LOG_INFO, &f, "Merged groups %s into container %u for pid %d (uid %u)", list,
		  target->id, (int)caller->pid.pid, (unsigned)caller->uid);
	*res = (struct merge_result){
		.container = target->id,
		.container_fd = target->fd,
		.groups = TAKE_PTR(merged),
		.n_groups = n_merged,
	};
	return 0;
fail:
	if (target_new && target->n_members == 0)
		container_free(target);
	return r;
}

/* Model: "unmerge" (tests/model/lease.pml), a crash point after the ioctl. */
int unmerge_group(struct broker *b, const struct identity *caller, uint32_t group,
		  struct reply_error *err)
{
	struct lease *l = lease_table_find(b->leases, group);
	struct log_fields f;
	uint32_t cid;

	if (!l || l->state != LEASE_HELD)
		return reply_error_set(err, VB_E_NOT_HELD, "group %u is not leased", group);
	if (!lease_caller_is_holder(l, caller))
		return reply_error_set(
			err, VB_E_NOT_HELD,
			"group %u is held by another process; only its holder or a child of it "
			"may unmerge it",
			group);
	if (!l->container)
		return reply_error_set(err, VB_E_BAD_REQUEST,
				       "group %u is not merged into a container", group);
	if (ioctl(l->fd, VFIO_GROUP_UNSET_CONTAINER) < 0) {
		if (errno == EBUSY)
			return reply_error_set(
				err, VB_E_BUSY,
				"device fds of group %u are still open; close them first", group);
		return reply_error_set(err, VB_E_NOT_VIABLE,
				       "the kernel refused to unmerge group %u: %s", group,
				       strerror(errno));
	}
	cid = l->container->id;
	container_unref(l->container);
	l->container = NULL;

	f = LOG_FIELDS("unmerge");
	f.uid = caller->uid;
	f.pid = caller->pid.pid;
	f.group = group;
	log_event(LOG_INFO, &f, "Unmerged group %u from container %u", group, cid);
	return 0;
}
