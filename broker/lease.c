/* SPDX-License-Identifier: MIT */
#include "broker/lease.h"
#include "broker/lease_cgroup.h"
#include "broker/log.h"
#include "broker/scanner.h"
#include "common/cleanup.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <time.h>
#include <unistd.h>

/* Processes named per scan: the first inherits the lease; a hard removal kills them all. */
#define LEASE_MAX_SCAN_PIDS 64
#define LEASE_RESCAN_USEC   (1000 * 1000)
/*
 * The holders scan's budget (issue 13, item 5). A scan reads every
 * descriptor of every process, so a user with a million open files makes it
 * last seconds. It never runs on the event loop: the scanner process does
 * it (scanner.h), in slices, while the broker serves requests, and answers
 * through the event loop. What the broker keeps is the global rate: a scan
 * starts only while a token bucket of scan CPU time (LEASE_SCAN_BURST_USEC
 * deep, filled at a quarter of the wall-clock time that passes) has time
 * left, and each answer takes the scanner's CPU time for it out of the
 * bucket, so that scans use a quarter of one CPU overall, whoever asks for
 * them. On a host of ordinary processes a scan takes a few milliseconds.
 */
#define LEASE_SCAN_BURST_USEC (200 * 1000)
#define LEASE_SCAN_SHARE      4 /* the bucket fills at 1/LEASE_SCAN_SHARE of the time */
/*
 * Buckets of the lookup tables (a power of two): every lookup on a lease's
 * or a release's path (by group, by holder pid, by watch, leases per uid) is
 * a hash lookup, not a walk of every lease (issue 16.1).
 */
#define LEASE_HASH_BITS 10
#define LEASE_HASH_SIZE (1u << LEASE_HASH_BITS)

/* How many leases are recorded for one uid (for max_leases), while it has any. */
struct lease_uid_count {
	struct lease_uid_count *next;
	uid_t uid;
	size_t n;
};

/*
 * A close watch that outlived its lease (lease_free says why it stays), on the
 * node dev:ino. While no IN_IGNORED has been read for it the watch is live,
 * and a live watch pins its inode, so dev:ino still names that node: the next
 * lease of the same node takes wd without an inotify_add_watch().
 */
struct idle_watch {
	struct idle_watch *next;
	dev_t dev;
	ino_t ino;
	int wd;
};

struct lease_table {
	sd_event *event;
	struct lease_hooks hooks;
	void *userdata;
	int inotify_fd;
	sd_event_source *inotify_source;
	struct list_node leases;  /* ordered by group */
	struct list_node holders; /* struct holder */
	size_t n_leases;
	bool dirty;		       /* changed since the changed hook last ran */
	struct lease_cgroups *cgroups; /* borrowed; NULL: leases bound to their uid only */
	bool checks_pending;	       /* some lease has check_pending set */
	int64_t scan_tokens_usec;      /* scan time the bucket allows now (may go below 0) */
	uint64_t scan_tokens_at_usec;  /* CLOCK_MONOTONIC of the last refill */
	sd_event_source *scan_timer;   /* runs deferred checks once the bucket allows */
	uint64_t scans;		       /* scans answered, and how many outlasted a slice */
	uint64_t scans_sliced;
	struct scanner *scanner; /* borrowed; NULL: scans run here, in one piece */
	struct lease *by_group[LEASE_HASH_SIZE];
	struct lease *by_wd[LEASE_HASH_SIZE];
	struct lease_file *files_by_wd[LEASE_HASH_SIZE];
	struct holder *holders_by_pid[LEASE_HASH_SIZE];
	struct lease_uid_count *by_uid[LEASE_HASH_SIZE];
	struct idle_watch *idle_by_ino[LEASE_HASH_SIZE];
	/*
	 * The groups whose leases changed since the changed hook last ran (ended ones included),
	 * for the changed hook: the state file appends only their records. all: anything may have
	 * changed (lease_table_changed, or no memory to list).
	 */
	uint32_t *changed;
	size_t n_changed, n_changed_alloc;
	bool changed_all;
	/* Bumped by every change of a lease's existence, holder or pid: list's cache key. */
	uint64_t generation;
};

static size_t lease_hash(uint32_t key)
{
	return (key * 2654435761u) >> (32 - LEASE_HASH_BITS);
}

/* Remember that l's watch, still live, is no longer any lease's. */
static void lease_table_keep_idle_watch(struct lease_table *t, const struct lease *l)
{
	struct idle_watch **head = &t->idle_by_ino[lease_hash((uint32_t)l->node.ino)], *w;

	if (l->wd < 0)
		return;
	for (w = *head; w; w = w->next)
		if (w->wd == l->wd)
			return;
	w = malloc(sizeof(*w));
	if (!w)
		return; /* the next lease of the node adds the watch again: same wd */
	*w = (struct idle_watch){
		.next = *head, .dev = l->node.dev, .ino = l->node.ino, .wd = l->wd};
	*head = w;
}

/*
 * The idle watch on node, taken off the idle list; -1: none. Only after a
 * drain that follows the node's open: an IN_IGNORED of a watch whose inode
 * was since freed (and its number given to this node) is queued before the
 * node could be made, so that drain has forgotten the watch already.
 */
static int lease_table_take_idle_watch(struct lease_table *t, const struct holders_target *node)
{
	for (struct idle_watch **p = &t->idle_by_ino[lease_hash((uint32_t)node->ino)]; *p;
	     p = &(*p)->next) {
		struct idle_watch *w = *p;
		int wd = w->wd;

		if (w->dev != node->dev || w->ino != node->ino)
			continue;
		*p = w->next;
		free(w);
		return wd;
	}
	return -1;
}

