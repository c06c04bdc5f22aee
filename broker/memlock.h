/* SPDX-License-Identifier: MIT */
/*
 * Locked memory a lease request asks for. VFIO type1 charges every page a
 * VMM maps for DMA (its guest RAM, and on some kernels its BIOS) to the
 * mapping process's RLIMIT_MEMLOCK; a VMM short of it fails deep inside its
 * start-up with "VFIO_MAP_DMA failed: Cannot allocate memory". A client that
 * knows what it needs says so in the request ("memlock"), and is refused at
 * once, with the numbers, when the holder would not have it.
 */
#pragma once

#include "broker/pidref.h"
#include "broker/reply.h"
#include "protocol/message.h"

#include <stdint.h>

/*
 * memlock_check_lease decides whether the holder will have the locked memory
 * that lease request req asks for (req->memlock bytes; 0 asks nothing). It
 * will have the larger of its soft RLIMIT_MEMLOCK now and granted (the
 * deciding rule's memlock, 0 for none; the lease raises the limit to it).
 * Returns 0 when it will; otherwise fills err with a "denied" error saying how
 * much the rule gives, how much was asked, and what to do, with the details
 * "memlock" (what the holder would have, bytes) and "asked", and returns
 * -EACCES.
 */
int memlock_check_lease(const struct vb_request *req, uint64_t granted, const char *rule,
			const struct pidref *holder, struct reply_error *err);
