/* SPDX-License-Identifier: MIT */
/*
 * libvfiobroker: the client library of vfio-brokerd.
 *
 * vfio-brokerd is a root daemon that hands open VFIO group files (/dev/vfio/N)
 * to unprivileged processes according to the administrator's policy. This
 * library speaks its protocol (protocol/PROTOCOL.md in the source tree): connect,
 * list groups, lease a group and receive its file descriptor, release it, merge
 * leased groups into one IOMMU context, and read the events the broker sends
 * (an administrator asking for a group back, a hot-plugged device).
 *
 * Conventions, for every function below:
 *
 *  - Functions returning int return 0 (or a count where said) on success and a
 *    negative errno on failure. Out-parameters are written only on success.
 *  - When the broker refuses a request, the call returns the errno of the
 *    broker's error code, and vfiobroker_error_code() and
 *    vfiobroker_error_message() say what the broker said, until the next call
 *    on that connection:
 *
 *        denied               -EACCES       policy does not allow it
 *        busy                 -EBUSY        held by another process, or in use
 *        not-viable           -EPERM        a member device is on a host driver
 *        no-such-group        -ENOENT       no such group or device
 *        bad-request          -EINVAL       the broker could not accept the request
 *        unsupported-version  -EPROTONOSUPPORT
 *        limit                -EUSERS       a connection or lease limit was reached
 *        not-held             -ESRCH        the caller does not hold that lease
 *        timeout              -ETIMEDOUT    a soft removal was not honoured in time
 *        internal             -EIO          the broker or the kernel failed
 *
 *  - Transport failures return a negative errno with vfiobroker_error_code()
 *    NULL: -ECONNRESET when the broker closed the connection (every later call
 *    on it then fails with -ECONNRESET too, until vfiobroker_reconnect()),
 *    -EBADMSG when the broker sent something this library cannot read,
 *    -ENOMEM, and what connect(2) says. The library never reconnects by
 *    itself: a request cut by the broker's end may or may not have been done
 *    (a removal in flight is abandoned), and only the caller knows whether
 *    asking again is right.
 *  - Every file descriptor the library returns is O_CLOEXEC and belongs to the
 *    caller. Descriptors that arrive with a packet that should carry none are
 *    closed at once.
 *  - Calls are synchronous: one request is in flight per connection, and a call
 *    blocks until its answer arrives (a soft removal may take minutes). EINTR
 *    is retried, never returned. A connection is not thread-safe: use it from
 *    one thread at a time, or open one connection per thread. Do not use one
 *    connection in both parent and child after fork(): the broker knows the
 *    process that connected, and that process is the holder of the leases
 *    taken on the connection.
 *
 * ABI: the exported symbols are versioned (VFIOBROKER_0). The structures below
 * are part of the ABI; when one has to grow, the functions that fill it get a
 * new symbol version and old binaries keep the old layout.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Where the broker listens unless told otherwise. */
#define VFIOBROKER_DEFAULT_SOCKET "/run/vfio-broker/socket"
/* The environment variable that overrides it (ignored in set-uid programs). */
#define VFIOBROKER_SOCKET_ENV "VFIO_BROKER_SOCKET"
/* How many events a connection keeps while the caller does not read them. */
#define VFIOBROKER_EVENT_QUEUE 64

/* A connection to vfio-brokerd. */
struct vfiobroker;

/* One PCI device of an IOMMU group. */
struct vfiobroker_device {
	char address[16];   /* "0000:01:00.0", lowercase */
	char vendor[5];	    /* 4 hex digits, "8086" */
	char device[5];	    /* 4 hex digits */
	char class_code[7]; /* 6 hex digits, "020000" */
	char driver[64];    /* the bound driver, "" when none */
};

/*
 * The lease paths devices[index] of a group from vfiobroker_list() can take
 * now (VFIOBROKER_PATH_* bits); 0 for a bridge, a device on a host driver,
 * or a broker that does not say. Only for groups vfiobroker_list() returned.
 * Since VFIOBROKER_1.
 */
struct vfiobroker_group;
unsigned vfiobroker_device_paths(const struct vfiobroker_group *g, size_t index);

