/* SPDX-License-Identifier: MIT */
/*
 * Least privilege for a running broker: once the socket is bound and the
 * first policy loaded, keep only the capabilities the broker's operations
 * need and install a seccomp allow-list; anything else kills the process
 * (systemd restarts it).
 */
#pragma once

#include <stdbool.h>
#include <sys/capability.h>

/*
 * sandbox_keep_only sets the permitted and effective sets to exactly the n
 * capabilities of keep (none when n is 0), the inheritable set to none.
 * 0 or -errno.
 */
int sandbox_keep_only(const cap_value_t *keep, int n);

/*
 * The capabilities kept, and the operation that needs each:
 *   CAP_KILL             hard removal signals other users' processes (pidfd_send_signal)
 *   CAP_SYS_RESOURCE     raising a holder's RLIMIT_MEMLOCK above its hard limit (prlimit)
 *   CAP_NET_ADMIN        QUARANTINE and RELEASE of vfio_quarantine (GENL_ADMIN_PERM)
 * CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH go too (issue 13, item 9): reading
 * other users' /proc/PID/fd is the scanner processes' (scanner.h), which
 * keep them; pidfd_getfd() and kcmp() of the restore ran before. Nothing the
 * running broker does checks ptrace access: prlimit() needs CAP_SYS_RESOURCE,
 * pidfd_send_signal() CAP_KILL, cgroup.kill a file's permission, and the
 * /proc/PID files it reads (stat, status, cgroup, comm, uid_map, gid_map) are
 * world-readable; the user namespace check reads the maps when ns/user is
 * out of reach (identity.c). Those two stay in the bounding set when the
 * broker lacks CAP_SETPCAP to drop them (under the unit).
 * Everything else goes, from the bounding set too; what the service manager
 * already took out of it is skipped, so CAP_SETPCAP is needed only when there
 * is something left to drop (-EPERM naming the capability otherwise). A
 * capability the broker was started without is not an error: the operation
 * that needs it fails later with a logged reason (e.g. memlock).
 */
int sandbox_drop_capabilities(void);

/*
 * sandbox_install_seccomp loads the allow-list; any other system call kills
 * the broker. Returns 0 or the kernel's -errno with the cause logged, e.g. a
 * seccomp filter already in force that denies seccomp() (a unit whose
 * SystemCallFilter= lacks it): the broker does not run without its filter.
 */
int sandbox_install_seccomp(void);
/*
 * sandbox_check_seccomp returns 0 when this process can install a filter
 * whose default is to kill the process; else it logs why (a filter already
 * in force that denies seccomp(), an old kernel) and returns -errno. The
 * scanner processes (scanner.h) check with it before building theirs.
 */
int sandbox_check_seccomp(void);

/* The places the running broker writes to (NULL: none of that kind). */
struct sandbox_paths {
	const char *state_dir;	 /* the lease table: a new file, unlink, rename */
	const char *cgroup_root; /* lease cgroups: mkdir, rmdir, cgroup.procs, cgroup.kill */
	const char *dev_root;	 /* opens of the VFIO nodes (vfio/, iommu) for read and write */
	const char *sysfs_root;	 /* quarantine without the module: bus/pci and devices */
};

/*
 * sandbox_restrict_writes confines the broker's writes with Landlock to
 * paths (issue 13, item 9): creating, removing, renaming or opening for
 * writing any other file fails with EACCES, and so does execve(). Reads are
 * not confined (/proc, /sys, policy, NSS). Landlock also stops the broker
 * from ptrace-reading processes outside its domain: once its capabilities
 * are dropped nothing of the broker needs that (sandbox_drop_capabilities),
 * and the scanners were forked before, outside the domain. Best effort on
 * kernels without Landlock (logged, 0); uses the ABI both the kernel and the
 * build's headers have, and logs which. Call after
 * sandbox_drop_capabilities (no_new_privs) and before the seccomp filter.
 */
int sandbox_restrict_writes(const struct sandbox_paths *paths);
