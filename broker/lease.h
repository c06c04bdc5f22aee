/* SPDX-License-Identifier: MIT */
/*
 * The lease table. A lease is one IOMMU group held by one holder process
 * (tracked by pidfd, one exit watch per process shared by its leases) plus
 * the broker's own copy of the group file: the same open file description
 * that was sent to the holder.
 *
 * A lease ends only when that file is really closed. All copies (the
 * broker's, the holder's, a fork child's, one passed on with SCM_RIGHTS)
 * share one open file description, so the kernel reports exactly one
 * IN_CLOSE_* on the node when the last copy goes. When the holder releases
 * or exits, the broker closes its copy and the lease is "releasing" until
 * that event comes; if it does not, /proc is scanned for whoever still has
 * the file and the lease passes to that process if it belongs to the lease
 * (lease_process_belongs). The lease's uid never changes.
 */
#pragma once

#include "broker/holders.h"
#include "broker/identity.h"
#include "broker/log.h"
#include "broker/pidref.h"
#include "common/list.h"
#include "protocol/message.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <systemd/sd-event.h>

struct container;     /* merge.c */
struct lease_cgroups; /* lease_cgroup.h */
struct lease_table;

enum lease_state {
	LEASE_HELD,	 /* the holder has it; the broker keeps its copy */
	LEASE_RELEASING, /* the broker closed its copy; waiting for the last one to go */
};

/* One process holding leases. */
struct holder {
	struct lease_table *table;
	struct list_node node;	 /* in the table's holders */
	struct holder *pid_next; /* in the table's holders by pid */
	struct pidref pid;
	uid_t uid;
	/*
	 * Field 22 of /proc/<pid>/stat (clock ticks since boot): with the pid and
	 * the boot id it names the process in the state file (lease_store.c),
	 * where a pidfd cannot go. 0: not read yet.
	 */
	uint64_t start_time;
	struct exit_watch *exit_watch;
	unsigned n_leases;
	/*
	 * Open connections of the process that point here. A holder without
	 * leases stays while it has some, so that a process leasing again and
	 * again does not set up and tear down a pidfd and its exit watch each time.
	 */
	unsigned n_connections;
	/*
	 * The process's iommufd (-1: none yet): opened for its first cdev lease
	 * and sent again with every later one, so that its cdev leases share one
	 * IOMMU context (what merge is on that path). Closed with the holder.
	 */
	int iommufd;
};

/*
 * One more file of a lease beside its own (fd, wd, node): the cdev path hands
 * out one cdev per endpoint, and such a lease ends only once every one of them
 * is closed everywhere, as a group lease ends at its file's last close. A
 * file counts as open while it is watched (wd >= 0). When the lease's own
 * file closes while others are open, one of them becomes the lease's own
 * (lease_promote_file), so that scans and busy answers follow a file that is
 * still open.
 */
struct lease_file {
	struct lease *lease;
	struct lease_file *wd_next; /* in the table's files by watch descriptor, while wd >= 0 */
	int fd;			    /* the broker's copy; -1 once releasing */
	int wd;			    /* -1: closed everywhere, or its node is gone */
	struct holders_target node;
};

/* Files a lease is granted or restored with besides its own (the cdev path's other cdevs). */
struct lease_more_files {
	const int *fds; /* taken on success */
	const struct stat *st;
	size_t n;
};

