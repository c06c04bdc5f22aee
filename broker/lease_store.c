/* SPDX-License-Identifier: MIT */
#include "broker/lease_store.h"
#include "broker/devnode.h"
#include "broker/holders.h"
#include "broker/inventory.h"
#include "broker/lease_cgroup.h"
#include "broker/log.h"
#include "broker/merge.h"
#include "common/cleanup.h"
#include "common/textbuf.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/kcmp.h>
#include <linux/vfio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438
#endif

#define STATE_FILE   "leases"
#define STATE_TMP    ".leases.tmp"
#define STATE_HEADER "vfio-brokerd leases 2"
/* An older broker's file: one whole table, no transactions. Read, never written. */
#define STATE_HEADER_V1 "vfio-brokerd leases 1"
#define STATE_COMMIT	"commit"
#define STATE_MAX_SIZE	(16 * 1024 * 1024)
#define BOOT_ID_LEN	36
/*
 * The journal is written whole again (compacted) once it holds more records
 * than twice the leases plus JOURNAL_SLACK. A compaction of L leases comes
 * after at least L + JOURNAL_SLACK appended records, each of which added at
 * most one lease: a record costs O(1) amortized, and the file stays under
 * 3L + JOURNAL_SLACK lease lines.
 */
#define JOURNAL_SLACK 64
/* Processes looked at per entry for who has the group file open. */
#define RECOVER_MAX_PIDS 64

struct lease_store {
	int dir_fd;
	char *dir;
	char boot_id[BOOT_ID_LEN + 1];
	int journal_fd;	  /* the state file, open for appending; -1: write it whole next */
	size_t n_records; /* lease and end lines in it */
	/*
	 * The text of the next write, its buffer kept from one write to the next
	 * (common/textbuf.h: with open_memstream() and fprintf, stdio was a third
	 * of a lease+release cycle's instructions, callgrind).
	 */
	struct textbuf out;
};

/* A text this long or longer (a large table written whole) is not kept for the next one. */
#define STORE_OUT_KEEP (64 * 1024)

/* The kernel's id of this boot: pids and start times name processes only within one. */
static int read_boot_id(char ret[BOOT_ID_LEN + 1])
{
	_cleanup_close_ int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
	char buf[64];
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	if (n < 0)
		return -errno;
	if (n < BOOT_ID_LEN)
		return -EBADMSG;
	memcpy(ret, buf, BOOT_ID_LEN);
	ret[BOOT_ID_LEN] = '\0';
	return 0;
}

int lease_store_new(const char *dir, struct lease_store **ret)
{
	struct lease_store *s;
	int r;

	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return log_error_errno(errno, "Failed to create the state directory %s: %m", dir);
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->journal_fd = -1;
	s->out = textbuf_growing();
	s->dir = strdup(dir);
	s->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (!s->dir || s->dir_fd < 0) {
		r = s->dir ? log_error_errno(errno, "Failed to open the state directory %s: %m",
					     dir)
			   : -ENOMEM;
		lease_store_free(s);
		return r;
	}
	r = read_boot_id(s->boot_id);
	if (r < 0) {
		log_error_errno(r, "Failed to read the boot id: %m");
		lease_store_free(s);
		return r;
	}
	*ret = s;
	return 0;
}

struct lease_store *lease_store_free(struct lease_store *s)
{
	if (!s)
		return NULL;
	textbuf_done(&s->out);
	safe_close(s->journal_fd);
	safe_close(s->dir_fd);
	free(s->dir);
	free(s);
	return NULL;
}

/* Field 22 of /proc/<pid>/stat: when the process started, in clock ticks since boot. */
static int read_start_time(const struct pidref *p, uint64_t *ret)
{
	_cleanup_free_ char *stat = NULL;
	char *paren, *tok, *save = NULL;
	unsigned field = 2; /* the "(comm)" ending at paren */
	int r;

	r = pidref_read_proc(p, "stat", 4096, &stat, NULL);
	if (r < 0)
		return r;
	/* comm may hold spaces and parentheses: the fields start after the last ')'. */
	paren = strrchr(stat, ')');
	if (!paren)
		return -EBADMSG;
	for (tok = strtok_r(paren + 1, " ", &save); tok; tok = strtok_r(NULL, " ", &save))
		if (++field == 22) {
			char *end;

			errno = 0;
			*ret = strtoull(tok, &end, 10);
			return errno || *end || end == tok ? -EBADMSG : 0;
		}
	return -EBADMSG;
}

/*
 * Strings go into the file percent-encoded outside [A-Za-z0-9._:,-], so that
 * a rule name (the administrator's text) can hold neither a field separator
 * nor a line break; "-" is the empty string.
 */
static void put_string(struct textbuf *f, const char *s)
{
	static const char hex[] = "0123456789abcdef";

	if (!*s) {
		textbuf_put(f, " -", 2);
		return;
	}
	textbuf_putc(f, ' ');
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (isalnum(c) || strchr("._:,-", c)) {
			textbuf_putc(f, (char)c);
		} else {
			char esc[3] = {'%', hex[c >> 4], hex[c & 15]};

			textbuf_put(f, esc, sizeof(esc));
		}
	}
}

static int get_string(const char *in, char *out, size_t size)
{
	size_t n = 0;

	if (strcmp(in, "-") == 0) {
		out[0] = '\0';
		return 0;
	}
	for (; *in; in++) {
		unsigned v;

		if (n + 1 >= size)
			return -EBADMSG;
		if (*in == '%') {
			if (sscanf(in + 1, "%2x", &v) != 1 || !isxdigit((unsigned char)in[1]) ||
			    !isxdigit((unsigned char)in[2]) || v == 0)
				return -EBADMSG;
			out[n++] = (char)v;
			in += 2;
		} else {
			out[n++] = *in;
		}
	}
	out[n] = '\0';
	return 0;
}

