/* SPDX-License-Identifier: MIT */
#include "broker/remove.h"
#include "broker/holders.h"
#include "broker/inventory.h"
#include "broker/kmod_link.h"
#include "broker/lease_cgroup.h"
#include "broker/log.h"
#include "broker/pidref.h"
#include "common/cleanup.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define REMOVE_MAX_KILL_PIDS 64
/* How often a soft removal relays the VFIO device request through the module. */
#define REMOVE_RELAY_USEC (3ULL * 1000 * 1000)

/*
 * What a soft removal could tell the VMM through the VFIO device request
 * (vfio_quarantine's REQUEST_DEVICE), best last: the administrator's
 * answer and the log say which.
 */
enum removal_relay {
	RELAY_NO_MODULE,  /* the module is not loaded: only the event packet was sent */
	RELAY_FAILED,	  /* the module was asked, and could relay to no device */
	RELAY_NO_EVENTFD, /* the devices are on vfio-pci, none has a request eventfd */
	RELAY_EVENTFD,	  /* a request eventfd was registered and signalled */
};

/* One administrator's remove request, waiting for the lease to end. */
struct removal {
	struct removals *set;
	struct list_node link; /* in the set's list */
	removal_answer_fn answer;
	void *waiter; /* NULL once the administrator went away: nobody is answered */
	uint32_t id;
	uint32_t group;
	enum vb_remove_mode mode;
	bool kill_strays; /* hard: kill processes outside the lease holding its file too */
	uint64_t start_msec;
	uint32_t timeout_ms;
	sd_event_source *timer;
	/* soft: the device request, relayed every REMOVE_RELAY_USEC while the module is there */
	sd_event_source *relay;
	enum removal_relay relay_state;
	unsigned rounds;		   /* relay rounds so far */
	unsigned relays;		   /* rounds in which a request eventfd was signalled */
	char relay_device[VB_ADDRESS_MAX]; /* RELAY_EVENTFD: the (first) device that has one */
	char relay_error[VB_ADDRESS_MAX + 256 + 2]; /* RELAY_FAILED: why, as the module said */
};

struct removals {
	struct broker *broker;
	struct list_node list;
	size_t n;
};

/* Milliseconds of CLOCK_MONOTONIC, for the elapsed time a removal reports. */
static uint64_t remove_now_msec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int removals_new(struct broker *b, struct removals **ret)
{
	struct removals *r = calloc(1, sizeof(*r));

	if (!r)
		return -ENOMEM;
	r->broker = b;
	list_init(&r->list);
	*ret = r;
	return 0;
}

static void removal_free(struct removal *m)
{
	struct removals *r = m->set;

	list_unlink(&m->link);
	r->n--;
	sd_event_source_disable_unref(m->timer);
	sd_event_source_disable_unref(m->relay);
	free(m);
}

struct removals *removals_free(struct removals *r)
{
	if (!r)
		return NULL;
	while (!list_is_empty(&r->list))
		removal_free(container_of(r->list.next, struct removal, link));
	free(r);
	return NULL;
}

bool removals_full(const struct removals *r)
{
	return r->n >= REMOVALS_MAX;
}