struct lease {
	struct lease_table *table;
	struct list_node link;	  /* in the table's leases, ordered by group */
	struct lease *group_next; /* in the table's leases by group */
	struct lease *wd_next;	  /* in the table's leases by watch descriptor, while wd >= 0 */
	uint32_t group;
	enum lease_state state;
	struct holder *holder; /* NULL: releasing, and no process found holding the file */
	uid_t uid;	       /* who leased it: owner and charged for its whole life */
	pid_t pid;	       /* the holder's pid, or the last one known */
	/*
	 * How it was handed out. The group path's file is the group file; the
	 * cdev path's is the cdev of the group's first endpoint (until it
	 * closes: see lease_file), and the other endpoints' are its files.
	 */
	enum vb_lease_path path;
	int fd; /* the broker's copy of the lease's file; -1 once releasing */
	int wd; /* inotify watch on the node; -1 once the node is gone */
	struct holders_target node;
	struct lease_file *files; /* n_files more files (the cdev path); NULL: none */
	size_t n_files;
	char rule[VB_NAME_MAX + 1];
	char *devices;		      /* comma-separated addresses, for logs */
	uint64_t since_usec;	      /* CLOCK_REALTIME */
	uint64_t last_scan_usec;      /* CLOCK_MONOTONIC of the last holders scan */
	struct container *container;  /* owned by merge.c; NULL: not merged */
	char *cgroup;		      /* lease_cgroup.h path; NULL: bound to uid only */
	bool check_pending;	      /* look for remaining holders after the current drain */
	bool end_if_nobody;	      /* ... and end the lease if there are none */
	bool check_deferred;	      /* a check waits for the scan budget (lease.c) */
	struct scanner_job *scan_job; /* its scan in the scanner (scanner.h); NULL: none */
	bool scan_end_if_nobody;      /* ... end_if_nobody for its answer */
	bool scan_again;	      /* ... and a check asked for since it started */
};

/*
 * What the rest of the broker does at lease transitions. All are called
 * from within the lease table; none may add or remove leases.
 */
struct lease_hooks {
	/* The broker is about to close its copy: take the group out of its container. */
	void (*detach)(struct lease *l, void *userdata);
	/* The holder is gone but refs[] still have the file (hard removal kills them). */
	void (*still_open)(struct lease *l, const struct pidref *refs, size_t n, void *userdata);
	/*
	 * The file is closed: the lease is about to be freed. requested: it ended
	 * within the holder's own release request, whose reply says so.
	 */
	void (*ended)(struct lease *l, bool requested, void *userdata);
	/* A holder is about to be freed: drop every pointer to it. */
	void (*holder_freed)(struct holder *h, void *userdata);
	/*
	 * The table changed (a lease granted, restored, released, ended, or
	 * passed to another process, or lease_table_changed()): called once
	 * the transition is complete, so that the state file can be written.
	 * groups[n_groups]: the groups whose leases changed (ended ones too:
	 * no longer in t); all: anything may have changed.
	 */
	void (*changed)(struct lease_table *t, const uint32_t *groups, size_t n_groups, bool all,
			void *userdata);
};

int lease_table_new(sd_event *e, const struct lease_hooks *hooks, void *userdata,
		    struct lease_table **ret);
/*
 * Bind leases to cgroups under cg (borrowed; NULL: to their uid only). What
 * belongs to a lease (lease_process_belongs) follows from it.
 */
void lease_table_set_cgroups(struct lease_table *t, struct lease_cgroups *cg);
struct lease_cgroups *lease_table_cgroups(const struct lease_table *t);
/*
 * Run holders scans in the scanner process s (borrowed; NULL: here, at
 * once, with the broker's own capabilities).
 */
struct scanner;
void lease_table_set_scanner(struct lease_table *t, struct scanner *s);
/* Frees every lease and holder (closing the broker's copies) without calling hooks. */
struct lease_table *lease_table_free(struct lease_table *t);

struct lease *lease_table_find(const struct lease_table *t, uint32_t group);
/* The leases in order of group: the first, and the one after l (NULL at the end). */
struct lease *lease_table_first(const struct lease_table *t);
struct lease *lease_table_next(const struct lease_table *t, const struct lease *l);
size_t lease_table_count(const struct lease_table *t);
/* Leases whose holder (or last known holder) has uid, in any state. */
size_t lease_table_count_uid(const struct lease_table *t, uid_t uid);
/*
 * The holder object of the process p, if it holds anything: one made from a
 * copy of p's reference (no system call: the caller has p alive, or it is a
 * request's own and the request's dispatch checked it), or one with p's pid
 * while both are alive.
 */
struct holder *lease_table_find_holder(const struct lease_table *t, const struct pidref *p);
/* A connection of h's process starts or stops pointing at h (h may be freed by the unref). */
void holder_ref_connection(struct holder *h);
void holder_unref_connection(struct holder *h);

