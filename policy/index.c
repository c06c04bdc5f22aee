/* SPDX-License-Identifier: MIT */
/* Rule lookup tables: caller ids in sorted rows, device entries in a tuple-space hash table. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "policy/index.h"

struct id_pair {
	uint32_t key;
	uint32_t rule;
};

static int compare_id_pair(const void *a, const void *b)
{
	const struct id_pair *x = a, *y = b;

	if (x->key != y->key)
		return x->key < y->key ? -1 : 1;
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

/* ---- device side: shapes and keys ----------------------------------------------------- */

/*
 * A shape, as a number: which exact conditions an entry implies.  Address: the first
 * SHAPE_ADDRESS_PREFIX bytes are fixed, and the address is exactly (or, with
 * SHAPE_ADDRESS_AT_LEAST, at least) SHAPE_ADDRESS_LENGTH bytes long.  Class: the first
 * SHAPE_CLASS_DIGITS hex digits are fixed.
 */
enum {
	SHAPE_VENDOR = 1u << 0,
	SHAPE_DEVICE = 1u << 1,
	SHAPE_IOMMU_GROUP = 1u << 2,
	SHAPE_CLASS = 1u << 3,
	SHAPE_ADDRESS = 1u << 4,
	SHAPE_ADDRESS_AT_LEAST = 1u << 5,
};
#define SHAPE_CLASS_DIGITS(s)	 (((s) >> 8) & 0xf)
#define SHAPE_ADDRESS_PREFIX(s)	 (((s) >> 12) & 0xff)
#define SHAPE_ADDRESS_LENGTH(s)	 (((s) >> 20) & 0xff)
#define SHAPE_MAKE_CLASS(k)	 ((uint32_t)(k) << 8)
#define SHAPE_MAKE_ADDRESS(l, n) ((uint32_t)(l) << 12 | (uint32_t)(n) << 20)

static bool is_lower_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

static unsigned hex_value(char c)
{
	return c <= '9' ? (unsigned)(c - '0') : (unsigned)(c - 'a' + 10);
}

/*
 * What a class condition implies about the 6 hex digits of a class: *digits fixed leading
 * digits of value *prefix.  False if no class can match (a literal run longer than the
 * class, or a fixed length other than 6).  A glob of leading digits, then '?'s, then
 * nothing or only '*'s is equivalent to its prefix; anything else ("0[23]*") only implies
 * its leading digits, and the rest is checked on the candidates.
 */
static bool class_reduce(const struct devmatch *m, unsigned *digits, uint32_t *prefix)
{
	const char *t = m->class_glob.text;
	size_t k = 0, q = 0;

	if (!m->class_glob.wild) {
		*digits = 6;
		*prefix = m->class;
		return true;
	}
	while (is_lower_hex(t[k]))
		k++;
	if (k > 6)
		return false;
	while (t[k + q] == '?')
		q++;
	*digits = (unsigned)k;
	*prefix = 0;
	for (size_t i = 0; i < k; i++)
		*prefix = *prefix << 4 | hex_value(t[i]);
	if (t[k + q] == '\0')
		return k + q == 6;
	if (t[k + q + strspn(t + k + q, "*")] == '\0')
		return k + q <= 6;
	return true; /* a residual glob: only the leading digits are certain */
}

/*
 * What an address condition implies: the first *fixed bytes (up to the first glob
 * character) are the pattern's, and the address is *length bytes long, or at least that
 * with *at_least.  Like class_reduce(), leading '?'s and trailing '*'s are exact; the rest
 * of any other glob is checked on the candidates.
 */
static void address_reduce(const struct devmatch *m, size_t *fixed, size_t *length, bool *at_least)
{
	const char *t = m->address.text;
	size_t l = strcspn(t, "*?[\\"), q = 0;

	*fixed = *length = l;
	*at_least = true;
	if (l > RULE_INDEX_MAX_ADDRESS_PREFIX) { /* the parser allows 64 bytes: cannot happen */
		*fixed = *length = RULE_INDEX_MAX_ADDRESS_PREFIX;
		return;
	}
	while (t[l + q] == '?')
		q++;
	if (t[l + q] == '\0') {
		*length = l + q;
		*at_least = false;
	} else if (t[l + q + strspn(t + l + q, "*")] == '\0') {
		*length = l + q;
	}
}

static uint64_t hash_mix(uint64_t h, uint64_t v)
{
	h ^= v + UINT64_C(0x9e3779b97f4a7c15) + (h << 6) + (h >> 2);
	return h;
}

static uint64_t hash_finish(uint64_t h)
{
	h ^= h >> 30;
	h *= UINT64_C(0xbf58476d1ce4e5b9);
	h ^= h >> 27;
	h *= UINT64_C(0x94d049bb133111eb);
	return h ^ (h >> 31);
}

/* FNV-1a over bytes, step by step, so that every prefix has its hash. */
#define PREFIX_HASH_SEED  UINT64_C(0xcbf29ce484222325)
#define PREFIX_HASH_PRIME UINT64_C(0x100000001b3)

