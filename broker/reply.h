/* SPDX-License-Identifier: MIT */
/*
 * Replies and events: the one place where the broker builds what it sends
 * to clients and sends it to a connection. Each is a typed struct of
 * protocol/reply.h filled in here and written by its encoder, so that the
 * broker and the client read one schema.
 *
 * A request that fails is described by a struct reply_error (a status, one
 * sentence, and optional detail fields); the dispatcher turns it into the
 * error reply. Modules below the request handlers fill one in but never
 * send it.
 */
#pragma once

#include "policy/policy.h"
#include "protocol/message.h"
#include "protocol/reply.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct connection;
struct holder;
struct server;

/* A failed request: what the error reply says. Details are absent unless their has_ is set. */
struct reply_error {
	enum vb_status code;
	char message[VB_MESSAGE_MAX];
	bool has_decision; /* "device", "rule", "reason" of a policy denial ("" device/rule: null)
			    */
	char device[VB_ADDRESS_MAX];
	char rule[VB_NAME_MAX + 1];
	char reason[VB_MESSAGE_MAX];
	bool has_uid; /* "uid": who holds what was asked for */
	uid_t uid;
	bool has_container; /* "container": where a group is merged already */
	uint32_t container;
	bool has_supported; /* "supported": the protocol versions this broker speaks */
	bool has_retry;	    /* "retry_after_ms": when a limited uid may send again */
	uint64_t retry_after_ms;
	bool has_memlock; /* "memlock", "asked": a lease's locked-memory ask, refused (bytes) */
	uint64_t memlock;
	uint64_t asked;
};

/*
 * reply_error_set sets *e to code and the formatted sentence (saying what
 * is wrong and, where possible, what to do), with no details. Returns the
 * -errno matching code (vb_status_to_errno), so that a handler can
 * "return reply_error_set(err, ...)".
 */
int reply_error_set(struct reply_error *e, enum vb_status code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Send the error reply of e, to request id (has_id false: the request had none). */
int reply_send_error(struct connection *c, bool has_id, uint32_t id, const struct reply_error *e);

/* ---- success replies, one per op; fds are borrowed. As connection_send. ---- */

int reply_send_hello(struct connection *c, uint32_t id, unsigned version, uid_t uid, bool admin);
int reply_send_lease(struct connection *c, uint32_t id, uint32_t group, const char *rule,
		     uint64_t memlock, int group_fd);
/*
 * A cdev lease: fds[0] the iommufd, fds[1 + i] the cdev of devices[i]
 * (n_devices at most VB_MAX_CDEV_DEVICES).
 */
int reply_send_cdev_lease(struct connection *c, uint32_t id, uint32_t group, const char *rule,
			  uint64_t memlock, bool iommufd_reused,
			  const char (*devices)[VB_ADDRESS_MAX], const int *fds, size_t n_devices);
int reply_send_release(struct connection *c, uint32_t id, uint32_t group, bool released);
int reply_send_merge(struct connection *c, uint32_t id, uint32_t container, const uint32_t *groups,
		     size_t n_groups, int container_fd);
int reply_send_unmerge(struct connection *c, uint32_t id, uint32_t group);
int reply_send_remove(struct connection *c, uint32_t id, uint32_t group, enum vb_remove_mode mode,
		      uint64_t elapsed_ms);
int reply_send_reload(struct connection *c, uint32_t id, size_t rules, size_t files);
int reply_send_explain(struct connection *c, uint32_t id, uint32_t group, uid_t uid,
		       const struct policy_decision *d, const char *text);
/* mode: "kmod" or "sysfs"; at most VB_QUARANTINE_MAX_DEVICES devices. */
int reply_send_quarantine(struct connection *c, uint32_t id, uint32_t group, const char *mode,
			  const char *const *devices, size_t n_devices);

/*
 * A reply whose entries (list, leases) are sent in packets below
 * VB_MAX_PACKET_SIZE, each but the last with "more": true. Start one with
 * reply_chunks_init_list or _leases, add entries with the matching
 * reply_chunks_add_*, then reply_chunks_finish (which also frees).
 */
struct reply_chunks {
	struct connection *conn;
	uint32_t id;
	bool leases;		   /* a leases reply, else a list reply */
	const char *quarantine;	   /* list: the quarantine mode, in every chunk */
	struct json_object *array; /* the entries of the chunk being filled, encoded */
	size_t bytes;
};

/* quarantine: the mode a list reply names in every chunk ("kmod", "none"). */
void reply_chunks_init_list(struct reply_chunks *ch, struct connection *c, uint32_t id,
			    const char *quarantine);
void reply_chunks_init_leases(struct reply_chunks *ch, struct connection *c, uint32_t id);
void reply_chunks_add_group(struct reply_chunks *ch, const struct vb_group_info *info);
void reply_chunks_add_lease(struct reply_chunks *ch, const struct vb_lease_info *info);
/* Send the last chunk unless the connection is closing; free what is left either way. */
void reply_chunks_finish(struct reply_chunks *ch);

/* ---- events: sent to every open connection of a holder's process ---- */

/* Each returns how many connections got the event. */
size_t reply_notify_released(struct server *s, const struct holder *h, uint32_t group);
size_t reply_notify_revoked(struct server *s, const struct holder *h, uint32_t group);
size_t reply_notify_remove_requested(struct server *s, const struct holder *h, uint32_t group,
				     uint32_t timeout_ms);
size_t reply_notify_device_added(struct server *s, const struct holder *h, uint32_t group,
				 const char *device);