bool removals_pending(const struct removals *r, uint32_t group)
{
	const struct removal *m;

	list_for_each_entry(m, &r->list, link) if (m->group == group) return true;
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

/*
 * Kill the process of ref (found holding the group file) with SIGKILL,
 * through the reference, never by pid; never pid 1 or ourselves.
 */
static void remove_kill_ref(const struct pidref *ref, uint32_t group)
{
	int r;

	if (ref->pid <= 1 || ref->pid == getpid()) {
		log_error("Not killing pid %d for group %u: it is %s", (int)ref->pid, group,
			  ref->pid == getpid() ? "the broker" : "init");
		return;
	}
	r = pidref_kill(ref, SIGKILL);
	if (r < 0 && r != -ESRCH)
		log_error_errno(r, "Failed to kill pid %d holding group %u: %m", (int)ref->pid,
				group);
	else if (r == 0)
		log_notice("Killed pid %d, which held group %u", (int)ref->pid, group);
}

/*
 * Kill everything that belongs to l: its cgroup with every process in it
 * (cgroup.kill, which also reaches processes holding the group only through
 * a VFIO device fd), and its holder through the pidfd (the only one a lease
 * without a cgroup can reach at once; the rest are found by the /proc scan).
 */
static void remove_kill_lease(const struct lease *l)
{
	struct lease_cgroups *cg = lease_table_cgroups(l->table);
	int r;

	if (l->cgroup && cg) {
		r = lease_cgroup_kill(cg, l->cgroup);
		if (r < 0 && r != -ENOENT)
			log_error_errno(r, "Failed to kill the cgroup %s of group %u: %m",
					l->cgroup, l->group);
		else if (r == 0)
			log_notice("Killed every process in the cgroup %s/%s of group %u",
				   lease_cgroups_root(cg), l->cgroup, l->group);
	}
	if (!l->holder)
		return;
	if (l->holder->pid.pid <= 1) {
		log_error("Not killing pid %d for group %u: it is init", (int)l->holder->pid.pid,
			  l->group);
		return;
	}
	r = pidref_kill(&l->holder->pid, SIGKILL);
	if (r < 0 && r != -ESRCH)
		log_error_errno(r, "Failed to kill holder pid %d of group %u: %m",
				(int)l->holder->pid.pid, l->group);
}

/* "123 (uid 2001, cat)": who a stray is, for the administrator. */
static void remove_describe_ref(const struct pidref *ref, char *buf, size_t size)
{
	_cleanup_free_ char *comm = NULL;
	uid_t uid;
	size_t n;

	if (pidref_read_proc(ref, "comm", 64, &comm, &n) < 0) {
		comm = NULL;
		n = 0;
	}
	while (n > 0 && comm[n - 1] == '\n')
		comm[--n] = '\0';
	if (pidref_get_euid(ref, &uid) < 0)
		snprintf(buf, size, "%d (%s)", (int)ref->pid, comm ? comm : "?");
	else
		snprintf(buf, size, "%d (uid %u, %s)", (int)ref->pid, (unsigned)uid,
			 comm ? comm : "?");
}

/*
 * Act on the processes of refs, found holding l's file for the hard removal
 * m: those that belong to the lease are killed; the others (strays: another
 * uid's process it was passed to, or one outside the lease's cgroup) only
 * when the administrator said kill_strays. Returns how many strays were
 * left alive, described in strays.
 */
static size_t remove_handle_holders(const struct removal *m, const struct lease *l,
				    const struct pidref *refs, size_t n, char *strays, size_t size)
{
	size_t left = 0, used = 0;

	strays[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		char who[128];

		if (lease_process_belongs(l, &refs[i]) || m->kill_strays) {
			remove_kill_ref(&refs[i], l->group);
			continue;
		}
		remove_describe_ref(&refs[i], who, sizeof(who));
		log_warning("Group %u is also open in pid %s, which does not belong to the lease: "
			    "not killed",
			    l->group, who);
		if (used < size)
			used += (size_t)snprintf(strays + used, size - used, "%s%s",
						 left ? ", " : "", who);
		left++;
	}
	return left;
}

/* Answer m's administrator, if still there, with the outcome; then m goes. */
static void removal_finish(struct removal *m, const struct removal_outcome *o)
{
	if (m->waiter)
		m->answer(m->waiter, m->id, o);
	removal_free(m);
}

/*
 * A hard removal found strays holding the file and may not kill them: it is
 * answered now, naming them, rather than waiting for a close that only they
 * can make. The lease stays, releasing, still its uid's.
 */
static void removal_report_strays(struct removal *m, const struct lease *l, size_t n,
				  const char *strays)
{
	struct log_fields f = lease_log_fields(l, "remove-strays");
	struct reply_error e;

	reply_error_set(&e, VB_E_BUSY,
			"group %u was taken from its lease, but is still open in %zu process%s "
			"outside it, not killed: pid %s; kill %s with remove --hard "
			"--kill-strays",
			l->group, n, n == 1 ? "" : "es", strays, n == 1 ? "it" : "them");
	e.has_uid = true;
	e.uid = l->uid;
	log_event(LOG_WARNING, &f, "Hard removal of group %u: still open in pid %s", l->group,
		  strays);
	removal_finish(m,
		       &(struct removal_outcome){.group = l->group, .mode = m->mode, .error = &e});
}

/*
 * One round of the device request for the soft removal m: the module signals
 * the request eventfd of every device of the group on vfio-pci (what the
 * kernel does only while an unbind waits, and QEMU answers by unplugging the
 * device from its guest). Nothing else changes: no driver is unbound, the
 * lease stays. The first time a device is found with or without an eventfd
 * is logged, so the log says whether the holder listens.
 */
static void removal_relay_round(struct removal *m)
{
	struct broker *b = m->set->broker;
	struct log_fields f = LOG_FIELDS("remove-relay");
	enum removal_relay best = RELAY_FAILED;
	struct inventory_group *g = NULL;
	bool first_round = m->rounds++ == 0;
	const char *first = NULL;
	struct kmod_answer a;
	int k;

	f.group = m->group;
	if (kmod_link_mode(b->kmod) != KMOD_MODE_KMOD) {
		/* rmmod meanwhile; the link finds a module loaded again by itself */
		snprintf(m->relay_error, sizeof(m->relay_error),
			 "the vfio_quarantine module went away");
		if (m->relay_state < RELAY_FAILED)
			m->relay_state = RELAY_FAILED;
		return;
	}
	k = inventory_read_group(b->inventory, m->group, &g);
	if (k < 0) {
		snprintf(m->relay_error, sizeof(m->relay_error), "group %u cannot be read: %s",
			 m->group, strerror(-k));
		if (m->relay_state < RELAY_FAILED)
			m->relay_state = RELAY_FAILED;
		return;
	}
	for (size_t i = 0; i < g->n_devices; i++) {
		const struct inventory_device *d = &g->devices[i];

		if (!inventory_driver_is_vfio(d->driver))
			continue;
		k = kmod_link_request_device(b->kmod, d->address, &a);
		f.devices = d->address;
		if (k < 0) {
			snprintf(m->relay_error, sizeof(m->relay_error), "%s: %s", d->address,
				 a.msg[0] ? a.msg : strerror(-k));
			if (first_round)
				log_event(LOG_INFO, &f,
					  "Soft removal of group %u: no device request relayed to "
					  "%s: %s",
					  m->group, d->address, a.msg[0] ? a.msg : strerror(-k));
			continue;
		}
		if (a.eventfd) {
			if (!first)
				first = d->address;
			best = RELAY_EVENTFD;
		} else if (best < RELAY_NO_EVENTFD) {
			best = RELAY_NO_EVENTFD;
		}
		if (first_round)
			log_event(LOG_INFO, &f,
				  "Soft removal of group %u: device request relayed to %s: %s",
				  m->group, d->address,
				  a.eventfd ? "a request eventfd is registered and was signalled"
					    : "no request eventfd is registered");
	}
	if (best == RELAY_FAILED && !m->relay_error[0])
		snprintf(m->relay_error, sizeof(m->relay_error),
			 "no device of the group is bound to vfio-pci");
	if (best == RELAY_EVENTFD) {
		m->relays++;
		if (!m->relay_device[0])
			snprintf(m->relay_device, sizeof(m->relay_device), "%s", first);
		if (!first_round && m->relay_state != RELAY_EVENTFD) {
			f.devices = m->relay_device;
			log_event(LOG_INFO, &f,
				  "Soft removal of group %u: a request eventfd is registered on "
				  "%s now, and was signalled",
				  m->group, m->relay_device);
		}
	}
	if (best > m->relay_state)
		m->relay_state = best;
	inventory_group_free(g); /* first points into it */
}

/* The relay timer of a soft removal: a round now, the next in REMOVE_RELAY_USEC. */
static int removal_on_relay(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct removal *m = userdata;

	removal_relay_round(m);
	return sd_event_source_set_time_relative(s, REMOVE_RELAY_USEC);
}

/* What the device request achieved, for the administrator: "; ..." after the outcome. */
static void removal_describe_relay(const struct removal *m, char *buf, size_t size)
{
	switch (m->relay_state) {
	case RELAY_NO_MODULE:
		snprintf(buf, size,
			 "; no VFIO device request could be relayed (the vfio_quarantine module "
			 "is not loaded), only the remove-requested event was sent");
		break;
	case RELAY_FAILED:
		snprintf(buf, size, "; no VFIO device request could be relayed (%s)",
			 m->relay_error);
		break;
	case RELAY_NO_EVENTFD:
		snprintf(buf, size,
			 "; no request eventfd is registered on its devices, so the VFIO device "
			 "request reached nobody");
		break;
	case RELAY_EVENTFD:
		snprintf(buf, size,
			 "; the VFIO device request was relayed %u time%s to %s, which has a "
			 "request eventfd registered",
			 m->relays, m->relays == 1 ? "" : "s", m->relay_device);
		break;
	}
}

/* Model: "timeout" (tests/model/lease.pml, proctype removal_timer). */
static int removal_on_timeout(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct removal *m = userdata;
	struct broker *b = m->set->broker;
	struct lease *l = lease_table_find(b->leases, m->group);
	struct log_fields f = LOG_FIELDS("remove-timeout");
	struct reply_error e;
	char secs[32], list[256] = "", relay[400];

	if (l)
		f = lease_log_fields(l, "remove-timeout");
	f.group = m->group;
	if (m->mode == VB_REMOVE_SOFT) {
		format_seconds(m->timeout_ms, secs, sizeof(secs));
		removal_describe_relay(m, relay, sizeof(relay));
		reply_error_set(&e, VB_E_TIMEOUT,
				"holder pid %d (uid %u) did not release group %u within %s s; the "
				"lease is unchanged%s",
				l ? (int)l->pid : 0, l ? (unsigned)l->uid : 0, m->group, secs,
				relay);
		log_event(LOG_NOTICE, &f, "Soft removal of group %u timed out after %s s%s",
			  m->group, secs, relay);
	} else {
		/*
		 * No scan here: the broker cannot read other users' /proc/PID/fd
		 * itself, and the scanner answers later. The lease's own scans
		 * (still_open) have acted on whoever they found meanwhile.
		 */
		if (l && l->holder)
			snprintf(list, sizeof(list), "%d", (int)l->pid);
		if (list[0])
			reply_error_set(&e, VB_E_INTERNAL,
					"group %u is still open in pid %s after %llu s; the broker "
					"gave up waiting",
					m->group, list, REMOVE_HARD_TIMEOUT_USEC / 1000000);
		else
			reply_error_set(&e, VB_E_INTERNAL,
					"group %u is still open, in no process the broker can see, "
					"after %llu s; the broker gave up waiting",
					m->group, REMOVE_HARD_TIMEOUT_USEC / 1000000);
		log_event(LOG_ERR, &f, "Hard removal of group %u gave up: still open in %s%s",
			  m->group, list[0] ? "pid " : "no process the broker can see", list);
	}
	removal_finish(m,
		       &(struct removal_outcome){.group = m->group, .mode = m->mode, .error = &e});
	return 0;
}

/*
 * A hard removal of a lease without a live holder: act on whoever has the file
 * now. The scanner looks (lease_scan_now); its answer reaches m through the
 * still_open hook (removals_lease_still_open), or the lease ends. A scan that
 * fails finds nobody killed and the removal waits for its timeout.
 */
static void removal_check_holders(struct removal *m, struct lease *l)
{
	(void)m;
	lease_scan_now(l);
}

/*
 * A soft removal of l that nobody can hear: its holder has no connection for
 * the remove-requested event, and relay (e.g. "; no VFIO device request
 * can be relayed ...") says why the device request cannot stand in for it.
 */
static int removal_refuse_unheard(const struct lease *l, uint32_t group, const char *relay,
				  struct reply_error *err)
{
	int k;

	if (l->holder)
		k = reply_error_set(
			err, VB_E_BUSY,
			"holder pid %d has no open connection to receive the request%s; "
			"remove it with mode hard",
			(int)l->pid, relay);
	else
		k = reply_error_set(err, VB_E_BUSY,
				    "group %u is still open in no process the broker can ask%s; "
				    "remove it with mode hard",
				    group, relay);
	err->has_uid = true;
	err->uid = l->uid;
	return k;
}

/* Model: "remove" (tests/model/lease.pml, proctype admin). */
int removals_start(struct removals *r, const struct identity *admin, uint32_t group,
		   enum vb_remove_mode mode, bool kill_strays, uint32_t timeout_ms,
		   removal_answer_fn answer, void *waiter, uint32_t id, struct reply_error *err)
{
	struct broker *b = r->broker;
	struct inventory_group *g = NULL;
	struct removal *m;
	struct lease *l;
	struct log_fields f;
	uint64_t timeout_usec;
	bool heard = false, relay = false;
	int k;

	if (removals_full(r))
		return reply_error_set(
			err, VB_E_LIMIT,
			"too many removals are waiting; wait for one to finish first");
	l = lease_table_find(b->leases, group);
	if (l && l->state == LEASE_RELEASING && !l->holder) {
		lease_rescan(l);
		l = lease_table_find(b->leases, group);
	}
	if (!l) {
		k = inventory_read_group(b->inventory, group, &g);
		inventory_group_free(g);
		if (k == -ENOENT)
			return reply_error_set(err, VB_E_NO_SUCH_GROUP,
					       "there is no IOMMU group %u", group);
		return reply_error_set(err, VB_E_NOT_HELD, "group %u is not leased", group);
	}

	if (mode == VB_REMOVE_SOFT) {
		if (timeout_ms == 0)
			timeout_ms = (uint32_t)(b->config.remove_timeout_usec / 1000);
		heard = reply_notify_remove_requested(b->server, l->holder, group, timeout_ms) > 0;
		relay = kmod_link_mode(b->kmod) == KMOD_MODE_KMOD;
		/* Without the module, a holder without a connection cannot be asked at all. */
		if (!heard && !relay)
			return removal_refuse_unheard(l, group,
						      "; no VFIO device request can be relayed "
						      "without the vfio_quarantine module",
						      err);
		timeout_usec = (uint64_t)timeout_ms * 1000;
	} else {
		timeout_usec = REMOVE_HARD_TIMEOUT_USEC;
	}

	m = calloc(1, sizeof(*m));
	if (!m)
		return reply_error_set(err, VB_E_INTERNAL, "out of memory");
	*m = (struct removal){
		.set = r,
		.answer = answer,
		.waiter = waiter,
		.id = id,
		.group = group,
		.mode = mode,
		.kill_strays = kill_strays && mode == VB_REMOVE_HARD,
		.start_msec = remove_now_msec(),
		.timeout_ms = (uint32_t)(timeout_usec / 1000),
		.relay_state = relay ? RELAY_FAILED : RELAY_NO_MODULE,
	};
	if (relay) {
		/*
		 * The first device request now: a VMM that holds no connection (vfioctl run
		 * execs it) hears only this, and if nothing can hear it the removal is
		 * refused at once rather than waiting for nothing.
		 */
		removal_relay_round(m);
		if (!heard && m->relay_state != RELAY_EVENTFD) {
			char why[400];

			removal_describe_relay(m, why, sizeof(why));
			free(m);
			return removal_refuse_unheard(l, group, why, err);
		}
	}
	k = sd_event_add_time_relative(b->event, &m->timer, CLOCK_MONOTONIC, timeout_usec, 0,
				       removal_on_timeout, m);
	/* Then every REMOVE_RELAY_USEC, while the removal waits. */
	if (k >= 0 && relay)
		k = sd_event_add_time_relative(b->event, &m->relay, CLOCK_MONOTONIC,
					       REMOVE_RELAY_USEC, 0, removal_on_relay, m);
	if (k >= 0 && relay)
		k = sd_event_source_set_enabled(m->relay, SD_EVENT_ON);
	if (k < 0) {
		sd_event_source_disable_unref(m->timer);
		sd_event_source_disable_unref(m->relay);
		free(m);
		return reply_error_set(err, VB_E_INTERNAL, "the broker could not start a timer");
	}
	list_prepend(&r->list, &m->link);
	r->n++;

	f = lease_log_fields(l, "remove-request");
	log_event(LOG_NOTICE, &f,
		  "%s removal of group %u (held by pid %d, uid %u) requested by pid %d (uid %u)",
		  mode == VB_REMOVE_HARD ? "Hard" : "Soft", group, (int)l->pid, (unsigned)l->uid,
		  (int)admin->pid.pid, (unsigned)admin->uid);

	if (mode == VB_REMOVE_HARD) {
		reply_notify_revoked(b->server, l->holder, group);
		remove_kill_lease(l);
		/* With its holder gone already, whoever has the file is looked at now. */
		if (!l->holder)
			removal_check_holders(m, l);
	}
	return 0;
}

/* Model: the removal's answer in "end" (tests/model/lease.pml). */
void removals_lease_ended(struct removals *r, const struct lease *l)
{
	struct removal *m, *next;

	list_for_each_entry_safe(m, next, &r->list, link)
	{
		uint64_t elapsed = remove_now_msec() - m->start_msec;
		struct log_fields f;

		if (m->group != l->group)
			continue;
		f = lease_log_fields(l, "remove");
		log_event(LOG_NOTICE, &f, "Group %u removed (%s) after %llu ms", l->group,
			  mode_name(m->mode), (unsigned long long)elapsed);
		removal_finish(m, &(struct removal_outcome){.group = l->group,
							    .mode = m->mode,
							    .elapsed_ms = elapsed});
	}
}

/* Model: the hard removal's kills in "scan" (tests/model/lease.pml). */
void removals_lease_still_open(struct removals *r, const struct lease *l, const struct pidref *refs,
			       size_t n)
{
	struct removal *m;
	char strays[400];
	size_t left;

	list_for_each_entry(m, &r->list,
			    link) if (m->group == l->group && m->mode == VB_REMOVE_HARD)
	{
		/* The holder is gone and others still have the file: what is the lease's goes too.
		 */
		left = remove_handle_holders(m, l, refs, n, strays, sizeof(strays));
		if (left)
			removal_report_strays(m, l, left, strays);
		return;
	}
}

void removals_waiter_gone(struct removals *r, const void *waiter)
{
	struct removal *m, *next;

	if (!r)
		return;
	list_for_each_entry_safe(m, next, &r->list, link)
	{
		if (m->waiter != waiter)
			continue;
		if (m->mode == VB_REMOVE_SOFT) {
			char relay[400];

			removal_describe_relay(m, relay, sizeof(relay));
			log_info("Soft removal of group %u cancelled: the administrator went away; "
				 "the lease is unchanged%s",
				 m->group, relay);
			removal_free(m);
		} else {
			/* The holder is already being killed: finish the reclaim, reply to nobody.
			 */
			m->waiter = NULL;
		}
	}
}
