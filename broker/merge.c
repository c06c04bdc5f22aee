/* SPDX-License-Identifier: MIT */
#include "broker/merge.h"
#include "broker/connection.h"
#include "broker/devnode.h"
#include "broker/inventory.h"
#include "broker/log.h"
#include "broker/ops.h"
#include "common/cleanup.h"

#include <errno.h>
#include <linux/kcmp.h>
#include <linux/vfio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

/* A VFIO container the broker keeps a copy of, shared by the leases merged into it. */
struct container {
	struct containers *set;
	struct container *prev, *next;
	uint32_t id;
	int fd;
	unsigned n_members;
};

struct containers {
	struct container *list;
	uint32_t next_id;
};

int containers_new(struct containers **ret)
{
	struct containers *cs = calloc(1, sizeof(*cs));

	if (!cs)
		return -ENOMEM;
	cs->next_id = 1;
	*ret = cs;
	return 0;
}

static void container_free(struct container *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		c->set->list = c->next;
	if (c->next)
		c->next->prev = c->prev;
	safe_close(c->fd);
	free(c);
}

struct containers *containers_free(struct containers *cs)
{
	if (!cs)
		return NULL;
	while (cs->list)
		container_free(cs->list);
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
	c->set = cs;
	c->fd = fd;
	c->id = cs->next_id++;
	if (cs->next_id == 0)
		cs->next_id = 1;
	c->next = cs->list;
	if (cs->list)
		cs->list->prev = c;
	cs->list = c;
	*ret = c;
	return 0;
}

static void container_unref(struct container *c)
{
	if (c && --c->n_members == 0)
		container_free(c);
}

/*
 * The container whose copy is the same open file description as fd: a
 * client passing back a container the broker gave it. kcmp() compares the
 * file descriptions themselves; where it is unavailable, nothing matches
 * and the client's container is treated as a new one.
 */
static struct container *containers_find_file(struct containers *cs, int fd)
{
	pid_t self = getpid();

	for (struct container *c = cs->list; c; c = c->next)
		if (syscall(SYS_kcmp, self, self, KCMP_FILE, c->fd, fd) == 0)
			return c;
	return NULL;
}

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

/* The kernel's refusal as a reply: EBUSY is busy, a refusal in principle is not-viable. */
static void merge_send_kernel_error(struct connection *c, uint32_t id, uint32_t group, int error)
{
	if (error == EBUSY)
		ops_send_error(c, id, VB_E_BUSY,
			       "the kernel refused to merge group %u: %s; close its device fds or "
			       "unmerge it first",
			       group, strerror(error));
	else if (error == ENOTTY || error == EINVAL || error == EPERM)
		ops_send_error(c, id, VB_E_NOT_VIABLE, "the kernel refused to merge group %u: %s",
			       group, strerror(error));
	else
		ops_send_error(c, id, VB_E_INTERNAL, "the kernel failed to merge group %u: %s",
			       group, strerror(error));
}

/* Check that every listed group is held by one holder the caller speaks for. */
static int merge_check_leases(struct broker *b, struct connection *c, const struct vb_request *req,
			      struct lease **leases)
{
	for (size_t i = 0; i < req->n_groups; i++) {
		struct lease *l = lease_table_find(b->leases, req->groups[i]);

		if (!l || l->state != LEASE_HELD) {
			ops_send_error(c, req->id, VB_E_NOT_HELD,
				       l ? "group %u was released; lease it again first"
					 : "group %u is not leased; lease it first",
				       req->groups[i]);
			return -ESRCH;
		}
		leases[i] = l;
	}
	for (size_t i = 1; i < req->n_groups; i++)
		if (leases[i]->holder != leases[0]->holder) {
			ops_send_error(
				c, req->id, VB_E_DENIED,
				"groups %u and %u have different holders; only groups of one "
				"process can be merged",
				req->groups[0], req->groups[i]);
			return -EPERM;
		}
	if (!lease_caller_is_holder(leases[0], c->identity)) {
		ops_send_error(
			c, req->id, VB_E_NOT_HELD,
			"group %u is held by another process; only its holder or a child of it "
			"may merge it",
			req->groups[0]);
		return -EPERM;
	}
	return 0;
}

/*
 * Choose the container to merge into: the caller's (container_fd), else the
 * container of the first listed group that is merged, else a new one.
 * *ret_new says the container was made for this request (freed on failure).
 */
static int merge_pick_target(struct broker *b, struct connection *c, const struct vb_request *req,
			     struct lease **leases, int *container_fd, struct container **ret,
			     bool *ret_new)
{
	struct container *target = NULL;
	int fd = -1, r;

	if (*container_fd >= 0) {
		r = devnode_is_container(b->inventory, *container_fd);
		if (r <= 0) {
			ops_send_error(
				c, req->id, VB_E_BAD_REQUEST,
				"the file descriptor passed with merge is not a VFIO container "
				"(%s/vfio/vfio)",
				b->inventory->dev_root);
			return -EINVAL;
		}
		target = containers_find_file(b->containers, *container_fd);
		for (size_t i = 0; i < req->n_groups; i++)
			if (leases[i]->container && leases[i]->container != target) {
				struct json_object *e = ops_error(
					req->id, VB_E_BUSY,
					"group %u is already merged into container %u; unmerge it "
					"first",
					leases[i]->group, leases[i]->container->id);

				ops_error_detail(e, "container",
						 json_object_new_int64(leases[i]->container->id));
				ops_send(c, e, -1);
				return -EBUSY;
			}
		if (target) {
			*ret = target;
			*ret_new = false;
			return 0;
		}
		fd = TAKE_FD(*container_fd);
	} else {
		for (size_t i = 0; i < req->n_groups && !target; i++)
			target = leases[i]->container;
		if (target) {
			*ret = target;
			*ret_new = false;
			return 0;
		}
		r = devnode_open_container(b->inventory, &fd);
		if (r < 0) {
			log_error_errno(r, "Failed to open %s/vfio/vfio: %m",
					b->inventory->dev_root);
			ops_send_error(c, req->id, VB_E_INTERNAL,
				       "the broker could not open a VFIO container: %s",
				       strerror(-r));
			return r;
		}
	}
	r = container_new(b->containers, fd, ret);
	if (r < 0) {
		close(fd);
		ops_send_error(c, req->id, VB_E_INTERNAL, "out of memory");
		return r;
	}
	*ret_new = true;
	return 0;
}

