/* SPDX-License-Identifier: MIT */
#include "broker/lease_requests.h"
#include "broker/access.h"
#include "broker/connection.h"
#include "broker/devnode.h"
#include "broker/inventory.h"
#include "broker/lease.h"
#include "broker/lease_cgroup.h"
#include "broker/log.h"
#include "broker/memlock.h"
#include "broker/merge.h"
#include "broker/remove.h"
#include "broker/server.h"
#include "broker/status.h"
#include "common/cleanup.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

/* Log a refused lease (EVENT=deny) with err's sentence; returns r. */
static int lease_refused(struct connection *c, int64_t group, const char *devices, const char *rule,
			 const struct reply_error *err, int r)
{
	access_log_refusal(c->identity, "lease", group, devices, rule, err);
	return r;
}

static bool group_has_device(const struct inventory_group *g, const char *address)
{
	for (size_t i = 0; i < g->n_devices; i++)
		if (strcmp(g->devices[i].address, address) == 0)
			return true;
	return false;
}

/* The group is already leased: say who has it. */
static int lease_busy(struct connection *c, const struct lease *l, struct reply_error *err)
{
	int r;

	if (l->state == LEASE_HELD && l->holder && pidref_equal(&l->holder->pid, &c->identity->pid))
		r = reply_error_set(err, VB_E_BUSY, "you already hold group %u", l->group);
	else if (l->state == LEASE_HELD)
		r = reply_error_set(err, VB_E_BUSY,
				    "group %u is held by uid %u; ask them or an administrator to "
				    "release it",
				    l->group, (unsigned)l->uid);
	else if (l->holder)
		r = reply_error_set(
			err, VB_E_BUSY,
			"group %u was released but is still open in pid %d (uid %u); it "
			"becomes free when that file is closed",
			l->group, (int)l->pid, (unsigned)l->uid);
	else
		r = reply_error_set(
			err, VB_E_BUSY,
			"group %u was released but is still open somewhere the broker "
			"cannot see (a descriptor in flight or a VFIO device fd); it becomes "
			"free when that file is closed",
			l->group);
	if (l->state == LEASE_HELD || l->holder) {
		err->has_uid = true;
		err->uid = l->uid;
	}
	return r;
}

/*
 * Raise the caller's RLIMIT_MEMLOCK (soft and hard) to at least bytes, as
 * the rule says; never lower either. The caller being alive afterwards
 * shows the pid still named it when prlimit() ran.
 */
static int lease_raise_memlock(const struct pidref *p, uint64_t bytes)
{
	struct rlimit old, want;
	int r;

	if (prlimit(p->pid, RLIMIT_MEMLOCK, NULL, &old) < 0)
		return -errno;
	want = old;
	if (want.rlim_cur != RLIM_INFINITY && want.rlim_cur < bytes)
		want.rlim_cur = bytes;
	if (want.rlim_max != RLIM_INFINITY && want.rlim_max < bytes)
		want.rlim_max = bytes;
	if ((want.rlim_cur != old.rlim_cur || want.rlim_max != old.rlim_max) &&
	    prlimit(p->pid, RLIMIT_MEMLOCK, &want, NULL) < 0)
		return -errno;
	r = pidref_is_alive(p);
	if (r < 0)
		return r;
	return r ? 0 : -ESRCH;
}

/* The group file of group, opened for a lease; refusals as the client should see them. */
static int lease_open_group(struct broker *b, uint32_t group, int *ret_fd, struct stat *st,
			    struct reply_error *err)
{
	int r = devnode_open_group(b->inventory, group, ret_fd, st);

	if (r == -EBUSY)
		return reply_error_set(err, VB_E_BUSY,
				       "group %u is open outside the broker; close it there first",
				       group);
	if (r == -ENOENT)
		return reply_error_set(
			err, VB_E_NOT_VIABLE,
			"group %u has no device node %s/vfio/%u; bind its devices to "
			"vfio-pci first",
			group, b->inventory->dev_root, group);
	if (r < 0) {
		log_error_errno(r, "Failed to open group %u: %m", group);
		return reply_error_set(err, VB_E_INTERNAL, "the broker could not open group %u: %s",
				       group, strerror(-r));
	}
	return 0;
}

