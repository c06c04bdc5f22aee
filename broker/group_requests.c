/* SPDX-License-Identifier: MIT */
#include "broker/group_requests.h"
#include "broker/connection.h"
#include "broker/inventory.h"
#include "broker/kmod_link.h"
#include "broker/lease.h"
#include "broker/log.h"
#include "broker/policy_store.h"
#include "broker/quarantine.h"
#include "common/cleanup.h"

#include <errno.h>
#include <string.h>

/*
 * Whether c may see which process holds l: administrators, and the
 * holder's own uid. Anyone else sees that the group is held and by which
 * uid (what a busy answer to lease says anyway, so that a user knows whom
 * to ask), never the process: pid 0, as for a lease with no known holder.
 */
static bool group_requests_may_see_pid(const struct connection *c, const struct lease *l)
{
	return l->holder && (c->admin || c->identity->uid == l->uid);
}

int group_requests_list(struct broker *b, struct connection *c, const struct vb_request *req,
			int *fds, size_t n_fds, struct reply_error *err)
{
	_cleanup_free_ uint32_t *ids = NULL;
	struct policy_caller caller;
	struct reply_chunks ch;
	size_t n;
	int r;

	r = inventory_list_groups(b->inventory, &ids, &n);
	if (r < 0) {
		log_error_errno(r, "Failed to list the IOMMU groups in %s: %m",
				b->inventory->sysfs_root);
		return reply_error_set(err, VB_E_INTERNAL,
				       "the broker could not list the IOMMU groups: %s",
				       strerror(-r));
	}
	reply_chunks_init_list(&ch, c, req->id, kmod_mode_to_string(kmod_link_mode(b->kmod)));
	identity_to_policy_caller(c->identity, &caller);
	for (size_t i = 0; i < n && !c->closing; i++) {
		struct vb_device_info devices[INVENTORY_MAX_DEVICES];
		struct policy_device devs[INVENTORY_MAX_DEVICES];
		struct inventory_group *g = NULL;
		struct vb_group_info info;
		struct policy_decision d;
		struct lease *l;
		size_t n_devs;

		r = inventory_read_listed_group(b->inventory, ids[i], &g);
		if (r < 0) {
			if (r != -ENOENT) /* ENOENT: unplugged since we listed */
				log_warning_errno(r, "Skipping group %u in list: %m", ids[i]);
			continue;
		}
		inventory_group_to_info(b->inventory, g, devices, &info);
		n_devs = inventory_group_to_policy(g, devs);
		if (n_devs > 0 && policy_decide(policy_store_get(b->policy), &caller, devs, n_devs,
						POLICY_ACTION_LEASE, &d) == 0)
			info.allowed = d.allowed;
		l = lease_table_find(b->leases, ids[i]);
		if (l) {
			info.held = true;
			info.holder_uid = l->uid;
			info.holder_pid = group_requests_may_see_pid(c, l) ? l->pid : 0;
		}
		reply_chunks_add_group(&ch, &info);
		inventory_group_free(g);
	}
	reply_chunks_finish(&ch);
	return 0;
}

int group_requests_quarantine(struct broker *b, struct connection *c, const struct vb_request *req,
			      int *fds, size_t n_fds, struct reply_error *err)
{
	const char *devices[INVENTORY_MAX_DEVICES];
	struct quarantine_result res;
	int r;

	r = quarantine_group(b, c->identity, (uint32_t)req->group, req->op == VB_OP_QUARANTINE,
			     req->restore, &res, err);
	if (r < 0)
		return r;
	for (size_t i = 0; i < res.n_devices; i++)
		devices[i] = res.devices[i];
	reply_send_quarantine(c, req->id, (uint32_t)req->group, res.mode, devices, res.n_devices);
	return 0;
}