/* Forget idle watches: wd's (gone: IN_IGNORED), or all of them (wd -1: events were lost). */
static void lease_table_forget_idle_watches(struct lease_table *t, int wd)
{
	for (size_t i = 0; i < LEASE_HASH_SIZE; i++)
		for (struct idle_watch **p = &t->idle_by_ino[i]; *p;) {
			struct idle_watch *w = *p;

			if (wd >= 0 && w->wd != wd) {
				p = &w->next;
				continue;
			}
			*p = w->next;
			free(w);
		}
}

/* Add delta (+1 or -1) to the leases counted for uid. */
static void lease_table_count_add(struct lease_table *t, uid_t uid, int delta)
{
	struct lease_uid_count **p = &t->by_uid[lease_hash(uid)], *u;

	for (; *p; p = &(*p)->next)
		if ((*p)->uid == uid)
			break;
	u = *p;
	if (!u) {
		if (delta < 0)
			return;
		u = calloc(1, sizeof(*u));
		if (!u) {
			/* The uid's count stays low by one until its leases end. */
			log_warning("Out of memory counting the leases of uid %u", (unsigned)uid);
			return;
		}
		u->uid = uid;
		*p = u;
	}
	if (delta < 0 && u->n > 0)
		u->n--;
	else if (delta > 0)
		u->n++;
	if (u->n == 0) {
		*p = u->next;
		free(u);
	}
}

static void lease_table_hash_wd(struct lease_table *t, struct lease *l)
{
	struct lease **p = &t->by_wd[lease_hash((uint32_t)l->wd)];

	l->wd_next = *p;
	*p = l;
}

static void lease_table_unhash_wd(struct lease_table *t, struct lease *l)
{
	if (l->wd < 0)
		return;
	for (struct lease **p = &t->by_wd[lease_hash((uint32_t)l->wd)]; *p; p = &(*p)->wd_next)
		if (*p == l) {
			*p = l->wd_next;
			break;
		}
}

/* Look for l's holders after the current drain (lease_table_process_checks). */
static void lease_queue_check(struct lease *l)
{
	l->check_pending = true;
	l->table->checks_pending = true;
}

static void lease_table_hash_file(struct lease_table *t, struct lease_file *lf)
{
	struct lease_file **p = &t->files_by_wd[lease_hash((uint32_t)lf->wd)];

	lf->wd_next = *p;
	*p = lf;
}

/* lf is closed everywhere, or its node is gone: it no longer keeps the lease. */
static void lease_file_forget(struct lease_table *t, struct lease_file *lf)
{
	if (lf->wd < 0)
		return;
	for (struct lease_file **p = &t->files_by_wd[lease_hash((uint32_t)lf->wd)]; *p;
	     p = &(*p)->wd_next)
		if (*p == lf) {
			*p = lf->wd_next;
			break;
		}
	lf->wd = -1;
}

static struct lease_file *lease_table_find_file_wd(const struct lease_table *t, int wd)
{
	for (struct lease_file *lf = t->files_by_wd[lease_hash((uint32_t)wd)]; lf; lf = lf->wd_next)
		if (lf->wd == wd)
			return lf;
	return NULL;
}

/* The broker closes its copies of l's more files (its own is closed by the caller). */
static void lease_close_files(struct lease *l)
{
	for (size_t i = 0; i < l->n_files; i++)
		l->files[i].fd = safe_close(l->files[i].fd);
}

static void lease_mark_changed(struct lease *l);

/*
 * The lease's own file is closed everywhere (or its node is gone) while the
 * lease is releasing: if one of its more files is still open, that one
 * becomes the lease's own, and the lease goes on. False: none is, and the
 * lease's end is the caller's to decide, as for a lease of one file.
 */
static bool lease_promote_file(struct lease *l)
{
	struct lease_table *t = l->table;

	for (size_t i = 0; i < l->n_files; i++) {
		struct lease_file *lf = &l->files[i];

		if (lf->wd < 0)
			continue;
		lease_table_unhash_wd(t, l);
		l->wd = lf->wd;
		l->node = lf->node;
		lease_file_forget(t, lf);
		lease_table_hash_wd(t, l);
		/* The state file names the lease's own file. */
		lease_mark_changed(l);
		log_info("Group %u: one of its cdevs is closed everywhere, but another is open: "
			 "the lease goes on",
			 l->group);
		/* Whoever has the new one may not be the holder known: look. */
		if (!l->holder)
			lease_queue_check(l);
		return true;
	}
	return false;
}

