/* SPDX-License-Identifier: MIT */
/*
 * Decisions: may this caller perform this action on this group of devices?
 *
 * Deny by default.  For every device the first matching deny rule and the first matching
 * allow rule (in load order) are looked up through the index of the action; a deny on any
 * device denies the group, then a device without an allow rule does.  Nothing here
 * allocates, blocks or calls into NSS: the broker decides on every request, possibly with
 * 10,000 rules loaded.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "policy/policy-internal.h"

#define NO_RULE UINT32_MAX

struct evaluation {
	const struct policy *p;
	const struct policy_caller *caller;
	unsigned action;
	const struct rule_index *allow, *deny; /* the action's indexes */
	size_t allow_candidates;	       /* rules of the caller's uid and gids, per index */
	size_t deny_candidates;
};

static size_t caller_candidate_count(const struct rule_index *ix, const struct policy_caller *c)
{
	size_t n = rule_index_by_uid(ix, c->uid).n + rule_index_by_gid(ix, c->gid).n;

	for (size_t i = 0; i < c->n_groups; i++)
		n += rule_index_by_gid(ix, c->groups[i]).n;
	return n;
}

/* "020000" for class 0x020000: the form class globs are written against. */
static void format_class(uint32_t class, char out[static 7])
{
	static const char hex[] = "0123456789abcdef";

	for (int i = 5; i >= 0; i--) {
		out[i] = hex[class & 0xf];
		class >>= 4;
	}
	out[6] = '\0';
}

/*
 * The first rule of sp (ascending) below best that applies to the caller and device.  The
 * cheap integer and literal checks come first; globs on unit and cgroup last.
 */
static uint32_t span_first_match(const struct evaluation *ev, struct rule_span sp,
				 bool identity_known, const struct policy_device *d,
				 const char *class_hex, uint32_t best)
{
	for (size_t i = 0; i < sp.n && sp.rules[i] < best; i++) {
		const struct rule *r = &ev->p->rules[sp.rules[i]];

		if (!(r->actions & ev->action) || !rule_matches_device(r, d, class_hex))
			continue;
		if (!identity_known && !rule_matches_identity(r, ev->caller))
			continue;
		if (rule_matches_context(r, ev->caller))
			return sp.rules[i];
	}
	return best;
}

/* Device-side spans kept from counting to matching; more shapes than this are looked up twice. */
#define CACHED_SPANS 16

/*
 * The first rule of ix that applies, or NO_RULE.  Candidates come from whichever side is
 * cheaper: the rules naming the caller's ids, or one hash lookup per shape of the index
 * and the rules those find.  Either side holds every rule that can match, so both give
 * the same answer.
 */
static uint32_t index_first_match(const struct evaluation *ev, const struct rule_index *ix,
				  size_t caller_candidates, const struct device_probe *probe,
				  const char *class_hex)
{
	const struct policy_caller *c = ev->caller;
	const struct policy_device *d = probe->device;
	struct rule_span spans[CACHED_SPANS];
	size_t n_shapes = rule_index_device_shapes(ix, probe), device_work = n_shapes, i;
	uint32_t best = NO_RULE;

	for (i = 0; i < n_shapes && device_work <= caller_candidates; i++) {
		struct rule_span sp = rule_index_device_span(ix, probe, i);

		if (i < CACHED_SPANS)
			spans[i] = sp;
		device_work += sp.n;
	}
	if (device_work <= caller_candidates) {
		for (i = 0; i < n_shapes; i++)
			best = span_first_match(
				ev,
				i < CACHED_SPANS ? spans[i] : rule_index_device_span(ix, probe, i),
				false, d, class_hex, best);
		return best;
	}
	best = span_first_match(ev, rule_index_by_uid(ix, c->uid), true, d, class_hex, best);
	best = span_first_match(ev, rule_index_by_gid(ix, c->gid), true, d, class_hex, best);
	for (i = 0; i < c->n_groups; i++)
		best = span_first_match(ev, rule_index_by_gid(ix, c->groups[i]), true, d, class_hex,
					best);
	return best;
}

