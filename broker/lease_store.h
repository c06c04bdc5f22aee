/* SPDX-License-Identifier: MIT */
/*
 * The lease table kept in a file, so that a broker killed and started again
 * knows every lease (PROTOCOL.md, "Restart"; vfio-brokerd(8), FILES).
 *
 * <state-dir>/leases is a journal: the whole table, then, for each
 * transition of the table, the lines of the leases it changed ("lease ..."
 * as they are now, "end GROUP" for one that ended) and a commit line, all
 * in one write() before the transition's reply is sent. The last committed
 * line of a group is what the group is; a transaction without its commit
 * line (the broker killed during the write) is ignored. Past three lines
 * per lease the table is written whole again, to a new file renamed into
 * its place: a reader sees the old file or the new one, never half of one.
 * The file is never trusted on its own: at start-up each entry is checked
 * against the kernel (the boot, the group's node and devices, the holder's
 * pid and start time, who has the group file open) and the broker's copy
 * of the group file is taken back from the holder with pidfd_getfd(); an
 * entry that fails any check is dropped and logged.
 */
#pragma once

#include "broker/broker.h"
#include "broker/lease.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LEASE_STORE_DEFAULT_DIR "/run/vfio-brokerd"

struct lease_store;

/*
 * lease_store_new uses dir (created, mode 0700, if missing) for the state
 * file, and reads the boot id that entries are written under.
 */
int lease_store_new(const char *dir, struct lease_store **ret);
struct lease_store *lease_store_free(struct lease_store *s);

/*
 * lease_store_save writes t whole to the state file, replacing it
 * atomically; later records are appended to the new file. Reads each new
 * holder's start time on the way (through its pidfd). Failures are logged
 * here and returned; the leases stand either way, and the next change
 * writes the whole table again.
 */
int lease_store_save(struct lease_store *s, struct lease_table *t);

/*
 * lease_store_record appends the transaction that changed groups[n_groups]
 * of t: each one's lease as t has it now, or its end. all (or a journal
 * grown past three lines per lease, or a failed append): lease_store_save
 * instead. O(n_groups) amortized, one write(). Failures as lease_store_save.
 */
int lease_store_record(struct lease_store *s, struct lease_table *t, const uint32_t *groups,
		       size_t n_groups, bool all);

/*
 * lease_store_recover reads the state file, checks every entry against the
 * kernel and restores those that pass into b->leases; *ret_restored and
 * *ret_dropped count them. Run once, before the socket is served. A missing
 * file is an empty table; an unreadable or malformed one is ignored (logged)
 * and returns 0: a broker must start even if its last state is lost.
 */
int lease_store_recover(struct lease_store *s, struct broker *b, size_t *ret_restored,
			size_t *ret_dropped);