/*
 * lease_table_grant records a new lease of group held by the process
 * holder (copied) with uid: fd is the broker's copy (taken on success), st
 * its stat, cgroup the lease cgroup the holder was placed in (copied; NULL:
 * none). Starts watching the node for the close and the holder for exit.
 * uid owns the lease, and is charged for it, until it ends.
 */
int lease_table_grant(struct lease_table *t, uint32_t group, int fd, const struct stat *st,
		      const struct pidref *holder, uid_t uid, const char *rule, const char *devices,
		      const char *cgroup, struct lease **ret);
/*
 * As lease_table_grant, with more files (NULL: none) that the lease holds
 * besides fd: it ends only when all of them and fd are closed.
 */
int lease_table_grant_files(struct lease_table *t, uint32_t group, int fd, const struct stat *st,
			    const struct lease_more_files *more, const struct pidref *holder,
			    uid_t uid, const char *rule, const char *devices, const char *cgroup,
			    struct lease **ret);

/*
 * lease_table_restore records a lease that a previous broker granted, found
 * again after a restart (lease_store.c): as lease_table_grant, with the
 * lease's original time and state. fd is a copy of the group file taken
 * back from the process holding it (taken on success): a held lease keeps
 * it as the broker's copy; a releasing one only watches the node through it
 * and closes it, as the broker had closed its copy before. A releasing one
 * may have no holder (holder NULL): the file is open only in processes of
 * another uid than the lease's, which never inherit it.
 */
int lease_table_restore(struct lease_table *t, uint32_t group, int fd, const struct stat *st,
			const struct pidref *holder, uid_t uid, uint64_t start_time,
			enum lease_state state, const char *rule, const char *devices,
			uint64_t since_usec, const char *cgroup, struct lease **ret);
/* As lease_table_restore, with more files (NULL: none), as lease_table_grant_files. */
int lease_table_restore_files(struct lease_table *t, uint32_t group, int fd, const struct stat *st,
			      const struct lease_more_files *more, const struct pidref *holder,
			      uid_t uid, uint64_t start_time, enum lease_state state,
			      const char *rule, const char *devices, uint64_t since_usec,
			      const char *cgroup, struct lease **ret);

/*
 * A number that changes whenever a lease is granted, restored or ended, or
 * its holder or pid changes: what list shows of leases is the same while it
 * is.
 */
uint64_t lease_table_generation(const struct lease_table *t);

/* Something outside the table changed what a lease records (its container): save it. */
void lease_table_changed(struct lease_table *t);

/*
 * lease_release closes the broker's copy of a held lease. Returns true when
 * the file was closed at once: the lease has then ended and l is freed.
 * False: the file is still open somewhere; the lease ends when it closes.
 * requested: the holder asked (its reply says whether the lease ended), as
 * opposed to the broker taking the lease back; passed on to the ended hook.
 */
bool lease_release(struct lease *l, bool requested);

/*
 * lease_rescan looks again for the process holding a releasing lease's file
 * when nobody was found before (at most once a second), so that busy
 * replies can name it: later ones, since the answer comes through the
 * scanner (scanner.h). Without a scanner it may find the lease ended (the
 * node gone and nobody holding it): callers look the group up again
 * afterwards.
 */
void lease_rescan(struct lease *l);
/*
 * lease_scan_now looks for who has a releasing lease's file without a
 * holder, whatever the last look's time (a hard removal). The answer comes
 * later, through the still_open hook, or the lease ends.
 */
void lease_scan_now(struct lease *l);

/*
 * Whether the process p belongs to the lease: it is in the lease's cgroup
 * (or below), or, for a lease without one, it has the lease's uid. Only such
 * a process may inherit the lease, and hard removal kills only those; the
 * others holding its file are strays. Errors count as "no".
 */
bool lease_process_belongs(const struct lease *l, const struct pidref *p);

/*
 * Whether caller is the lease's holder process, or a descendant of it with
 * its uid. caller is a request's identity, which dispatch found alive.
 */
bool lease_caller_is_holder(const struct lease *l, const struct identity *caller);

const char *lease_state_to_string(enum lease_state s);

/* The log fields of an event (EVENT=event) about l: its holder, group, devices and rule. */
struct log_fields lease_log_fields(const struct lease *l, const char *event);
