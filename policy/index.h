/* SPDX-License-Identifier: MIT */
/*
 * Lookup tables built at load time so that a decision looks at the few rules that can
 * possibly match instead of all of them.  One index covers the rules of one effect (allow
 * or deny) that apply to one action.  Each lookup yields a span of rule numbers in
 * ascending (precedence) order.
 *
 * Caller side: rules by uid and by gid.
 *
 * Device side: tuple space search (as packet classifiers do it).  Every device entry is
 * reduced to the exact conditions it implies: vendor, device, iommu group, a class prefix
 * and an address prefix (with the length the rest of the glob requires).  Which of those
 * an entry has, and the prefix lengths, are its "shape"; the values are its key.  Entries
 * are filed in one hash table under (shape, key).  A device is looked up once per distinct
 * shape of the index, so the cost of a lookup depends on how many shapes the policy uses,
 * not on how many rules it has.  What an entry's shape leaves out (the rest of a glob such
 * as "0[23]*" or "*.0") is checked on the candidates, as are caller and action.
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

/* One row of the device table: the rules filed under one key hash. */
struct device_slot {
	uint64_t hash;
	uint32_t start;
	uint32_t n; /* 0: empty slot */
};

/*
 * Open addressing over key hashes.  Two keys with one hash share a row: the row is then a
 * superset of each key's rules, which is harmless because candidates are checked in full.
 */
struct device_table {
	struct device_slot *slots;
	size_t mask; /* slots: mask + 1, a power of two */
	uint32_t *rules;
};

struct rule_index {
	struct id_table by_uid;
	struct id_table by_gid;
	uint32_t *shapes; /* the distinct shapes of the filed entries, ascending */
	size_t n_shapes;
	struct device_table by_device;
};

/* The longest address prefix the device side indexes; longer literal runs are cut here. */
#define RULE_INDEX_MAX_ADDRESS_PREFIX 64

/* A device as the device side looks it up: computed once per device and decision. */
struct device_probe {
	const struct policy_device *device;
	size_t address_len;
	/* prefix_hash[l]: hash of the first l bytes of the address, l <= min(len, MAX) */
	uint64_t prefix_hash[RULE_INDEX_MAX_ADDRESS_PREFIX + 1];
};

void device_probe_init(struct device_probe *probe, const struct policy_device *d);

/*
 * Build the index of the rules[i] with rules[i].deny == deny whose actions include action
 * (one bit).  Returns 0 or -ENOMEM; on failure ix holds only what rule_index_done() frees.
 */
int rule_index_build(struct rule_index *ix, const struct rule *rules, size_t n_rules, bool deny,
		     unsigned action);
/* Free the tables.  Accepts NULL. */
void rule_index_done(struct rule_index *ix);

struct rule_span rule_index_by_uid(const struct rule_index *ix, uint32_t uid);
struct rule_span rule_index_by_gid(const struct rule_index *ix, uint32_t gid);
/*
 * How many of ix->shapes[] the probed device can have: shapes are sorted by the address
 * length they need, so those needing a longer address than the device's come last and
 * are not counted.
 */
size_t rule_index_device_shapes(const struct rule_index *ix, const struct device_probe *probe);
/*
 * The rules filed under ix->shapes[shape] that might match the probed device (empty when
 * the device cannot have that shape, e.g. no iommu group).  Together, the spans of every
 * shape hold every rule of ix that matches the device; a rule may appear in several.
 */
struct rule_span rule_index_device_span(const struct rule_index *ix,
					const struct device_probe *probe, size_t shape);