static uint64_t now_usec(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* What the state file records of l is out of date: the next flush names l's group. */
static void lease_mark_changed(struct lease *l)
{
	struct lease_table *t = l->table;

	t->generation++;
	t->dirty = true;
	if (t->changed_all || (t->n_changed > 0 && t->changed[t->n_changed - 1] == l->group))
		return;
	if (t->n_changed == t->n_changed_alloc) {
		size_t n = t->n_changed_alloc ? 2 * t->n_changed_alloc : 16;
		uint32_t *p = reallocarray(t->changed, n, sizeof(*p));

		if (!p) {
			t->changed_all = true; /* the hook writes the whole table instead */
			return;
		}
		t->changed = p;
		t->n_changed_alloc = n;
	}
	t->changed[t->n_changed++] = l->group;
}

/*
 * Model: the "save" transition of tests/model/lease.pml ends every transition.
 * Run the changed hook once for everything a table entry point did, with
 * the groups it changed. Every public entry point that can change a lease
 * ends with this, so the state file is written once per transition, after
 * it is complete, and before the caller replies.
 */
static void lease_table_flush(struct lease_table *t)
{
	if (!t->dirty)
		return;
	t->dirty = false;
	if (t->hooks.changed)
		t->hooks.changed(t, t->changed, t->n_changed, t->changed_all, t->userdata);
	t->n_changed = 0;
	t->changed_all = false;
}

uint64_t lease_table_generation(const struct lease_table *t)
{
	return t->generation;
}

void lease_table_changed(struct lease_table *t)
{
	t->generation++;
	t->dirty = true;
	t->changed_all = true;
	lease_table_flush(t);
}

const char *lease_state_to_string(enum lease_state s)
{
	return s == LEASE_HELD ? "held" : "releasing";
}

/* ---- holders ---- */

static void holder_free(struct holder *h)
{
	struct lease_table *t = h->table;

	if (t->hooks.holder_freed)
		t->hooks.holder_freed(h, t->userdata);
	list_unlink(&h->node);
	for (struct holder **p = &t->holders_by_pid[lease_hash((uint32_t)h->pid.pid)]; *p;
	     p = &(*p)->pid_next)
		if (*p == h) {
			*p = h->pid_next;
			break;
		}
	exit_watch_free(h->exit_watch);
	pidref_done(&h->pid);
	safe_close(h->iommufd);
	free(h);
}

static void holder_unref_lease(struct holder *h)
{
	if (h && --h->n_leases == 0 && h->n_connections == 0)
		holder_free(h);
}

void holder_ref_connection(struct holder *h)
{
	h->n_connections++;
}

void holder_unref_connection(struct holder *h)
{
	if (--h->n_connections == 0 && h->n_leases == 0)
		holder_free(h);
}

/*
 * released: the group whose lease is being released at its holder's request
 * (-1: none), so that its end is reported to the ended hook as requested.
 */
static void lease_table_process_checks(struct lease_table *t, int64_t released);
static void lease_table_drain(struct lease_table *t, int64_t released);

/*
 * Model: "exit" (tests/model/lease.pml, proctype exit_watch).
 * The holder process has exited (its files were closed before the kernel
 * reported the exit). The broker closes its copies of the holder's held
 * leases; whatever does not close at once is looked for in /proc.
 */
static void holder_on_exit(void *userdata)
{
	struct holder *h = userdata;
	struct lease_table *t = h->table;
	struct lease *l;

	log_debug("Holder pid %d (uid %u) exited", (int)h->pid.pid, (unsigned)h->uid);
	list_for_each_entry(l, &t->leases, link)
	{
		if (l->holder != h)
			continue;
		if (l->state == LEASE_HELD) {
			if (t->hooks.detach)
				t->hooks.detach(l, t->userdata);
			l->fd = safe_close(l->fd);
			lease_close_files(l);
			l->state = LEASE_RELEASING;
			if (l->wd < 0)
				lease_promote_file(l);
		}
		l->holder = NULL;
		lease_queue_check(l);
		h->n_leases--;
		lease_mark_changed(l);
	}
	/* Frees h (and its exit watch, which called us: sd-event allows that). */
	h->n_leases = 0;
	holder_free(h);

	lease_table_drain(t, -1);
	lease_table_process_checks(t, -1);
	lease_table_flush(t);
}

static int holder_new(struct lease_table *t, struct pidref *pid, uid_t uid, struct holder **ret)
{
	struct holder *h;
	int r;

	h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->table = t;
	h->pid = *pid;
	h->uid = uid;
	h->iommufd = -1;
	r = exit_watch_new(t->event, &h->pid, holder_on_exit, h, &h->exit_watch);
	if (r < 0) {
		free(h);
		return r;
	}
	*pid = PIDREF_NULL; /* taken */
	list_prepend(&t->holders, &h->node);
	h->pid_next = t->holders_by_pid[lease_hash((uint32_t)h->pid.pid)];
	t->holders_by_pid[lease_hash((uint32_t)h->pid.pid)] = h;
	*ret = h;
	return 0;
}

struct holder *lease_table_find_holder(const struct lease_table *t, const struct pidref *p)
{
	if (!pidref_is_set(p))
		return NULL;
	for (struct holder *h = t->holders_by_pid[lease_hash((uint32_t)p->pid)]; h; h = h->pid_next)
		if (pidref_same_lineage(&h->pid, p) || pidref_equal(&h->pid, p))
			return h;
	return NULL;
}

/*
 * The holder object of the process ref refers to (a scan's reference: never
 * a bare pid, which may name another process by now), created if needed
 * with the uid /proc reports for it.
 */
static int holder_get_ref(struct lease_table *t, const struct pidref *ref, struct holder **ret)
{
	struct pidref p = PIDREF_NULL;
	struct holder *h;
	uid_t uid;
	int r;

	h = lease_table_find_holder(t, ref);
	if (h) {
		*ret = h;
		return 0;
	}
	r = pidref_copy(ref, &p);
	if (r < 0)
		return r;
	/* Reads through the reference and checks it is alive after: this is its uid. */
	r = pidref_get_euid(&p, &uid);
	if (r == 0)
		r = holder_new(t, &p, uid, ret);
	pidref_done(&p);
	return r;
}

/* The lease's uid stays (a lease is never moved to another user), and so does its count. */
static void lease_set_holder(struct lease *l, struct holder *h)
{
	l->holder = h;
	l->pid = h->pid.pid;
	h->n_leases++;
	lease_mark_changed(l);
}

/* ---- leases ---- */

struct log_fields lease_log_fields(const struct lease *l, const char *event)
{
	struct log_fields f = LOG_FIELDS(event);

	f.uid = l->uid;
	f.pid = l->pid;
	f.group = l->group;
	f.devices = l->devices;
	f.rule = l->rule;
	return f;
}

/* Unlink and free l. The ended hook has run (or we are tearing down). */
static void lease_free(struct lease *l)
{
	struct lease_table *t = l->table;

	if (l->scan_job)
		scanner_cancel(t->scanner, l->scan_job);
	list_unlink(&l->link);
	t->n_leases--;
	lease_table_count_add(t, l->uid, -1);
	lease_table_unhash_wd(t, l);
	lease_table_keep_idle_watch(t, l);
	for (struct lease **p = &t->by_group[lease_hash(l->group)]; *p; p = &(*p)->group_next)
		if (*p == l) {
			*p = l->group_next;
			break;
		}
	/*
	 * The watch stays: removing an inode's last mark makes the kernel queue
	 * the mark's teardown on a workqueue, which wakes a kworker on another
	 * CPU on every lease (measured: a third of a lease+release cycle on an
	 * idle 2-vCPU VM). The next lease of the group gets the same wd back;
	 * the watch goes when the node does (IN_IGNORED) or with the broker.
	 */
	safe_close(l->fd);
	for (size_t i = 0; i < l->n_files; i++) {
		lease_file_forget(t, &l->files[i]);
		safe_close(l->files[i].fd);
	}
	free(l->files);
	holder_unref_lease(l->holder);
	/* Its processes, if any are left, stay in it; an empty one goes now. */
	if (l->cgroup && t->cgroups)
		lease_cgroup_remove(t->cgroups, l->cgroup);
	free(l->cgroup);
	free(l->devices);
	free(l);
}

/* The file is closed: log it, tell the rest of the broker, free the lease. Model: "end". */
static void lease_end(struct lease *l, bool requested)
{
	struct lease_table *t = l->table;
	struct log_fields f = lease_log_fields(l, "release");

	log_event(LOG_INFO, &f, "Group %u released: its file is closed", l->group);
	lease_mark_changed(l);
	if (t->hooks.ended)
		t->hooks.ended(l, requested, t->userdata);
	lease_free(l);
}

/* Refill the scan-time bucket for the time since the last refill. */
static void lease_scan_refill(struct lease_table *t, uint64_t now)
{
	uint64_t passed = now - t->scan_tokens_at_usec;

	t->scan_tokens_at_usec = now;
	t->scan_tokens_usec += (int64_t)(passed / LEASE_SCAN_SHARE);
	if (t->scan_tokens_usec > LEASE_SCAN_BURST_USEC)
		t->scan_tokens_usec = LEASE_SCAN_BURST_USEC;
}

static bool lease_scan_allowed(struct lease_table *t)
{
	lease_scan_refill(t, now_usec(CLOCK_MONOTONIC));
	return t->scan_tokens_usec > 0;
}

/* Take the scanner's CPU time for one scan out of the bucket. */
static void lease_scan_charge(struct lease_table *t, uint64_t cpu_usec)
{
	t->scan_tokens_usec -= (int64_t)cpu_usec;
	t->scans++;
}

static int lease_table_on_scan_timer(sd_event_source *s, uint64_t usec, void *userdata);

/*
 * Run l's check again once the bucket has time for a scan: by then it
 * holds SCANNER_SLICE_USEC / 10 at least. end_if_nobody carries over;
 * whether the holder asked (a release request has been answered by then)
 * does not: the end is reported as an event.
 */
static void lease_defer_check(struct lease *l, bool end_if_nobody)
{
	struct lease_table *t = l->table;
	int64_t want = SCANNER_SLICE_USEC / 10 - t->scan_tokens_usec;
	uint64_t at = now_usec(CLOCK_MONOTONIC) +
		      (want > 0 ? (uint64_t)want * LEASE_SCAN_SHARE : 0) + 1000;
	int r;

	l->check_deferred = true;
	l->end_if_nobody = l->end_if_nobody || end_if_nobody;
	if (t->scan_timer) {
		uint64_t armed = 0;
		int enabled = SD_EVENT_OFF;

		(void)sd_event_source_get_enabled(t->scan_timer, &enabled);
		(void)sd_event_source_get_time(t->scan_timer, &armed);
		if (enabled != SD_EVENT_OFF && armed <= at)
			return;
		r = sd_event_source_set_time(t->scan_timer, at);
		if (r >= 0)
			r = sd_event_source_set_enabled(t->scan_timer, SD_EVENT_ONESHOT);
	} else {
		r = sd_event_add_time(t->event, &t->scan_timer, CLOCK_MONOTONIC, at, 0,
				      lease_table_on_scan_timer, t);
	}
	if (r < 0)
		log_error_errno(r, "Failed to schedule the rest of group %u's holders scan: %m",
				l->group);
}

/*
 * Model: "scan" (tests/model/lease.pml).
 * The answer of the search for who has a releasing lease's file, which did
 * not close when the broker closed its copy: r 0 and refs[n] (borrowed), or
 * -errno. The first process found inherits the lease. With nobody found, the
 * lease ends if its close can no longer be observed (end_if_nobody, or the
 * node is gone); otherwise it waits for the close event, since the file may
 * be in flight in a socket or pinned by a VFIO device fd. A failed search
 * (no scanner left, or out of its budget) is no answer, not "nobody": the
 * lease stays releasing and ends at its close (fail closed). Returns true
 * when the lease ended (l is freed).
 */
static bool lease_scan_result(struct lease *l, int r, const struct pidref *refs, size_t n,
			      bool end_if_nobody, bool requested)
{
	struct lease_table *t = l->table;
	struct log_fields f;

	if (r < 0) {
		f = lease_log_fields(l, "scan-failed");
		log_event(LOG_WARNING, &f,
			  "Failed to look for processes holding group %u (%s); the lease stays "
			  "releasing until its file is closed",
			  l->group, strerror(-r));
		return false;
	}
	if (n == 0) {
		if (end_if_nobody || l->wd < 0) {
			lease_end(l, requested);
			return true;
		}
		f = lease_log_fields(l, "releasing");
		log_event(LOG_INFO, &f,
			  "Group %u is still open, but in no process the broker can see (a file "
			  "descriptor in flight or a VFIO device fd); the lease ends when it is "
			  "closed",
			  l->group);
		return false;
	}
	if (t->hooks.still_open)
		t->hooks.still_open(l, refs, n, t->userdata);
	for (size_t i = 0; i < n && !l->holder; i++) {
		struct holder *h;
		pid_t previous = l->pid;

		/* A stray (another uid's, or outside the lease's cgroup) never inherits. */
		if (!lease_process_belongs(l, &refs[i])) {
			f = lease_log_fields(l, "releasing");
			log_event(LOG_NOTICE, &f,
				  "Group %u is still open in pid %d, which does not belong to the "
				  "lease of uid %u: it is not made the holder",
				  l->group, (int)refs[i].pid, (unsigned)l->uid);
			continue;
		}
		if (holder_get_ref(t, &refs[i], &h) < 0)
			continue; /* exited meanwhile: try the next one */
		lease_set_holder(l, h);
		f = lease_log_fields(l, refs[i].pid == previous ? "releasing" : "inherit");
		if (refs[i].pid == previous)
			log_event(LOG_INFO, &f, "Group %u is still open in pid %d (uid %u)",
				  l->group, (int)l->pid, (unsigned)h->uid);
		else
			log_event(
				LOG_INFO, &f,
				"Group %u is still open in pid %d (uid %u): inherited from pid %d",
				l->group, (int)l->pid, (unsigned)h->uid, (int)previous);
	}
	return false;
}

static void lease_check_open(struct lease *l, bool end_if_nobody, bool requested);

/* The scanner's answer for l (scanner.h), from the event loop. */
static void lease_on_scan_done(int r, const struct pidref *refs, size_t n, uint64_t cpu_usec,
			       void *userdata)
{
	struct lease *l = userdata;
	struct lease_table *t = l->table;
	bool end_if_nobody = l->scan_end_if_nobody, again = l->scan_again;

	l->scan_job = NULL;
	l->scan_end_if_nobody = l->scan_again = false;
	lease_scan_charge(t, cpu_usec);
	if (l->state == LEASE_RELEASING && !l->holder &&
	    lease_scan_result(l, r, refs, n, end_if_nobody, false)) {
		lease_table_flush(t);
		return;
	}
	/* A check asked for while this scan ran: the answer may predate what it saw. */
	if (again && l->state == LEASE_RELEASING && !l->holder)
		lease_check_open(l, false, false);
	lease_table_flush(t);
}

/* l's scan outlasted one slice of the scanner: requests are served meanwhile. */
static void lease_on_scan_sliced(void *userdata)
{
	struct lease *l = userdata;
	struct log_fields f = lease_log_fields(l, "scan-sliced");

	l->table->scans_sliced++;
	log_event(LOG_INFO, &f,
		  "The search for processes holding group %u outlasted one %d ms slice; it goes "
		  "on in the scanner process, in slices, while requests are served",
		  l->group, SCANNER_SLICE_USEC / 1000);
}

/*
 * Model: "scan" (tests/model/lease.pml): its start.
 * Look for who has l's file: through the scanner when there is one (the
 * answer comes later, to lease_on_scan_done), else here and at once (a
 * lease table without a scanner). Waits for the bucket first; one scan per
 * lease at a time, a check asked for meanwhile runs after it.
 */
static void lease_check_open(struct lease *l, bool end_if_nobody, bool requested)
{
	struct lease_table *t = l->table;
	struct pidref refs[LEASE_MAX_SCAN_PIDS];
	uint64_t start_cpu;
	size_t n = 0;
	int r;

	if (l->scan_job) {
		l->scan_again = true;
		l->scan_end_if_nobody = l->scan_end_if_nobody || end_if_nobody;
		return;
	}
	if (!lease_scan_allowed(t)) {
		lease_defer_check(l, end_if_nobody);
		return;
	}
	l->last_scan_usec = now_usec(CLOCK_MONOTONIC);
	if (t->scanner) {
		l->scan_end_if_nobody = end_if_nobody;
		r = scanner_submit(t->scanner, &l->node, LEASE_MAX_SCAN_PIDS, lease_on_scan_done,
				   lease_on_scan_sliced, l, &l->scan_job);
		if (r < 0) {
			l->scan_job = NULL;
			(void)lease_scan_result(l, r, NULL, 0, end_if_nobody, requested);
		}
		return;
	}
	start_cpu = now_usec(CLOCK_THREAD_CPUTIME_ID);
	r = holders_scan(&l->node, refs, LEASE_MAX_SCAN_PIDS, &n);
	lease_scan_charge(t, now_usec(CLOCK_THREAD_CPUTIME_ID) - start_cpu);
	(void)lease_scan_result(l, r, refs, n, end_if_nobody, requested);
	holders_release(refs, n);
}

static void lease_table_process_checks(struct lease_table *t, int64_t released)
{
	struct lease *l, *next;

	/* Most calls find nothing to do: then this is one test, not a walk of every lease. */
	if (!t->checks_pending)
		return;
	t->checks_pending = false;
	list_for_each_entry_safe(l, next, &t->leases, link)
	{
		bool end_if_nobody = l->end_if_nobody;

		if (!l->check_pending)
			continue;
		l->check_pending = l->end_if_nobody = false;
		if (l->state == LEASE_RELEASING && !l->holder)
			lease_check_open(l, end_if_nobody, l->group == released);
	}
}

/* The bucket has time again: queue the deferred checks and run them. */
static int lease_table_on_scan_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct lease_table *t = userdata;
	struct lease *l;

	list_for_each_entry(l, &t->leases, link) if (l->check_deferred)
	{
		bool end_if_nobody = l->end_if_nobody;

		l->check_deferred = false;
		lease_queue_check(l);
		l->end_if_nobody = end_if_nobody;
	}
	lease_table_process_checks(t, -1);
	lease_table_flush(t);
	return 0;
}

