/* SPDX-License-Identifier: MIT */
/* Rule lookup tables: sorted (key, rule) pairs compressed into rows. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "policy/index.h"

struct id_pair {
	uint32_t key;
	uint32_t rule;
};

struct address_pair {
	const char *key;
	uint32_t rule;
};

static int compare_id_pair(const void *a, const void *b)
{
	const struct id_pair *x = a, *y = b;

	if (x->key != y->key)
		return x->key < y->key ? -1 : 1;
	return x->rule < y->rule ? -1 : x->rule > y->rule;
}

static int compare_address_pair(const void *a, const void *b)
{
	const struct address_pair *x = a, *y = b;
	int c = strcmp(x->key, y->key);

	if (c)
		return c;
	return x->rule < y->rule ? -1 : x->rule > y->rule;
}

/* Sort, drop duplicate pairs, and lay the pairs out as rows.  Frees nothing of pairs. */
static int id_table_fill(struct id_table *t, struct id_pair *pairs, size_t n)
{
	size_t m = 0, k = 0;

	qsort(pairs, n, sizeof(*pairs), compare_id_pair);
	for (size_t i = 0; i < n; i++)
		if (m == 0 || pairs[m - 1].key != pairs[i].key ||
		    pairs[m - 1].rule != pairs[i].rule)
			pairs[m++] = pairs[i];
	for (size_t i = 0; i < m; i++)
		if (i == 0 || pairs[i - 1].key != pairs[i].key)
			k++;
	t->keys = calloc(k ? k : 1, sizeof(*t->keys));
	t->starts = calloc(k + 1, sizeof(*t->starts));
	t->rules = calloc(m ? m : 1, sizeof(*t->rules));
	if (!t->keys || !t->starts || !t->rules)
		return -ENOMEM;
	k = 0;
	for (size_t i = 0; i < m; i++) {
		if (i == 0 || pairs[i - 1].key != pairs[i].key) {
			t->keys[k] = pairs[i].key;
			t->starts[k++] = i;
		}
		t->rules[i] = pairs[i].rule;
	}
	t->starts[k] = m;
	t->n_keys = k;
	return 0;
}

static int address_table_fill(struct address_table *t, struct address_pair *pairs, size_t n)
{
	size_t m = 0, k = 0;

	qsort(pairs, n, sizeof(*pairs), compare_address_pair);
	for (size_t i = 0; i < n; i++)
		if (m == 0 || compare_address_pair(&pairs[m - 1], &pairs[i]) != 0)
			pairs[m++] = pairs[i];
	for (size_t i = 0; i < m; i++)
		if (i == 0 || strcmp(pairs[i - 1].key, pairs[i].key) != 0)
			k++;
	t->keys = calloc(k ? k : 1, sizeof(*t->keys));
	t->starts = calloc(k + 1, sizeof(*t->starts));
	t->rules = calloc(m ? m : 1, sizeof(*t->rules));
	if (!t->keys || !t->starts || !t->rules)
		return -ENOMEM;
	k = 0;
	for (size_t i = 0; i < m; i++) {
		if (i == 0 || strcmp(pairs[i - 1].key, pairs[i].key) != 0) {
			t->keys[k] = pairs[i].key;
			t->starts[k++] = i;
		}
		t->rules[i] = pairs[i].rule;
	}
	t->starts[k] = m;
	t->n_keys = k;
	return 0;
}

/* Which device-side table a device entry is filed under; see struct rule_index. */
enum device_slot {
	SLOT_ADDRESS,
	SLOT_IOMMU_GROUP,
	SLOT_VENDOR_DEVICE,
	SLOT_VENDOR,
	SLOT_CLASS,
	SLOT_GENERIC,
	_SLOT_MAX,
};

