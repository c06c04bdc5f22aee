/* SPDX-License-Identifier: MIT */
/*
 * Lookup tables built at load time so that a decision looks at the few rules that can
 * possibly match instead of all of them: rules by uid, by gid, and by exact device address.
 * Each lookup yields a span of rule numbers in ascending (precedence) order.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "policy/rule.h"

struct rule_span {
	const uint32_t *rules;
	size_t n;
};

/* Compressed rows: rules[starts[i]..starts[i+1]) are the rules for keys[i]. */
struct id_table {
	uint32_t *keys;
	size_t n_keys;
	size_t *starts;
	uint32_t *rules;
};

struct address_table {
	const char **keys; /* point into the rules' patterns */
	size_t n_keys;
	size_t *starts;
	uint32_t *rules;
};

/*
 * Tables over the rules of one effect (allow or deny).  Caller side: by uid and gid.  Device
 * side: each device entry is filed under its most selective exact key (literal address,
 * iommu group, vendor and device, vendor, literal class); entries with none of those are
 * "generic" and must be tried for every device.
 */
struct rule_index {
	struct id_table by_uid;
	struct id_table by_gid;
	struct address_table by_address;
	struct id_table by_iommu_group;
	struct id_table by_vendor_device; /* key: vendor << 16 | device */
	struct id_table by_vendor;
	struct id_table by_class;
	uint32_t *generic;
	size_t n_generic;
};

/* The device-side candidates for one device: at most this many spans. */
#define RULE_INDEX_DEVICE_SPANS 6

/*
 * Build the index of the rules[i] with rules[i].deny == deny.  Returns 0 or -ENOMEM (ix
 * then holds nothing that needs freeing beyond what rule_index_done() handles).
 */
int rule_index_build(struct rule_index *ix, const struct rule *rules, size_t n_rules, bool deny);
/* Free the tables.  Accepts NULL. */
void rule_index_done(struct rule_index *ix);

struct rule_span rule_index_by_uid(const struct rule_index *ix, uint32_t uid);
struct rule_span rule_index_by_gid(const struct rule_index *ix, uint32_t gid);
/*
 * Fill spans[] with every rule of ix that might match d on the device side; returns the
 * number of spans.  A rule may appear in several spans.
 */
size_t rule_index_device_spans(const struct rule_index *ix, const struct policy_device *d,
			       struct rule_span spans[static RULE_INDEX_DEVICE_SPANS]);
