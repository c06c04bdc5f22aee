/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * vfio_quarantine: put a whole IOMMU group into the "vfio state" at once.
 *
 * The generic netlink family "vfio_quarantine" (version 1) of the
 * vfio_quarantine module.  This header is the only one shared by the module
 * and user space (vfio-brokerd, kmod/tests/vqctl).
 *
 * A quarantined group has driver_override = "vfio-pci" on every member,
 * every endpoint bound to vfio-pci and every bridge left without a driver
 * (a bridge driver that manages DMA itself, such as pcieport, is kept).  No
 * other driver may bind to a member for as long as the group is
 * quarantined, and a device hot-plugged into the group is given the same
 * driver_override before any driver can probe it.
 *
 * Commands (all of them need CAP_NET_ADMIN in the initial user namespace,
 * both for the process that opened the socket and for the sender):
 *
 *   QUARANTINE  GROUP                 do: 0, or -errno with an extended ack
 *   RELEASE     GROUP [FLAGS]         do: 0, or -errno with an extended ack
 *   LIST                              dump: one message per quarantined group
 *   REQUEST_DEVICE  DEVICE            do: a reply with DEVICE and EVENTFD, or
 *                                     -errno with an extended ack
 *
 * REQUEST_DEVICE relays a device request to the VFIO user of one PCI
 * device bound to vfio-pci, without unbinding anything: it signals the
 * eventfd the user registered with VFIO_DEVICE_SET_IRQS at
 * VFIO_PCI_REQ_IRQ_INDEX, which the kernel itself signals only while an
 * unbind of the device waits for the user (QEMU answers it by unplugging
 * the device from its guest).  The reply's EVENTFD is 1 when an eventfd
 * was registered (and has been signalled), 0 when the user registered
 * none (nothing was signalled; the user cannot be asked this way).  It
 * works on any device bound to vfio-pci, quarantined or not.
 *
 * Errors come back as netlink errors with an extended ack (the socket needs
 * NETLINK_EXT_ACK): NLMSGERR_ATTR_MSG says what went wrong; when one device
 * is to blame (a failed QUARANTINE names the member that could not be moved
 * to vfio-pci), NLMSGERR_ATTR_COOKIE holds that device's PCI name,
 * NUL-terminated, e.g. "0000:05:02.0".  A failed QUARANTINE has been rolled
 * back: every member has its old driver_override and driver again.
 * A RELEASE with VFIO_QUARANTINE_RELEASE_RESTORE_DRIVERS that could not
 * give a device its old driver back still succeeds (the group is released)
 * and says so in NLMSGERR_ATTR_MSG of the ACK, as a warning.
 *
 * Notable error codes:
 *   ENOENT      QUARANTINE: no IOMMU group with that number;
 *               RELEASE: the group is not quarantined
 *   EALREADY    QUARANTINE: the group is already quarantined
 *   EBUSY       RELEASE with RESTORE_DRIVERS: a VFIO user holds the group
 *   EOPNOTSUPP  QUARANTINE: the group has a member that is not a PCI device
 *   ENODEV      QUARANTINE: vfio-pci is not loaded, or did not bind a member
 *               (the cookie names it; the kernel log says why);
 *               REQUEST_DEVICE: no PCI device by that name
 *   EPERM       the caller lacks CAP_NET_ADMIN
 *   ENXIO       REQUEST_DEVICE: the device is not bound to vfio-pci
 *   EBUSY       REQUEST_DEVICE: the device is being bound or unbound
 *               (an unbind waiting for the VFIO user sends the device
 *               request itself, every 10 s); try again later
 *
 * Events go to the multicast group "events" (any user may listen): one
 * message of command VFIO_QUARANTINE_CMD_EVENT each, with EVENT, GROUP and,
 * for device events, DEVICE and DRIVER (DRIVER absent when no driver is
 * involved).
 */
#ifndef _UAPI_LINUX_VFIO_QUARANTINE_H
#define _UAPI_LINUX_VFIO_QUARANTINE_H

#define VFIO_QUARANTINE_FAMILY_NAME	"vfio_quarantine"
#define VFIO_QUARANTINE_FAMILY_VERSION	1
#define VFIO_QUARANTINE_MCGRP_EVENTS	"events"

/* The driver every endpoint of a quarantined group is bound to. */
#define VFIO_QUARANTINE_DRIVER		"vfio-pci"

enum vfio_quarantine_cmd {
	VFIO_QUARANTINE_CMD_UNSPEC,
	VFIO_QUARANTINE_CMD_QUARANTINE,
	VFIO_QUARANTINE_CMD_RELEASE,
	VFIO_QUARANTINE_CMD_LIST,
	VFIO_QUARANTINE_CMD_EVENT,	/* multicast only */
	VFIO_QUARANTINE_CMD_REQUEST_DEVICE,