/* One line per lease; see lease_store_parse_line() for the fields. */
static void put_lease(struct textbuf *f, const struct lease *l)
{
	const struct holder *h = l->holder;
	const uint64_t numbers[] = {
		h ? h->start_time : 0,	l->uid,	      l->since_usec, container_id(l->container),
		l->node.is_chr ? 1 : 0, l->node.rdev, l->node.dev,   l->node.ino,
	};

	textbuf_puts(f, "lease ");
	textbuf_u64(f, l->group);
	textbuf_putc(f, ' ');
	textbuf_puts(f, lease_state_to_string(l->state));
	textbuf_putc(f, ' ');
	textbuf_i64(f, h ? h->pid.pid : 0);
	for (size_t i = 0; i < sizeof(numbers) / sizeof(numbers[0]); i++) {
		textbuf_putc(f, ' ');
		textbuf_u64(f, numbers[i]);
	}
	put_string(f, l->rule);
	put_string(f, l->devices);
	put_string(f, l->cgroup ? l->cgroup : "");
	/* Group leases' lines are what they were; a cdev lease's file is its first cdev. */
	if (l->path == VB_PATH_CDEV)
		textbuf_puts(f, " cdev");
	textbuf_putc(f, '\n');
}

/* Start the text of the next write in s->out, which it overwrites. */
static struct textbuf *store_text_begin(struct lease_store *s)
{
	textbuf_reset(&s->out);
	return &s->out;
}

/* End it: the text is s->out.buf, s->out.len bytes. -ENOMEM when it could not be written. */
static int store_text_end(struct lease_store *s)
{
	if (!s->out.full)
		return 0;
	textbuf_done(&s->out);
	return -ENOMEM;
}

/* After the write: let go of a large text's buffer. */
static void store_text_done(struct lease_store *s)
{
	if (s->out.size >= STORE_OUT_KEEP)
		textbuf_done(&s->out);
}

/* l's line, as it is now; reads a new holder's start time on the way (through its pidfd). */
static void put_record(struct textbuf *f, struct lease *l)
{
	struct holder *h = l->holder;

	if (h && !h->start_time) {
		int r = read_start_time(&h->pid, &h->start_time);

		/* Gone already: its exit is being reported; the entry would be dropped. */
		if (r < 0 && r != -ESRCH)
			log_warning_errno(r, "Failed to read the start time of pid %d: %m",
					  (int)h->pid.pid);
	}
	put_lease(f, l);
}

/*
 * Model: "save" (tests/model/lease.pml) when a transition rewrites the whole
 * table: one step, thanks to the dance below.
 */