/* One IOMMU group, as vfiobroker_list() reports it. */
struct vfiobroker_group {
	unsigned group;
	bool viable;  /* every member is on vfio-pci or has no driver */
	bool allowed; /* policy lets the calling user lease it */
	bool held;    /* leased; holder_uid and holder_pid are valid only then */
	uid_t holder_uid;
	pid_t holder_pid;
	size_t n_devices;
	struct vfiobroker_device *devices;
};

/* One lease, as vfiobroker_leases() reports it. */
struct vfiobroker_lease {
	unsigned group;
	uid_t uid; /* the holder */
	pid_t pid;
	uint64_t since_usec; /* CLOCK_REALTIME, microseconds */
	char rule[65];	     /* the policy rule that granted it */
	char state[16];	     /* "held", "releasing" or "removing" */
	unsigned container;  /* 0: not merged; leases merged together share the id */
};

enum vfiobroker_event_type {
	/* An administrator asked for the group back (soft removal): release it
	 * within timeout_ms, or the removal fails (or is made hard). */
	VFIOBROKER_EVENT_REMOVE_REQUESTED = 1,
	/* The group is being taken away (hard removal); the holder is about to be killed. */
	VFIOBROKER_EVENT_REVOKED,
	/* A lease of this connection's process ended: the group file is really closed. */
	VFIOBROKER_EVENT_RELEASED,
	/* A device appeared in a group this process holds; device names it. */
	VFIOBROKER_EVENT_DEVICE_ADDED,
};

struct vfiobroker_event {
	enum vfiobroker_event_type type;
	unsigned group;
	unsigned timeout_ms; /* REMOVE_REQUESTED: how long the administrator waits; 0 unknown */
	char device[16];     /* DEVICE_ADDED: the new device's address; "" otherwise */
};

/* The broker's explanation of a policy decision (vfiobroker_explain()). */
struct vfiobroker_explanation {
	bool allowed;
	char *rule;   /* the deciding rule; NULL for the default deny */
	char *device; /* denials: the device no rule allows, or the one a deny rule hit; or NULL */
	char *reason; /* one sentence */
	char *text;   /* several lines: the decision for each device and the rule behind it */
};

/* The version of this library, "0.1.0". */
const char *vfiobroker_version(void);

/*
 * vfiobroker_connect connects to the broker and introduces itself (the
 * protocol's "hello", naming the program and this library). path NULL means
 * $VFIO_BROKER_SOCKET when set and non-empty (not in set-uid or set-gid
 * programs), else VFIOBROKER_DEFAULT_SOCKET. Returns 0 and a connection in
 * *ret; -ENOENT or -ECONNREFUSED when no broker listens there, -EACCES when
 * the socket's permissions keep the caller out, -ENAMETOOLONG for a path
 * longer than a socket address holds, -EPROTONOSUPPORT when the broker does
 * not speak this library's protocol version, -EUSERS when the broker has too
 * many connections, -ECONNRESET when it closed the connection.
 */
int vfiobroker_connect(const char *path, struct vfiobroker **ret);

/* vfiobroker_reconnect's backoff: the first wait between attempts, doubled up to the last. */
#define VFIOBROKER_RECONNECT_FIRST_MS 50
#define VFIOBROKER_RECONNECT_MAX_MS   2000

/*
 * vfiobroker_reconnect connects b again to the socket it was connected to,
 * and says hello again: for a connection whose broker went away (a call or
 * vfiobroker_next_event() returned -ECONNRESET: the broker stopped, crashed
 * or restarted). It tries at once, then again after 50 ms, 100 ms, ... up to
 * 2 s between attempts, until timeout_ms have passed (0: one attempt). An
 * attempt waits for the broker's answer to hello as long as time is left, and
 * at least 1 s (a socket that systemd holds accepts before the broker runs).
 * Returns 0 with b connected anew, -ETIMEDOUT when no broker answered in time
 * (b is then still the broken connection: try again later), or a failure no
 * wait cures (-EACCES, -EPROTONOSUPPORT, -EUSERS, ... as vfiobroker_connect).
 *
 * The leases stay what they were: they belong to the process, and a broker
 * that restarts restores them (PROTOCOL.md, "Restart"); the broker links the
 * new connection to this process's leases, so that REMOVE_REQUESTED and
 * REVOKED reach it again. Events still queued are kept. The new socket takes
 * the old one's descriptor number (vfiobroker_get_fd() does not change, so a
 * poll(2) set stays right; an epoll set must add it again: the old file is
 * gone). Blocks while it waits.
 * Call it from the process that connected: the broker sees whoever calls.
 */
