/* SPDX-License-Identifier: MIT */
#include "broker/remove.h"
#include "broker/connection.h"
#include "broker/holders.h"
#include "broker/inventory.h"
#include "broker/log.h"
#include "broker/ops.h"
#include "broker/pidref.h"
#include "common/cleanup.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define REMOVE_MAX_KILL_PIDS 64

/* One administrator's remove request, waiting for the lease to end. */
struct removal {
	struct removals *set;
	struct removal *prev, *next;
	struct connection *conn; /* NULL once the administrator's connection closed */
	uint32_t id;
	uint32_t group;
	enum vb_remove_mode mode;
	uint64_t start_msec;
	uint32_t timeout_ms;
	sd_event_source *timer;
};

struct removals {
	struct broker *broker;
	struct removal *list;
	size_t n;
};

int removals_new(struct broker *b, struct removals **ret)
{
	struct removals *r = calloc(1, sizeof(*r));

	if (!r)
		return -ENOMEM;
	r->broker = b;
	*ret = r;
	return 0;
}

static void removal_free(struct removal *m)
{
	struct removals *r = m->set;

	if (m->prev)
		m->prev->next = m->next;
	else
		r->list = m->next;
	if (m->next)
		m->next->prev = m->prev;
	r->n--;
	if (m->conn)
		m->conn->n_pending--;
	sd_event_source_disable_unref(m->timer);
	free(m);
}

struct removals *removals_free(struct removals *r)
{
	if (!r)
		return NULL;
	while (r->list)
		removal_free(r->list);
	free(r);
	return NULL;
}

bool removals_pending(const struct removals *r, uint32_t group)
{
	for (const struct removal *m = r->list; m; m = m->next)
		if (m->group == group)
			return true;
	return false;
}

static const char *mode_name(enum vb_remove_mode mode)
{
	return mode == VB_REMOVE_HARD ? "hard" : "soft";
}

/* "30", "0.5", "1.25": milliseconds as seconds without trailing zeros. */
static void format_seconds(uint32_t ms, char *buf, size_t size)
{
	size_t n;

	if (ms % 1000 == 0) {
		snprintf(buf, size, "%u", ms / 1000);
		return;
	}
	snprintf(buf, size, "%u.%03u", ms / 1000, ms % 1000);
	n = strlen(buf);
	while (n > 0 && buf[n - 1] == '0')
		buf[--n] = '\0';
}

/* Kill pid (found holding the group file) with SIGKILL; never pid 1 or ourselves. */
static void remove_kill_pid(pid_t pid, uint32_t group)
{
	struct pidref p = PIDREF_NULL;
	int r;

	if (pid <= 1 || pid == getpid()) {
		log_error("Not killing pid %d for group %u: it is %s", (int)pid, group,
			  pid == getpid() ? "the broker" : "init");
		return;
	}
	r = pidref_set_pid(&p, pid);
	if (r == 0)
		r = pidref_kill(&p, SIGKILL);
	if (r < 0 && r != -ESRCH)
		log_error_errno(r, "Failed to kill pid %d holding group %u: %m", (int)pid, group);
	else if (r == 0)
		log_notice("Killed pid %d, which held group %u", (int)pid, group);
	pidref_done(&p);
}

/* Kill the holder of l, or everybody holding its file if no holder is known. */
static void remove_kill_holders(const struct lease *l)
{
	pid_t pids[REMOVE_MAX_KILL_PIDS];
	size_t n = 0;
	int r;

	if (l->holder) {
		if (l->holder->pid.pid <= 1) {
			log_error("Not killing pid %d for group %u: it is init",
				  (int)l->holder->pid.pid, l->group);
			return;
		}
		r = pidref_kill(&l->holder->pid, SIGKILL);
		if (r < 0 && r != -ESRCH)
			log_error_errno(r, "Failed to kill holder pid %d of group %u: %m",
					(int)l->holder->pid.pid, l->group);
		return;
	}
	r = holders_scan(&l->node, pids, REMOVE_MAX_KILL_PIDS, &n);
	if (r < 0) {
		log_error_errno(r, "Failed to look for processes holding group %u: %m", l->group);
		return;
	}
	for (size_t i = 0; i < n; i++)
		remove_kill_pid(pids[i], l->group);
}

