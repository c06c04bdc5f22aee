/* SPDX-License-Identifier: MIT */
#include "broker/memlock.h"
#include "policy/policy.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <sys/resource.h>

/* The holder's soft RLIMIT_MEMLOCK, UINT64_MAX for unlimited; 0 when it cannot be read. */
static uint64_t memlock_current(const struct pidref *holder)
{
	struct rlimit rl;

	if (prlimit(holder->pid, RLIMIT_MEMLOCK, NULL, &rl) < 0)
		return 0;
	return rl.rlim_cur == RLIM_INFINITY ? UINT64_MAX : (uint64_t)rl.rlim_cur;
}

struct json_object *memlock_check_lease(const struct vb_request *req, uint64_t granted,
					const char *rule, const struct pidref *holder)
{
	char asked_s[32], have_s[32];
	struct json_object *reply, *details;
	uint64_t have;

	if (!req->memlock)
		return NULL;
	have = memlock_current(holder);
	if (granted > have)
		have = granted;
	if (have >= req->memlock)
		return NULL;

	policy_format_size(req->memlock, asked_s, sizeof(asked_s));
	policy_format_size(have, have_s, sizeof(have_s));
	if (granted)
		reply = vb_reply_new_error(
			true, req->id, VB_E_DENIED,
			"rule %s gives %s of locked memory (memlock), but %s was asked for; ask an "
			"administrator to set \"memlock\": \"%s\" or more in rule %s, or give the "
			"VM less RAM",
			rule, have_s, asked_s, asked_s, rule);
	else
		reply = vb_reply_new_error(
			true, req->id, VB_E_DENIED,
			"rule %s sets no memlock and your RLIMIT_MEMLOCK is %s, but %s was asked "
			"for; ask an administrator to add \"memlock\": \"%s\" to rule %s",
			rule && rule[0] ? rule : "(none)", have_s, asked_s, asked_s,
			rule && rule[0] ? rule : "(none)");
	details = reply ? vb_reply_error_details(reply) : NULL;
	if (details) {
		json_object_object_add(details, "memlock", json_object_new_int64((int64_t)have));
		json_object_object_add(details, "asked",
				       json_object_new_int64((int64_t)req->memlock));
	}
	return reply;
}