static struct lease *lease_table_find_wd(const struct lease_table *t, int wd)
{
	if (wd < 0)
		return NULL;
	for (struct lease *l = t->by_wd[lease_hash((uint32_t)wd)]; l; l = l->wd_next)
		if (l->wd == wd)
			return l;
	return NULL;
}

/*
 * An event on one of a lease's more files: its last close while the lease is
 * releasing (closes while the broker has its copy cannot be the last), or
 * its node's removal, after which no close can be seen: either way the file
 * no longer keeps the lease.
 */
static void lease_table_file_event(struct lease_table *t, const struct inotify_event *ev)
{
	struct lease_file *lf = lease_table_find_file_wd(t, ev->wd);

	if (!lf)
		return;
	if (((ev->mask & (IN_CLOSE_WRITE | IN_CLOSE_NOWRITE)) &&
	     lf->lease->state == LEASE_RELEASING) ||
	    (ev->mask & IN_IGNORED))
		lease_file_forget(t, lf);
}

/*
 * Whether any process but the broker has a descriptor of node. Errors count as
 * yes, and so does a table with a scanner: the broker itself no longer has the
 * capabilities to read other users' /proc/PID/fd (a scan here would find
 * nobody), and the answer is wanted now. The file then stays counted as open;
 * the lease's own check (through the scanner) follows.
 */