int lease_store_save(struct lease_store *s, struct lease_table *t)
{
	_cleanup_close_ int fd = -1;
	size_t n_records = 0;
	struct textbuf *f;
	ssize_t n;
	int r;

	/* Until the new file is in place, nothing is appended to the old one. */
	s->journal_fd = safe_close(s->journal_fd);
	f = store_text_begin(s);
	textbuf_puts(f, STATE_HEADER "\nboot ");
	textbuf_puts(f, s->boot_id);
	textbuf_putc(f, '\n');
	for (struct lease *l = lease_table_first(t); l; l = lease_table_next(t, l), n_records++)
		put_record(f, l);
	textbuf_puts(f, STATE_COMMIT "\n");
	if (store_text_end(s) < 0)
		return log_error_errno(ENOMEM, "Failed to save the lease table: %m");

	/*
	 * The new table goes to a new file; the old one is unlinked and the new
	 * one renamed into its place. Between the two only the new file exists,
	 * complete, and lease_store_recover() reads it then: every moment has
	 * one whole table. Not a rename over the old file: on ext4 that forces
	 * the new file's data out to disk (auto_da_alloc): 2.6-3.4 ms a
	 * lease+release cycle instead of 0.3-0.9 ms, measured; and for nothing: a killed
	 * broker leaves the page cache behind, and after a crash of the machine
	 * the file is void anyway (another boot id). For the same reason, no
	 * fsync. The descriptor stays open: the journal goes on in this file.
	 */
	fd = openat(s->dir_fd, STATE_TMP,
		    O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return log_error_errno(errno, "Failed to write %s/%s: %m", s->dir, STATE_TMP);
	n = write(fd, s->out.buf, s->out.len);
	r = n < 0 ? -errno : (size_t)n != s->out.len ? -EIO : 0;
	store_text_done(s);
	if (r < 0)
		return log_error_errno(r, "Failed to write %s/%s: %m", s->dir, STATE_TMP);
	if (unlinkat(s->dir_fd, STATE_FILE, 0) < 0 && errno != ENOENT)
		return log_error_errno(errno, "Failed to replace %s/%s: %m", s->dir, STATE_FILE);
	if (renameat(s->dir_fd, STATE_TMP, s->dir_fd, STATE_FILE) < 0)
		return log_error_errno(errno, "Failed to replace %s/%s: %m", s->dir, STATE_FILE);
	s->journal_fd = TAKE_FD(fd);
	s->n_records = n_records;
	return 0;
}

/*
 * Model: "save" (tests/model/lease.pml): one step, as the model has it,
 * because a transaction is one write() that ends with its commit line, and
 * replay ignores a transaction without one (cut short by a kill -9).
 *
 * A journal, not one save per batch of requests: a batch's save would still
 * write every lease (O(leases) per wake-up, and per request when requests
 * come one at a time to a host holding many leases), and it would have to
 * hold back every reply of the batch until then. Here the cost of a change
 * is its own lines and one write(), whatever the table holds, and the write
 * comes before the reply as it always did.
 */
int lease_store_record(struct lease_store *s, struct lease_table *t, const uint32_t *groups,
		       size_t n_groups, bool all)
{
	struct textbuf *f;
	ssize_t n;
	int r;

	if (all || s->journal_fd < 0 ||
	    s->n_records + n_groups > 2 * lease_table_count(t) + JOURNAL_SLACK)
		return lease_store_save(s, t);
	if (n_groups == 0)
		return 0;
	f = store_text_begin(s);
	for (size_t i = 0; i < n_groups; i++) {
		struct lease *l = lease_table_find(t, groups[i]);

		if (l) {
			put_record(f, l);
		} else {
			textbuf_puts(f, "end ");
			textbuf_u64(f, groups[i]);
			textbuf_putc(f, '\n');
		}
	}
	textbuf_puts(f, STATE_COMMIT "\n");
	if (store_text_end(s) < 0)
		return log_error_errno(ENOMEM, "Failed to save the lease table: %m");
	n = write(s->journal_fd, s->out.buf, s->out.len);
	r = n < 0 ? -errno : (size_t)n != s->out.len ? -EIO : 0;
	store_text_done(s);
	if (r < 0) {
		log_error_errno(r, "Failed to append to %s/%s: %m; writing it anew", s->dir,
				STATE_FILE);
		/* A torn transaction is never committed; the whole table replaces it. */
		return lease_store_save(s, t);
	}
	s->n_records += n_groups;
	return 0;
}

/* One lease as the state file records it. */
struct stored_lease {
	uint32_t group;
	enum lease_state state;
	pid_t pid;
	uint64_t start_time;
	uid_t uid;
	uint64_t since_usec;
	uint32_t container;
	struct holders_target node;
	char rule[VB_NAME_MAX + 1];
	char devices[1024];
	char cgroup[1024]; /* "": none (or a file written before leases had cgroups) */
	enum vb_lease_path path;
};

/*
 * "lease GROUP STATE PID START UID SINCE CONTAINER IS_CHR RDEV DEV INO RULE DEVICES
 * CGROUP [cdev]": STATE is held or releasing, PID 0 when no holder was known, START
 * field 22 of its /proc stat, SINCE the grant in CLOCK_REALTIME microseconds,
 * CGROUP the lease's cgroup under the root (lease_cgroup.h); a line without
 * it (an older broker's) has none. A trailing "cdev" marks a lease of the
 * cdev path, whose DEV/INO/RDEV name its own file: the cdev of the group's
 * first endpoint, or another endpoint's once that one closed (lease_file).
 */
static int lease_store_parse_line(char *line, struct stored_lease *ret)
{
	/* As long as %3072s reads; get_string() then checks what fits. */
	char state[16], rule[3073], devices[3073], cgroup[3073] = "-", path[16] = "";
	uintmax_t rdev, dev, ino;
	unsigned uid;
	int is_chr, pid, n = 0, k;

	*ret = (struct stored_lease){0};
	k = sscanf(line,
		   "lease %" SCNu32 " %15s %d %" SCNu64 " %u %" SCNu64 " %" SCNu32
		   " %d %ju %ju %ju %3072s %3072s%n %3072s%n %15s%n",
		   &ret->group, state, &pid, &ret->start_time, &uid, &ret->since_usec,
		   &ret->container, &is_chr, &rdev, &dev, &ino, rule, devices, &n, cgroup, &n, path,
		   &n);
	if (k < 13 || line[n] != '\0' || pid < 0)
		return -EBADMSG;
	if (k == 15 && strcmp(path, "cdev") != 0)
		return -EBADMSG;
	ret->path = k == 15 ? VB_PATH_CDEV : VB_PATH_GROUP;
	if (get_string(cgroup, ret->cgroup, sizeof(ret->cgroup)) < 0)
		return -EBADMSG;
	if (strcmp(state, "held") == 0)
		ret->state = LEASE_HELD;
	else if (strcmp(state, "releasing") == 0)
		ret->state = LEASE_RELEASING;
	else
		return -EBADMSG;
	ret->pid = (pid_t)pid;
	ret->uid = (uid_t)uid;
	ret->node = (struct holders_target){
		.is_chr = is_chr != 0, .rdev = (dev_t)rdev, .dev = (dev_t)dev, .ino = (ino_t)ino};
	if (get_string(rule, ret->rule, sizeof(ret->rule)) < 0 ||
	    get_string(devices, ret->devices, sizeof(ret->devices)) < 0)
		return -EBADMSG;
	return 0;
}

static bool target_matches(const struct holders_target *a, const struct holders_target *b)
{
	if (a->is_chr != b->is_chr)
		return false;
	return a->is_chr ? a->rdev == b->rdev : a->dev == b->dev && a->ino == b->ino;
}

static bool stat_matches(const struct holders_target *t, const struct stat *st)
{
	struct holders_target x;

	holders_target_from_stat(st, &x);
	return target_matches(t, &x);
}

static bool statx_matches(const struct holders_target *t, const struct statx *sx)
{
	if (t->is_chr)
		return S_ISCHR(sx->stx_mode) &&
		       makedev(sx->stx_rdev_major, sx->stx_rdev_minor) == t->rdev;
	return !S_ISCHR(sx->stx_mode) && makedev(sx->stx_dev_major, sx->stx_dev_minor) == t->dev &&
	       sx->stx_ino == t->ino;
}

/*
 * The callback of take_target_fds: fd is a copy of one of the process's
 * descriptors of the target, and st its stat after the take; fd is the
 * callback's to keep or close. 0 walks on; anything else ends the walk.
 */
typedef int (*take_fd_fn)(int fd, const struct stat *st, void *userdata);

/*
 * take_target_fds walks /proc/PID/fd of process p and hands fn a copy of
 * each descriptor that is target, taken with pidfd_getfd(), so the copy is
 * p's very open file description. Which descriptors are target is read from
 * cached attributes only, as holders.c does (never wait on a hostile FUSE
 * server), and checked again on the copy: a descriptor may be closed and
 * reused between the two. Returns what fn returned if it ended the walk;
 * else 0 if fn was given a copy; else the error of the last descriptor that
 * could not be taken, or -ENOENT when p has none of target. -ESRCH: p is
 * gone; -EOPNOTSUPP: p has no pidfd (valgrind has no pidfd_open), so no
 * pidfd_getfd either.
 */
static int take_target_fds(const struct pidref *p, const struct holders_target *target,
			   take_fd_fn fn, void *userdata)
{
	_cleanup_closedir_ DIR *d = NULL;
	bool given = false;
	char path[64];
	struct dirent *de;
	int r = -ENOENT;

	if (!p->is_pidfd)
		return -EOPNOTSUPP;
	snprintf(path, sizeof(path), "/proc/%d/fd", (int)p->pid);
	d = opendir(path);
	if (!d)
		return errno == ENOENT ? -ESRCH : -errno;
	while ((de = readdir(d))) {
		struct statx sx;
		struct stat st;
		char *end;
		long n;
		int fd, k;

		if (de->d_name[0] == '.')
			continue;
		errno = 0;
		n = strtol(de->d_name, &end, 10);
		if (errno || *end || n < 0 || n > INT32_MAX)
			continue;
		k = statx(dirfd(d), de->d_name, AT_STATX_DONT_SYNC, STATX_TYPE | STATX_INO, &sx);
		if (k < 0 || !statx_matches(target, &sx))
			continue;
		fd = (int)syscall(SYS_pidfd_getfd, p->fd, (int)n, 0);
		if (fd < 0) {
			r = -errno;
			continue;
		}
		if (fstat(fd, &st) < 0 || !stat_matches(target, &st)) {
			close(fd);
			continue;
		}
		given = true;
		k = fn(fd, &st, userdata);
		if (k != 0)
			return k;
	}
	return given ? 0 : r;
}

struct taken_file {
	int fd;
	struct stat st;
};

static int take_first(int fd, const struct stat *st, void *userdata)
{
	struct taken_file *t = userdata;

	t->fd = fd;
	t->st = *st;
	return 1;
}

/*
 * A copy of the group file (target) from process p: the first of its
 * descriptors that is target (the kernel allows one open file per group).
 * Errors as take_target_fds.
 */
static int take_group_file(const struct pidref *p, const struct holders_target *target, int *ret_fd,
			   struct stat *ret_st)
{
	struct taken_file t = {.fd = -1};
	int r;

	r = take_target_fds(p, target, take_first, &t);
	if (r < 0)
		return r;
	*ret_fd = t.fd;
	*ret_st = t.st;
	return 0;
}

/* Log that the entry of group is dropped, and why (a sentence without the group). */
static void log_dropped(const struct stored_lease *e, const char *why)
{
	struct log_fields f = LOG_FIELDS("restore-drop");

	f.group = e->group;
	f.uid = e->uid;
	f.pid = e->pid;
	f.rule = e->rule[0] ? e->rule : NULL;
	f.devices = e->devices;
	log_event(LOG_NOTICE, &f, "Dropped the stored lease of group %u (pid %d, uid %u): %s",
		  e->group, (int)e->pid, (unsigned)e->uid, why);
}

/*
 * Whether the group the entry names is still the one the kernel has: its
 * node is the same file (a re-created group has a new device number, or a
 * new inode in a simulated tree) and it has the same devices. For a cdev
 * lease the node is one of its endpoints' cdevs (the first, or one still
 * open when the first closed: lease_file), and the others' go to more
 * (at most VB_MAX_CDEV_DEVICES), *n_more of them.
 */
static bool recover_check_group(struct broker *b, const struct stored_lease *e,
				struct holders_target *more, size_t *n_more)
{
	char cdevs[VB_MAX_CDEV_DEVICES][16];
	struct inventory_group *g = NULL;
	char devices[1024];
	size_t n_cdevs = 0;
	bool same = false;
	struct stat st;

	*n_more = 0;
	if (inventory_read_group(b->inventory, e->group, &g) < 0) {
		log_dropped(e, "the group is gone");
		return false;
	}
	inventory_group_format_devices(g, devices, sizeof(devices));
	if (e->path == VB_PATH_CDEV)
		inventory_group_read_cdevs(b->inventory, g);
	for (size_t i = 0; i < g->n_devices && n_cdevs < VB_MAX_CDEV_DEVICES; i++)
		if (!inventory_device_is_bridge(&g->devices[i]) && g->devices[i].cdev[0])
			memcpy(cdevs[n_cdevs++], g->devices[i].cdev, sizeof(cdevs[0]));
	inventory_group_free(g);
	if (strcmp(devices, e->devices) != 0) {
		log_dropped(e, "the group has other devices now: it was re-created");
		return false;
	}
	if (e->path == VB_PATH_CDEV) {
		for (size_t i = 0; i < n_cdevs; i++) {
			struct holders_target node;

			if (devnode_stat_device_cdev(b->inventory, cdevs[i], &st) < 0)
				continue;
			holders_target_from_stat(&st, &node);
			if (!same && target_matches(&e->node, &node))
				same = true;
			else
				more[(*n_more)++] = node;
		}
		if (!same) {
			log_dropped(e, "no device of it has that VFIO cdev any more: the group was "
				       "re-created");
			*n_more = 0;
		}
		return same;
	}
	if (devnode_stat_group(b->inventory, e->group, &st) < 0) {
		log_dropped(e, "the group has no device node any more");
		return false;
	}
	same = stat_matches(&e->node, &st);
	if (!same)
		log_dropped(e, "its device node is another file now: the group was re-created");
	return same;
}

/*
 * The cdev path's more files of a restored lease: each other endpoint's cdev
 * (more), taken back from the lease's holder p if it has it, else from the
 * first process that does. One nobody has is closed everywhere: it no longer
 * keeps the lease. What was taken goes to fds and st; returns how many.
 */
static size_t recover_take_more(const struct holders_target *more, size_t n_more,
				const struct pidref *p, int *fds, struct stat *st)
{
	size_t n = 0;

	for (size_t i = 0; i < n_more; i++) {
		struct pidref refs[RECOVER_MAX_PIDS];
		size_t n_refs = 0;
		int fd = -1;

		if (pidref_is_set(p) && take_group_file(p, &more[i], &fd, &st[n]) == 0) {
			fds[n++] = fd;
			continue;
		}
		if (holders_scan(&more[i], refs, RECOVER_MAX_PIDS, &n_refs) < 0)
			continue;
		for (size_t k = 0; k < n_refs && fd < 0; k++)
			if (take_group_file(&refs[k], &more[i], &fd, &st[n]) < 0)
				fd = -1;
		holders_release(refs, n_refs);
		if (fd >= 0)
			fds[n++] = fd;
	}
	return n;
}

/*
 * The holder the entry names, if that very process is alive: same pid and
 * same start time (another start time is a reused pid). Otherwise why not,
 * in why (a sentence without the group).
 */
static int recover_holder(const struct stored_lease *e, struct pidref *ret, char *why, size_t size)
{
	struct pidref p = PIDREF_NULL;
	uint64_t start;
	int r;

	if (e->pid <= 0) {
		snprintf(why, size, "no holder was known");
		return -ESRCH;
	}
	r = pidref_set_pid(&p, e->pid);
	if (r == 0)
		r = read_start_time(&p, &start);
	if (r == -ESRCH || r == -ENOENT) {
		pidref_done(&p);
		snprintf(why, size, "its holder exited while the broker was down");
		return -ESRCH;
	}
	if (r < 0) {
		pidref_done(&p);
		snprintf(why, size, "its holder's start time cannot be read");
		return r;
	}
	if (start != e->start_time) {
		pidref_done(&p);
		snprintf(why, size,
			 "pid %d is another process now (started at tick %" PRIu64 ", not %" PRIu64
			 "): the pid was reused",
			 (int)e->pid, start, e->start_time);
		return -ESRCH;
	}
	*ret = p;
	return 0;
}

/* Who the restored lease goes to, and how. */
enum recover_way {
	RECOVER_AS_RECORDED, /* the recorded holder, or a child of it with its uid, has the file */
	RECOVER_HEIR,	     /* the holder cannot be taken; a process of the lease's uid has it */
	RECOVER_STRANGER,    /* only processes of another uid have it: no holder */
};

/*
 * Whether p belongs to the restored lease, as lease_process_belongs says of
 * a lease in the table: it is in the lease's cgroup, or of its uid when the
 * lease has none.
 */
static bool recover_belongs(struct lease_cgroups *cg, const char *cgroup, uid_t uid,
			    const struct pidref *p)
{
	uid_t u;

	if (cgroup)
		return lease_cgroup_contains(cg, cgroup, p) > 0;
	return pidref_get_euid(p, &u) == 0 && u == uid;
}

/*
 * Model: "recover", one entry (tests/model/lease.pml).
 * Restore one entry, or drop it with the reason. The broker takes its copy
 * of the group file back from a process that has it (pidfd_getfd), and
 * gives the lease to, in this order:
 * - the recorded holder, alive (same start time), if it or a descendant of
 *   it with the lease's uid (a child it forked) has the file: as recorded;
 * - else the first process that belongs to the lease (in its cgroup, or of
 *   its uid without one) and has the file: it inherits the lease,
 *   releasing, as lease_check_open would have given it to it had the
 *   broker been running (the holder exited while the broker was down, or
 *   its pid was reused);
 * - else, if only processes outside the lease have the file, nobody: the
 *   lease is restored releasing with no holder, so that the group stays
 *   busy until the file is closed and is never granted to a second
 *   process; a lease never moves to another uid.
 * With nobody having the file (released while the broker was down), or no
 * pidfd_getfd, the entry is dropped.
 */
static int recover_one(struct broker *b, const struct stored_lease *e)
{
	struct lease_cgroups *cgroups = lease_table_cgroups(b->leases);
	struct holders_target more[VB_MAX_CDEV_DEVICES];
	int more_fds[VB_MAX_CDEV_DEVICES];
	struct stat more_st[VB_MAX_CDEV_DEVICES];
	size_t n_more = 0, n_more_fds = 0;
	const char *cgroup = NULL;
	_cleanup_close_ int fd = -1;
	struct pidref holder = PIDREF_NULL, heir = PIDREF_NULL;
	struct pidref refs[RECOVER_MAX_PIDS];
	enum recover_way way = RECOVER_AS_RECORDED;
	enum lease_state state = e->state;
	uint64_t start_time = e->start_time;
	char why[192], gone[160] = "";
	uid_t stranger_uid = 0;
	struct log_fields f;
	struct lease *l;
	struct stat st;
	size_t n = 0;
	int r;

	if (lease_table_find(b->leases, e->group)) {
		log_dropped(e, "the file names the group twice");
		return -EEXIST;
	}
	if (!recover_check_group(b, e, more, &n_more))
		return -ESTALE;
	if (e->cgroup[0] && cgroups && lease_cgroup_exists(cgroups, e->cgroup))
		cgroup = e->cgroup;
	else if (e->cgroup[0])
		log_warning("The cgroup %s of group %u's lease is gone (or this broker has another "
			    "cgroup root): the lease is bound to uid %u only",
			    e->cgroup, e->group, (unsigned)e->uid);
	r = holders_scan(&e->node, refs, RECOVER_MAX_PIDS, &n);
	if (r < 0) {
		log_dropped(e, "the processes holding the group cannot be listed");
		return r;
	}

	r = -ENOENT;
	if (recover_holder(e, &holder, gone, sizeof(gone)) == 0) {
		for (size_t i = 0; i < n && fd < 0; i++) {
			uid_t uid;

			/* The scan's references were alive after their fds were read. */
			if (pidref_equal(&refs[i], &holder))
				r = take_group_file(&holder, &e->node, &fd, &st);
			else if (pidref_get_euid(&refs[i], &uid) == 0 && uid == e->uid &&
				 pidref_is_descendant(&refs[i], &holder) > 0)
				r = take_group_file(&refs[i], &e->node, &fd, &st);
		}
	}
	if (fd < 0 && n > 0 && !gone[0])
		snprintf(gone, sizeof(gone), "neither its holder nor a child of it has the file");
	for (size_t i = 0; i < n && fd < 0; i++) {
		if (!recover_belongs(cgroups, cgroup, e->uid, &refs[i]))
			continue;
		r = take_group_file(&refs[i], &e->node, &fd, &st);
		if (fd < 0)
			continue;
		r = pidref_copy(&refs[i], &heir);
		if (r == 0)
			r = read_start_time(&heir, &start_time);
		if (r == 0) {
			way = RECOVER_HEIR;
		} else {
			fd = safe_close(fd);
			pidref_done(&heir);
		}
	}
	for (size_t i = 0; i < n && fd < 0; i++) {
		if (pidref_get_euid(&refs[i], &stranger_uid) < 0 ||
		    recover_belongs(cgroups, cgroup, e->uid, &refs[i]))
			continue;
		r = take_group_file(&refs[i], &e->node, &fd, &st);
		if (fd >= 0)
			way = RECOVER_STRANGER;
	}
	if (fd < 0) {
		if (n == 0)
			snprintf(why, sizeof(why),
				 "%s%snobody has the group file open any more (released while "
				 "the broker was down)",
				 gone, gone[0] ? ", and " : "");
		else
			snprintf(why, sizeof(why),
				 "%s, and its file cannot be taken back from the processes that "
				 "have it (%s); the kernel refuses other opens until it is closed",
				 gone, r == -EOPNOTSUPP ? "no pidfd_getfd here" : strerror(-r));
		log_dropped(e, why);
		r = -ENOENT;
		goto out;
	}

	if (way != RECOVER_AS_RECORDED) {
		state = LEASE_RELEASING; /* the holder is gone: the broker keeps no copy */
		pidref_done(&holder);
		holder = heir;
		heir = PIDREF_NULL;
	}
	n_more_fds = recover_take_more(more, n_more, &holder, more_fds, more_st);
	r = lease_table_restore_files(
		b->leases, e->group, fd, &st,
		&(struct lease_more_files){.fds = more_fds, .st = more_st, .n = n_more_fds},
		way == RECOVER_STRANGER ? NULL : &holder, e->uid, start_time, state, e->rule,
		e->devices, e->since_usec, cgroup, &l);
	if (r < 0) {
		log_dropped(e, "it could not be recorded");
		goto out;
	}
	TAKE_FD(fd);
	n_more_fds = 0; /* the lease has them */
	l->path = e->path;
	/* A releasing lease is in no container: the broker unsets it before closing its copy. */
	if (e->container && state == LEASE_HELD &&
	    containers_restore_lease(b->containers, l, e->container) < 0)
		log_warning("Could not put the lease of group %u back into container %u", l->group,
			    e->container);
	switch (way) {
	case RECOVER_AS_RECORDED:
		f = lease_log_fields(l, "restore");
		f.rule = l->rule[0] ? l->rule : NULL;
		log_event(LOG_INFO, &f,
			  "Restored the lease of group %u: %s by pid %d (uid %u), rule %s, "
			  "container %u",
			  l->group, lease_state_to_string(l->state), (int)l->pid, (unsigned)l->uid,
			  l->rule[0] ? l->rule : "(none)", container_id(l->container));
		break;
	case RECOVER_HEIR:
		f = lease_log_fields(l, "inherit");
		f.rule = l->rule[0] ? l->rule : NULL;
		log_event(LOG_INFO, &f,
			  "Restored the lease of group %u to pid %d (uid %u), which has its file: "
			  "inherited from pid %d (%s); rule %s",
			  l->group, (int)l->pid, (unsigned)l->uid, (int)e->pid, gone,
			  l->rule[0] ? l->rule : "(none)");
		break;
	case RECOVER_STRANGER:
		f = lease_log_fields(l, "restore-stranger");
		f.rule = l->rule[0] ? l->rule : NULL;
		log_event(
			LOG_WARNING, &f,
			"Restored the lease of group %u (uid %u) with no holder: its file is open "
			"only in processes outside the lease (uid %u), which never inherit it "
			"(%s); the group stays busy until that file is closed",
			l->group, (unsigned)l->uid, (unsigned)stranger_uid, gone);
		break;
	}
out:
	for (size_t i = 0; i < n_more_fds; i++)
		close(more_fds[i]);
	holders_release(refs, n);
	pidref_done(&holder);
	pidref_done(&heir);
	return r;
}

/*
 * Keeps the first copy in *userdata (an fd, -1 at first) and closes every
 * later one that is the same open file (kcmp); another open file ends the
 * walk with -ENOTUNIQ.
 */
static int take_one_open_file(int fd, const struct stat *st, void *userdata)
{
	int *found = userdata;
	int r;

	(void)st;
	if (*found < 0) {
		*found = fd;
		return 0;
	}
	/* Two descriptors of one open file are one iommufd; two open files are two. */
	r = (int)syscall(SYS_kcmp, getpid(), getpid(), KCMP_FILE, *found, fd);
	close(fd);
	if (r != 0)
		return r < 0 ? -errno : -ENOTUNIQ;
	return 0;
}

/*
 * The iommufd the broker gave process p before it restarted, taken back with
 * pidfd_getfd into *ret_fd: p's descriptors of <dev>/iommu (target), which
 * must all be one open file (kcmp), one the broker set up (per-process
 * accounting, devnode_iommufd_is_brokers). -ENOENT: p has none; -ENOTUNIQ:
 * it has several, and which the broker gave cannot be told; -EPERM: not one
 * the broker set up; other errors as take_target_fds.
 */
static int take_iommufd(const struct pidref *p, const struct holders_target *target, int *ret_fd)
{
	_cleanup_close_ int found = -1;
	int r;

	r = take_target_fds(p, target, take_one_open_file, &found);
	if (r < 0)
		return r;
	r = devnode_iommufd_is_brokers(found);
	if (r <= 0)
		return r < 0 ? r : -EPERM;
	*ret_fd = TAKE_FD(found);
	return 0;
}

/*
 * One holder's cdev leases share one iommufd, which the broker keeps while
 * the holder lives (struct holder): after a restart it is taken back from
 * each holder of a restored cdev lease, so that the holder's next cdev lease
 * is sent the same one again (iommufd_reused). Where it cannot be taken
 * (take_iommufd), the next lease gets a new one and its reply says so.
 */
static void recover_iommufds(struct broker *b)
{
	struct holders_target target;
	struct stat st;
	int r;

	r = devnode_stat_iommu(b->inventory, &st);
	if (r < 0)
		return;
	holders_target_from_stat(&st, &target);
	for (struct lease *l = lease_table_first(b->leases); l;
	     l = lease_table_next(b->leases, l)) {
		struct holder *h = l->holder;
		int fd = -1;

		if (l->path != VB_PATH_CDEV || !h || h->iommufd >= 0)
			continue;
		r = take_iommufd(&h->pid, &target, &fd);
		if (r == 0) {
			h->iommufd = fd;
			log_info("Took back the iommufd of pid %d (uid %u): its next cdev lease "
				 "shares it again",
				 (int)h->pid.pid, (unsigned)h->uid);
		} else if (r != -ENOENT) {
			log_notice(
				"Could not take back the iommufd of pid %d (uid %u): %s; its next "
				"cdev lease gets a new one",
				(int)h->pid.pid, (unsigned)h->uid,
				r == -ENOTUNIQ ? "it has several, and which one the broker "
						 "gave cannot be told"
				: r == -EPERM  ? "the one it has was not set up by the broker "
						 "(its accounting is not per process)"
					       : strerror(-r));
		}
	}
}

/*
 * Whether the kernel has the group of fd (the broker's copy) in a
 * container: 1 or 0, or -errno when it cannot tell (ENOTTY: a group file
 * of the simulated tree, which takes no VFIO ioctl).
 */
static int group_in_container(int fd)
{
	struct vfio_group_status status = {.argsz = sizeof(status)};

	if (ioctl(fd, VFIO_GROUP_GET_STATUS, &status) < 0)
		return -errno;
	return (status.flags & VFIO_GROUP_FLAGS_CONTAINER_SET) ? 1 : 0;
}

/*
 * Model: the container check of "recover" (tests/model/lease.pml).
 * The broker may have died between a merge's, an unmerge's or a release's
 * VFIO_GROUP_SET_CONTAINER or VFIO_GROUP_UNSET_CONTAINER and the save after
 * it: correct each restored held lease's container to the kernel's. A
 * group in a container it was not recorded in gets a restored container of
 * its own (the broker cannot name the kernel's, so merging into it is
 * refused as for every restored container); a group recorded in a
 * container but in none is restored not merged. Where the kernel cannot
 * tell, the record stands. Runs after every entry is restored, so that the
 * new ids are above every recorded one.
 */
static void recover_check_containers(struct broker *b)
{
	for (struct lease *l = lease_table_first(b->leases); l;
	     l = lease_table_next(b->leases, l)) {
		uint32_t recorded = container_id(l->container);
		struct log_fields f;
		int k;

		if (l->state != LEASE_HELD || l->fd < 0 || l->path != VB_PATH_GROUP)
			continue;
		k = group_in_container(l->fd);
		if (k < 0) {
			if (recorded)
				log_internal(LOG_INFO, k,
					     "Cannot ask the kernel whether group %u is in a "
					     "container (%m); keeping the record: container %u",
					     l->group, recorded);
			continue;
		}
		if (k == 0 && recorded) {
			containers_forget_lease(l);
			f = lease_log_fields(l, "restore-container");
			log_event(LOG_NOTICE, &f,
				  "Group %u was recorded in container %u, but the kernel has it in "
				  "none (the broker died between an unset and its save): restored "
				  "not merged",
				  l->group, recorded);
		} else if (k == 1 && !recorded) {
			if (containers_restore_unnamed(b->containers, l) < 0) {
				log_warning("Could not record the container of group %u", l->group);
				continue;
			}
			f = lease_log_fields(l, "restore-container");
			log_event(LOG_NOTICE, &f,
				  "Group %u is in a container the broker did not record (it died "
				  "between a merge and its save): restored in container %u of its "
				  "own, which cannot be merged into",
				  l->group, container_id(l->container));
		}
	}
}

/* One line of the journal, kept for replay. */
struct stored_record {
	uint32_t group;
	size_t seq;	 /* its place in the file */
	unsigned lineno; /* for the log */
	char *line;	 /* a lease line; NULL: the lease ended ("end GROUP") */
	bool malformed;
};

/* By group, then in file order: the last of a group is what it ended as. */
static int record_compare(const void *a, const void *b)
{
	const struct stored_record *x = a, *y = b;

	if (x->group != y->group)
		return x->group < y->group ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* "end GROUP", all of it. */
static int parse_end_line(const char *line, uint32_t *ret)
{
	int n = 0;

	if (sscanf(line, "end %" SCNu32 "%n", ret, &n) != 1 || n == 0 || line[n] != '\0')
		return -EBADMSG;
	return 0;
}

/*
 * Read the text of the file into records[], committed ones first: the
 * records of version 2 count once a commit line follows them; a version 1
 * file (one whole table) is committed as a whole. Returns the number of
 * committed records, or -EBADMSG (logged) for a file to ignore.
 */
static ssize_t replay_read(struct lease_store *s, char *text, struct stored_record **ret,
			   size_t *ret_n)
{
	_cleanup_free_ struct stored_record *records = NULL;
	size_t n = 0, alloc = 0, committed = 0;
	char *line, *save = NULL;
	unsigned lineno = 0;
	bool v1 = false;

	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		struct stored_record *r;
		struct stored_lease e;

		lineno++;
		if (lineno == 1) {
			v1 = strcmp(line, STATE_HEADER_V1) == 0;
			if (!v1 && strcmp(line, STATE_HEADER) != 0) {
				log_warning("Ignoring %s/%s: not a lease table of this version",
					    s->dir, STATE_FILE);
				return -EBADMSG;
			}
			continue;
		}
		if (lineno == 2) {
			if (strncmp(line, "boot ", 5) != 0 || strcmp(line + 5, s->boot_id) != 0) {
				/* Every process and group it names belonged to another boot. */
				log_info("Ignoring %s/%s: written before the last boot", s->dir,
					 STATE_FILE);
				return -EBADMSG;
			}
			continue;
		}
		if (!v1 && strcmp(line, STATE_COMMIT) == 0) {
			committed = n;
			continue;
		}
		if (n == alloc) {
			size_t k = alloc ? 2 * alloc : 64;
			struct stored_record *p = reallocarray(records, k, sizeof(*p));

			if (!p)
				return -ENOMEM;
			records = p;
			alloc = k;
		}
		r = &records[n];
		*r = (struct stored_record){.seq = n, .lineno = lineno, .line = line};
		if (!v1 && strncmp(line, "end ", 4) == 0) {
			r->line = NULL;
			r->malformed = parse_end_line(line, &r->group) < 0;
		} else {
			r->malformed = lease_store_parse_line(line, &e) < 0;
			r->group = e.group;
		}
		n++;
	}
	if (v1)
		committed = n;
	if (committed < n)
		log_notice("Ignoring the last %zu records of %s/%s: the broker was killed while "
			   "writing them, before the reply they were for",
			   n - committed, s->dir, STATE_FILE);
	*ret = TAKE_PTR(records);
	*ret_n = n;
	return (ssize_t)committed;
}

int lease_store_recover(struct lease_store *s, struct broker *b, size_t *ret_restored,
			size_t *ret_dropped)
{
	_cleanup_close_ int fd = -1;
	_cleanup_free_ char *text = NULL;
	_cleanup_free_ struct stored_record *records = NULL;
	size_t len = 0, restored = 0, dropped = 0, n_records = 0, n_valid = 0;
	ssize_t committed;

	*ret_restored = *ret_dropped = 0;
	fd = openat(s->dir_fd, STATE_FILE, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	/* Killed between the unlink and the rename of a save: the new file is whole. */
	if (fd < 0 && errno == ENOENT)
		fd = openat(s->dir_fd, STATE_TMP, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		log_warning_errno(errno, "Ignoring %s/%s: %m", s->dir, STATE_FILE);
		return 0;
	}
	text = malloc(STATE_MAX_SIZE + 1);
	if (!text)
		return -ENOMEM;
	for (;;) {
		ssize_t n = read(fd, text + len, STATE_MAX_SIZE - len);

		if (n < 0) {
			log_warning_errno(errno, "Ignoring %s/%s: %m", s->dir, STATE_FILE);
			return 0;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len == STATE_MAX_SIZE) {
			log_warning("Ignoring %s/%s: larger than %d bytes", s->dir, STATE_FILE,
				    STATE_MAX_SIZE);
			return 0;
		}
	}
	text[len] = '\0';

	committed = replay_read(s, text, &records, &n_records);
	if (committed == -ENOMEM)
		return -ENOMEM;
	if (committed < 0)
		return 0;
	/* The malformed lines are logged and dropped; the others are replayed. */
	for (size_t i = 0; i < (size_t)committed; i++) {
		if (records[i].malformed) {
			log_warning("Ignoring line %u of %s/%s: malformed", records[i].lineno,
				    s->dir, STATE_FILE);
			dropped++;
			continue;
		}
		records[n_valid++] = records[i];
	}
	if (n_valid > 0) /* records may be NULL then, which qsort() must not get */
		qsort(records, n_valid, sizeof(*records), record_compare);
	for (size_t i = 0; i < n_valid; i++) {
		struct stored_lease e;

		/* Only the last record of a group counts; an end record restores nothing. */
		if (i + 1 < n_valid && records[i + 1].group == records[i].group)
			continue;
		if (!records[i].line || lease_store_parse_line(records[i].line, &e) < 0)
			continue;
		if (recover_one(b, &e) == 0)
			restored++;
		else
			dropped++;
	}
	recover_check_containers(b);
	recover_iommufds(b);
	*ret_restored = restored;
	*ret_dropped = dropped;
	return 0;
}
