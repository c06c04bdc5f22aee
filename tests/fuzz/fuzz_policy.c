/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer harness for the policy parser: policy_load_string() on one file's text, then
 * policy_decide() and policy_explain() on what it loaded, for a fixed set of callers,
 * device groups and actions.
 *
 * Invariants checked:
 *   - loading returns 0 with a policy, or one of the documented errors with a non-empty
 *     message naming the file and a line inside the text; -EBADMSG ("internal error": the
 *     strict scan's map and json-c disagree, or json-c refuses what the scan took) is a
 *     bug too;
 *   - a policy that loads is strict JSON (tests/fuzz/strict_json.h: RFC 8259, UTF-8, no
 *     duplicate member names, no U+0000 in a name); -DFUZZ_POLICY_JSON_ALLOW=<mask of
 *     STRICT_JSON_ALLOW_*> tolerates chosen kinds of leniency;
 *   - the loader's JSON verdict is the oracle's: the strict scan (common/json_strict)
 *     accepts and refuses what strict_json.h does, but for its documented extra rules
 *     (tests/fuzz/json_strict_oracle.h); a text it refuses fails to load, and one it
 *     accepts fails, if at all, for what it says rather than for its JSON;
 *   - warnings name the file and a line inside the text;
 *   - a loaded policy has one file and its rules are well-formed (names valid and unique,
 *     literal device keys canonical, lists non-empty where the format says so);
 *   - policy_decide returns 0, the same decision twice, a decision consistent with itself
 *     (an allow names a rule and no device; a deny names a device of the group), and the
 *     same decision as a plain linear scan over the rules in file order (the index must
 *     never change an answer; define FUZZ_POLICY_NO_ORACLE to drop the part that reads
 *     policy internals);
 *   - policy_decide refuses bad arguments with -EINVAL; memlock sizes survive
 *     policy_format_size -> policy_parse_size;
 *   - policy_explain returns 0 or -ENOBUFS, always terminates its buffer, starts with the
 *     decision, and its truncated text is a prefix of the full one;
 *   - policy_free releases everything (LeakSanitizer).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy.h"
#include "tests/fuzz/json_strict_oracle.h"
#include "tests/fuzz/strict_json.h"
#ifndef FUZZ_POLICY_NO_ORACLE
#include "policy/policy-internal.h"
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#ifndef FUZZ_POLICY_JSON_ALLOW
#define FUZZ_POLICY_JSON_ALLOW 0
#endif

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__,       \
				#cond);                                                            \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static const char FILE_NAME[] = "10-fuzz.json";

/* ---- the fixed callers and device groups -------------------------------------------- */

/* Ids and names the seed corpus and the dictionary use, so that rules can match them. */
static const gid_t groups_alice[] = {27, 1001, 4000};
static const gid_t groups_many[] = {1,	2,  3,	4,  5,	6,  7,	8,  9,	  10,
				    11, 12, 13, 14, 15, 16, 17, 18, 1001, 4000};

static const struct policy_caller callers[] = {
	{.uid = 0, .gid = 0},
	{.uid = 1000,
	 .gid = 1000,
	 .groups = groups_alice,
	 .n_groups = ARRAY_SIZE(groups_alice),
	 .cgroup = "/user.slice/user-1000.slice/session-2.scope",
	 .unit = "session-2.scope"},
	{.uid = 1002,
	 .gid = 100,
	 .cgroup = "/machine.slice/qemu-1-vm.scope",
	 .unit = "qemu-1-vm.scope"},
	{.uid = 1003,
	 .gid = 1003,
	 .groups = groups_many,
	 .n_groups = ARRAY_SIZE(groups_many),
	 .cgroup = "/system.slice/ci-vm@3.service",
	 .unit = "ci-vm@3.service"},
	{.uid = 4294967294u, .gid = 4294967294u},
};

static const struct policy_device group_nic[] = {
	{.address = "0000:01:00.0",
	 .vendor = 0x8086,
	 .device = 0x10d3,
	 .class = 0x020000,
	 .iommu_group = 7},
};
static const struct policy_device group_nic2[] = {
	{.address = "0000:01:00.1",
	 .vendor = 0x8086,
	 .device = 0x10d3,
	 .class = 0x020000,
	 .iommu_group = 8},
	{.address = "0000:01:00.0",
	 .vendor = 0x8086,
	 .device = 0x10d3,
	 .class = 0x020000,
	 .iommu_group = 8},
};
static const struct policy_device group_gpu[] = {
	{.address = "0000:03:00.0",
	 .vendor = 0x10de,
	 .device = 0x1b80,
	 .class = 0x030000,
	 .iommu_group = 14},
	{.address = "0000:03:00.1",
	 .vendor = 0x10de,
	 .device = 0x10f0,
	 .class = 0x040300,
	 .iommu_group = 14},
	{.address = "0000:00:1f.3",
	 .vendor = 0x8086,
	 .device = 0xa348,
	 .class = 0x040380,
	 .iommu_group = 14},
};
static const struct policy_device group_nvme[] = {
	{.address = "0000:00:1d.0",
	 .vendor = 0x144d,
	 .device = 0xa808,
	 .class = 0x010802,
	 .iommu_group = -1},
};
static const struct policy_device group_odd[] = {
	{.address = "ffff:ff:1f.7",
	 .vendor = 0xffff,
	 .device = 0x0000,
	 .class = 0xffffff,
	 .iommu_group = 0},
	{.address = "0000:00:00.0",
	 .vendor = 0x0000,
	 .device = 0xffff,
	 .class = 0x000000,
	 .iommu_group = 2147483647},
};

static const struct {
	const struct policy_device *devs;
	size_t n;
} device_groups[] = {
	{group_nic, ARRAY_SIZE(group_nic)}, {group_nic2, ARRAY_SIZE(group_nic2)},
	{group_gpu, ARRAY_SIZE(group_gpu)}, {group_nvme, ARRAY_SIZE(group_nvme)},
	{group_odd, ARRAY_SIZE(group_odd)},
};

static const enum policy_action actions[] = {POLICY_ACTION_LEASE, POLICY_ACTION_MERGE,
					     POLICY_ACTION_REMOVE_OWN};

/* ---- helpers --------------------------------------------------------------------------- */

static unsigned count_lines(const uint8_t *data, size_t size)
{
	unsigned lines = 1;

	for (size_t i = 0; i < size; i++)
		lines += data[i] == '\n';
	return lines;
}

static size_t bounded_strlen(const char *s, size_t size)
{
	const char *nul = memchr(s, '\0', size);

	CHECK(nul != NULL);
	return (size_t)(nul - s);
}

struct warn_ctx {
	unsigned lines;
	size_t count;
};

static void on_warning(const char *file, unsigned line, const char *message, void *userdata)
{
	struct warn_ctx *w = userdata;

	CHECK(file && strcmp(file, FILE_NAME) == 0);
	CHECK(line >= 1 && line <= w->lines);
	CHECK(message && message[0]);
	w->count++;
}

static bool decisions_equal(const struct policy_decision *a, const struct policy_decision *b)
{
	return a->allowed == b->allowed && a->rule == b->rule && a->file == b->file &&
	       a->line == b->line && a->device == b->device && a->max_leases == b->max_leases &&
	       a->memlock == b->memlock && strcmp(a->reason, b->reason) == 0;
}

static bool device_in(const char *address, const struct policy_device *devs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (address == devs[i].address)
			return true;
	return false;
}

#ifndef FUZZ_POLICY_NO_ORACLE
/* ---- the oracle: policy internals ---------------------------------------------------- */

static bool is_lower_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

static bool valid_name(const char *s)
{
	size_t len = strlen(s);

	if (len == 0 || len > POLICY_MAX_NAME)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '_' || *s == '.' || *s == '-'))
			return false;
	return true;
}