static bool lease_node_is_open(const struct lease_table *t, const struct holders_target *node)
{
	struct pidref ref;
	size_t n = 0;

	if (t->scanner || holders_scan(node, &ref, 1, &n) < 0)
		return true;
	holders_release(&ref, n);
	return n > 0;
}

/*
 * Close events were lost: which of a releasing lease's more files are still
 * open is asked of /proc. Those nobody has are forgotten, and if nobody has
 * the lease's own file but another is open, that one becomes its own, so that
 * the holders scan that follows (end_if_nobody) looks at a file still open.
 * Leases of one file cost nothing here.
 */
static void lease_files_settle(struct lease *l)
{
	bool any = false;

	for (size_t i = 0; i < l->n_files; i++) {
		struct lease_file *lf = &l->files[i];

		if (lf->wd >= 0 && !lease_node_is_open(l->table, &lf->node))
			lease_file_forget(l->table, lf);
		any = any || lf->wd >= 0;
	}
	if (any && !lease_node_is_open(l->table, &l->node)) {
		lease_table_unhash_wd(l->table, l);
		l->wd = -1;
		lease_promote_file(l);
	}
}

/* The largest inotify event: a read that leaves this much room emptied the queue. */
#define LEASE_INOTIFY_EVENT_MAX (sizeof(struct inotify_event) + NAME_MAX + 1)

