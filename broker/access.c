/* SPDX-License-Identifier: MIT */
#include "broker/access.h"
#include "broker/log.h"
#include "broker/policy_store.h"
#include "common/cleanup.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const char *action_verb(enum policy_action action)
{
	switch (action) {
	case POLICY_ACTION_LEASE:
		return "lease";
	case POLICY_ACTION_MERGE:
		return "merge";
	case POLICY_ACTION_REMOVE_OWN:
		return "remove";
	}
	return "use";
}

void access_log_refusal(const struct identity *caller, const char *what, int64_t group,
			const char *devices, const char *rule, const struct reply_error *err)
{
	struct log_fields f = LOG_FIELDS("deny");

	f.uid = caller->uid;
	f.pid = caller->pid.pid;
	f.group = group;
	f.devices = devices && devices[0] ? devices : NULL;
	f.rule = rule;
	if (group >= 0)
		log_event(LOG_NOTICE, &f, "Refused %s of group %lld to pid %d (uid %u): %s", what,
			  (long long)group, (int)caller->pid.pid, (unsigned)caller->uid,
			  err->message);
	else
		log_event(LOG_NOTICE, &f, "Refused %s of %s to pid %d (uid %u): %s", what,
			  devices ? devices : "?", (int)caller->pid.pid, (unsigned)caller->uid,
			  err->message);
}

int access_read_group(struct broker *b, uint32_t group, struct access_group *ret,
		      struct reply_error *err)
{
	struct inventory_group *g = NULL;
	char why[VB_MESSAGE_MAX];
	int r;

	r = inventory_read_group(b->inventory, group, &g);
	if (r == -ENOENT)
		return reply_error_set(err, VB_E_NO_SUCH_GROUP,
				       "there is no IOMMU group %u; see vfioctl list", group);
	if (r < 0) {
		log_error_errno(r, "Failed to read group %u from %s: %m", group,
				b->inventory->sysfs_root);
		return reply_error_set(err, VB_E_INTERNAL,
				       "the broker could not read group %u from sysfs: %s", group,
				       strerror(-r));
	}
	ret->group = g;
	inventory_group_format_devices(g, ret->devices, sizeof(ret->devices));
	ret->n_devs = inventory_group_to_policy(g, ret->devs);
	if (ret->n_devs == 0) {
		if (g->n_devices == 0)
			inventory_group_viable(g, why, sizeof(why));
		else
			snprintf(why, sizeof(why),
				 "group %u holds only PCI bridges: there is no device to lease",
				 group);
		/* The caller still gets the group's addresses, for its log. */
		return reply_error_set(err, VB_E_NOT_VIABLE, "%s", why);
	}
	return 0;
}

void access_group_done(struct access_group *ag)
{
	ag->group = inventory_group_free(ag->group);
}

int access_check_group(struct broker *b, const struct identity *caller, uint32_t group,
		       enum policy_action action, struct inventory_group **ret_group,
		       struct policy_decision *ret, struct reply_error *err)
{
	struct access_group ag = {0};
	struct policy_caller pc;
	struct policy_decision d;
	int r;

	/*
	 * A deny rule by group must hold for every member: in another user
	 * namespace the caller may have shed the group (identity.h), so nothing
	 * is granted there. Fail closed; outside, lease and pass the fd in.
	 */
	if (caller->other_userns) {
		r = reply_error_set(err, VB_E_DENIED,
				    "your process runs in another user namespace than the "
				    "broker's, where it can drop groups; the broker grants no "
				    "%s there: ask from outside it and pass the fd in",
				    action_verb(action));
		access_log_refusal(caller, action_verb(action), group, NULL, NULL, err);
		return r;
	}
	r = access_read_group(b, group, &ag, err);
	if (r < 0) {
		if (err->code != VB_E_INTERNAL)
			access_log_refusal(caller, action_verb(action), group,
					   ag.group ? ag.devices : NULL, NULL, err);
		access_group_done(&ag);
		return r;
	}
	identity_to_policy_caller(caller, &pc);
	r = policy_decide(policy_store_get(b->policy), &pc, ag.devs, ag.n_devs, action, &d);
	if (r < 0) {
		log_error_errno(r, "Failed to evaluate the policy for group %u: %m", group);
		access_group_done(&ag);
		return reply_error_set(err, VB_E_INTERNAL,
				       "the broker could not evaluate the policy");
	}
	if (!d.allowed) {
		if (d.rule)
			r = reply_error_set(
				err, VB_E_DENIED,
				"rule %s (%s:%u) denies you to %s device %s of group %u; ask "
				"an administrator",
				d.rule, d.file ? d.file : "?", d.line, action_verb(action),
				d.device ? d.device : ag.devices, group);
		else
			r = reply_error_set(
				err, VB_E_DENIED,
				"no rule allows uid %u to %s device %s of group %u; ask an "
				"administrator to add one",
				(unsigned)caller->uid, action_verb(action),
				d.device ? d.device : ag.devices, group);
		err->has_decision = true;
		snprintf(err->device, sizeof(err->device), "%s", d.device ? d.device : "");
		snprintf(err->rule, sizeof(err->rule), "%s", d.rule ? d.rule : "");
		snprintf(err->reason, sizeof(err->reason), "%s", d.reason);
		access_log_refusal(caller, action_verb(action), group, ag.devices, d.rule, err);
		access_group_done(&ag);
		return r;
	}
	*ret_group = TAKE_PTR(ag.group);
	*ret = d;
	return 0;
}
