/* SPDX-License-Identifier: MIT */
#include "broker/list_cache.h"
#include "broker/connection.h"
#include "broker/log.h"
#include "protocol/reply.h"
#include "protocol/wire.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Room left in a packet for the envelope around a chunk of entries, as reply.c leaves. */
#define LIST_CHUNK_BUDGET (VB_MAX_PACKET_SIZE - 1024)

/* One kept view: a copy of its key and its text. */
struct list_cache_view {
	bool used;
	uint64_t inventory, policy, leases;
	const char *quarantine; /* a static string of kmod_mode_to_string */
	bool admin;
	uid_t uid;
	gid_t gid;
	gid_t *groups;
	size_t n_groups;
	char *cgroup, *unit;
	uint64_t last_use;
	struct list_text *text;
};

struct list_cache {
	struct list_cache_view views[LIST_CACHE_VIEWS];
	uint64_t uses;
};

static void list_cache_view_done(struct list_cache_view *v)
{
	free(v->groups);
	free(v->cgroup);
	free(v->unit);
	list_text_free(v->text);
	*v = (struct list_cache_view){0};
}

int list_cache_new(struct list_cache **ret)
{
	struct list_cache *lc = calloc(1, sizeof(*lc));

	if (!lc)
		return -ENOMEM;
	*ret = lc;
	return 0;
}

struct list_cache *list_cache_free(struct list_cache *lc)
{
	if (!lc)
		return NULL;
	for (size_t i = 0; i < LIST_CACHE_VIEWS; i++)
		list_cache_view_done(&lc->views[i]);
	free(lc);
	return NULL;
}