int vfiobroker_reconnect(struct vfiobroker *b, unsigned timeout_ms);

/*
 * vfiobroker_disconnect closes the connection and frees it, with any events
 * still queued. Leases are not affected: a lease belongs to the process, not to
 * the connection, and ends when the process releases it or exits and its group
 * file is closed. Accepts NULL; returns NULL.
 */
struct vfiobroker *vfiobroker_disconnect(struct vfiobroker *b);

/*
 * vfiobroker_lease leases IOMMU group `group` and stores its open group file
 * (/dev/vfio/GROUP, O_RDWR) in *ret_fd. The calling process becomes the holder.
 * If the broker raised RLIMIT_MEMLOCK for the holder (the rule says how much),
 * it did so before answering. -EINVAL for a group above 2^31-1.
 */
int vfiobroker_lease(struct vfiobroker *b, unsigned group, int *ret_fd);

/*
 * vfiobroker_lease_device leases the group of the PCI device `address`
 * ("0000:01:00.0", either case): a lease is always a whole group. Stores the
 * group number in *ret_group (may be NULL) and its file in *ret_fd. -EINVAL
 * when address is not a PCI address of that form.
 */
int vfiobroker_lease_device(struct vfiobroker *b, const char *address, unsigned *ret_group,
			    int *ret_fd);

/*
 * vfiobroker_lease_memlock leases like vfiobroker_lease() (address NULL) or
 * vfiobroker_lease_device() (address set, group ignored), and asks for memlock
 * bytes of locked memory (0: nothing asked). When the holder would have less
 * (the larger of its RLIMIT_MEMLOCK and what the rule grants), the broker
 * refuses with -EACCES ("denied"): the message gives both numbers and what to
 * do, and the details "memlock" and "asked" give them in bytes. A VMM needs
 * its guest RAM and, on some kernels, its BIOS (docs/qemu.md).
 */
int vfiobroker_lease_memlock(struct vfiobroker *b, unsigned group, const char *address,
			     uint64_t memlock, unsigned *ret_group, int *ret_fd);

/* The lease paths a device can take (vfiobroker_device_paths()). */
#define VFIOBROKER_PATH_GROUP 1u /* the legacy group file, /dev/vfio/GROUP */
#define VFIOBROKER_PATH_CDEV  2u /* its VFIO device cdev and an iommufd */

/* Most device fds one cdev lease carries (the endpoints of one group). */
#define VFIOBROKER_CDEV_MAX_DEVICES 15

/* What a cdev lease hands over (vfiobroker_lease_cdev()). */
struct vfiobroker_cdev_lease {
	unsigned group;
	/*
	 * The holder's iommufd (/dev/iommu, memory accounted per process): one
	 * open file for all this process's cdev leases, so that their devices
	 * can share one IOAS. iommufd_reused: the broker sent this file with an
	 * earlier lease already (this fd is a new descriptor of it).
	 */
	int iommufd;
	bool iommufd_reused;
	uint64_t memlock; /* the RLIMIT_MEMLOCK the broker set, bytes; 0: none */
	size_t n_devices; /* every endpoint of the group; bridges are never handed out */
	struct {
		char address[16]; /* "0000:01:00.0" */
		int fd;		  /* its /dev/vfio/devices/vfioN, O_RDWR */
	} devices[VFIOBROKER_CDEV_MAX_DEVICES];
};

/*
 * vfiobroker_lease_cdev leases group `group` (address NULL) or the group of
 * the device `address` through the cdev path: the broker opens the cdev of
 * every endpoint and the holder's iommufd and sends them (close-on-exec, as
 * every received fd). memlock as for vfiobroker_lease_memlock() (0: nothing
 * asked). The lease ends when the first device's file (devices[0]) is
 * closed everywhere, or with the holder. Besides the codes above:
 * -EOPNOTSUPP ("unsupported") when the broker's kernel lacks iommufd or
 * device cdevs (the message names what it lacks); -EBUSY when the group is
 * held through the group path (the message says so). On failure nothing is
 * left open and *ret is untouched. Since VFIOBROKER_1.
 */
int vfiobroker_lease_cdev(struct vfiobroker *b, unsigned group, const char *address,
			  uint64_t memlock, struct vfiobroker_cdev_lease *ret);

