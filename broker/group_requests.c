/* SPDX-License-Identifier: MIT */
#include "broker/group_requests.h"
#include "broker/connection.h"
#include "broker/inventory.h"
#include "broker/kmod_link.h"
#include "broker/lease.h"
#include "broker/list_cache.h"
#include "broker/log.h"
#include "broker/policy_store.h"
#include "broker/quarantine.h"
#include "broker/server.h"
#include "common/cleanup.h"
#include "protocol/wire.h"

#include <errno.h>
#include <stdlib.h>
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

/* Groups a list serialises afresh per turn of the scheduler it is charged (PROTOCOL.md, Limits). */
#define LIST_GROUPS_PER_TURN 64

/*
 * Serialise what c may see of every group into lt: the inventory's
 * description, whether policy lets c lease it, and its holder. Groups that
 * cannot be read are left out (and the inventory's generation moves, so
 * that such a list is not kept).
 */
static int group_requests_list_build(struct broker *b, struct connection *c,
				     const struct policy_caller *caller, struct list_text *lt)
{
	_cleanup_free_ uint32_t *ids = NULL;
	char entry[VB_MAX_PACKET_SIZE];
	size_t n;
	int r;

	r = inventory_list_groups(b->inventory, &ids, &n);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n; i++) {
		struct vb_device_info devices[INVENTORY_MAX_DEVICES];
		struct policy_device devs[INVENTORY_MAX_DEVICES];
		_cleanup_free_ struct inventory_group *g = NULL;
		struct vb_group_info info;
		struct policy_decision d;
		struct lease *l;
		size_t n_devs, len;

		r = inventory_read_listed_group(b->inventory, ids[i], &g);
		if (r < 0) {
			if (r != -ENOENT) /* ENOENT: unplugged since we listed */
				log_warning_errno(r, "Skipping group %u in list: %m", ids[i]);
			continue;
		}
		inventory_group_to_info(b->inventory, g, devices, &info);
		n_devs = inventory_group_to_policy(g, devs);
		if (n_devs > 0 && policy_decide(policy_store_get(b->policy), caller, devs, n_devs,
						POLICY_ACTION_LEASE, &d) == 0)
			info.allowed = d.allowed;
		l = lease_table_find(b->leases, ids[i]);
		if (l) {
			info.held = true;
			info.holder_uid = l->uid;
			info.holder_pid = group_requests_may_see_pid(c, l) ? l->pid : 0;
		}
		r = vb_group_info_write(&info, entry, sizeof(entry), &len);
		if (r == 0)
			r = list_text_add(lt, entry, len);
		if (r < 0)
			return r;
	}
	return 0;
}

/*
 * list: served from the text kept for this caller's view while nothing it
 * shows has changed (list_cache.h), else serialised, sent, and kept. The
 * scheduler charges a turn per packet, and one per LIST_GROUPS_PER_TURN
 * groups serialised.
 */
int group_requests_list(struct broker *b, struct connection *c, const struct vb_request *req,
			int *fds, size_t n_fds, struct reply_error *err)
{
	_cleanup_list_text_ struct list_text *lt = NULL;
	const struct list_text *kept;
	struct policy_caller caller;
	struct list_cache_key key;
	size_t sent;
	int r;

	if (!b->list_cache && list_cache_new(&b->list_cache) < 0)
		return reply_error_set(err, VB_E_INTERNAL, "the broker is out of memory");
	identity_to_policy_caller(c->identity, &caller);
	key = (struct list_cache_key){
		.inventory = inventory_generation(b->inventory),
		.policy = policy_store_generation(b->policy),
		.leases = lease_table_generation(b->leases),
		.quarantine = kmod_mode_to_string(kmod_link_mode(b->kmod)),
		.admin = c->admin,
		.caller = &caller,
	};
	kept = list_cache_find(b->list_cache, &key);
	if (kept) {
		sent = list_text_send(kept, c, req->id, key.quarantine);
		server_charge_turns(b->server, c, (unsigned)sent);
		return 0;
	}

	lt = calloc(1, sizeof(*lt));
	if (!lt)
		return reply_error_set(err, VB_E_INTERNAL, "the broker is out of memory");
	r = group_requests_list_build(b, c, &caller, lt);
	if (r < 0) {
		log_error_errno(r, "Failed to list the IOMMU groups in %s: %m",
				b->inventory->sysfs_root);
		return reply_error_set(err, VB_E_INTERNAL,
				       "the broker could not list the IOMMU groups: %s",
				       strerror(-r));
	}
	sent = list_text_send(lt, c, req->id, key.quarantine);
	server_charge_turns(b->server, c, (unsigned)(sent + lt->n_groups / LIST_GROUPS_PER_TURN));
	/* Kept only if nothing changed while it was read (a group that could not be, say). */
	if (b->inventory->generation == key.inventory &&
	    lease_table_generation(b->leases) == key.leases &&
	    policy_store_generation(b->policy) == key.policy)
		(void)list_cache_put(b->list_cache, &key, TAKE_PTR(lt));
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