static void check_sorted_unique(const uint32_t *ids, size_t n)
{
	for (size_t i = 1; i < n; i++)
		CHECK(ids[i - 1] < ids[i]);
}

/* What the loader promises about every rule it accepted (policy/README.md). */
static void check_rules(const struct policy *p)
{
	CHECK(p->n_files == 1);
	for (size_t i = 0; i < p->n_rules; i++) {
		const struct rule *r = &p->rules[i];

		CHECK(r->name && valid_name(r->name));
		for (size_t j = 0; j < i; j++)
			CHECK(strcmp(p->rules[j].name, r->name) != 0);
		CHECK(r->file == p->files[0]);
		CHECK(r->line >= 1);
		CHECK(r->actions != 0 && (r->actions & ~(unsigned)POLICY_ACTION_ALL) == 0);
		if (r->deny)
			CHECK(r->max_leases == 0 && r->memlock == 0);
		CHECK(r->max_leases <= POLICY_MAX_LEASES);
		CHECK(r->memlock <= POLICY_MAX_MEMLOCK);
		CHECK(r->n_uids == 0 || r->uids);
		CHECK(r->n_gids == 0 || r->gids);
		check_sorted_unique((const uint32_t *)r->uids, r->n_uids);
		check_sorted_unique((const uint32_t *)r->gids, r->n_gids);
		for (size_t j = 0; j < r->n_uids; j++)
			CHECK(r->uids[j] != (uid_t)-1);
		for (size_t j = 0; j < r->n_gids; j++)
			CHECK(r->gids[j] != (gid_t)-1);
		CHECK(r->n_devices >= 1 && r->n_devices <= POLICY_MAX_LIST);
		CHECK(r->n_cgroups <= POLICY_MAX_LIST && r->n_units <= POLICY_MAX_LIST);
		for (size_t j = 0; j < r->n_devices; j++) {
			const struct devmatch *m = &r->devices[j];

			CHECK(m->keys != 0);
			if (m->keys & DEVMATCH_ADDRESS) {
				const char *a = m->address.text;

				CHECK(a != NULL);
				/* a literal address is canonical, lowercase, device <= 1f,
				 * function <= 7: anything else could never match */
				if (!m->address.wild) {
					CHECK(strlen(a) == 12);
					for (size_t k = 0; k < 12; k++)
						CHECK(k == 4 || k == 7 ? a[k] == ':'
						      : k == 10	       ? a[k] == '.'
								       : is_lower_hex(a[k]));
					CHECK(a[8] <= '1' && a[11] <= '7');
				}
			}
			if (m->keys & DEVMATCH_CLASS) {
				const char *c = m->class_glob.text;

				CHECK(c != NULL);
				/* a literal class is 6 hex digits, and class is their value */
				if (!m->class_glob.wild) {
					CHECK(strlen(c) == 6);
					for (size_t k = 0; k < 6; k++)
						CHECK(is_lower_hex(c[k]));
					CHECK(m->class == (uint32_t)strtoul(c, NULL, 16));
				}
			}
			if (m->keys & DEVMATCH_IOMMU_GROUP)
				CHECK(m->iommu_group >= 0);
		}
	}
}