/*
 * vfiobroker_release ends the lease of `group`. Close the group file, every
 * copy of it and every device file obtained from it first: the group becomes
 * free only when the kernel has really closed it. *ret_released (may be NULL)
 * is true when the lease ended now, false when the file is still open somewhere
 * (the lease then ends by itself when it is closed, and a RELEASED event
 * follows). May be called by the holder, by a process of the same user started
 * by the holder, or by an administrator; others get -ESRCH.
 */
int vfiobroker_release(struct vfiobroker *b, unsigned group, bool *ret_released);

/*
 * vfiobroker_merge puts groups[0..n) (1 to 16 groups, all leased by the same
 * holder) into one VFIO container, so that they share one IOMMU context, which
 * the broker opens; *ret_fd gets a descriptor of it. container_fd must be -1:
 * the broker takes no descriptor on any request (it would answer bad-request
 * and close the connection), so the library refuses any other value with
 * -EINVAL before sending. A caller with a container of its own attaches its
 * groups to it itself (VFIO_GROUP_SET_CONTAINER). All or nothing: when the kernel
 * refuses one group (-EPERM: the IOMMU cannot share a domain; -EBUSY) nothing
 * is merged. -EINVAL for n out of range or a group listed twice.
 */
int vfiobroker_merge(struct vfiobroker *b, const unsigned *groups, size_t n, int container_fd,
		     int *ret_fd);

/*
 * vfiobroker_unmerge takes the one group `group` out of its container; the
 * rest of the merged set stays together. -EBUSY while device files of that
 * group are open.
 */
int vfiobroker_unmerge(struct vfiobroker *b, unsigned group);

/*
 * vfiobroker_list stores in *ret an array of every IOMMU group the kernel
 * reports, with its devices, drivers, viability, lease state and whether
 * policy allows the caller to lease it, and its length in *ret_n. *ret is NULL
 * when there are no groups. Free it with vfiobroker_groups_free().
 */
int vfiobroker_list(struct vfiobroker *b, struct vfiobroker_group **ret, size_t *ret_n);
/*
 * vfiobroker_quarantine says how the broker keeps host drivers off groups, as
 * its last vfiobroker_list() reply on b said: "kmod" (the vfio_quarantine
 * kernel module is loaded), "none", or NULL (no list yet, or an older broker).
 */
const char *vfiobroker_quarantine(const struct vfiobroker *b);
/* Frees what vfiobroker_list() returned. Accepts NULL. */
void vfiobroker_groups_free(struct vfiobroker_group *groups, size_t n);

/*
 * vfiobroker_leases stores in *ret the current leases (an administrator sees
 * every lease, others their own user's) and their number in *ret_n; *ret is
 * NULL when there are none. Free it with vfiobroker_leases_free().
 */
int vfiobroker_leases(struct vfiobroker *b, struct vfiobroker_lease **ret, size_t *ret_n);
/* Frees what vfiobroker_leases() returned. Accepts NULL. */
void vfiobroker_leases_free(struct vfiobroker_lease *leases, size_t n);

/*
 * vfiobroker_remove takes `group` away from its holder (administrators only:
 * -EACCES otherwise). Soft (hard false): the holder is sent a REMOVE_REQUESTED
 * event and the call returns once the lease has ended, or -ETIMEDOUT after
 * timeout_ms (0: the broker's default, 30 s unless configured; at most one
 * hour, -EINVAL above) with the lease left exactly as it was; -EBUSY at once
 * when the holder has no connection to hear the request. Hard: the holder is
 * sent REVOKED and killed with every process of the lease (its cgroup; see
 * PROTOCOL.md); the call returns when the group is free; timeout_ms must be 0.
 * -EBUSY when the file is still open in processes that do not belong to the
 * lease (another uid's, or outside its cgroup): they are not killed, and the
 * message names them (pid, uid, command). *ret_elapsed_ms (may be NULL) is
 * how long the removal took.
 */
int vfiobroker_remove(struct vfiobroker *b, unsigned group, bool hard, unsigned timeout_ms,
		      unsigned *ret_elapsed_ms);

/*
 * vfiobroker_remove_kill_strays is a hard removal that also kills the
 * processes outside the lease still holding its file (strays), which
 * vfiobroker_remove() only reports. A broker older than this call answers
 * -EINVAL (an unknown request key).
 */