static enum device_slot devmatch_slot(const struct devmatch *m, uint32_t *key)
{
	if ((m->keys & DEVMATCH_ADDRESS) && !m->address.wild)
		return SLOT_ADDRESS;
	if (m->keys & DEVMATCH_IOMMU_GROUP) {
		*key = (uint32_t)m->iommu_group;
		return SLOT_IOMMU_GROUP;
	}
	if ((m->keys & DEVMATCH_VENDOR) && (m->keys & DEVMATCH_DEVICE)) {
		*key = (uint32_t)m->vendor << 16 | m->device;
		return SLOT_VENDOR_DEVICE;
	}
	if (m->keys & DEVMATCH_VENDOR) {
		*key = m->vendor;
		return SLOT_VENDOR;
	}
	if ((m->keys & DEVMATCH_CLASS) && !m->class_glob.wild) {
		*key = m->class;
		return SLOT_CLASS;
	}
	return SLOT_GENERIC;
}

struct index_builder {
	struct id_pair *ids[_SLOT_MAX]; /* SLOT_ADDRESS and SLOT_GENERIC unused */
	size_t n_ids[_SLOT_MAX];
	struct address_pair *addrs;
	size_t n_addrs;
	struct id_pair *uids, *gids;
	size_t n_uids, n_gids;
};

static void index_builder_free(struct index_builder *b)
{
	for (size_t i = 0; i < _SLOT_MAX; i++)
		free(b->ids[i]);
	free(b->addrs);
	free(b->uids);
	free(b->gids);
}

/* Count (fill == false) or record (fill == true) the pairs of every rule of the effect. */
static void index_builder_walk(struct index_builder *b, struct rule_index *ix,
			       const struct rule *rules, size_t n_rules, bool deny, bool fill)
{
	for (size_t i = 0; i < n_rules; i++) {
		const struct rule *rule = &rules[i];
		bool generic = false;

		if (rule->deny != deny)
			continue;
		for (size_t j = 0; j < rule->n_uids; j++, b->n_uids++)
			if (fill)
				b->uids[b->n_uids] = (struct id_pair){rule->uids[j], (uint32_t)i};
		for (size_t j = 0; j < rule->n_gids; j++, b->n_gids++)
			if (fill)
				b->gids[b->n_gids] = (struct id_pair){rule->gids[j], (uint32_t)i};
		for (size_t j = 0; j < rule->n_devices; j++) {
			uint32_t key = 0;
			enum device_slot slot = devmatch_slot(&rule->devices[j], &key);

			if (slot == SLOT_GENERIC) {
				generic = true;
			} else if (slot == SLOT_ADDRESS) {
				if (fill)
					b->addrs[b->n_addrs] = (struct address_pair){
						rule->devices[j].address.text, (uint32_t)i};
				b->n_addrs++;
			} else {
				if (fill)
					b->ids[slot][b->n_ids[slot]] =
						(struct id_pair){key, (uint32_t)i};
				b->n_ids[slot]++;
			}
		}
		if (generic) {
			if (fill)
				ix->generic[ix->n_generic] = (uint32_t)i;
			ix->n_generic++;
		}
	}
}

