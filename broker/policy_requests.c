/* SPDX-License-Identifier: MIT */
#include "broker/policy_requests.h"
#include "broker/access.h"
#include "broker/connection.h"
#include "broker/log.h"
#include "broker/policy_store.h"
#include "broker/status.h"
#include "common/cleanup.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>

/* Room for policy_explain's text. */
#define EXPLAIN_TEXT_MAX (16 * 1024)
/* Most supplementary groups looked up for a user being explained. */
#define EXPLAIN_MAX_USER_GROUPS 65536

int policy_requests_reload(struct broker *b, struct connection *c, const struct vb_request *req,
			   int *fds, size_t n_fds, struct reply_error *err)
{
	struct policy_error perr = {0};
	char why[64], text[sizeof(perr.file) + sizeof(perr.message) + 32];
	const struct policy *p;

	snprintf(why, sizeof(why), "requested by uid %u", (unsigned)c->identity->uid);
	if (policy_store_reload(b->policy, why, &perr) < 0) {
		policy_error_format(&perr, text, sizeof(text));
		return reply_error_set(err, VB_E_BAD_REQUEST,
				       "%s; the previous policy stays in force", text);
	}
	p = policy_store_get(b->policy);
	status_update(b->status);
	reply_send_reload(c, req->id, policy_rule_count(p), policy_file_count(p));
	return 0;
}

/* The supplementary groups of user name (primary gid included), as login would set them. */
static int explain_user_groups(const char *name, gid_t gid, gid_t **ret, size_t *ret_n)
{
	_cleanup_free_ gid_t *groups = NULL;
	int n = 64;

	for (;;) {
		int want = n;
		gid_t *bigger = realloc(groups, (size_t)n * sizeof(gid_t));

		if (!bigger)
			return -ENOMEM;
		groups = bigger;
		if (getgrouplist(name, gid, groups, &want) >= 0) {
			n = want;
			break;
		}
		if (want <= n || want > EXPLAIN_MAX_USER_GROUPS)
			return -E2BIG;
		n = want;
	}
	*ret_n = (size_t)n;
	*ret = TAKE_PTR(groups);
	return 0;
}

int policy_requests_explain(struct broker *b, struct connection *c, const struct vb_request *req,
			    int *fds, size_t n_fds, struct reply_error *err)
{
	_cleanup_free_ gid_t *groups = NULL;
	_cleanup_free_ char *text = NULL;
	struct access_group ag = {0};
	struct policy_caller caller;
	struct policy_decision d;
	struct passwd *pw = NULL;
	uint32_t group = (uint32_t)req->group;
	bool self;
	int r;

	/*
	 * Before any lookup: a user name resolved for anyone would tell which names
	 * exist, and NSS (LDAP, sssd) may take seconds on the event loop.
	 * Non-administrators explain for themselves only, without naming a user.
	 */
	if (!c->admin && (req->user[0] || (req->uid >= 0 && (uid_t)req->uid != c->identity->uid)))
		return reply_error_set(err, VB_E_DENIED,
				       "only an administrator may explain decisions for another "
				       "user; leave out the user to explain your own");
	if (req->user[0]) {
		errno = 0;
		pw = getpwnam(req->user);
		if (!pw)
			return reply_error_set(err, VB_E_BAD_REQUEST, "there is no user %s",
					       req->user);
		self = pw->pw_uid == c->identity->uid;
	} else if (req->uid >= 0) {
		self = (uid_t)req->uid == c->identity->uid;
		if (!self)
			pw = getpwuid((uid_t)req->uid);
	} else {
		self = true;
	}
	if (self) {
		identity_to_policy_caller(c->identity, &caller);
	} else {
		size_t n_groups = 0;

		caller = (struct policy_caller){
			.uid = pw ? pw->pw_uid : (uid_t)req->uid,
			.gid = pw ? pw->pw_gid : (gid_t)-1,
		};
		if (pw && explain_user_groups(pw->pw_name, pw->pw_gid, &groups, &n_groups) == 0) {
			caller.groups = groups;
			caller.n_groups = n_groups;
		}
	}

	r = access_read_group(b, group, &ag, err);
	if (r < 0)
		goto out;
	text = malloc(EXPLAIN_TEXT_MAX);
	r = text ? policy_decide(policy_store_get(b->policy), &caller, ag.devs, ag.n_devs,
				 POLICY_ACTION_LEASE, &d)
		 : -ENOMEM;
	if (r == 0) {
		r = policy_explain(policy_store_get(b->policy), &caller, ag.devs, ag.n_devs,
				   POLICY_ACTION_LEASE, text, EXPLAIN_TEXT_MAX);
		if (r == -ENOBUFS)
			r = 0; /* truncated text is still worth sending */
	}
	if (r < 0) {
		log_error_errno(r, "Failed to explain the policy for group %u: %m", group);
		r = reply_error_set(err, VB_E_INTERNAL, "the broker could not evaluate the policy");
		goto out;
	}
	reply_send_explain(c, req->id, group, caller.uid, &d, text);
out:
	access_group_done(&ag);
	return r;
}
