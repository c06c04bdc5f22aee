/* SPDX-License-Identifier: MIT */
/*
 * Who is on the other end of a connection, captured once at accept from the
 * kernel (SO_PEERCRED, SO_PEERGROUPS, SO_PEERPIDFD, /proc/<pid>/cgroup) and
 * never re-derived: nothing the client says is part of its identity.
 */
#pragma once

#include "broker/pidref.h"
#include "policy/policy.h"

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>

/* Most supplementary groups accepted from SO_PEERGROUPS (the kernel's NGROUPS_MAX). */
#define IDENTITY_MAX_GROUPS 65536

struct identity {
	uid_t uid; /* effective ids at connect() time */
	gid_t gid;
	struct pidref pid;
	gid_t *groups;
	size_t n_groups;
	char *cgroup; /* cgroup v2 path; NULL when the process has no unified hierarchy entry */
	char *unit;   /* cgroup's unit: see identity_unit_from_cgroup(); NULL when none */
	/*
	 * The peer runs in another user namespace than the broker's, where it may
	 * have dropped groups: no group it lacks can be trusted to be absent.
	 */
	bool other_userns;
};

/*
 * identity_from_socket reads the peer of a connected AF_UNIX socket whose
 * SO_PEERCRED the caller has read into cred. Any failure is returned (the
 * caller closes the connection: fail closed).
 */
int identity_from_socket(int fd, const struct ucred *cred, struct identity **ret);
struct identity *identity_free(struct identity *id);

/* Whether gid is the primary or a supplementary group of id. */
bool identity_has_gid(const struct identity *id, gid_t gid);
/* The policy's view of id (pointers into id). */
void identity_to_policy_caller(const struct identity *id, struct policy_caller *ret);

/*
 * The unit of a cgroup path, or NULL: its outermost component ending in
 * .service or .scope; below a user manager "user@UID.service/UNIT" with UNIT
 * the outermost unit under it (the user's own, which it names as it likes).
 */
char *identity_unit_from_cgroup(const char *cgroup);