int vfiobroker_remove_kill_strays(struct vfiobroker *b, unsigned group, unsigned *ret_elapsed_ms);

/*
 * vfiobroker_reload makes the broker load its policy directory again
 * (administrators only). On success *ret_rules and *ret_files (either may be
 * NULL) count what is now in force. An invalid policy is refused with -EINVAL,
 * the message naming file and line, and the policy in force stays in force.
 */
int vfiobroker_reload(struct vfiobroker *b, unsigned *ret_rules, unsigned *ret_files);

#define VFIOBROKER_QUARANTINE_MAX_DEVICES 64

/* What a quarantine or unquarantine did. */
struct vfiobroker_quarantine_result {
	char mode[8]; /* "kmod": by the vfio_quarantine module; "sysfs": by the broker */
	size_t n_devices;
	char devices[VFIOBROKER_QUARANTINE_MAX_DEVICES][16]; /* the PCI addresses moved */
};

/*
 * vfiobroker_quarantine_group puts every endpoint of `group` on vfio-pci
 * (administrators only: -EACCES otherwise; -EBUSY while the group is leased).
 * vfiobroker_unquarantine_group ends the quarantine; with restore the devices go
 * back to their host drivers. *ret (may be NULL) says how and what moved.
 */
int vfiobroker_quarantine_group(struct vfiobroker *b, unsigned group,
				struct vfiobroker_quarantine_result *ret);
int vfiobroker_unquarantine_group(struct vfiobroker *b, unsigned group, bool restore,
				  struct vfiobroker_quarantine_result *ret);

/*
 * vfiobroker_explain asks the broker why `user` may or may not lease `group`.
 * user NULL means the caller itself (with its real groups, cgroup and unit); a
 * name, or a decimal user id (as chown(1) takes it), names someone else, which
 * only administrators may do. Stores the decision in *ret, freed with
 * vfiobroker_explanation_free(). A denial is a successful answer, not -EACCES.
 */
int vfiobroker_explain(struct vfiobroker *b, unsigned group, const char *user,
		       struct vfiobroker_explanation **ret);
/* Frees an explanation. Accepts NULL; returns NULL. */
struct vfiobroker_explanation *vfiobroker_explanation_free(struct vfiobroker_explanation *e);

/*
 * vfiobroker_get_fd returns the connection's socket, to poll for POLLIN in an
 * event loop; events are then read with vfiobroker_next_event(). Do not read
 * from it, write to it or close it. It is a blocking socket (the library waits
 * for replies in recvmsg and reads events with MSG_DONTWAIT); setting O_NONBLOCK
 * on it, as some event loops do, is harmless.
 */
int vfiobroker_get_fd(const struct vfiobroker *b);

/*
 * vfiobroker_next_event stores the oldest pending event in *ret and returns 0,
 * or returns -EAGAIN when there is none, without blocking. Events that arrived
 * while another call waited for its reply are queued (VFIOBROKER_EVENT_QUEUE
 * at most; beyond that the oldest is dropped and counted) and do not make the
 * socket readable again: after any other call, read events until -EAGAIN
 * before polling. Returns -ECONNRESET when the broker has gone away. Events of
 * kinds this library does not know are skipped.
 */
int vfiobroker_next_event(struct vfiobroker *b, struct vfiobroker_event *ret);

/* How many events were dropped because the queue was full, since connecting. */
unsigned vfiobroker_events_dropped(const struct vfiobroker *b);

/*
 * When the last call on b failed because the broker refused it: the broker's
 * error code ("denied", "busy", ... as listed above) and its one-sentence
 * message. NULL after a successful call or a transport failure. The strings
 * live until the next call on b.
 */
const char *vfiobroker_error_code(const struct vfiobroker *b);
const char *vfiobroker_error_message(const struct vfiobroker *b);
/*
 * A detail of the last refusal, by name: "uid" (busy: who holds the group),
 * "rule" and "device" (denied), "driver" (not-viable) and others the broker
 * adds. Numbers come back in decimal. NULL when absent.
 */
const char *vfiobroker_error_detail(const struct vfiobroker *b, const char *key);

/* Whether the broker treats the connected process as an administrator. */
bool vfiobroker_is_admin(const struct vfiobroker *b);
/* The user id the broker sees on the other end of the connection. */
uid_t vfiobroker_get_uid(const struct vfiobroker *b);

#ifdef __cplusplus
}
#endif