static bool rule_applies(const struct rule *r, const struct policy_caller *c,
			 const struct policy_device *d, const char *class_hex, unsigned action)
{
	return (r->actions & action) && rule_matches_identity(r, c) && rule_matches_context(r, c) &&
	       rule_matches_device(r, d, class_hex);
}

/* policy/README.md "Decisions", step by step, without any index. */
static void check_against_oracle(const struct policy *p, const struct policy_caller *c,
				 const struct policy_device *devs, size_t n,
				 enum policy_action action, const struct policy_decision *got)
{
	size_t deny_dev = SIZE_MAX, unallowed_dev = SIZE_MAX, deny_rule = SIZE_MAX;
	size_t first_allow = SIZE_MAX;
	unsigned max_leases = 0;
	uint64_t memlock = 0;

	for (size_t i = 0; i < n && deny_dev == SIZE_MAX; i++) {
		char class_hex[7];
		size_t allow = SIZE_MAX;

		snprintf(class_hex, sizeof(class_hex), "%06x", devs[i].class & 0xffffff);
		for (size_t k = 0; k < p->n_rules; k++) {
			const struct rule *r = &p->rules[k];

			if (!rule_applies(r, c, &devs[i], class_hex, (unsigned)action))
				continue;
			if (r->deny) {
				deny_dev = i;
				deny_rule = k;
				break;
			}
			if (allow == SIZE_MAX)
				allow = k;
		}
		if (deny_dev != SIZE_MAX)
			break;
		if (allow == SIZE_MAX) {
			if (unallowed_dev == SIZE_MAX)
				unallowed_dev = i;
			continue;
		}
		if (i == 0)
			first_allow = allow;
		if (p->rules[allow].max_leases &&
		    (!max_leases || p->rules[allow].max_leases < max_leases))
			max_leases = p->rules[allow].max_leases;
		if (p->rules[allow].memlock && (!memlock || p->rules[allow].memlock < memlock))
			memlock = p->rules[allow].memlock;
	}

