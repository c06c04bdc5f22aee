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

/* How a busy answer names a lease's path. */
static const char *lease_path_words(const struct lease *l)
{
	return l->path == VB_PATH_CDEV ? "the cdev path (device cdevs and an iommufd)"
				       : "the legacy group path";
}

/* The group is already leased: say who has it, and through which path. */
static int lease_busy(struct connection *c, const struct lease *l, struct reply_error *err)
{
	int r;

	if (l->state == LEASE_HELD && l->holder && pidref_equal(&l->holder->pid, &c->identity->pid))
		r = reply_error_set(err, VB_E_BUSY,
				    "you already hold group %u, through %s; one group takes one "
				    "path at a time: release it to lease it another way",
				    l->group, lease_path_words(l));
	else if (l->state == LEASE_HELD)
		r = reply_error_set(err, VB_E_BUSY,
				    "group %u is held by uid %u through %s; ask them or an "
				    "administrator to release it",
				    l->group, (unsigned)l->uid, lease_path_words(l));
	else if (l->holder)
		r = reply_error_set(
			err, VB_E_BUSY,
			"group %u was released but is still open in pid %d (uid %u); it "
			"becomes free when that file is closed",
			l->group, (int)l->pid, (unsigned)l->uid);
	else if (l->scan_job || l->check_pending)
		r = reply_error_set(err, VB_E_BUSY,
				    "group %u was released by uid %u but is still open; the "
				    "broker is looking for the process that has it; it becomes "
				    "free when that file is closed",
				    l->group, (unsigned)l->uid);
	else
		r = reply_error_set(
			err, VB_E_BUSY,
			"group %u was released by uid %u but is still open somewhere the "
			"broker cannot see (a descriptor in flight or a VFIO device fd); it "
			"becomes free when that file is closed",
			l->group, (unsigned)l->uid);
	/* Every lease stays its lessee's until it ends (issue 13, item 3): name them. */
	err->has_uid = true;
	err->uid = l->uid;
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
		return reply_error_set(
			err, VB_E_BUSY,
			"group %u is open outside the broker (its group file, or a "
			"device of it bound through the cdev path); close it there first",
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

/* What a cdev lease hands out: the iommufd, then one cdev per endpoint. */
struct lease_cdev_fds {
	int iommufd;	     /* the holder's (borrowed) or a new one (owned) */
	bool iommufd_reused; /* the holder's, sent with an earlier lease */
	size_t n;	     /* endpoints */
	char devices[VB_MAX_CDEV_DEVICES][VB_ADDRESS_MAX];
	int fds[VB_MAX_CDEV_DEVICES]; /* owned; fds[0] is the lease's own file, the others more */
	struct stat st[VB_MAX_CDEV_DEVICES];
};

static void lease_cdev_fds_done(struct lease_cdev_fds *cf)
{
	if (!cf->iommufd_reused)
		cf->iommufd = safe_close(cf->iommufd);
	for (size_t i = 0; i < cf->n; i++)
		cf->fds[i] = safe_close(cf->fds[i]);
}

/*
 * The kernel keeps one group either on the group path or on the cdev path
 * (a bound cdev makes the group file's open EBUSY, an open group file makes a
 * cdev's bind EBUSY). A cdev's open does not say, so ask the group file: it
 * opens (and is closed again at once) only while nobody outside the broker
 * has it. -EBUSY with the sentence in *err.
 */
static int lease_cdev_check_group_file(struct broker *b, uint32_t group, struct reply_error *err)
{
	_cleanup_close_ int fd = -1;
	struct stat st;
	int r = devnode_open_group(b->inventory, group, &fd, &st);

	if (r == -EBUSY)
		return reply_error_set(
			err, VB_E_BUSY,
			"group %u is open outside the broker through the legacy group "
			"path (%s/vfio/%u, or a device of it bound through its cdev); "
			"close it there first",
			group, b->inventory->dev_root, group);
	/* No group node (a kernel without the group path) or another error: the binds will say. */
	return 0;
}

/*
 * Open what a cdev lease of g sends into *cf: each endpoint's cdev (bridges
 * are never handed out) and the holder's iommufd, or a new one with
 * per-process accounting. Refusals as the client should see them; on
 * failure nothing is left open.
 */
static int lease_open_cdev(struct broker *b, const struct identity *id, struct inventory_group *g,
			   struct lease_cdev_fds *cf, struct reply_error *err)
{
	struct holder *h;
	char why[VB_MESSAGE_MAX];
	int r;

	*cf = (struct lease_cdev_fds){.iommufd = -1};
	if (!inventory_probe_iommufd(b->inventory, why, sizeof(why)))
		return reply_error_set(err, VB_E_UNSUPPORTED, "%s", why);
	inventory_group_read_cdevs(b->inventory, g);
	for (size_t i = 0; i < g->n_devices; i++) {
		const struct inventory_device *d = &g->devices[i];

		if (inventory_device_is_bridge(d))
			continue;
		if (!d->cdev[0])
			return reply_error_set(err, VB_E_UNSUPPORTED,
					       "device %s has no VFIO device cdev "
					       "(%s/bus/pci/devices/%s/vfio-dev is "
					       "missing): this kernel lacks "
					       "CONFIG_VFIO_DEVICE_CDEV; lease the group "
					       "path instead",
					       d->address, b->inventory->sysfs_root, d->address);
		if (cf->n == VB_MAX_CDEV_DEVICES)
			return reply_error_set(
				err, VB_E_LIMIT,
				"group %u has more than %d devices, the most one cdev "
				"lease carries; lease the group path instead",
				g->id, VB_MAX_CDEV_DEVICES);
		memcpy(cf->devices[cf->n], d->address, VB_ADDRESS_MAX);
		cf->fds[cf->n++] = -1;
	}
	r = lease_cdev_check_group_file(b, g->id, err);
	if (r < 0)
		return r;
	for (size_t i = 0, k = 0; i < g->n_devices; i++) {
		const struct inventory_device *d = &g->devices[i];
		struct stat st;

		if (inventory_device_is_bridge(d))
			continue;
		r = devnode_open_device_cdev(b->inventory, d->address, d->cdev, &cf->fds[k], &st);
		if (r < 0) {
			lease_cdev_fds_done(cf);
			if (r == -ENOENT)
				return reply_error_set(
					err, VB_E_NOT_VIABLE,
					"device %s has no node %s/vfio/devices/%s; is "
					"devtmpfs mounted?",
					d->address, b->inventory->dev_root, d->cdev);
			log_error_errno(r, "Failed to open the cdev %s of %s: %m", d->cdev,
					d->address);
			return reply_error_set(err, VB_E_INTERNAL,
					       "the broker could not open the cdev of %s: %s",
					       d->address, strerror(-r));
		}
		cf->st[k++] = st;
	}
	h = lease_table_find_holder(b->leases, &id->pid);
	if (h && h->iommufd >= 0) {
		cf->iommufd = h->iommufd;
		cf->iommufd_reused = true;
		return 0;
	}
	r = devnode_open_iommufd(b->inventory, &cf->iommufd);
	if (r < 0) {
		lease_cdev_fds_done(cf);
		log_error_errno(r, "Failed to open %s/iommu with per-process accounting: %m",
				b->inventory->dev_root);
		return reply_error_set(
			err, VB_E_INTERNAL,
			"the broker could not open an iommufd with per-process memory "
			"accounting%s: %s",
			r == -EPERM ? " (it lacks CAP_SYS_RESOURCE)" : "", strerror(-r));
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
	struct lease_cdev_fds cf = {.iommufd = -1};
	struct lease_more_files more;
	bool iommufd_reused = false;
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
	if (req->path == VB_PATH_CDEV) {
		r = lease_open_cdev(b, id, g, &cf, err);
		if (r == 0) {
			fd = TAKE_FD(cf.fds[0]); /* the lease's own file; the others are more */
			st = cf.st[0];
			iommufd_reused = cf.iommufd_reused;
		}
	} else {
		r = lease_open_group(b, group, &fd, &st, err);
	}
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
	more = (struct lease_more_files){
		.fds = cf.fds + 1, .st = cf.st + 1, .n = cf.n ? cf.n - 1 : 0};
	r = lease_table_grant_files(b->leases, group, fd, &st,
				    req->path == VB_PATH_CDEV ? &more : NULL, &id->pid, id->uid,
				    rule, devices, cgroup, &l);
	if (r < 0) {
		if (cgroup)
			lease_cgroup_remove(lease_table_cgroups(b->leases), cgroup);
		log_error_errno(r, "Failed to record the lease of group %u: %m", group);
		r = reply_error_set(err, VB_E_INTERNAL, "the broker could not record the lease");
		goto out;
	}
	TAKE_FD(fd); /* the lease has it */
	if (req->path == VB_PATH_CDEV) {
		for (size_t i = 1; i < cf.n; i++)
			TAKE_FD(cf.fds[i]); /* and its more files */
		l->path = VB_PATH_CDEV;
		if (!cf.iommufd_reused) {
			l->holder->iommufd = cf.iommufd;
			cf.iommufd_reused = true; /* the holder's now: not closed below */
		}
		lease_table_changed(b->leases); /* the state file records the path */
	}
	server_attach_holder(b->server, l->holder);

	f = lease_log_fields(l, "grant");
	f.rule = rule[0] ? rule : NULL;
	log_event(LOG_INFO, &f, "Granted group %u to pid %d (uid %u) by rule %s", group,
		  (int)id->pid.pid, (unsigned)id->uid, rule[0] ? rule : "(none)");
	status_update(b->status);

	if (req->path == VB_PATH_CDEV) {
		int send[1 + VB_MAX_CDEV_DEVICES];

		send[0] = cf.iommufd;
		send[1] = l->fd;
		for (size_t i = 1; i < cf.n; i++)
			send[1 + i] = l->files[i - 1].fd;
		r = reply_send_cdev_lease(c, req->id, group, rule, memlock, iommufd_reused,
					  cf.devices, send, cf.n);
	} else {
		r = reply_send_lease(c, req->id, group, rule, memlock, l->fd);
	}
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
	/* The lease has its cdevs and the holder its iommufd, unless the grant failed. */
	lease_cdev_fds_done(&cf);
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

/*
 * Merge and unmerge are the group path's: a cdev lease shares its holder's
 * iommufd with its other cdev leases from the start, and has no group file
 * to put into a container. Mixing the paths in one merge is refused too.
 */
static int lease_refuse_cdev_merge(struct broker *b, const char *op, const uint32_t *groups,
				   size_t n, struct reply_error *err)
{
	for (size_t i = 0; i < n; i++) {
		const struct lease *l = lease_table_find(b->leases, groups[i]);

		if (l && l->path == VB_PATH_CDEV)
			return reply_error_set(
				err, VB_E_BAD_REQUEST,
				"group %u is leased through the cdev path, whose leases of one "
				"holder share its iommufd already; %s is for the group path",
				groups[i], op);
	}
	return 0;
}

int lease_requests_merge(struct broker *b, struct connection *c, const struct vb_request *req,
			 int *fds, size_t n_fds, struct reply_error *err)
{
	struct merge_result res;
	int r;

	r = lease_refuse_cdev_merge(b, "merge", req->groups, req->n_groups, err);
	if (r < 0)
		return r;
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
	uint32_t group = (uint32_t)req->group;
	int r = lease_refuse_cdev_merge(b, "unmerge", &group, 1, err);

	if (r < 0)
		return r;
	r = unmerge_group(b, c->identity, group, err);
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