static int evaluation_init(struct evaluation *ev, const struct policy *p,
			   const struct policy_caller *caller, const struct policy_device *devs,
			   size_t n_devs, enum policy_action action)
{
	if (!p || !caller || !devs || n_devs == 0 || !policy_action_to_string(action))
		return -EINVAL;
	if (caller->n_groups && !caller->groups)
		return -EINVAL;
	for (size_t i = 0; i < n_devs; i++)
		if (!devs[i].address)
			return -EINVAL;
	*ev = (struct evaluation){
		.p = p,
		.caller = caller,
		.action = (unsigned)action,
		.allow = &p->allow[action_index(action)],
		.deny = &p->deny[action_index(action)],
	};
	ev->allow_candidates = caller_candidate_count(ev->allow, caller);
	ev->deny_candidates = caller_candidate_count(ev->deny, caller);
	return 0;
}

static void describe_device(const struct policy_device *d, char *buf, size_t size)
{
	if (d->iommu_group >= 0)
		snprintf(buf, size, "%04x:%04x, group %d", d->vendor, d->device, d->iommu_group);
	else
		snprintf(buf, size, "%04x:%04x, no iommu group", d->vendor, d->device);
}

int policy_decide(const struct policy *p, const struct policy_caller *caller,
		  const struct policy_device *devs, size_t n_devs, enum policy_action action,
		  struct policy_decision *ret)
{
	struct evaluation ev;
	struct policy_decision d = {0};
	size_t deny_dev = SIZE_MAX, unallowed_dev = SIZE_MAX;
	uint32_t deny_rule = NO_RULE, first_allow = NO_RULE;
	bool one_rule = true;
	const char *verb;
	int r;

	if (!ret)
		return -EINVAL;
	r = evaluation_init(&ev, p, caller, devs, n_devs, action);
	if (r < 0)
		return r;
	verb = policy_action_to_string(action);

	for (size_t i = 0; i < n_devs; i++) {
		struct device_probe probe;
		char class_hex[7];
		uint32_t rule;

		format_class(devs[i].class, class_hex);
		device_probe_init(&probe, &devs[i]);
		rule = index_first_match(&ev, ev.deny, ev.deny_candidates, &probe, class_hex);
		if (rule != NO_RULE) {
			deny_dev = i;
			deny_rule = rule;
			break;
		}
		/* Past the first unallowed device only deny rules can still change the answer. */
		if (unallowed_dev != SIZE_MAX)
			continue;
		rule = index_first_match(&ev, ev.allow, ev.allow_candidates, &probe, class_hex);
		if (rule == NO_RULE) {
			unallowed_dev = i;
			continue;
		}
		if (i == 0)
			first_allow = rule;
		else if (rule != first_allow)
			one_rule = false;
		/* the most restrictive limits over the rules that allow the devices */
		if (p->rules[rule].max_leases &&
		    (!d.max_leases || p->rules[rule].max_leases < d.max_leases))
			d.max_leases = p->rules[rule].max_leases;
		if (p->rules[rule].memlock && (!d.memlock || p->rules[rule].memlock < d.memlock))
			d.memlock = p->rules[rule].memlock;
	}

	if (deny_dev != SIZE_MAX) {
		const struct rule *rule = &p->rules[deny_rule];

		d = (struct policy_decision){
			.rule = rule->name,
			.file = rule->file,
			.line = rule->line,
			.device = devs[deny_dev].address,
		};
		snprintf(d.reason, sizeof(d.reason),
			 "rule \"%s\" (%s:%u) denies %s of %s to uid %u", rule->name, rule->file,
			 rule->line, verb, devs[deny_dev].address, (unsigned)caller->uid);
	} else if (unallowed_dev != SIZE_MAX) {
		char what[64];

		describe_device(&devs[unallowed_dev], what, sizeof(what));
		d = (struct policy_decision){.device = devs[unallowed_dev].address};
		snprintf(d.reason, sizeof(d.reason), "no rule allows uid %u to %s %s (%s)",
			 (unsigned)caller->uid, verb, devs[unallowed_dev].address, what);
	} else {
		const struct rule *rule = &p->rules[first_allow];
		char more[64] = "";

		d.allowed = true;
		d.rule = rule->name;
		d.file = rule->file;
		d.line = rule->line;
		if (n_devs > 1)
			snprintf(more, sizeof(more), " and %zu more device%s", n_devs - 1,
				 n_devs > 2 ? "s" : "");
		snprintf(d.reason, sizeof(d.reason), "rule \"%s\" (%s:%u)%s %s %s of %s%s",
			 rule->name, rule->file, rule->line, one_rule ? "" : " and other rules",
			 one_rule ? "allows" : "allow", verb, devs[0].address, more);
	}
	*ret = d;
	return 0;
}

