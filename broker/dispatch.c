/* SPDX-License-Identifier: MIT */
#include "broker/dispatch.h"
#include "broker/connection.h"
#include "broker/group_requests.h"
#include "broker/lease_requests.h"
#include "broker/log.h"
#include "broker/policy_requests.h"
#include "broker/reply.h"
#include "broker/server.h"
#include "protocol/message.h"
#include "protocol/wire.h"

#include <errno.h>
#include <stdio.h>

/* A handler; fds and n_fds are always NULL and 0: no op takes file descriptors. */
typedef int (*dispatch_handler_fn)(struct broker *b, struct connection *c,
				   const struct vb_request *req, int *fds, size_t n_fds,
				   struct reply_error *err);

struct dispatch_entry {
	enum vb_op op;
	dispatch_handler_fn handler;
	/* NULL: anyone may ask; else only administrators, and what anyone else is told. */
	const char *admin_only;
};

static int dispatch_hello(struct broker *b, struct connection *c, const struct vb_request *req,
			  int *fds, size_t n_fds, struct reply_error *err);

static const struct dispatch_entry dispatch_table[_VB_OP_MAX] = {
	[VB_OP_HELLO] = {VB_OP_HELLO, dispatch_hello, NULL},
	[VB_OP_LIST] = {VB_OP_LIST, group_requests_list, NULL},
	[VB_OP_LEASE] = {VB_OP_LEASE, lease_requests_lease, NULL},
	[VB_OP_RELEASE] = {VB_OP_RELEASE, lease_requests_release, NULL},
	[VB_OP_MERGE] = {VB_OP_MERGE, lease_requests_merge, NULL},
	[VB_OP_UNMERGE] = {VB_OP_UNMERGE, lease_requests_unmerge, NULL},
	[VB_OP_LEASES] = {VB_OP_LEASES, lease_requests_list, NULL},
	[VB_OP_REMOVE] = {VB_OP_REMOVE, lease_requests_remove,
			  "only an administrator may remove a lease; ask one, or release your own "
			  "lease"},
	[VB_OP_RELOAD] = {VB_OP_RELOAD, policy_requests_reload,
			  "only an administrator may reload the policy; send SIGHUP as root or ask "
			  "one"},
	[VB_OP_EXPLAIN] = {VB_OP_EXPLAIN, policy_requests_explain, NULL},
	[VB_OP_QUARANTINE] = {VB_OP_QUARANTINE, group_requests_quarantine,
			      "only an administrator may quarantine a group"},
	[VB_OP_UNQUARANTINE] = {VB_OP_UNQUARANTINE, group_requests_quarantine,
				"only an administrator may unquarantine a group"},
};

/* The hello request, the only one a connection may send before its handshake. */
static int dispatch_hello(struct broker *b, struct connection *c, const struct vb_request *req,
			  int *fds, size_t n_fds, struct reply_error *err)
{
	int r;

	if (req->version < VB_PROTOCOL_MIN_VERSION) {
		r = reply_error_set(err, VB_E_UNSUPPORTED_VERSION,
				    "protocol version %u is not supported; this broker speaks "
				    "versions %d to %d",
				    req->version, VB_PROTOCOL_MIN_VERSION, VB_PROTOCOL_VERSION);
		err->has_supported = true;
		return r;
	}
	if (!c->handshaken)
		log_debug("Connection %llu (pid %d, uid %u) says hello%s%s",
			  (unsigned long long)c->serial, (int)c->identity->pid.pid,
			  (unsigned)c->identity->uid, req->client[0] ? " as " : "", req->client);
	connection_set_handshaken(c);
	reply_send_hello(c, req->id,
			 req->version < VB_PROTOCOL_VERSION ? req->version : VB_PROTOCOL_VERSION,
			 c->identity->uid, c->admin);
	return 0;
}

/*
 * The id of a packet that is refused before it is served, so that the error
 * reply names it: read only from a whole packet (whole false: truncated),
 * whether or not the rest of it decodes. False when it has none.
 */
static bool dispatch_packet_id(const char *buf, size_t len, bool whole, uint32_t *ret)
{
	struct vb_decode_error derr = {0};
	struct vb_request req;

	if (!whole)
		return false;
	if (vb_request_decode(buf, len, &req, &derr) == 0) {
		*ret = req.id;
		return true;
	}
	if (derr.has_id)
		*ret = derr.id;
	return derr.has_id;
}

/* Send an error reply of code with message, to request id (has_id false: it had none). */
static void dispatch_send_error(struct connection *c, bool has_id, uint32_t id, enum vb_status code,
				const char *message)
{
	struct reply_error e;

	reply_error_set(&e, code, "%s", message);
	reply_send_error(c, has_id, id, &e);
}

/*
 * Answer a request over the uid's rate with limit and when to try again. The
 * request was read (nothing is dropped unanswered) but not run; the packet
 * is decoded only for its id.
 */
static void dispatch_refuse_rate(struct connection *c, const char *buf, size_t len, bool whole,
				 uint64_t retry_ms)
{
	const struct broker_config *cfg = &c->broker->config;
	struct reply_error e;
	uint32_t id = 0;
	bool has_id;

	has_id = dispatch_packet_id(buf, len, whole, &id);
	reply_error_set(&e, VB_E_LIMIT,
			"uid %u sends more than %u requests a second (%u at once), the most "
			"the broker takes from one user; try again in %llu ms",
			(unsigned)c->identity->uid, cfg->max_requests_per_uid,
			cfg->request_burst_per_uid, (unsigned long long)retry_ms);
	e.has_retry = true;
	e.retry_after_ms = retry_ms;
	reply_send_error(c, has_id, id, &e);
}