static bool str_equal(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

/* Whether v was kept for caller's view (the generations aside). */
static bool view_matches(const struct list_cache_view *v, const struct list_cache_key *key)
{
	const struct policy_caller *c = key->caller;

	return v->admin == key->admin && v->uid == c->uid && v->gid == c->gid &&
	       v->n_groups == c->n_groups &&
	       (c->n_groups == 0 ||
		memcmp(v->groups, c->groups, c->n_groups * sizeof(gid_t)) == 0) &&
	       str_equal(v->cgroup, c->cgroup) && str_equal(v->unit, c->unit) &&
	       str_equal(v->quarantine, key->quarantine);
}

const struct list_text *list_cache_find(struct list_cache *lc, const struct list_cache_key *key)
{
	struct list_cache_view *hit = NULL;

	for (size_t i = 0; i < LIST_CACHE_VIEWS; i++) {
		struct list_cache_view *v = &lc->views[i];

		if (!v->used)
			continue;
		/* Generations only grow: a text of another one will never be sent again. */
		if (v->inventory != key->inventory || v->policy != key->policy ||
		    v->leases != key->leases) {
			list_cache_view_done(v);
			continue;
		}
		if (!hit && view_matches(v, key))
			hit = v;
	}
	if (!hit)
		return NULL;
	hit->last_use = ++lc->uses;
	return hit->text;
}

static char *strdup_or_null(const char *s, bool *failed)
{
	char *copy;

	if (!s)
		return NULL;
	copy = strdup(s);
	if (!copy)
		*failed = true;
	return copy;
}

int list_cache_put(struct list_cache *lc, const struct list_cache_key *key, struct list_text *lt)
{
	const struct policy_caller *c = key->caller;
	struct list_cache_view *slot = &lc->views[0];
	bool failed = false;

	for (size_t i = 0; i < LIST_CACHE_VIEWS; i++) {
		struct list_cache_view *v = &lc->views[i];

		if (!v->used) {
			slot = v;
			break;
		}
		if (v->last_use < slot->last_use)
			slot = v;
	}
	list_cache_view_done(slot);
	*slot = (struct list_cache_view){
		.inventory = key->inventory,
		.policy = key->policy,
		.leases = key->leases,
		.quarantine = key->quarantine,
		.admin = key->admin,
		.uid = c->uid,
		.gid = c->gid,
		.n_groups = c->n_groups,
		.last_use = ++lc->uses,
	};
	if (c->n_groups > 0) {
		slot->groups = malloc(c->n_groups * sizeof(gid_t));
		if (slot->groups)
			memcpy(slot->groups, c->groups, c->n_groups * sizeof(gid_t));
		else
			failed = true;
	}
	slot->cgroup = strdup_or_null(c->cgroup, &failed);
	slot->unit = strdup_or_null(c->unit, &failed);
	slot->text = lt;
	if (failed) {
		list_cache_view_done(slot);
		return -ENOMEM;
	}
	slot->used = true;
	return 0;
}

/* Room for n more bytes of text and one more chunk end. */
static int list_text_reserve(struct list_text *lt, size_t n)
{
	if (lt->len + n > lt->size) {
		size_t size = lt->size ? lt->size : 64 * 1024;
		char *bigger;

		while (size < lt->len + n)
			size *= 2;
		bigger = realloc(lt->text, size);
		if (!bigger)
			return -ENOMEM;
		lt->text = bigger;
		lt->size = size;
	}
	if (lt->n_chunks + 1 >= lt->chunks_size) {
		size_t size = lt->chunks_size ? 2 * lt->chunks_size : 16;
		size_t *bigger = reallocarray(lt->ends, size, sizeof(*bigger));

		if (!bigger)
			return -ENOMEM;
		lt->ends = bigger;
		lt->chunks_size = size;
	}
	return 0;
}

/*
 * The chunk being filled is text[start .. len), its end not recorded yet:
 * ends[n_chunks] is written when the next chunk starts, and by
 * list_text_send for the last.
 */
static size_t list_text_open_start(const struct list_text *lt)
{
	return lt->n_chunks ? lt->ends[lt->n_chunks - 1] : 0;
}

int list_text_add(struct list_text *lt, const char *entry, size_t len)
{
	size_t start = list_text_open_start(lt);
	bool empty = lt->len == start;
	int r;

	r = list_text_reserve(lt, len + 1);
	if (r < 0)
		return r;
	/* Each entry counted with its comma, as reply.c's chunker counts. */
	if (!empty && lt->len - start + 1 + len + 1 > LIST_CHUNK_BUDGET) {
		lt->ends[lt->n_chunks++] = lt->len;
		empty = true;
	}
	if (!empty)
		lt->text[lt->len++] = ',';
	memcpy(lt->text + lt->len, entry, len);
	lt->len += len;
	lt->n_groups++;
	return 0;
}

void list_text_done(struct list_text *lt)
{
	free(lt->text);
	free(lt->ends);
	*lt = (struct list_text){0};
}

struct list_text *list_text_free(struct list_text *lt)
{
	if (lt) {
		list_text_done(lt);
		free(lt);
	}
	return NULL;
}

size_t list_text_send(const struct list_text *lt, struct connection *c, uint32_t id,
		      const char *quarantine)
{
	/* The broker is single-threaded, and each packet is sent or copied before the next. */
	static char packet[VB_MAX_PACKET_SIZE];
	/* The open chunk (the last) ends at len; none at all is one empty chunk. */
	size_t n = lt->n_chunks + (lt->len > list_text_open_start(lt) || lt->n_groups == 0);
	size_t sent = 0;

	for (size_t i = 0; i < n; i++) {
		size_t start = i ? lt->ends[i - 1] : 0,
		       end = i < lt->n_chunks ? lt->ends[i] : lt->len;
		size_t len;
		int r;

		r = vb_list_chunk_write(id, lt->text ? lt->text + start : "", end - start,
					i + 1 < n, quarantine, packet, sizeof(packet), &len);
		if (r < 0) {
			log_error_errno(r, "Failed to serialise a list chunk: %m");
			break;
		}
		if (connection_send_packet(c, packet, len, NULL, 0) < 0)
			break;
		sent++;
	}
	return sent;
}