	__VFIO_QUARANTINE_CMD_MAX,
	VFIO_QUARANTINE_CMD_MAX = __VFIO_QUARANTINE_CMD_MAX - 1
};

enum vfio_quarantine_attr {
	VFIO_QUARANTINE_A_UNSPEC,
	VFIO_QUARANTINE_A_GROUP,	/* u32: IOMMU group number */
	VFIO_QUARANTINE_A_FLAGS,	/* u32: VFIO_QUARANTINE_RELEASE_* */
	/* nest of VFIO_QUARANTINE_MEMBER_A_*, one per member (LIST) */
	VFIO_QUARANTINE_A_MEMBER,
	VFIO_QUARANTINE_A_EVENT,	/* u32: enum vfio_quarantine_event */
	VFIO_QUARANTINE_A_DEVICE,	/* string: PCI device, "0000:05:03.0" */
	VFIO_QUARANTINE_A_DRIVER,	/* string: driver name */
	/* u32, REQUEST_DEVICE's reply: 1 a request eventfd was registered */
	VFIO_QUARANTINE_A_EVENTFD,

	__VFIO_QUARANTINE_A_MAX,
	VFIO_QUARANTINE_A_MAX = __VFIO_QUARANTINE_A_MAX - 1
};

enum vfio_quarantine_member_attr {
	VFIO_QUARANTINE_MEMBER_A_UNSPEC,
	VFIO_QUARANTINE_MEMBER_A_DEVICE,	/* string: PCI device name */
	/* string: the bound driver; absent when the device has none */
	VFIO_QUARANTINE_MEMBER_A_DRIVER,
	VFIO_QUARANTINE_MEMBER_A_FLAGS,		/* u32: VFIO_QUARANTINE_MEMBER_* */

	__VFIO_QUARANTINE_MEMBER_A_MAX,
	VFIO_QUARANTINE_MEMBER_A_MAX = __VFIO_QUARANTINE_MEMBER_A_MAX - 1
};

/* VFIO_QUARANTINE_A_FLAGS of RELEASE; unknown bits are rejected. */
enum vfio_quarantine_release_flags {
	/*
	 * Give the devices back: restore each member's driver_override as it
	 * was before the quarantine, unbind it from vfio-pci and re-probe the
	 * host drivers of the members that had a driver before and of those
	 * hot-plugged during the quarantine.  Without this flag the members
	 * stay on vfio-pci with driver_override set, and only the
	 * protection against new drivers ends.
	 */
	VFIO_QUARANTINE_RELEASE_RESTORE_DRIVERS = 1 << 0,
};

/* VFIO_QUARANTINE_MEMBER_A_FLAGS */
enum vfio_quarantine_member_flags {
	/* joined the group by hot-plug while it was quarantined */
	VFIO_QUARANTINE_MEMBER_HOTPLUGGED = 1 << 0,
	/* a bridge: never bound to vfio-pci */
	VFIO_QUARANTINE_MEMBER_BRIDGE = 1 << 1,
};

enum vfio_quarantine_event {
	VFIO_QUARANTINE_EVENT_UNSPEC,
	VFIO_QUARANTINE_EVENT_QUARANTINED,	/* the group entered quarantine */
	VFIO_QUARANTINE_EVENT_RELEASED,		/* the group left quarantine */
	/* hot-plugged into a quarantined group; driver_override is set */
	VFIO_QUARANTINE_EVENT_DEVICE_ADDED,
	VFIO_QUARANTINE_EVENT_DEVICE_REMOVED,	/* a member was removed */
	/* BUS_NOTIFY_UNBIND_DRIVER: DRIVER is about to be unbound */
	VFIO_QUARANTINE_EVENT_UNBIND_REQUESTED,
	/* BUS_NOTIFY_UNBOUND_DRIVER: DRIVER was unbound */
	VFIO_QUARANTINE_EVENT_UNBOUND,
	/* BUS_NOTIFY_BOUND_DRIVER: DRIVER was bound */
	VFIO_QUARANTINE_EVENT_BOUND,
	/* DRIVER (not vfio-pci) was about to probe a member and was refused */
	VFIO_QUARANTINE_EVENT_BIND_BLOCKED,

	__VFIO_QUARANTINE_EVENT_MAX,
	VFIO_QUARANTINE_EVENT_MAX = __VFIO_QUARANTINE_EVENT_MAX - 1
};

#endif /* _UAPI_LINUX_VFIO_QUARANTINE_H */