/*
 * Whether the process that connected is still alive. Its identity (uid,
 * groups, pidfd) is the connection's; once it has exited, whoever still has
 * the socket (a child that inherited it, a process it was passed to) is
 * nobody the broker identified, and the pid SO_PEERCRED reported may name an
 * unrelated process by now. Asked through the pidfd, which cannot be fooled
 * by pid reuse. Errors count as dead: fail closed.
 */
static bool dispatch_peer_alive(struct connection *c)
{
	return pidref_is_alive(&c->identity->pid) > 0;
}

/* Refuse req because the connection's process has exited, and close the connection. */
static void dispatch_refuse_orphan(struct connection *c, const struct vb_request *req)
{
	struct log_fields f = LOG_FIELDS("deny");
	struct reply_error e;

	reply_error_set(&e, VB_E_DENIED,
			"pid %d, which opened this connection, has exited; the broker takes "
			"requests only from the process that connected: connect again",
			(int)c->identity->pid.pid);
	f.uid = c->identity->uid;
	f.pid = c->identity->pid.pid;
	log_event(LOG_NOTICE, &f,
		  "Refused %s on connection %llu of uid %u: its process (pid %d) has exited and "
		  "another process is using the connection",
		  vb_op_to_string(req->op), (unsigned long long)c->serial,
		  (unsigned)c->identity->uid, (int)c->identity->pid.pid);
	reply_send_error(c, true, req->id, &e);
	connection_close(c, "its process has exited");
}

/*
 * Answer a packet that came with file descriptors: bad-request, with its id
 * when the bytes say it. No op takes descriptors (a client attaches groups to
 * its own container itself: PROTOCOL.md), and the descriptors were never
 * received (connection.c): the connection is closing, and its socket, which
 * still holds them, is closed off the event loop.
 */
static void dispatch_refuse_fds(struct connection *c, const char *buf, size_t len, bool whole)
{
	struct log_fields f = LOG_FIELDS("deny");
	bool has_id;
	uint32_t id = 0;

	has_id = dispatch_packet_id(buf, len, whole, &id);
	f.uid = c->identity->uid;
	f.pid = c->identity->pid.pid;
	log_event(LOG_NOTICE, &f,
		  "Closing connection %llu of pid %d (uid %u): it sent file descriptors, which "
		  "the broker never takes",
		  (unsigned long long)c->serial, (int)c->identity->pid.pid,
		  (unsigned)c->identity->uid);
	dispatch_send_error(c, has_id, id, VB_E_BAD_REQUEST,
			    "the broker takes no file descriptors with any request; the "
			    "connection is closed");
}

void dispatch_packet(struct connection *c, const char *buf, size_t len, unsigned flags)
{
	bool whole = !(flags & CONNECTION_PACKET_TRUNCATED) && len <= VB_MAX_REQUEST_SIZE;
	const struct dispatch_entry *entry = NULL;
	char message[VB_MESSAGE_MAX];
	struct vb_decode_error derr;
	struct reply_error err;
	struct vb_request req;
	uint64_t retry_ms = 0;
	int r;

	/* Before the rate: this closes the connection, whatever the budget says. */
	if (flags & CONNECTION_PACKET_HAS_FDS) {
		dispatch_refuse_fds(c, buf, len, whole);
		return;
	}
	/* Every packet counts against the uid's rate, broken ones too. */
	if (server_charge_request(c->broker->server, c, &retry_ms) < 0) {
		dispatch_refuse_rate(c, buf, len, whole, retry_ms);
		return;
	}
	if (!whole) {
		snprintf(message, sizeof(message), "requests are at most %d bytes",
			 VB_MAX_REQUEST_SIZE);
		dispatch_send_error(c, false, 0, VB_E_LIMIT, message);
		return;
	}
	r = vb_request_decode(buf, len, &req, &derr);
	if (r < 0) {
		if (r == -EBADMSG)
			dispatch_send_error(c, derr.has_id, derr.id, derr.code, derr.message);
		else
			dispatch_send_error(c, derr.has_id, derr.id, VB_E_INTERNAL,
					    "the broker could not decode the request");
		return;
	}
	if ((unsigned)req.op < _VB_OP_MAX && dispatch_table[req.op].handler)
		entry = &dispatch_table[req.op];
	if (!entry) {
		dispatch_send_error(c, true, req.id, VB_E_BAD_REQUEST, "unknown op");
		return;
	}
	/*
	 * Every request but hello acts for the process that connected (a grant, a
	 * release, an admin's order, an answer its policy filters), so that process
	 * must still be alive: one pidfd poll per request, the only one on the way
	 * of a lease or a release. Hello decides nothing and tells only the uid
	 * and admin bit the connection was accepted with (identity found the
	 * process alive then); the request after it is checked.
	 */
	if (req.op != VB_OP_HELLO && !dispatch_peer_alive(c)) {
		dispatch_refuse_orphan(c, &req);
		return;
	}
	if (req.op != VB_OP_HELLO) {
		if (!c->handshaken) {
			dispatch_send_error(c, true, req.id, VB_E_BAD_REQUEST,
					    "the first request must be hello: send "
					    "{\"op\":\"hello\",\"version\":1} first");
			return;
		}
		connection_arm_idle(c);
	}
	if (entry->admin_only && !c->admin) {
		dispatch_send_error(c, true, req.id, VB_E_DENIED, entry->admin_only);
		return;
	}
	r = entry->handler(c->broker, c, &req, NULL, 0, &err);
	if (r < 0)
		reply_send_error(c, true, req.id, &err);
}
