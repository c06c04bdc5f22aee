/* SPDX-License-Identifier: MIT */
/*
 * The policy in force. Loaded at start-up (a failure there stops the
 * daemon: it must not run with a policy the administrator did not write),
 * reloaded on SIGHUP, on the reload request and when the directory changes.
 * A new policy that does not load is refused and the old one stays: the
 * broker never fails open, and never falls back to an empty policy either.
 */
#pragma once

#include "policy/policy.h"

#include <stddef.h>
#include <stdint.h>
#include <systemd/sd-event.h>

struct policy_store;

/* Load dir and start watching it. Errors are logged (file:line: message). */
int policy_store_new(sd_event *e, const char *dir, struct policy_store **ret);
struct policy_store *policy_store_free(struct policy_store *s);

/* The policy in force; never NULL once created. */
const struct policy *policy_store_get(const struct policy_store *s);
/* Changes whenever policy_store_get would return another policy (a reload that took). */
uint64_t policy_store_generation(const struct policy_store *s);

/*
 * policy_store_reload loads the directory again; on success the new policy
 * replaces the old one. On failure the old one stays, err (may be NULL)
 * says why, and the failure is logged. why names the trigger for the log.
 */
int policy_store_reload(struct policy_store *s, const char *why, struct policy_error *err);