/* lease_cgroup_live_fn: path is the cgroup of a lease in the table. */
static bool lease_cgroup_is_live(const char *path, void *userdata)
{
	struct lease_table *t = userdata;

	for (struct lease *l = lease_table_first(t); l; l = lease_table_next(t, l))
		if (l->cgroup && strcmp(l->cgroup, path) == 0)
			return true;
	return false;
}

/*
 * Move the caller into a cgroup of the new lease's own (*ret_path, NULL
 * when leases have no cgroups). A lease is not granted outside one: the
 * cgroup is what hard removal kills.
 */
static int lease_place_holder(struct broker *b, const struct identity *id, uint32_t group,
			      char **ret_path, struct reply_error *err)
{
	struct lease_cgroups *cg = lease_table_cgroups(b->leases);
	struct timespec ts;
	int r;

	*ret_path = NULL;
	if (!cg)
		return 0;
	lease_cgroups_sweep(cg, lease_cgroup_is_live, b->leases);
	clock_gettime(CLOCK_REALTIME, &ts);
	r = lease_cgroup_place(cg, &id->pid, group,
			       (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000,
			       lease_cgroup_is_live, b->leases, ret_path);
	if (r == -ESRCH)
		return reply_error_set(err, VB_E_DENIED,
				       "pid %d, which asked for group %u, has exited",
				       (int)id->pid.pid, group);
	if (r < 0) {
		log_error_errno(r, "Failed to place pid %d in a cgroup for group %u under %s: %m",
				(int)id->pid.pid, group, lease_cgroups_root(cg));
		return reply_error_set(
			err, VB_E_INTERNAL,
			"the broker could not put pid %d into the lease's cgroup: %s",
			(int)id->pid.pid, strerror(-r));
	}
	return 0;
}

/*
 * Model: "lease" (tests/model/lease.pml): crash points after the open and
 * after the grant's save, before the reply carries the fd out.
 */
int lease_requests_lease(struct broker *b, struct connection *c, const struct vb_request *req,
			 int *fds, size_t n_fds, struct reply_error *err)
{
	const struct identity *id = c->identity;
	struct inventory_group *g = NULL;
	struct policy_decision d;
	struct log_fields f;
	struct lease *l;
	struct stat st;
	char devices[1024], why[VB_MESSAGE_MAX], rule[VB_NAME_MAX + 1];
	_cleanup_close_ int fd = -1;
	_cleanup_free_ char *cgroup = NULL;
	unsigned max_leases;
	uint64_t memlock;
	size_t held;
	uint32_t group;
	int r;

	if (req->device[0]) {
		r = inventory_find_device_group(b->inventory, req->device, &group);
		if (r < 0) {
			if (r != -ENOENT)
				log_warning_errno(r, "Failed to find the group of %s: %m",
						  req->device);
			r = reply_error_set(err, VB_E_NO_SUCH_GROUP,
					    "no IOMMU group contains device %s; see vfioctl list",
					    req->device);
			return lease_refused(c, -1, req->device, NULL, err, r);
		}
	} else {
		group = (uint32_t)req->group;
	}
	r = access_check_group(b, id, group, POLICY_ACTION_LEASE, &g, &d, err);
	if (r < 0)
		return r;
	inventory_group_format_devices(g, devices, sizeof(devices));
	snprintf(rule, sizeof(rule), "%s", d.rule ? d.rule : "");
	memlock = d.memlock;
	if (req->device[0] && !group_has_device(g, req->device)) {
		r = reply_error_set(err, VB_E_NO_SUCH_GROUP,
				    "no IOMMU group contains device %s; see vfioctl list",
				    req->device);
		r = lease_refused(c, group, devices, NULL, err, r);
		goto out;
	}

	l = lease_table_find(b->leases, group);
	if (l && l->state == LEASE_RELEASING && !l->holder) {
		lease_rescan(l);
		l = lease_table_find(b->leases, group);
	}
	if (l) {
		r = lease_refused(c, group, devices, NULL, err, lease_busy(c, l, err));
		goto out;
	}
	if (!inventory_group_viable(g, why, sizeof(why))) {
		r = reply_error_set(err, VB_E_NOT_VIABLE, "%s", why);
		r = lease_refused(c, group, devices, rule, err, r);
		goto out;
	}
	max_leases = d.max_leases ? d.max_leases : b->config.max_leases_per_uid;
	held = lease_table_count_uid(b->leases, id->uid);
	if (held >= max_leases) {
		r = reply_error_set(
			err, VB_E_LIMIT,
			"uid %u holds %zu leases, the most %s%s allows; release one first",
			(unsigned)id->uid, held, d.max_leases ? "rule " : "the broker",
			d.max_leases ? rule : "");
		r = lease_refused(c, group, devices, rule, err, r);
		goto out;
	}

	r = memlock_check_lease(req, d.memlock, rule, &id->pid, err);
	if (r < 0) {
		r = lease_refused(c, group, devices, rule, err, r);
		goto out;
	}
	r = lease_open_group(b, group, &fd, &st, err);
	if (r < 0) {
		r = lease_refused(c, group, devices, rule, err, r);
		goto out;
	}
	if (d.memlock) {
		r = lease_raise_memlock(&id->pid, d.memlock);
		if (r == -EPERM) {
			/*
			 * Locked memory is a resource, not access: without CAP_SYS_RESOURCE the
			 * lease is still granted, and the reply says no limit was set (memlock
			 * null) so the client knows to expect DMA mapping to hit its own limit.
			 */
			log_warning(
				"Could not raise RLIMIT_MEMLOCK of pid %d to %llu bytes as rule "
				"%s says: the broker lacks CAP_SYS_RESOURCE; granting without it",
				(int)id->pid.pid, (unsigned long long)d.memlock, rule);
			memlock = 0;
		} else if (r < 0) {
			log_error_errno(r, "Failed to raise RLIMIT_MEMLOCK of pid %d to %llu: %m",
					(int)id->pid.pid, (unsigned long long)d.memlock);
			r = reply_error_set(err, VB_E_INTERNAL,
					    "the broker could not raise the locked-memory limit of "
					    "pid %d to %llu bytes: %s",
					    (int)id->pid.pid, (unsigned long long)d.memlock,
					    strerror(-r));
			r = lease_refused(c, group, devices, rule, err, r);
			goto out;
		}
	}
	r = lease_place_holder(b, id, group, &cgroup, err);
	if (r < 0) {
		r = lease_refused(c, group, devices, rule, err, r);
		goto out;
	}
	r = lease_table_grant(b->leases, group, fd, &st, &id->pid, id->uid, rule, devices, cgroup,
			      &l);
	if (r < 0) {
		if (cgroup)
			lease_cgroup_remove(lease_table_cgroups(b->leases), cgroup);
		log_error_errno(r, "Failed to record the lease of group %u: %m", group);
		r = reply_error_set(err, VB_E_INTERNAL, "the broker could not record the lease");
		goto out;
	}
	TAKE_FD(fd); /* the lease has it */
	server_attach_holder(b->server, l->holder);

	f = lease_log_fields(l, "grant");
	f.rule = rule[0] ? rule : NULL;
	log_event(LOG_INFO, &f, "Granted group %u to pid %d (uid %u) by rule %s", group,
		  (int)id->pid.pid, (unsigned)id->uid, rule[0] ? rule : "(none)");
	status_update(b->status);

	r = reply_send_lease(c, req->id, group, rule, memlock, l->fd);
	if (r < 0) {
		/*
		 * The holder never got the file: take the lease back at once. A reply
		 * that cannot go at once is not queued (a group file waiting in the
		 * broker would be out of the lease's reach): the client is told why.
		 */
		log_warning_errno(r, "Could not send group %u to pid %d: %m; taking the lease back",
				  group, (int)id->pid.pid);
		lease_release(l, false);
		if (r == -EAGAIN) {
			r = reply_error_set(err, VB_E_BUSY,
					    "the lease of group %u could not be sent at once: "
					    "this connection has unread replies or events; read "
					    "them, then ask again",
					    group);
			goto out;
		}
	}
	r = 0;
out:
	inventory_group_free(g);
	return r;
}

/* Model: "release-request" (tests/model/lease.pml). */
int lease_requests_release(struct broker *b, struct connection *c, const struct vb_request *req,
			   int *fds, size_t n_fds, struct reply_error *err)
{
	uint32_t group = (uint32_t)req->group;
	struct lease *l = lease_table_find(b->leases, group);
	struct log_fields f;
	bool released = false;
	int r;

	if (!l)
		return reply_error_set(err, VB_E_NOT_HELD, "group %u is not leased", group);
	if (!lease_caller_is_holder(l, c->identity) && !c->admin) {
		r = reply_error_set(
			err, VB_E_NOT_HELD,
			"group %u is held by another process; only its holder, a child of "
			"it with the same uid, or an administrator may release it",
			group);
		err->has_uid = true;
		err->uid = l->uid;
		return r;
	}
	f = lease_log_fields(l, "releasing");
	f.rule = l->rule[0] ? l->rule : NULL;
	/* The reply says whether it ended; a "released" event would say it twice. */
	if (l->state == LEASE_HELD)
		released = lease_release(l, true);
	if (!released)
		log_event(LOG_INFO, &f,
			  "Group %u is still open; the lease ends when its file is closed", group);
	reply_send_release(c, req->id, group, released);
	return 0;
}

int lease_requests_list(struct broker *b, struct connection *c, const struct vb_request *req,
			int *fds, size_t n_fds, struct reply_error *err)
{
	struct reply_chunks ch;

	reply_chunks_init_leases(&ch, c, req->id);
	for (struct lease *l = lease_table_first(b->leases); l && !c->closing;
	     l = lease_table_next(b->leases, l)) {
		struct vb_lease_info info = {0};

		if (!c->admin && l->uid != c->identity->uid)
			continue;
		info.group = l->group;
		info.uid = l->uid;
		info.pid = l->holder ? l->pid : 0;
		info.since_usec = l->since_usec;
		snprintf(info.rule, sizeof(info.rule), "%s", l->rule);
		snprintf(info.state, sizeof(info.state), "%s",
			 removals_pending(b->removals, l->group) ? "removing"
								 : lease_state_to_string(l->state));
		info.container_id = container_id(l->container);
		reply_chunks_add_lease(&ch, &info);
	}
	reply_chunks_finish(&ch);
	return 0;
}

int lease_requests_merge(struct broker *b, struct connection *c, const struct vb_request *req,
			 int *fds, size_t n_fds, struct reply_error *err)
{
	struct merge_result res;
	int r;

	r = merge_groups(b, c->identity, req->groups, req->n_groups, &res, err);
	if (r < 0)
		return r;
	/* Model: the "save" that ends "merge"; a crash before it loses the kernel's merge. */
	lease_table_changed(b->leases); /* the leases' container */
	r = reply_send_merge(c, req->id, res.container, res.groups, res.n_groups, res.container_fd);
	free(res.groups);
	if (r == -EAGAIN)
		/* Descriptors are never queued: the merge stands, its container fd did not go. */
		return reply_error_set(
			err, VB_E_BUSY,
			"the groups were merged into container %u, but its "
			"descriptor could not be sent at once: this connection has "
			"unread replies or events; read them, then unmerge and merge "
			"again",
			res.container);
	return 0;
}

int lease_requests_unmerge(struct broker *b, struct connection *c, const struct vb_request *req,
			   int *fds, size_t n_fds, struct reply_error *err)
{
	int r = unmerge_group(b, c->identity, (uint32_t)req->group, err);

	if (r < 0)
		return r;
	/* Model: the "save" that ends "unmerge". */
	lease_table_changed(b->leases);
	reply_send_unmerge(c, req->id, (uint32_t)req->group);
	return 0;
}

/* A removal this connection asked for has ended: answer it now. */
static void lease_requests_answer_remove(void *waiter, uint32_t id, const struct removal_outcome *o)
{
	struct connection *c = waiter;

	connection_pending_done(c);
	if (o->error)
		reply_send_error(c, true, id, o->error);
	else
		reply_send_remove(c, id, o->group, o->mode, o->elapsed_ms);
}

int lease_requests_remove(struct broker *b, struct connection *c, const struct vb_request *req,
			  int *fds, size_t n_fds, struct reply_error *err)
{
	int r;

	if (connection_pending_full(c))
		return reply_error_set(
			err, VB_E_LIMIT,
			"too many removals are waiting; wait for one to finish first");
	/* Counted first: a hard removal may end the lease (and answer) before it returns. */
	connection_pending_add(c);
	r = removals_start(b->removals, c->identity, (uint32_t)req->group, req->mode,
			   req->kill_strays, req->timeout_ms, lease_requests_answer_remove, c,
			   req->id, err);
	if (r < 0)
		connection_pending_done(c);
	return r;
}

void lease_requests_connection_closed(struct broker *b, struct connection *c)
{
	removals_waiter_gone(b->removals, c);
}
