/* SPDX-License-Identifier: MIT */
/*
 * list's reply, serialised once and sent again while nothing it shows has
 * changed (issues 13.7 and 16.4: a list of 4,096 groups is 0.8 MB of JSON).
 *
 * What a list shows depends on the inventory (groups, members, drivers, lease
 * paths), the policy (whether the caller may lease each group), the lease
 * table (which groups are held, by which uid and pid), the quarantine mode,
 * and the caller: policy decides per caller, and only administrators and the
 * holder's own uid see a holder's pid. A serialisation is kept with all of
 * these as its key: the three generations (inventory_generation,
 * policy_store_generation, lease_table_generation), the mode, and the
 * caller's view (admin, and every field of its struct policy_caller). It is
 * used only when every one of them is equal, and dropped as soon as a
 * generation moved past it. A few views are kept (LIST_CACHE_VIEWS), the
 * least recently used going first.
 */
#pragma once

#include "policy/policy.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct connection;

#define LIST_CACHE_VIEWS 4

/* What a list's text depends on. caller's pointers are borrowed. */
struct list_cache_key {
	uint64_t inventory, policy, leases; /* the generations */
	const char *quarantine;		    /* "kmod", "none" */
	bool admin;
	const struct policy_caller *caller;
};

/* A list's entries as text, cut into the chunks they are sent in. */
struct list_text {
	char *text; /* the entries of every chunk, a chunk's joined by commas */
	size_t len, size;
	size_t *ends; /* chunk i is text[ends[i - 1] (0 for i = 0) .. ends[i]) */
	size_t n_chunks, chunks_size;
	size_t n_groups;
};

struct list_cache;

int list_cache_new(struct list_cache **ret);
struct list_cache *list_cache_free(struct list_cache *lc);

/* The text kept for key, or NULL; texts of older generations are dropped on the way. */
const struct list_text *list_cache_find(struct list_cache *lc, const struct list_cache_key *key);
/*
 * Keep lt (taken, whatever the result) as the text of key, in place of the
 * least recently used view when all are taken. -ENOMEM: not kept.
 */
int list_cache_put(struct list_cache *lc, const struct list_cache_key *key, struct list_text *lt);

/* Append one entry (vb_group_info_write's text), starting a chunk when it would not fit. */
int list_text_add(struct list_text *lt, const char *entry, size_t len);
void list_text_done(struct list_text *lt);
struct list_text *list_text_free(struct list_text *lt);
static inline void list_text_freep(struct list_text **lt)
{
	list_text_free(*lt);
}
#define _cleanup_list_text_ __attribute__((cleanup(list_text_freep)))

/*
 * Send lt as the packets of list reply id naming quarantine, one per chunk
 * (one with no groups when lt has none). Returns how many were sent or
 * queued; stops at the first that could not be (the connection is closing).
 */
size_t list_text_send(const struct list_text *lt, struct connection *c, uint32_t id,
		      const char *quarantine);