int rule_index_build(struct rule_index *ix, const struct rule *rules, size_t n_rules, bool deny)
{
	struct index_builder b = {0};
	int r = -ENOMEM;

	memset(ix, 0, sizeof(*ix));
	/* Two passes: count, allocate exactly, fill. */
	index_builder_walk(&b, ix, rules, n_rules, deny, false);
	for (size_t i = 0; i < _SLOT_MAX; i++) {
		b.ids[i] = calloc(b.n_ids[i] ? b.n_ids[i] : 1, sizeof(*b.ids[i]));
		if (!b.ids[i])
			goto out;
		b.n_ids[i] = 0;
	}
	b.addrs = calloc(b.n_addrs ? b.n_addrs : 1, sizeof(*b.addrs));
	b.uids = calloc(b.n_uids ? b.n_uids : 1, sizeof(*b.uids));
	b.gids = calloc(b.n_gids ? b.n_gids : 1, sizeof(*b.gids));
	ix->generic = calloc(ix->n_generic ? ix->n_generic : 1, sizeof(*ix->generic));
	if (!b.addrs || !b.uids || !b.gids || !ix->generic)
		goto out;
	b.n_addrs = b.n_uids = b.n_gids = 0;
	ix->n_generic = 0;
	index_builder_walk(&b, ix, rules, n_rules, deny, true);

	r = id_table_fill(&ix->by_uid, b.uids, b.n_uids);
	if (r >= 0)
		r = id_table_fill(&ix->by_gid, b.gids, b.n_gids);
	if (r >= 0)
		r = address_table_fill(&ix->by_address, b.addrs, b.n_addrs);
	if (r >= 0)
		r = id_table_fill(&ix->by_iommu_group, b.ids[SLOT_IOMMU_GROUP],
				  b.n_ids[SLOT_IOMMU_GROUP]);
	if (r >= 0)
		r = id_table_fill(&ix->by_vendor_device, b.ids[SLOT_VENDOR_DEVICE],
				  b.n_ids[SLOT_VENDOR_DEVICE]);
	if (r >= 0)
		r = id_table_fill(&ix->by_vendor, b.ids[SLOT_VENDOR], b.n_ids[SLOT_VENDOR]);
	if (r >= 0)
		r = id_table_fill(&ix->by_class, b.ids[SLOT_CLASS], b.n_ids[SLOT_CLASS]);
out:
	index_builder_free(&b);
	return r;
}

static void id_table_done(struct id_table *t)
{
	free(t->keys);
	free(t->starts);
	free(t->rules);
}

void rule_index_done(struct rule_index *ix)
{
	if (!ix)
		return;
	id_table_done(&ix->by_uid);
	id_table_done(&ix->by_gid);
	free(ix->by_address.keys);
	free(ix->by_address.starts);
	free(ix->by_address.rules);
	id_table_done(&ix->by_iommu_group);
	id_table_done(&ix->by_vendor_device);
	id_table_done(&ix->by_vendor);
	id_table_done(&ix->by_class);
	free(ix->generic);
	memset(ix, 0, sizeof(*ix));
}

static struct rule_span id_table_lookup(const struct id_table *t, uint32_t key)
{
	size_t lo = 0, hi = t->n_keys;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (t->keys[mid] == key)
			return (struct rule_span){t->rules + t->starts[mid],
						  t->starts[mid + 1] - t->starts[mid]};
		if (t->keys[mid] < key)
			lo = mid + 1;
		else
			hi = mid;
	}
	return (struct rule_span){NULL, 0};
}

struct rule_span rule_index_by_uid(const struct rule_index *ix, uint32_t uid)
{
	return id_table_lookup(&ix->by_uid, uid);
}

struct rule_span rule_index_by_gid(const struct rule_index *ix, uint32_t gid)
{
	return id_table_lookup(&ix->by_gid, gid);
}

static struct rule_span address_table_lookup(const struct address_table *t, const char *address)
{
	size_t lo = 0, hi = t->n_keys;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(t->keys[mid], address);

		if (c == 0)
			return (struct rule_span){t->rules + t->starts[mid],
						  t->starts[mid + 1] - t->starts[mid]};
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return (struct rule_span){NULL, 0};
}

size_t rule_index_device_spans(const struct rule_index *ix, const struct policy_device *d,
			       struct rule_span spans[static RULE_INDEX_DEVICE_SPANS])
{
	size_t n = 0;

	spans[n++] = address_table_lookup(&ix->by_address, d->address);
	if (d->iommu_group >= 0)
		spans[n++] = id_table_lookup(&ix->by_iommu_group, (uint32_t)d->iommu_group);
	spans[n++] = id_table_lookup(&ix->by_vendor_device, (uint32_t)d->vendor << 16 | d->device);
	spans[n++] = id_table_lookup(&ix->by_vendor, d->vendor);
	spans[n++] = id_table_lookup(&ix->by_class, d->class & 0xffffff);
	spans[n++] = (struct rule_span){ix->generic, ix->n_generic};
	return n;
}