/*
 * Model: "close" (tests/model/lease.pml, proctype close_watch).
 * Read every queued inotify event. A close of a releasing lease's node ends
 * it; closes while the broker still has its copy cannot be the last one and
 * are ignored. Lost events (overflow) and vanished nodes are resolved by a
 * holders scan in lease_table_process_checks().
 *
 * The queue is empty once a read leaves room for another event: read()
 * returns every queued event that fits, so it reads again only after a
 * full buffer, instead of until EAGAIN (one system call per drain, not two).
 * An event queued after that read is as late as one queued after an EAGAIN:
 * the inotify fd is readable again and lease_table_on_inotify takes it.
 */
static void lease_table_drain(struct lease_table *t, int64_t released)
{
	struct lease *l;

	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	bool overflow = false;

	for (;;) {
		ssize_t n = read(t->inotify_fd, buf, sizeof(buf));

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				log_error_errno(errno, "Failed to read close events: %m");
			break;
		}
		for (char *p = buf; p < buf + n;) {
			const struct inotify_event *ev = (const struct inotify_event *)p;

			p += sizeof(*ev) + ev->len;
			if (ev->mask & IN_Q_OVERFLOW) {
				/* An IN_IGNORED may be among the lost: no idle watch is known live.
				 */
				lease_table_forget_idle_watches(t, -1);
				overflow = true;
				continue;
			}
			l = lease_table_find_wd(t, ev->wd);
			if (!l) {
				if (ev->mask & IN_IGNORED)
					lease_table_forget_idle_watches(t, ev->wd);
				lease_table_file_event(t, ev);
				continue;
			}
			if ((ev->mask & (IN_CLOSE_WRITE | IN_CLOSE_NOWRITE)) &&
			    l->state == LEASE_RELEASING) {
				/* Its more files, if any is open, keep it (lease_file). */
				lease_table_unhash_wd(t, l);
				lease_table_keep_idle_watch(t, l);
				l->wd = -1;
				if (!lease_promote_file(l))
					lease_end(l, l->group == released);
				continue;
			}
			if (ev->mask & IN_IGNORED) {
				/* The node was removed (group gone): no close event will come. */
				lease_table_unhash_wd(t, l);
				l->wd = -1;
				if (l->state == LEASE_RELEASING && lease_promote_file(l))
					continue;
				lease_queue_check(l);
			}
		}
		if (sizeof(buf) - (size_t)n >= LEASE_INOTIFY_EVENT_MAX)
			break;
	}
	if (overflow) {
		log_warning("Close events were lost; checking every releasing lease");
		list_for_each_entry(l, &t->leases, link) if (l->state == LEASE_RELEASING)
		{
			lease_files_settle(l);
			lease_queue_check(l);
			l->end_if_nobody = true;
			/* A named holder may have closed it too: look again. */
			holder_unref_lease(l->holder);
			l->holder = NULL;
			t->generation++;
		}
	}
}

static int lease_table_on_inotify(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct lease_table *t = userdata;

	lease_table_drain(t, -1);
	lease_table_process_checks(t, -1);
	lease_table_flush(t);
	return 0;
}

int lease_table_new(sd_event *e, const struct lease_hooks *hooks, void *userdata,
		    struct lease_table **ret)
{
	struct lease_table *t;
	int r;

	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->event = e;
	list_init(&t->leases);
	list_init(&t->holders);
	t->hooks = *hooks;
	t->userdata = userdata;
	t->scan_tokens_usec = LEASE_SCAN_BURST_USEC;
	t->scan_tokens_at_usec = now_usec(CLOCK_MONOTONIC);
	t->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (t->inotify_fd < 0) {
		r = -errno;
		free(t);
		return r;
	}
	r = sd_event_add_io(e, &t->inotify_source, t->inotify_fd, EPOLLIN, lease_table_on_inotify,
			    t);
	if (r < 0) {
		close(t->inotify_fd);
		free(t);
		return r;
	}
	*ret = t;
	return 0;
}

