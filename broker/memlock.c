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

int memlock_check_lease(const struct vb_request *req, uint64_t granted, const char *rule,
			const struct pidref *holder, struct reply_error *err)
{
	const char *name = rule && rule[0] ? rule : "(none)";
	char asked_s[32], have_s[32];
	uint64_t have;
	int r;

	if (!req->memlock)
		return 0;
	have = memlock_current(holder);
	if (granted > have)
		have = granted;
	if (have >= req->memlock)
		return 0;

	policy_format_size(req->memlock, asked_s, sizeof(asked_s));
	policy_format_size(have, have_s, sizeof(have_s));
	if (granted)
		r = reply_error_set(
			err, VB_E_DENIED,
			"rule %s gives %s of locked memory (memlock), but %s was asked "
			"for; ask an administrator to set \"memlock\": \"%s\" or more in "
			"rule %s, or give the VM less RAM",
			name, have_s, asked_s, asked_s, name);
	else
		r = reply_error_set(
			err, VB_E_DENIED,
			"rule %s sets no memlock and your RLIMIT_MEMLOCK is %s, but %s "
			"was asked for; ask an administrator to add \"memlock\": \"%s\" "
			"to rule %s",
			name, have_s, asked_s, asked_s, name);
	err->has_memlock = true;
	err->memlock = have;
	err->asked = req->memlock;
	return r;
}