static struct log_fields remove_log_fields(const struct lease *l, const char *event)
{
	struct log_fields f = LOG_FIELDS(event);

	f.uid = l->uid;
	f.pid = l->pid;
	f.group = l->group;
	f.devices = l->devices;
	f.rule = l->rule;
	return f;
}

static int removal_on_timeout(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct removal *m = userdata;
	struct broker *b = m->set->broker;
	struct lease *l = lease_table_find(b->leases, m->group);
	struct log_fields f = LOG_FIELDS("remove-timeout");
	char secs[32], list[256] = "";
	struct json_object *e;

	if (l)
		f = remove_log_fields(l, "remove-timeout");
	f.group = m->group;
	if (m->mode == VB_REMOVE_SOFT) {
		format_seconds(m->timeout_ms, secs, sizeof(secs));
		e = ops_error(m->id, VB_E_TIMEOUT,
			      "holder pid %d (uid %u) did not release group %u within %s s; the "
			      "lease is unchanged",
			      l ? (int)l->pid : 0, l ? (unsigned)l->uid : 0, m->group, secs);
		log_event(LOG_NOTICE, &f, "Soft removal of group %u timed out after %s s", m->group,
			  secs);
	} else {
		pid_t pids[REMOVE_MAX_KILL_PIDS];
		size_t n = 0;

		if (l)
			(void)holders_scan(&l->node, pids, REMOVE_MAX_KILL_PIDS, &n);
		holders_format_pids(pids, n, list, sizeof(list));
		if (n > 0)
			e = ops_error(
				m->id, VB_E_INTERNAL,
				"group %u is still open in pid %s after %llu s; the broker gave "
				"up waiting",
				m->group, list, REMOVE_HARD_TIMEOUT_USEC / 1000000);
		else
			e = ops_error(
				m->id, VB_E_INTERNAL,
				"group %u is still open, in no process the broker can see, after "
				"%llu s; the broker gave up waiting",
				m->group, REMOVE_HARD_TIMEOUT_USEC / 1000000);
		log_event(LOG_ERR, &f, "Hard removal of group %u gave up: still open in %s%s",
			  m->group, n ? "pid " : "no process the broker can see", list);
	}
	if (m->conn)
		ops_send(m->conn, e, -1);
	else
		json_object_put(e);
	removal_free(m);
	return 0;
}