void lease_table_set_cgroups(struct lease_table *t, struct lease_cgroups *cg)
{
	t->cgroups = cg;
}

void lease_table_set_scanner(struct lease_table *t, struct scanner *s)
{
	t->scanner = s;
}

struct lease_cgroups *lease_table_cgroups(const struct lease_table *t)
{
	return t->cgroups;
}

struct lease_table *lease_table_free(struct lease_table *t)
{
	if (!t)
		return NULL;
	t->hooks = (struct lease_hooks){0};
	t->cgroups = NULL; /* the broker stops: lease cgroups and their processes stay */
	while (!list_is_empty(&t->leases))
		lease_free(container_of(t->leases.next, struct lease, link));
	while (!list_is_empty(&t->holders))
		holder_free(container_of(t->holders.next, struct holder, node));
	sd_event_source_disable_unref(t->scan_timer);
	sd_event_source_disable_unref(t->inotify_source);
	safe_close(t->inotify_fd);
	lease_table_forget_idle_watches(t, -1);
	free(t->changed);
	for (size_t i = 0; i < LEASE_HASH_SIZE; i++)
		while (t->by_uid[i]) {
			struct lease_uid_count *u = t->by_uid[i];

			t->by_uid[i] = u->next;
			free(u);
		}
	free(t);
	return NULL;
}

struct lease *lease_table_find(const struct lease_table *t, uint32_t group)
{
	for (struct lease *l = t->by_group[lease_hash(group)]; l; l = l->group_next)
		if (l->group == group)
			return l;
	return NULL;
}

struct lease *lease_table_first(const struct lease_table *t)
{
	return list_first_entry_or_null(&t->leases, struct lease, link);
}

struct lease *lease_table_next(const struct lease_table *t, const struct lease *l)
{
	return list_entry_or_null(l->link.next, &t->leases, struct lease, link);
}

size_t lease_table_count(const struct lease_table *t)
{
	return t->n_leases;
}

size_t lease_table_count_uid(const struct lease_table *t, uid_t uid)
{
	for (const struct lease_uid_count *u = t->by_uid[lease_hash(uid)]; u; u = u->next)
		if (u->uid == uid)
			return u->n;
	return 0;
}

/*
 * Keep the list ordered by group, so that "leases" lists them in that order,
 * and enter l in the lookup tables. The walk for the place starts at the
 * end, where ascending groups (restore, most hosts' start-up order) go.
 */
static void lease_table_link(struct lease_table *t, struct lease *l)
{
	struct list_node *pos = &t->leases;

	while (pos->prev != &t->leases &&
	       container_of(pos->prev, struct lease, link)->group > l->group)
		pos = pos->prev;
	/* pos is the first lease of a higher group, or the head: then last. */
	list_insert_before(pos, &l->link);
	t->n_leases++;
	l->group_next = t->by_group[lease_hash(l->group)];
	t->by_group[lease_hash(l->group)] = l;
	if (l->wd >= 0)
		lease_table_hash_wd(t, l);
	lease_table_count_add(t, l->uid, +1);
}

/*
 * Record a lease of group held by holder (copied) in state, watching the
 * node through fd. A held lease takes fd as the broker's copy; a releasing
 * one (only ever restored) closes it once the watch is set, and may have no
 * holder (NULL: uid's lease, open only in a process of another uid). The
 * more files (NULL: none) are watched and kept (or closed) as fd is. On
 * failure fd and the more files are left to the caller.
 */
static int lease_table_add(struct lease_table *t, uint32_t group, int fd, const struct stat *st,
			   const struct lease_more_files *more, const struct pidref *holder,
			   uid_t uid, uint64_t start_time, enum lease_state state, const char *rule,
			   const char *devices, uint64_t since_usec, const char *cgroup,
			   struct lease **ret)
{
	struct pidref copy = PIDREF_NULL;
	struct holder *h;
	struct lease *l;
	char path[64];
	bool added = false;
	int r;

	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->table = t;
	l->group = group;
	l->fd = -1;
	l->wd = -1;
	l->devices = strdup(devices ? devices : "");
	l->cgroup = cgroup ? strdup(cgroup) : NULL;
	if (more && more->n > 0)
		l->files = calloc(more->n, sizeof(*l->files));
	if (!l->devices || (cgroup && !l->cgroup) || (more && more->n > 0 && !l->files)) {
		free(l->files);
		free(l->devices);
		free(l->cgroup);
		free(l);
		return -ENOMEM;
	}
	snprintf(l->rule, sizeof(l->rule), "%s", rule ? rule : "");
	holders_target_from_stat(st, &l->node);
	l->since_usec = since_usec;

	/*
	 * The watch may be older than this lease (see lease_free): consume every
	 * close queued before now while no lease has its wd, so that no close of
	 * an earlier open can end this one, and every IN_IGNORED, so that an idle
	 * watch taken here is live (lease_table_take_idle_watch).
	 */
	lease_table_drain(t, -1);
	l->wd = lease_table_take_idle_watch(t, &l->node);
	if (l->wd < 0) {
		/* Watch the very inode we opened, through our descriptor, not a path that may
		 * change. */
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		l->wd = inotify_add_watch(t->inotify_fd, path, IN_CLOSE_WRITE | IN_CLOSE_NOWRITE);
		if (l->wd < 0) {
			r = log_error_errno(errno, "Failed to watch group %u for close: %m", group);
			goto fail;
		}
		added = true;
	}
	for (size_t i = 0; more && i < more->n; i++) {
		struct lease_file *lf = &l->files[i];

		*lf = (struct lease_file){.lease = l, .fd = -1};
		holders_target_from_stat(&more->st[i], &lf->node);
		snprintf(path, sizeof(path), "/proc/self/fd/%d", more->fds[i]);
		lf->wd = inotify_add_watch(t->inotify_fd, path, IN_CLOSE_WRITE | IN_CLOSE_NOWRITE);
		if (lf->wd < 0) {
			r = log_error_errno(
				errno, "Failed to watch a file of group %u for close: %m", group);
			goto fail;
		}
		added = true;
	}
	/* Watches added just now may be older too: the same, for closes queued meanwhile. */
	if (added)
		lease_table_drain(t, -1);
	lease_table_process_checks(t, -1);

