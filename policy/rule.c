/* SPDX-License-Identifier: MIT */
/* Rule storage and the per-rule match predicates used by policy_decide(). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "policy/rule.h"

void rule_done(struct rule *r)
{
	if (!r)
		return;
	free(r->name);
	free(r->uids);
	free(r->gids);
	for (size_t i = 0; i < r->n_cgroups; i++)
		pattern_done(&r->cgroups[i]);
	free(r->cgroups);
	for (size_t i = 0; i < r->n_units; i++)
		pattern_done(&r->units[i]);
	free(r->units);
	for (size_t i = 0; i < r->n_devices; i++) {
		pattern_done(&r->devices[i].address);
		pattern_done(&r->devices[i].class_glob);
	}
	free(r->devices);
	memset(r, 0, sizeof(*r));
}

int rule_vec_push(struct rule_vec *v, struct rule *r)
{
	if (v->n == v->cap) {
		size_t cap = v->cap ? v->cap * 2 : 16;
		struct rule *items = reallocarray(v->items, cap, sizeof(*items));

		if (!items)
			return -ENOMEM;
		v->items = items;
		v->cap = cap;
	}
	v->items[v->n++] = *r;
	memset(r, 0, sizeof(*r));
	return 0;
}

void rule_vec_done(struct rule_vec *v)
{
	if (!v)
		return;
	for (size_t i = 0; i < v->n; i++)
		rule_done(&v->items[i]);
	free(v->items);
	memset(v, 0, sizeof(*v));
}

/* Binary search in a sorted id array; uid_t and gid_t are both 32-bit unsigned on Linux. */
static bool ids_contain(const uint32_t *ids, size_t n, uint32_t id)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (ids[mid] == id)
			return true;
		if (ids[mid] < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

_Static_assert(sizeof(uid_t) == sizeof(uint32_t), "uid_t is 32-bit");
_Static_assert(sizeof(gid_t) == sizeof(uint32_t), "gid_t is 32-bit");

bool rule_matches_identity(const struct rule *r, const struct policy_caller *c)
{
	if (ids_contain((const uint32_t *)r->uids, r->n_uids, c->uid))
		return true;
	if (r->n_gids == 0)
		return false;
	if (ids_contain((const uint32_t *)r->gids, r->n_gids, c->gid))
		return true;
	for (size_t i = 0; i < c->n_groups; i++)
		if (ids_contain((const uint32_t *)r->gids, r->n_gids, c->groups[i]))
			return true;
	return false;
}

static bool patterns_match_any(const struct pattern *ps, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (pattern_match(&ps[i], s))
			return true;
	return false;
}

/*
 * A user's own unit is "user@UID.service/NAME" (policy.h): '/' is a boundary no
 * wildcard crosses, so only a pattern that names the user manager matches it.
 */
static bool units_match_any(const struct pattern *ps, size_t n, const char *unit)
{
	for (size_t i = 0; i < n; i++)
		if (pattern_match_segments(&ps[i], unit))
			return true;
	return false;
}

bool rule_matches_context(const struct rule *r, const struct policy_caller *c)
{
	if (r->n_cgroups &&
	    (!c->cgroup || !patterns_match_any(r->cgroups, r->n_cgroups, c->cgroup)))
		return false;
	if (r->n_units && (!c->unit || !units_match_any(r->units, r->n_units, c->unit)))
		return false;
	return true;
}

static bool devmatch_matches(const struct devmatch *m, const struct policy_device *d,
			     const char *class_hex)
{
	if ((m->keys & DEVMATCH_VENDOR) && m->vendor != d->vendor)
		return false;
	if ((m->keys & DEVMATCH_DEVICE) && m->device != d->device)
		return false;
	if ((m->keys & DEVMATCH_IOMMU_GROUP) &&
	    (d->iommu_group < 0 || m->iommu_group != d->iommu_group))
		return false;
	if (m->keys & DEVMATCH_CLASS) {
		if (m->class_glob.wild ? !pattern_match(&m->class_glob, class_hex)
				       : m->class != (d->class & 0xffffff))
			return false;
	}
	if ((m->keys & DEVMATCH_ADDRESS) && !pattern_match(&m->address, d->address))
		return false;
	return true;
}

bool rule_matches_device(const struct rule *r, const struct policy_device *d, const char *class_hex)
{
	for (size_t i = 0; i < r->n_devices; i++)
		if (devmatch_matches(&r->devices[i], d, class_hex))
			return true;
	return false;
}