static uint64_t prefix_hash(const char *s, size_t n)
{
	uint64_t h = PREFIX_HASH_SEED;

	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)s[i]) * PREFIX_HASH_PRIME;
	return h;
}

/* The key values of one shape; both filing and lookup go through here. */
static uint64_t key_hash(uint32_t shape, uint16_t vendor, uint16_t device, uint32_t group,
			 uint32_t class_prefix, uint64_t address_prefix)
{
	uint64_t h = shape;

	if (shape & SHAPE_VENDOR)
		h = hash_mix(h, vendor);
	if (shape & SHAPE_DEVICE)
		h = hash_mix(h, device);
	if (shape & SHAPE_IOMMU_GROUP)
		h = hash_mix(h, group);
	if (shape & SHAPE_CLASS)
		h = hash_mix(h, class_prefix);
	if (shape & SHAPE_ADDRESS)
		h = hash_mix(h, address_prefix);
	return hash_finish(h);
}

/* The shape and key of one entry; false if the entry can match no device at all. */
static bool devmatch_key(const struct devmatch *m, uint32_t *ret_shape, uint64_t *ret_hash)
{
	uint32_t shape = 0, class_prefix = 0;
	uint64_t address_prefix = 0;

	if (m->keys & DEVMATCH_VENDOR)
		shape |= SHAPE_VENDOR;
	if (m->keys & DEVMATCH_DEVICE)
		shape |= SHAPE_DEVICE;
	if (m->keys & DEVMATCH_IOMMU_GROUP)
		shape |= SHAPE_IOMMU_GROUP;
	if (m->keys & DEVMATCH_CLASS) {
		unsigned digits;

		if (!class_reduce(m, &digits, &class_prefix))
			return false;
		if (digits > 0)
			shape |= SHAPE_CLASS | SHAPE_MAKE_CLASS(digits);
	}
	if (m->keys & DEVMATCH_ADDRESS) {
		size_t fixed, length;
		bool at_least;

		address_reduce(m, &fixed, &length, &at_least);
		if (length > 0 || !at_least) {
			shape |= SHAPE_ADDRESS | SHAPE_MAKE_ADDRESS(fixed, length);
			if (at_least)
				shape |= SHAPE_ADDRESS_AT_LEAST;
			address_prefix = prefix_hash(m->address.text, fixed);
		}
	}
	*ret_shape = shape;
	*ret_hash = key_hash(shape, m->vendor, m->device, (uint32_t)m->iommu_group, class_prefix,
			     address_prefix);
	return true;
}

void device_probe_init(struct device_probe *probe, const struct policy_device *d)
{
	uint64_t h = PREFIX_HASH_SEED;
	size_t n = strlen(d->address);

	probe->device = d;
	probe->address_len = n;
	probe->prefix_hash[0] = h;
	for (size_t i = 0; i < n && i < RULE_INDEX_MAX_ADDRESS_PREFIX; i++) {
		h = (h ^ (unsigned char)d->address[i]) * PREFIX_HASH_PRIME;
		probe->prefix_hash[i + 1] = h;
	}
}

static struct rule_span device_table_lookup(const struct device_table *t, uint64_t hash)
{
	for (size_t i = hash & t->mask;; i = (i + 1) & t->mask) {
		const struct device_slot *s = &t->slots[i];

		if (s->n == 0)
			return (struct rule_span){NULL, 0};
		if (s->hash == hash)
			return (struct rule_span){t->rules + s->start, s->n};
	}
}