	if (deny_dev != SIZE_MAX) {
		CHECK(!got->allowed);
		CHECK(got->rule == p->rules[deny_rule].name);
		CHECK(got->device == devs[deny_dev].address);
	} else if (unallowed_dev != SIZE_MAX) {
		CHECK(!got->allowed);
		CHECK(got->rule == NULL);
		CHECK(got->device == devs[unallowed_dev].address);
	} else {
		CHECK(got->allowed);
		CHECK(got->rule == p->rules[first_allow].name);
		CHECK(got->max_leases == max_leases);
		CHECK(got->memlock == memlock);
	}
}
#endif /* FUZZ_POLICY_NO_ORACLE */

/* ---- decisions ------------------------------------------------------------------------- */

static void check_decision(const struct policy *p, const struct policy_caller *c,
			   const struct policy_device *devs, size_t n, enum policy_action action)
{
	static char full[16384], cut[48];
	struct policy_decision d, again;
	size_t reason_len;
	int r, rf, rc;

	r = policy_decide(p, c, devs, n, action, &d);
	CHECK(r == 0);
	r = policy_decide(p, c, devs, n, action, &again);
	CHECK(r == 0);
	CHECK(decisions_equal(&d, &again));

	reason_len = bounded_strlen(d.reason, sizeof(d.reason));
	CHECK(reason_len > 0);
	CHECK((d.rule == NULL) == (d.file == NULL));
	if (d.rule)
		CHECK(strstr(d.reason, d.rule) != NULL && d.line >= 1 &&
		      strcmp(d.file, FILE_NAME) == 0);
	if (d.allowed) {
		CHECK(d.rule != NULL && d.device == NULL);
		CHECK(d.max_leases <= POLICY_MAX_LEASES && d.memlock <= POLICY_MAX_MEMLOCK);
		if (d.memlock) {
			/* explain prints sizes with policy_format_size: they must read back */
			char text[32];
			uint64_t back = 0;

			policy_format_size(d.memlock, text, sizeof(text));
			CHECK(policy_parse_size(text, &back) == 0 && back == d.memlock);
		}
	} else {
		CHECK(d.device != NULL && device_in(d.device, devs, n));
		CHECK(d.max_leases == 0 && d.memlock == 0);
	}
#ifndef FUZZ_POLICY_NO_ORACLE
	check_against_oracle(p, c, devs, n, action, &d);
#endif

	rf = policy_explain(p, c, devs, n, action, full, sizeof(full));
	CHECK(rf == 0 || rf == -ENOBUFS);
	CHECK(bounded_strlen(full, sizeof(full)) < sizeof(full));
	CHECK(strncmp(full, d.allowed ? "allowed: " : "denied: ", d.allowed ? 9 : 8) == 0);
	rc = policy_explain(p, c, devs, n, action, cut, sizeof(cut));
	CHECK(rc == 0 || rc == -ENOBUFS);
	bounded_strlen(cut, sizeof(cut));
	if (rf == 0) {
		CHECK(strncmp(full, cut, strlen(cut)) == 0);
		CHECK((rc == 0) == (strlen(full) < sizeof(cut)));
	}
}

