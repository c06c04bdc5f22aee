/* SPDX-License-Identifier: MIT */
/*
 * Access policy of vfio-brokerd: which caller may lease, merge or remove
 * which PCI devices.  Policies are JSON files written by the administrator
 * (format: policy/README.md).  A loaded policy is immutable; deciding does
 * not allocate, block or consult NSS, so the broker can call it on every
 * request.
 *
 * This module depends on libc and json-c only.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define POLICY_DEFAULT_DIR "/etc/vfio-broker/policy.d"

/* Limits on everything an administrator controls. */
#define POLICY_MAX_FILE_SIZE  (1024 * 1024)	  /* bytes per file */
#define POLICY_MAX_TOTAL_SIZE (64 * 1024 * 1024)  /* bytes over all files */
#define POLICY_MAX_FILES      1024		  /* *.json files per directory */
#define POLICY_MAX_RULES      100000		  /* rules over all files */
#define POLICY_MAX_DEPTH      16		  /* JSON nesting */
#define POLICY_MAX_LIST	      4096		  /* entries in one array of a rule */
#define POLICY_MAX_NAME	      64		  /* rule name */
#define POLICY_MAX_ID_NAME    256		  /* user or group name */
#define POLICY_MAX_CGROUP     4096		  /* cgroup glob */
#define POLICY_MAX_UNIT	      256		  /* unit glob */
#define POLICY_MAX_LEASES     65536		  /* max_leases value */
#define POLICY_MAX_MEMLOCK    (UINT64_C(1) << 60) /* memlock value: 1 EiB */

struct policy; /* opaque, immutable after load */

/* Where and why loading failed.  line 0 means the whole file (or directory). */
struct policy_error {
	char file[256];
	unsigned line;
	char message[512];
};

enum policy_action {
	POLICY_ACTION_LEASE = 1 << 0,
	POLICY_ACTION_MERGE = 1 << 1,
	POLICY_ACTION_REMOVE_OWN = 1 << 2,
};
#define POLICY_ACTION_ALL (POLICY_ACTION_LEASE | POLICY_ACTION_MERGE | POLICY_ACTION_REMOVE_OWN)

enum policy_load_flags {
	/* Accept files and the directory whatever their owner (tests, `vfioctl policy check`
	 * run on a copy).  Group- or world-writable files are still refused. */
	POLICY_LOAD_SKIP_OWNER_CHECK = 1 << 0,
	/* Do not resolve user and group names through NSS: every name is unknown (a warning)
	 * and matches nobody.  Numeric ids still work.  For the fuzzer: deterministic, fast. */
	POLICY_LOAD_SKIP_NAME_LOOKUP = 1 << 1,
};

/* Non-fatal problems found while loading (e.g. an unknown user name). */
typedef void (*policy_warn_fn)(const char *file, unsigned line, const char *message,
			       void *userdata);

/*
 * Load every *.json file of dir (names starting with '.' are skipped) in strcmp
 * order.  Returns 0 and *ret on success; a negative errno and *err filled on failure:
 * -ENOENT/-ENOTDIR (dir), -EPERM (insecure owner or mode, not a regular file),
 * -EFBIG/-E2BIG (a limit), -EINVAL (syntax or semantics), -ENOMEM, other I/O errors.
 * err may be NULL; warn may be NULL.  An empty directory yields a policy with no rules.
 */
int policy_load_dir(const char *dir, unsigned flags, policy_warn_fn warn, void *userdata,
		    struct policy **ret, struct policy_error *err);

/*
 * Parse ONE file's content, text[0..len), as if it were the only file in the directory;
 * name is used as the file name in errors, warnings and decisions.  Same return values
 * as policy_load_dir().  For tests, `vfioctl policy check` and the fuzzer.
 */
int policy_load_string(const char *name, const char *text, size_t len, unsigned flags,
		       policy_warn_fn warn, void *userdata, struct policy **ret,
		       struct policy_error *err);

/* Free a policy.  Accepts NULL; returns NULL. */
struct policy *policy_free(struct policy *p);

size_t policy_rule_count(const struct policy *p);
size_t policy_file_count(const struct policy *p);

/* Write "file:line: message" (or "file: message" for line 0) into buf, truncating. */
void policy_error_format(const struct policy_error *err, char *buf, size_t size);

/* Who is asking.  groups are the supplementary gids; gid is the primary one. */
struct policy_caller {
	uid_t uid;
	gid_t gid;
	const gid_t *groups;
	size_t n_groups;
	const char *cgroup; /* cgroup v2 path, e.g. "/user.slice/..."; NULL: unknown */
	/*
	 * systemd unit name ("qemu-1.scope"); in a user manager's subtree, which the
	 * user controls, "user@UID.service/NAME", matched only by patterns that say
	 * "user@...service/..." (a wildcard never crosses the '/'); NULL: unknown
	 */
	const char *unit;
};

/* One PCI device.  address is canonical and lowercase: "0000:01:00.0". */
struct policy_device {
	const char *address;
	uint16_t vendor, device;
	uint32_t class;	 /* 24-bit class code, e.g. 0x020000 */
	int iommu_group; /* -1: none/unknown, never matches an "iommu_group" key */
};

struct policy_decision {
	bool allowed;
	const char *rule; /* deciding rule; NULL for the default deny.  Points into the policy. */
	const char *file; /* where that rule is defined; NULL with rule */
	unsigned line;
	const char *device;  /* denials: the device no rule allows, or the one the deny rule hit
			      * (points into the caller's devs); NULL when allowed */
	unsigned max_leases; /* allowed: most restrictive max_leases of the rules used; 0 = none */
	uint64_t memlock;    /* allowed: most restrictive memlock in bytes; 0 = none */
	char reason[512];    /* one human sentence */
};

/*
 * Decide whether caller may perform action (exactly one policy_action bit) on the
 * group devs[0..n_devs).  Returns 0 with *ret filled, allowed or not; -EINVAL on bad
 * arguments (NULL pointers, n_devs 0, a device without address, not exactly one action).
 * The group is allowed only if no deny rule matches any device and every device is
 * allowed by some allow rule.  Does not allocate; the policy may be shared by threads.
 */
int policy_decide(const struct policy *p, const struct policy_caller *caller,
		  const struct policy_device *devs, size_t n_devs, enum policy_action action,
		  struct policy_decision *ret);

/*
 * Like policy_decide(), but write a multi-line explanation into buf: the decision
 * first, then one line per device naming the rule that allows or denies it (and the
 * limits it sets).  Returns 0, -ENOBUFS if buf was too small (it then holds the
 * truncated, NUL-terminated text), or -EINVAL as policy_decide().
 */
int policy_explain(const struct policy *p, const struct policy_caller *caller,
		   const struct policy_device *devs, size_t n_devs, enum policy_action action,
		   char *buf, size_t size);

/* "lease", "merge", "remove-own" -> the action; -EINVAL if unknown (or NULL). */
int policy_action_from_string(const char *s);
/* The name of one action; NULL if a is not exactly one known action. */
const char *policy_action_to_string(enum policy_action a);

/*
 * Parse a size: decimal digits, optionally followed by one of K, M, G, T (case-insensitive,
 * powers of 1024).  Returns 0 and *ret, -EINVAL if malformed, -ERANGE if above UINT64_MAX.
 */
int policy_parse_size(const char *s, uint64_t *ret);
/* Format bytes with the largest suffix that divides it exactly ("8G", "1536K", "1000"). */
void policy_format_size(uint64_t bytes, char *buf, size_t size);