size_t rule_index_device_shapes(const struct rule_index *ix, const struct device_probe *probe)
{
	size_t lo = 0, hi = ix->n_shapes;

	/* bits 20-27, the address length, are the highest a shape uses: shapes sort by it */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (SHAPE_ADDRESS_LENGTH(ix->shapes[mid]) <= probe->address_len)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

struct rule_span rule_index_device_span(const struct rule_index *ix,
					const struct device_probe *probe, size_t shape_index)
{
	const struct policy_device *d = probe->device;
	uint32_t shape = ix->shapes[shape_index], class_prefix = 0;
	uint64_t address_prefix = 0;

	if ((shape & SHAPE_IOMMU_GROUP) && d->iommu_group < 0)
		return (struct rule_span){NULL, 0};
	if (shape & SHAPE_CLASS)
		class_prefix = (d->class & 0xffffff) >> (4 * (6 - SHAPE_CLASS_DIGITS(shape)));
	if (shape & SHAPE_ADDRESS) {
		size_t length = SHAPE_ADDRESS_LENGTH(shape);

		if ((shape & SHAPE_ADDRESS_AT_LEAST) ? probe->address_len < length
						     : probe->address_len != length)
			return (struct rule_span){NULL, 0};
		address_prefix = probe->prefix_hash[SHAPE_ADDRESS_PREFIX(shape)];
	}
	return device_table_lookup(&ix->by_device,
				   key_hash(shape, d->vendor, d->device, (uint32_t)d->iommu_group,
					    class_prefix, address_prefix));
}

/* ---- building ------------------------------------------------------------------------- */

struct device_pair {
	uint64_t hash;
	uint32_t shape;
	uint32_t rule;
};

static int compare_device_pair(const void *a, const void *b)
{
	const struct device_pair *x = a, *y = b;

	if (x->hash != y->hash)
		return x->hash < y->hash ? -1 : 1;
	return x->rule < y->rule ? -1 : x->rule > y->rule;
}

static int compare_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* Sort and deduplicate pairs, collect the shapes, and lay the rows out in a hash table. */
static int device_table_fill(struct rule_index *ix, struct device_pair *pairs, size_t n)
{
	struct device_table *t = &ix->by_device;
	size_t m = 0, rows = 0, size = 1;

	qsort(pairs, n, sizeof(*pairs), compare_device_pair);
	for (size_t i = 0; i < n; i++)
		if (m == 0 || pairs[m - 1].hash != pairs[i].hash ||
		    pairs[m - 1].rule != pairs[i].rule)
			pairs[m++] = pairs[i];
	for (size_t i = 0; i < m; i++)
		if (i == 0 || pairs[i - 1].hash != pairs[i].hash)
			rows++;
	while (size < 2 * rows)
		size *= 2;
	ix->shapes = calloc(m ? m : 1, sizeof(*ix->shapes));
	t->slots = calloc(size, sizeof(*t->slots));
	t->rules = calloc(m ? m : 1, sizeof(*t->rules));
	if (!ix->shapes || !t->slots || !t->rules)
		return -ENOMEM;
	t->mask = size - 1;

	for (size_t i = 0; i < m; i++)
		ix->shapes[i] = pairs[i].shape;
	qsort(ix->shapes, m, sizeof(*ix->shapes), compare_u32);
	for (size_t i = 0; i < m; i++)
		if (ix->n_shapes == 0 || ix->shapes[ix->n_shapes - 1] != ix->shapes[i])
			ix->shapes[ix->n_shapes++] = ix->shapes[i];

	for (size_t i = 0, end; i < m; i = end) {
		size_t slot = pairs[i].hash & t->mask;

		for (end = i; end < m && pairs[end].hash == pairs[i].hash; end++)
			t->rules[end] = pairs[end].rule;
		while (t->slots[slot].n)
			slot = (slot + 1) & t->mask;
		t->slots[slot] =
			(struct device_slot){pairs[i].hash, (uint32_t)i, (uint32_t)(end - i)};
	}
	return 0;
}

struct index_builder {
	struct id_pair *uids, *gids;
	size_t n_uids, n_gids;
	struct device_pair *devices;
	size_t n_devices;
};

static void index_builder_free(struct index_builder *b)
{
	free(b->uids);
	free(b->gids);
	free(b->devices);
}

/* Count (fill == false) or record (fill == true) the pairs of every rule of the index. */
static void index_builder_walk(struct index_builder *b, const struct rule *rules, size_t n_rules,
			       bool deny, unsigned action, bool fill)
{
	for (size_t i = 0; i < n_rules; i++) {
		const struct rule *rule = &rules[i];

		if (rule->deny != deny || !(rule->actions & action))
			continue;
		for (size_t j = 0; j < rule->n_uids; j++, b->n_uids++)
			if (fill)
				b->uids[b->n_uids] = (struct id_pair){rule->uids[j], (uint32_t)i};
		for (size_t j = 0; j < rule->n_gids; j++, b->n_gids++)
			if (fill)
				b->gids[b->n_gids] = (struct id_pair){rule->gids[j], (uint32_t)i};
		for (size_t j = 0; j < rule->n_devices; j++) {
			uint32_t shape;
			uint64_t hash;

			if (!devmatch_key(&rule->devices[j], &shape, &hash))
				continue;
			if (fill)
				b->devices[b->n_devices] =
					(struct device_pair){hash, shape, (uint32_t)i};
			b->n_devices++;
		}
	}
}

int rule_index_build(struct rule_index *ix, const struct rule *rules, size_t n_rules, bool deny,
		     unsigned action)
{
	struct index_builder b = {0};
	int r = -ENOMEM;

	memset(ix, 0, sizeof(*ix));
	/* Two passes: count, allocate exactly, fill. */
	index_builder_walk(&b, rules, n_rules, deny, action, false);
	b.uids = calloc(b.n_uids ? b.n_uids : 1, sizeof(*b.uids));
	b.gids = calloc(b.n_gids ? b.n_gids : 1, sizeof(*b.gids));
	b.devices = calloc(b.n_devices ? b.n_devices : 1, sizeof(*b.devices));
	if (!b.uids || !b.gids || !b.devices)
		goto out;
	b.n_uids = b.n_gids = b.n_devices = 0;
	index_builder_walk(&b, rules, n_rules, deny, action, true);

	r = id_table_fill(&ix->by_uid, b.uids, b.n_uids);
	if (r >= 0)
		r = id_table_fill(&ix->by_gid, b.gids, b.n_gids);
	if (r >= 0)
		r = device_table_fill(ix, b.devices, b.n_devices);
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
	free(ix->shapes);
	free(ix->by_device.slots);
	free(ix->by_device.rules);
	memset(ix, 0, sizeof(*ix));
}

/* ---- caller side ---------------------------------------------------------------------- */

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
