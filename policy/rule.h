/* SPDX-License-Identifier: MIT */
/*
 * One parsed rule in the form evaluation wants: ids resolved and sorted, hex parsed,
 * patterns flagged as literal or glob.  Matching is allocation-free.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "policy/pattern.h"
#include "policy/policy.h"

enum devmatch_key {
	DEVMATCH_ADDRESS = 1 << 0,
	DEVMATCH_VENDOR = 1 << 1,
	DEVMATCH_DEVICE = 1 << 2,
	DEVMATCH_CLASS = 1 << 3,
	DEVMATCH_IOMMU_GROUP = 1 << 4,
};

/* One entry of "devices": every key present must match. */
struct devmatch {
	unsigned keys; /* enum devmatch_key */
	struct pattern address;
	uint16_t vendor;
	uint16_t device;
	struct pattern class_glob; /* normalised (no 0x, lowercase); literal: use class */
	uint32_t class;
	int iommu_group;
};

struct rule {
	char *name;
	const char *file; /* owned by the policy */
	unsigned line;
	bool deny;
	unsigned actions; /* granted (allow) or denied (deny) */
	unsigned max_leases;
	uint64_t memlock;
	uid_t *uids; /* sorted, unique */
	size_t n_uids;
	gid_t *gids; /* sorted, unique */
	size_t n_gids;
	struct pattern *cgroups; /* n_cgroups == 0: no restriction */
	size_t n_cgroups;
	struct pattern *units; /* n_units == 0: no restriction */
	size_t n_units;
	struct devmatch *devices;
	size_t n_devices;
};

/* Rules in load order; the position in this vector is the rule's precedence. */
struct rule_vec {
	struct rule *items;
	size_t n;
	size_t cap;
};

/* Free everything r owns and zero it.  Accepts NULL. */
void rule_done(struct rule *r);

/* Append *r (moved: *r is zeroed on success).  0 or -ENOMEM. */
int rule_vec_push(struct rule_vec *v, struct rule *r);
/* Free all rules and the vector storage.  Accepts NULL. */
void rule_vec_done(struct rule_vec *v);

/* Does the caller's uid, primary gid or a supplementary gid appear in the rule? */
bool rule_matches_identity(const struct rule *r, const struct policy_caller *c);
/* Do the cgroup and unit restrictions (if any) admit the caller?  Unknown never matches. */
bool rule_matches_context(const struct rule *r, const struct policy_caller *c);
/* Does any devices entry match d?  class_hex is d->class as 6 lowercase hex digits. */
bool rule_matches_device(const struct rule *r, const struct policy_device *d,
			 const char *class_hex);