void remove_handle(struct broker *b, struct connection *c, const struct vb_request *req)
{
	struct removals *r = b->removals;
	uint32_t group = (uint32_t)req->group;
	struct inventory_group *g = NULL;
	struct json_object *ev, *reply;
	struct removal *m;
	struct lease *l;
	struct log_fields f;
	uint64_t timeout_usec;
	int k;

	if (!c->admin) {
		ops_send_error(c, req->id, VB_E_DENIED,
			       "only an administrator may remove a lease; ask one, or release your "
			       "own lease");
		return;
	}
	if (c->n_pending >= CONNECTION_MAX_PENDING || r->n >= REMOVALS_MAX) {
		ops_send_error(c, req->id, VB_E_LIMIT,
			       "too many removals are waiting; wait for one to finish first");
		return;
	}
	l = lease_table_find(b->leases, group);
	if (l && l->state == LEASE_RELEASING && !l->holder) {
		lease_rescan(l);
		l = lease_table_find(b->leases, group);
	}
	if (!l) {
		k = inventory_read_group(b->inventory, group, &g);
		inventory_group_free(g);
		if (k == -ENOENT)
			ops_send_error(c, req->id, VB_E_NO_SUCH_GROUP, "there is no IOMMU group %u",
				       group);
		else
			ops_send_error(c, req->id, VB_E_NOT_HELD, "group %u is not leased", group);
		return;
	}

	if (req->mode == VB_REMOVE_SOFT) {
		uint32_t timeout_ms = req->timeout_ms
					      ? req->timeout_ms
					      : (uint32_t)(b->config.remove_timeout_usec / 1000);
		size_t sent = 0;

		ev = vb_event_new(VB_EVENT_REMOVE_REQUESTED);
		json_object_object_add(ev, "group", json_object_new_int64(group));
		json_object_object_add(ev, "timeout_ms", json_object_new_int64(timeout_ms));
		if (l->holder)
			sent = ops_notify_holder(b, l->holder, ev);
		json_object_put(ev);
		if (sent == 0) {
			reply = l->holder
					? ops_error(req->id, VB_E_BUSY,
						    "holder pid %d has no open connection to "
						    "receive the request; remove it with mode hard",
						    (int)l->pid)
					: ops_error(
						  req->id, VB_E_BUSY,
						  "group %u is still open in no process the broker "
						  "can ask; remove it with mode hard",
						  group);
			ops_error_detail(reply, "uid", json_object_new_int64(l->uid));
			ops_send(c, reply, -1);
			return;
		}
		timeout_usec = (uint64_t)timeout_ms * 1000;
	} else {
		timeout_usec = REMOVE_HARD_TIMEOUT_USEC;
	}

	m = calloc(1, sizeof(*m));
	if (!m) {
		ops_send_error(c, req->id, VB_E_INTERNAL, "out of memory");
		return;
	}
	*m = (struct removal){
		.set = r,
		.conn = c,
		.id = req->id,
		.group = group,
		.mode = req->mode,
		.start_msec = ops_now_msec(),
		.timeout_ms = (uint32_t)(timeout_usec / 1000),
	};
	k = sd_event_add_time_relative(b->event, &m->timer, CLOCK_MONOTONIC, timeout_usec, 0,
				       removal_on_timeout, m);
	if (k < 0) {
		free(m);
		ops_send_error(c, req->id, VB_E_INTERNAL, "the broker could not start a timer");
		return;
	}
	m->next = r->list;
	if (r->list)
		r->list->prev = m;
	r->list = m;
	r->n++;
	c->n_pending++;

	f = remove_log_fields(l, "remove-request");
	log_event(LOG_NOTICE, &f,
		  "%s removal of group %u (held by pid %d, uid %u) requested by pid %d (uid %u)",
		  req->mode == VB_REMOVE_HARD ? "Hard" : "Soft", group, (int)l->pid,
		  (unsigned)l->uid, (int)c->identity->pid.pid, (unsigned)c->identity->uid);

	if (req->mode == VB_REMOVE_HARD) {
		ev = vb_event_new(VB_EVENT_REVOKED);
		json_object_object_add(ev, "group", json_object_new_int64(group));
		if (l->holder)
			ops_notify_holder(b, l->holder, ev);
		json_object_put(ev);
		remove_kill_holders(l);
	}
}

void removals_lease_ended(struct removals *r, const struct lease *l)
{
	struct removal *m, *next;

	for (m = r->list; m; m = next) {
		struct json_object *reply;
		struct log_fields f;
		uint64_t elapsed = ops_now_msec() - m->start_msec;

		next = m->next;
		if (m->group != l->group)
			continue;
		f = remove_log_fields(l, "remove");
		log_event(LOG_NOTICE, &f, "Group %u removed (%s) after %llu ms", l->group,
			  mode_name(m->mode), (unsigned long long)elapsed);
		if (m->conn) {
			reply = vb_reply_new(m->id);
			json_object_object_add(reply, "group", json_object_new_int64(l->group));
			json_object_object_add(reply, "mode",
					       json_object_new_string(mode_name(m->mode)));
			json_object_object_add(reply, "elapsed_ms",
					       json_object_new_int64((int64_t)elapsed));
			ops_send(m->conn, reply, -1);
		}
		removal_free(m);
	}
}

void removals_lease_still_open(struct removals *r, const struct lease *l, const pid_t *pids,
			       size_t n)
{
	for (struct removal *m = r->list; m; m = m->next)
		if (m->group == l->group && m->mode == VB_REMOVE_HARD) {
			/* The holder is gone and others still have the file: they go too. */
			for (size_t i = 0; i < n; i++)
				remove_kill_pid(pids[i], l->group);
			return;
		}
}

void removals_connection_closed(struct removals *r, struct connection *c)
{
	struct removal *m, *next;

	if (!r)
		return;
	for (m = r->list; m; m = next) {
		next = m->next;
		if (m->conn != c)
			continue;
		if (m->mode == VB_REMOVE_SOFT) {
			log_info("Soft removal of group %u cancelled: the administrator went away",
				 m->group);
			removal_free(m);
		} else {
			/* The holder is already being killed: finish the reclaim, reply to nobody.
			 */
			c->n_pending--;
			m->conn = NULL;
		}
	}
}
