/* SPDX-License-Identifier: MIT */
/*
 * The lease table kept in a file, so that a broker killed and started again
 * knows every lease (PROTOCOL.md, "Restart"; vfio-brokerd(8), FILES).
 *
 * <state-dir>/leases is written whole after every transition of the table,
 * to a new file renamed into its place: a reader sees the old table or the
 * new one, never half of one. It is never trusted on its own: at start-up
 * each entry is checked against the kernel (the boot, the group's node and
 * devices, the holder's pid and start time, who has the group file open)
 * and the broker's copy of the group file is taken back from the holder
 * with pidfd_getfd(); an entry that fails any check is dropped and logged.
 */
#pragma once

#include "broker/broker.h"
#include "broker/lease.h"

#include <stddef.h>

#define LEASE_STORE_DEFAULT_DIR "/run/vfio-brokerd"

struct lease_store;

/*
 * lease_store_new uses dir (created, mode 0700, if missing) for the state
 * file, and reads the boot id that entries are written under.
 */
int lease_store_new(const char *dir, struct lease_store **ret);
struct lease_store *lease_store_free(struct lease_store *s);

/*
 * lease_store_save writes t to the state file, replacing it atomically.
 * Reads each new holder's start time on the way (through its pidfd).
 * Failures are logged here and returned; the leases stand either way.
 */
int lease_store_save(struct lease_store *s, struct lease_table *t);

/*
 * lease_store_recover reads the state file, checks every entry against the
 * kernel and restores those that pass into b->leases; *ret_restored and
 * *ret_dropped count them. Run once, before the socket is served. A missing
 * file is an empty table; an unreadable or malformed one is ignored (logged)
 * and returns 0: a broker must start even if its last state is lost.
 */
int lease_store_recover(struct lease_store *s, struct broker *b, size_t *ret_restored,
			size_t *ret_dropped);
