/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of broker/list_cache.c, the kept list serialisations: a text is
 * found again only for the very key it was kept for (each generation, the
 * quarantine mode, admin, and every field of the caller policy decides on),
 * a newer generation drops every older text, the least recently used view
 * goes first when all are taken, and entries are cut into chunks below the
 * packet size the way the reply chunker cuts them.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "broker/list_cache.h"
#include "protocol/wire.h"

static const gid_t groups_a[] = {100, 27};
static const gid_t groups_b[] = {100, 28};

static struct policy_caller caller(void)
{
	return (struct policy_caller){.uid = 2000,
				      .gid = 2000,
				      .groups = groups_a,
				      .n_groups = 2,
				      .cgroup = "/user.slice/user-2000.slice/session-1.scope",
				      .unit = "session-1.scope"};
}

static struct list_text *text_of(const char *entry)
{
	struct list_text *lt = calloc(1, sizeof(*lt));

	ck_assert_ptr_nonnull(lt);
	ck_assert_int_eq(list_text_add(lt, entry, strlen(entry)), 0);
	return lt;
}

START_TEST(test_a_kept_text_is_found_only_for_the_key_it_was_kept_for)
{
	struct policy_caller c = caller(), other;
	struct list_cache_key key = {.inventory = 1,
				     .policy = 1,
				     .leases = 1,
				     .quarantine = "none",
				     .admin = false,
				     .caller = &c},
			      k;
	struct list_cache *lc;
	const struct list_text *found;

	ck_assert_int_eq(list_cache_new(&lc), 0);
	ck_assert_int_eq(list_cache_put(lc, &key, text_of("{\"group\":7}")), 0);
	found = list_cache_find(lc, &key);
	ck_assert_ptr_nonnull(found);
	ck_assert_uint_eq(found->n_groups, 1);

	/* Each field of the view on its own makes it another view. */
	k = key, k.admin = true;
	ck_assert_ptr_null(list_cache_find(lc, &k));
	k = key, k.quarantine = "kmod";
	ck_assert_ptr_null(list_cache_find(lc, &k));
	k = key, k.caller = &other;
	other = c, other.uid = 2001;
	ck_assert_ptr_null(list_cache_find(lc, &k));
	other = c, other.gid = 2001;
	ck_assert_ptr_null(list_cache_find(lc, &k));
	other = c, other.groups = groups_b;
	ck_assert_ptr_null(list_cache_find(lc, &k));
	other = c, other.n_groups = 1;
	ck_assert_ptr_null(list_cache_find(lc, &k));
	other = c, other.cgroup = NULL;
	ck_assert_ptr_null(list_cache_find(lc, &k));
	other = c, other.unit = "qemu-1.scope";
	ck_assert_ptr_null(list_cache_find(lc, &k));
	/* An equal caller in other memory is the same view. */
	other = c, other.cgroup = strdupa(c.cgroup);
	ck_assert_ptr_eq(list_cache_find(lc, &k), found);
	list_cache_free(lc);
}
END_TEST

START_TEST(test_a_newer_generation_drops_every_older_text)
{
	struct policy_caller c = caller();
	struct list_cache_key key = {
		.inventory = 1, .policy = 1, .leases = 1, .quarantine = "none", .caller = &c};
	uint64_t *gens[] = {&key.inventory, &key.policy, &key.leases};
	struct list_cache *lc;

	ck_assert_int_eq(list_cache_new(&lc), 0);
	for (size_t i = 0; i < 3; i++) {
		ck_assert_int_eq(list_cache_put(lc, &key, text_of("{\"group\":7}")), 0);
		ck_assert_ptr_nonnull(list_cache_find(lc, &key));
		(*gens[i])++;
		ck_assert_ptr_null(list_cache_find(lc, &key));
		/* ... and going back finds nothing either: it was dropped, not skipped */
		(*gens[i])--;
		ck_assert_ptr_null(list_cache_find(lc, &key));
		(*gens[i])++;
	}
	list_cache_free(lc);
}
END_TEST

START_TEST(test_the_least_recently_used_view_goes_first)
{
	struct policy_caller c[LIST_CACHE_VIEWS + 1];
	struct list_cache_key key[LIST_CACHE_VIEWS + 1];
	struct list_cache *lc;

	ck_assert_int_eq(list_cache_new(&lc), 0);
	for (size_t i = 0; i <= LIST_CACHE_VIEWS; i++) {
		c[i] = caller();
		c[i].uid = (uid_t)(3000 + i);
		key[i] = (struct list_cache_key){.inventory = 1,
						 .policy = 1,
						 .leases = 1,
						 .quarantine = "none",
						 .caller = &c[i]};
	}
	for (size_t i = 0; i < LIST_CACHE_VIEWS; i++)
		ck_assert_int_eq(list_cache_put(lc, &key[i], text_of("{}")), 0);
	/* View 0 is used again: view 1 is now the least recently used. */
	ck_assert_ptr_nonnull(list_cache_find(lc, &key[0]));
	ck_assert_int_eq(list_cache_put(lc, &key[LIST_CACHE_VIEWS], text_of("{}")), 0);
	ck_assert_ptr_null(list_cache_find(lc, &key[1]));
	ck_assert_ptr_nonnull(list_cache_find(lc, &key[0]));
	for (size_t i = 2; i <= LIST_CACHE_VIEWS; i++)
		ck_assert_ptr_nonnull(list_cache_find(lc, &key[i]));
	list_cache_free(lc);
}
END_TEST

/*
 * Entries fill a chunk up to 63 KiB (1 KiB of the packet left for the
 * envelope), each counted with its comma, as reply.c's chunker counts;
 * the next entry starts a new chunk, with no comma before it.
 */
START_TEST(test_entries_are_cut_into_chunks_below_the_packet_size)
{
	static char entry[1000];
	struct list_text lt = {0};
	const size_t per_chunk = (VB_MAX_PACKET_SIZE - 1024) / (sizeof(entry) + 1);
	const size_t n = 2 * per_chunk + 1;

	memset(entry, 'x', sizeof(entry));
	for (size_t i = 0; i < n; i++)
		ck_assert_int_eq(list_text_add(&lt, entry, sizeof(entry)), 0);
	ck_assert_uint_eq(lt.n_groups, n);
	/* Two full chunks recorded; the third, open one holds the last entry. */
	ck_assert_uint_eq(lt.n_chunks, 2);
	ck_assert_uint_eq(lt.ends[0], per_chunk * (sizeof(entry) + 1) - 1);
	ck_assert_uint_eq(lt.ends[1] - lt.ends[0], lt.ends[0]);
	ck_assert_uint_eq(lt.len - lt.ends[1], sizeof(entry));
	ck_assert_int_eq(lt.text[lt.ends[0]], 'x');
	for (size_t i = 0; i < lt.len; i++)
		ck_assert(lt.text[i] == 'x' || lt.text[i] == ',');
	list_text_done(&lt);
}
END_TEST

static Suite *list_cache_suite(void)
{
	Suite *s = suite_create("list_cache");
	TCase *t = tcase_create("list cache");

	tcase_add_test(t, test_a_kept_text_is_found_only_for_the_key_it_was_kept_for);
	tcase_add_test(t, test_a_newer_generation_drops_every_older_text);
	tcase_add_test(t, test_the_least_recently_used_view_goes_first);
	tcase_add_test(t, test_entries_are_cut_into_chunks_below_the_packet_size);
	suite_add_tcase(s, t);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(list_cache_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