static void check_bad_arguments(const struct policy *p)
{
	static const struct policy_device no_address[] = {{.address = NULL, .iommu_group = 1}};
	const struct policy_caller bad_groups = {.uid = 1000, .gid = 1000, .n_groups = 2};
	struct policy_decision d;
	char buf[64];

	CHECK(policy_decide(p, &callers[1], group_nic, 0, POLICY_ACTION_LEASE, &d) == -EINVAL);
	CHECK(policy_decide(p, &callers[1], group_nic, 1, 0, &d) == -EINVAL);
	CHECK(policy_decide(p, &callers[1], group_nic, 1, POLICY_ACTION_LEASE | POLICY_ACTION_MERGE,
			    &d) == -EINVAL);
	CHECK(policy_decide(p, &callers[1], group_nic, 1, 1u << 7, &d) == -EINVAL);
	CHECK(policy_decide(p, &callers[1], no_address, 1, POLICY_ACTION_LEASE, &d) == -EINVAL);
	CHECK(policy_decide(p, &bad_groups, group_nic, 1, POLICY_ACTION_LEASE, &d) == -EINVAL);
	CHECK(policy_decide(p, NULL, group_nic, 1, POLICY_ACTION_LEASE, &d) == -EINVAL);
	CHECK(policy_decide(p, &callers[1], group_nic, 1, POLICY_ACTION_LEASE, NULL) == -EINVAL);
	CHECK(policy_explain(p, &callers[1], group_nic, 1, POLICY_ACTION_LEASE, buf, 0) == -EINVAL);
	CHECK(policy_explain(p, &callers[1], group_nic, 0, POLICY_ACTION_LEASE, buf, sizeof(buf)) ==
	      -EINVAL);
}

/* ---- entry point ----------------------------------------------------------------------- */

/* A load error about the JSON of the file rather than about the policy it states. */
static bool is_json_error(const char *message)
{
	static const char *const prefixes[] = {"JSON syntax error", "unexpected end of file",
					       "JSON nested deeper",
					       "unexpected data after the top-level object"};

	for (size_t i = 0; i < ARRAY_SIZE(prefixes); i++)
		if (strncmp(message, prefixes[i], strlen(prefixes[i])) == 0)
			return true;
	return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct json_strict_error strict;
	int scan;
	struct policy *p = NULL;
	struct policy_error err;
	struct warn_ctx w = {.lines = count_lines(data, size)};
	char formatted[64];
	int r;

	memset(&err, 0, sizeof(err));
	r = policy_load_string(FILE_NAME, (const char *)data, size,
			       POLICY_LOAD_SKIP_OWNER_CHECK | POLICY_LOAD_SKIP_NAME_LOOKUP,
			       on_warning, &w, &p, &err);
	CHECK(oracle_agrees((const char *)data, size, POLICY_MAX_DEPTH, &scan, &strict));
	if (scan == -EBADMSG)
		CHECK(r < 0);
	if (scan == 0 && r < 0 && is_json_error(err.message)) {
		fprintf(stderr, "the scan took it, the loader said: %s\n", err.message);
		CHECK(false);
	}
	if (r < 0) {
		if (r == -EBADMSG)
			fprintf(stderr, "internal error: %s:%u: %s\n", err.file, err.line,
				err.message);
		CHECK(r == -EINVAL || r == -E2BIG || r == -EFBIG || r == -ENOMEM);
		CHECK(p == NULL);
		CHECK(strcmp(err.file, FILE_NAME) == 0);
		CHECK(bounded_strlen(err.message, sizeof(err.message)) > 0);
		CHECK(err.line <= w.lines);
		policy_error_format(&err, formatted, sizeof(formatted));
		CHECK(bounded_strlen(formatted, sizeof(formatted)) > 0);
		return 0;
	}
	CHECK(r == 0 && p != NULL);
	/* policy/README.md: JSON syntax errors, duplicate keys, bad UTF-8 all fail the load */
	{
		enum strict_json_result sj =
			strict_json_check((const char *)data, size, FUZZ_POLICY_JSON_ALLOW);

		if (sj != STRICT_JSON_OK)
			fprintf(stderr, "loaded a policy that is not strict JSON: %s\n",
				strict_json_describe(sj));
		CHECK(sj == STRICT_JSON_OK);
	}
	CHECK(policy_file_count(p) == 1);
	CHECK(policy_rule_count(p) <= POLICY_MAX_RULES);
#ifndef FUZZ_POLICY_NO_ORACLE
	check_rules(p);
#endif

	for (size_t c = 0; c < ARRAY_SIZE(callers); c++)
		for (size_t g = 0; g < ARRAY_SIZE(device_groups); g++)
			for (size_t a = 0; a < ARRAY_SIZE(actions); a++)
				check_decision(p, &callers[c], device_groups[g].devs,
					       device_groups[g].n, actions[a]);
	check_bad_arguments(p);

	CHECK(policy_free(p) == NULL);
	return 0;
}