void merge_handle(struct broker *b, struct connection *c, const struct vb_request *req,
		  int container_fd)
{
	_cleanup_close_ int cfd = container_fd;
	struct lease *leases[VB_MAX_MERGE_GROUPS] = {0};
	_cleanup_free_ struct merge_move *moves = NULL;
	struct container *target = NULL;
	struct json_object *reply, *groups;
	struct log_fields f;
	size_t n_moves = 0, n_done = 0;
	bool target_new = false;
	char list[256] = "";

	if (merge_check_leases(b, c, req, leases) < 0)
		return;
	for (size_t i = 0; i < req->n_groups; i++) {
		struct inventory_group *g = NULL;
		struct policy_decision d;

		if (ops_check_group(b, c, req->id, req->groups[i], POLICY_ACTION_MERGE, &g, &d) < 0)
			return;
		inventory_group_free(g);
	}
	if (merge_pick_target(b, c, req, leases, &cfd, &target, &target_new) < 0)
		return;

	/* Everything that moves: the listed groups, and every group of their other sets. */
	moves = calloc(lease_table_count(b->leases), sizeof(*moves));
	if (!moves) {
		ops_send_error(c, req->id, VB_E_INTERNAL, "out of memory");
		goto fail;
	}
	for (size_t i = 0; i < req->n_groups; i++) {
		struct container *from = leases[i]->container;

		if (from == target || moves_contain(moves, n_moves, leases[i]))
			continue;
		moves[n_moves++] = (struct merge_move){leases[i], from};
		if (!from)
			continue;
		for (struct lease *l = lease_table_first(b->leases); l; l = l->next)
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
			f.uid = c->identity->uid;
			f.pid = c->identity->pid.pid;
			f.group = m->lease->group;
			log_event(LOG_NOTICE, &f, "The kernel refused to merge group %u: %s",
				  m->lease->group, strerror(error));
			merge_undo(moves, n_done);
			merge_send_kernel_error(c, req->id, m->lease->group, error);
			goto fail;
		}
	}

	for (size_t i = 0; i < n_moves; i++) {
		container_unref(moves[i].from);
		moves[i].lease->container = target;
		target->n_members++;
	}
	reply = vb_reply_new(req->id);
	groups = json_object_new_array();
	for (struct lease *l = lease_table_first(b->leases); l; l = l->next)
		if (l->container == target) {
			size_t len = strlen(list);

			json_object_array_add(groups, json_object_new_int64(l->group));
			snprintf(list + len, sizeof(list) - len, "%s%u", len ? "," : "", l->group);
		}
	json_object_object_add(reply, "container", json_object_new_int64(target->id));
	json_object_object_add(reply, "groups", groups);
	f = LOG_FIELDS("merge");
	f.uid = c->identity->uid;
	f.pid = c->identity->pid.pid;
	f.group = req->groups[0];
	log_event(LOG_INFO, &f, "Merged groups %s into container %u for pid %d (uid %u)", list,
		  target->id, (int)c->identity->pid.pid, (unsigned)c->identity->uid);
	ops_send(c, reply, target->fd);
	return;
fail:
	if (target_new && target->n_members == 0)
		container_free(target);
}

void unmerge_handle(struct broker *b, struct connection *c, const struct vb_request *req)
{
	uint32_t group = (uint32_t)req->group;
	struct lease *l = lease_table_find(b->leases, group);
	struct json_object *reply;
	struct log_fields f;
	uint32_t cid;

	if (!l || l->state != LEASE_HELD) {
		ops_send_error(c, req->id, VB_E_NOT_HELD, "group %u is not leased", group);
		return;
	}
	if (!lease_caller_is_holder(l, c->identity)) {
		ops_send_error(
			c, req->id, VB_E_NOT_HELD,
			"group %u is held by another process; only its holder or a child of it "
			"may unmerge it",
			group);
		return;
	}
	if (!l->container) {
		ops_send_error(c, req->id, VB_E_BAD_REQUEST,
			       "group %u is not merged into a container", group);
		return;
	}
	if (ioctl(l->fd, VFIO_GROUP_UNSET_CONTAINER) < 0) {
		if (errno == EBUSY)
			ops_send_error(c, req->id, VB_E_BUSY,
				       "device fds of group %u are still open; close them first",
				       group);
		else
			ops_send_error(c, req->id, VB_E_NOT_VIABLE,
				       "the kernel refused to unmerge group %u: %s", group,
				       strerror(errno));
		return;
	}
	cid = l->container->id;
	container_unref(l->container);
	l->container = NULL;

	f = LOG_FIELDS("unmerge");
	f.uid = c->identity->uid;
	f.pid = c->identity->pid.pid;
	f.group = group;
	log_event(LOG_INFO, &f, "Unmerged group %u from container %u", group, cid);
	reply = vb_reply_new(req->id);
	json_object_object_add(reply, "group", json_object_new_int64(group));
	ops_send(c, reply, -1);
}