	h = holder ? lease_table_find_holder(t, holder) : NULL;
	if (holder && !h) {
		r = pidref_copy(holder, &copy);
		if (r < 0)
			goto fail;
		r = holder_new(t, &copy, uid, &h);
		pidref_done(&copy);
		if (r < 0)
			goto fail;
	}
	if (h && !h->start_time)
		h->start_time = start_time;
	l->state = state;
	if (state == LEASE_HELD)
		l->fd = fd;
	else
		close(fd); /* not the last copy: a process has one, so no close is reported */
	for (size_t i = 0; more && i < more->n; i++) {
		if (state == LEASE_HELD)
			l->files[i].fd = more->fds[i];
		else
			close(more->fds[i]);
		lease_table_hash_file(t, &l->files[i]);
	}
	l->n_files = more ? more->n : 0;
	l->uid = uid;
	if (h)
		lease_set_holder(l, h);
	else
		lease_mark_changed(l);
	lease_table_link(t, l);
	*ret = l;
	return 0;
fail:
	free(l->files);
	free(l->cgroup);
	free(l->devices);
	free(l);
	return r;
}

/* Model: the grant step of "lease" (tests/model/lease.pml), then "save". */
int lease_table_grant(struct lease_table *t, uint32_t group, int fd, const struct stat *st,
		      const struct pidref *holder, uid_t uid, const char *rule, const char *devices,
		      const char *cgroup, struct lease **ret)
{
	return lease_table_grant_files(t, group, fd, st, NULL, holder, uid, rule, devices, cgroup,
				       ret);
}

int lease_table_grant_files(struct lease_table *t, uint32_t group, int fd, const struct stat *st,
			    const struct lease_more_files *more, const struct pidref *holder,
			    uid_t uid, const char *rule, const char *devices, const char *cgroup,
			    struct lease **ret)
{
	int r = lease_table_add(t, group, fd, st, more, holder, uid, 0, LEASE_HELD, rule, devices,
				now_usec(CLOCK_REALTIME), cgroup, ret);

	lease_table_flush(t);
	return r;
}

/* Model: the restore branch of "recover" (tests/model/lease.pml). */
int lease_table_restore(struct lease_table *t, uint32_t group, int fd, const struct stat *st,
			const struct pidref *holder, uid_t uid, uint64_t start_time,
			enum lease_state state, const char *rule, const char *devices,
			uint64_t since_usec, const char *cgroup, struct lease **ret)
{
	return lease_table_restore_files(t, group, fd, st, NULL, holder, uid, start_time, state,
					 rule, devices, since_usec, cgroup, ret);
}

int lease_table_restore_files(struct lease_table *t, uint32_t group, int fd, const struct stat *st,
			      const struct lease_more_files *more, const struct pidref *holder,
			      uid_t uid, uint64_t start_time, enum lease_state state,
			      const char *rule, const char *devices, uint64_t since_usec,
			      const char *cgroup, struct lease **ret)
{
	int r = lease_table_add(t, group, fd, st, more, holder, uid, start_time, state, rule,
				devices, since_usec, cgroup, ret);

	lease_table_flush(t);
	return r;
}

/* Model: "release" (tests/model/lease.pml); the crash point sits between close and flush. */
bool lease_release(struct lease *l, bool requested)
{
	struct lease_table *t = l->table;
	uint32_t group = l->group;

	if (l->state != LEASE_HELD)
		return false;
	if (t->hooks.detach)
		t->hooks.detach(l, t->userdata);
	l->fd = safe_close(l->fd);
	lease_close_files(l);
	l->state = LEASE_RELEASING;
	if (l->wd < 0)
		lease_promote_file(l);
	lease_mark_changed(l);
	/* close() ran the final fput before returning, so a last close is queued already. */
	lease_table_drain(t, requested ? (int64_t)group : -1);
	lease_table_process_checks(t, requested ? (int64_t)group : -1);
	lease_table_flush(t);
	/* Nothing can lease the group again meanwhile, so absent means ended. */
	return lease_table_find(t, group) == NULL;
}

void lease_rescan(struct lease *l)
{
	struct lease_table *t = l->table; /* l may end in the scan */

	if (l->state != LEASE_RELEASING || l->holder)
		return;
	if (now_usec(CLOCK_MONOTONIC) - l->last_scan_usec < LEASE_RESCAN_USEC)
		return;
	lease_check_open(l, false, false);
	lease_table_flush(t);
}

void lease_scan_now(struct lease *l)
{
	struct lease_table *t = l->table;

	if (l->state != LEASE_RELEASING || l->holder)
		return;
	lease_check_open(l, false, false);
	lease_table_flush(t);
}

bool lease_process_belongs(const struct lease *l, const struct pidref *p)
{
	uid_t uid;

	if (l->cgroup && l->table->cgroups)
		return lease_cgroup_contains(l->table->cgroups, l->cgroup, p) > 0;
	return pidref_get_euid(p, &uid) == 0 && uid == l->uid;
}

bool lease_caller_is_holder(const struct lease *l, const struct identity *caller)
{
	if (!l->holder)
		return false;
	/* The request's dispatch found caller alive: a copy of its reference needs no look. */
	if (pidref_same_lineage(&caller->pid, &l->holder->pid) ||
	    pidref_equal(&caller->pid, &l->holder->pid))
		return true;
	if (caller->uid != l->holder->uid)
		return false;
	/* Errors count as "no": fail closed. */
	return pidref_is_descendant(&caller->pid, &l->holder->pid) > 0;
}