/* ---- explain --------------------------------------------------------------------------- */

struct text {
	char *buf;
	size_t size;
	size_t len;
	bool truncated;
};

static void text_printf(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void text_printf(struct text *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (t->truncated)
		return;
	va_start(ap, fmt);
	n = vsnprintf(t->buf + t->len, t->size - t->len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= t->size - t->len) {
		t->truncated = true;
		t->len = t->size - 1;
		return;
	}
	t->len += (size_t)n;
}

/* ", max_leases 2, memlock 8G", or "max_leases 2, memlock 8G" with first set; nothing if none. */
static void text_put_limits(struct text *t, unsigned max_leases, uint64_t memlock, bool first)
{
	char size[32];

	if (max_leases) {
		text_printf(t, "%smax_leases %u", first ? "" : ", ", max_leases);
		first = false;
	}
	if (memlock) {
		policy_format_size(memlock, size, sizeof(size));
		text_printf(t, "%smemlock %s", first ? "" : ", ", size);
	}
}

static void text_put_rule(struct text *t, const struct rule *r)
{
	text_printf(t, "rule \"%s\" (%s:%u)", r->name, r->file, r->line);
}

static void text_put_caller(struct text *t, const struct policy_caller *c)
{
	text_printf(t, "caller: uid %u, gid %u", (unsigned)c->uid, (unsigned)c->gid);
	if (c->n_groups) {
		text_printf(t, ", groups");
		for (size_t i = 0; i < c->n_groups && i < 16; i++)
			text_printf(t, " %u", (unsigned)c->groups[i]);
		if (c->n_groups > 16)
			text_printf(t, " (and %zu more)", c->n_groups - 16);
	}
	text_printf(t, ", cgroup %s, unit %s\n", c->cgroup ? c->cgroup : "(unknown)",
		    c->unit ? c->unit : "(unknown)");
}

int policy_explain(const struct policy *p, const struct policy_caller *caller,
		   const struct policy_device *devs, size_t n_devs, enum policy_action action,
		   char *buf, size_t size)
{
	struct policy_decision decision;
	struct evaluation ev;
	struct text t = {.buf = buf, .size = size};
	int r;

	if (!buf || size == 0)
		return -EINVAL;
	r = policy_decide(p, caller, devs, n_devs, action, &decision);
	if (r < 0)
		return r;
	r = evaluation_init(&ev, p, caller, devs, n_devs, action);
	if (r < 0)
		return r;
	buf[0] = '\0';

	text_printf(&t, "%s: %s\n", decision.allowed ? "allowed" : "denied", decision.reason);
	text_put_caller(&t, caller);
	if (decision.allowed && (decision.max_leases || decision.memlock)) {
		text_printf(&t, "limits: ");
		text_put_limits(&t, decision.max_leases, decision.memlock, true);
		text_printf(&t, "\n");
	}
	for (size_t i = 0; i < n_devs; i++) {
		const struct policy_device *d = &devs[i];
		struct device_probe probe;
		char class_hex[7];
		uint32_t deny, allow;

		format_class(d->class, class_hex);
		device_probe_init(&probe, d);
		deny = index_first_match(&ev, ev.deny, ev.deny_candidates, &probe, class_hex);
		allow = index_first_match(&ev, ev.allow, ev.allow_candidates, &probe, class_hex);
		text_printf(&t, "  %s (%04x:%04x, class %s, ", d->address, d->vendor, d->device,
			    class_hex);
		if (d->iommu_group >= 0)
			text_printf(&t, "iommu group %d): ", d->iommu_group);
		else
			text_printf(&t, "no iommu group): ");
		if (deny != NO_RULE) {
			text_printf(&t, "denied by ");
			text_put_rule(&t, &p->rules[deny]);
			if (allow != NO_RULE) {
				text_printf(&t, ", overriding ");
				text_put_rule(&t, &p->rules[allow]);
			}
		} else if (allow != NO_RULE) {
			text_printf(&t, "allowed by ");
			text_put_rule(&t, &p->rules[allow]);
			text_put_limits(&t, p->rules[allow].max_leases, p->rules[allow].memlock,
					false);
		} else {
			text_printf(&t, "no rule allows %s of it", policy_action_to_string(action));
		}
		text_printf(&t, "\n");
	}
	return t.truncated ? -ENOBUFS : 0;
}
