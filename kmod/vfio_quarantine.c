// SPDX-License-Identifier: GPL-2.0
/*
 * vfio_quarantine: a whole IOMMU group enters the "vfio state" at once.
 *
 * The VFIO design discussion of 2011 (Gibson) asked that a group not become
 * usable merely because its devices were bound to vfio one by one: the admin
 * asks that the group go into the vfio state, the kernel unbinds the host
 * drivers of every member, and from then on no host driver may bind to
 * anything in the group, including devices hot-plugged into it later.
 * Upstream VFIO has no such state; this module provides it on top of
 * driver_override and a PCI bus notifier.  The user interface is the
 * generic netlink family described in uapi/linux/vfio_quarantine.h.
 *
 * How a quarantined group is kept free of host drivers:
 *
 * - Every member has driver_override = "vfio-pci": the PCI core then
 *   matches no other driver to it (pci_match_device()).
 *
 * - BUS_NOTIFY_ADD_DEVICE: a device hot-plugged into a quarantined group
 *   gets the override before any driver can probe it.  The IOMMU core puts
 *   a new device into its group from its own notifier on the same event
 *   (iommu_bus_notifier(), priority 0, registered at subsys_initcall on both
 *   6.1 and 6.12; the VT-d DMAR notifier runs before it at priority 1).  Our
 *   notifier has priority -1 so that it runs after both even if it were
 *   registered first, and the device normally has its group when we see it.
 *   Should it have none yet, we predict the group the way the IOMMU core's
 *   pci_device_group() will choose it: a device whose requests carry an
 *   upstream bridge's requester ID (a conventional PCI device behind a
 *   PCIe-to-PCI bridge, the case of the seed) joins that bridge's group.
 *   The PCI core keeps a new device from matching any driver until
 *   pci_bus_add_device(), after device_add() and so after this notifier.
 *
 * - BUS_NOTIFY_BIND_DRIVER, sent from really_probe() under device_lock()
 *   after the driver was matched and before its probe(), is the second
 *   line: on both kernels the driver core ignores the notifier's return
 *   value (driver_sysfs_add() calls the chain and goes on), so the
 *   notifier cannot refuse the bind itself.  But pci_device_probe() matches
 *   the driver against the device once more (__pci_device_probe() calls
 *   pci_match_device()), and that match honours driver_override.  So when a
 *   driver other than vfio-pci is about to probe a member (its override was
 *   cleared through sysfs, or the device joined the group after
 *   ADD_DEVICE), we put the override back: the probe fails with -ENODEV,
 *   the driver core tries the next driver, and vfio-pci (or no driver)
 *   gets the device.  A device whose group was only predicted at
 *   ADD_DEVICE is checked against its real group here too.
 *
 * Locking, outermost first:
 *   vq_op_lock     serializes QUARANTINE and RELEASE; held across driver
 *                  core calls (device_attach(), device_release_driver()).
 *   device_lock()  of a PCI device; the driver core holds it around the
 *                  BIND/BOUND/UNBIND/UNBOUND notifications.  Every change
 *                  of a member's driver_override is made under it.
 *   vq_lock        the group table and the member lists.  Taken by the bus
 *                  notifier, so never held across a call that may take a
 *                  device_lock() or send a bus notification.
 * The notifier never takes vq_op_lock.
 *
 * Test hooks: fail_after and test_add_notifier, read-only module parameters
 * set at load time (see their descriptions below).
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/delay.h>
#include <linux/device.h>
#include <linux/eventfd.h>
#include <linux/iommu.h>
#include <linux/kmod.h>
#include <linux/list.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/netlink.h>
#include <linux/notifier.h>
#include <linux/pci.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/vfio_pci_core.h>
#include <net/genetlink.h>

#include <linux/vfio_quarantine.h>

#define VQ_NAME_LEN 32

static int fail_after = -1;
module_param(fail_after, int, 0444);
MODULE_PARM_DESC(fail_after,
		 "test hook: every QUARANTINE fails, as if vfio-pci had refused the device, at the endpoint after the first N it moved (-1: off)");

static int test_add_notifier;
module_param(test_add_notifier, int, 0444);
MODULE_PARM_DESC(test_add_notifier,
		 "test hook for BUS_NOTIFY_ADD_DEVICE: 0 normal, 1 ignore the new device's own IOMMU group (predict it), 2 do nothing (leave it to the BIND_DRIVER guard)");

enum vq_state {
	VQ_ENTERING,		/* QUARANTINE in progress */
	VQ_QUARANTINED,
	VQ_LEAVING,		/* rollback or RELEASE in progress */
};

struct vq_member {
	struct list_head node;		/* in vq_group.members */
	struct pci_dev *pdev;		/* counted reference */
	char *saved_override;		/* driver_override before quarantine */
	char saved_driver[VQ_NAME_LEN];	/* driver before quarantine, or "" */
	char driver[VQ_NAME_LEN];	/* bound driver as last seen, or "" */
	bool saved;			/* saved_* are valid (and ours to undo) */
	bool hotplugged;		/* joined while the group was quarantined */
	bool predicted;			/* group not confirmed yet (ADD_DEVICE) */
};

struct vq_group {
	struct list_head node;		/* in vq_groups */
	struct iommu_group *iommu_group; /* counted: keeps the number taken */
	int id;
	enum vq_state state;
	struct list_head members;
};

static DEFINE_MUTEX(vq_op_lock);
static DEFINE_MUTEX(vq_lock);
static LIST_HEAD(vq_groups);		/* under vq_lock */
static unsigned int vq_generation;	/* under vq_lock; for LIST dumps */
static int vq_moved;			/* under vq_op_lock; for fail_after */

static struct genl_family vq_family;

enum vq_mcgrp {
	VQ_MCGRP_EVENTS,
};

/* ---- driver_override, wherever this kernel keeps it -------------------- */

#ifdef VQ_GENERIC_DRIVER_OVERRIDE
/*
 * struct device::driver_override, under its own spinlock; we still change
 * it only under device_lock() so that members change state one at a time.
 */
static int vq_override_set_locked(struct pci_dev *pdev, const char *name)
{
	device_lock_assert(&pdev->dev);
	return device_set_driver_override(&pdev->dev, name ?: "");
}

static int vq_override_save_locked(struct pci_dev *pdev, char **saved)
{
	struct device *dev = &pdev->dev;

	device_lock_assert(dev);
	*saved = NULL;
	spin_lock(&dev->driver_override.lock);
	if (dev->driver_override.name)
		*saved = kstrdup(dev->driver_override.name, GFP_ATOMIC);
	spin_unlock(&dev->driver_override.lock);
	return dev->driver_override.name && !*saved ? -ENOMEM : 0;
}
#else
/*
 * struct pci_dev::driver_override, protected by device_lock(), as
 * driver_set_override() and the sysfs attribute treat it.  We cannot use
 * driver_set_override() itself: it takes device_lock(), which the driver
 * core already holds around BUS_NOTIFY_BIND_DRIVER.
 */
static int vq_override_set_locked(struct pci_dev *pdev, const char *name)
{
	const char *old, *new = NULL;

	device_lock_assert(&pdev->dev);
	if (name) {
		new = kstrdup(name, GFP_KERNEL);
		if (!new)
			return -ENOMEM;
	}
	old = pdev->driver_override;
	pdev->driver_override = new;
	kfree(old);
	return 0;
}

static int vq_override_save_locked(struct pci_dev *pdev, char **saved)
{
	device_lock_assert(&pdev->dev);
	*saved = NULL;
	if (!pdev->driver_override)
		return 0;
	*saved = kstrdup(pdev->driver_override, GFP_KERNEL);
	return *saved ? 0 : -ENOMEM;
}
#endif

static bool vq_is_vfio_driver(const struct device_driver *drv)
{
	return drv && !strcmp(drv->name, VFIO_QUARANTINE_DRIVER);
}

static bool vq_is_bridge(struct pci_dev *pdev)
{
	return pdev->hdr_type != PCI_HEADER_TYPE_NORMAL;
}

/*
 * A bridge driver that does no DMA through the kernel's DMA API (pcieport)
 * keeps a group viable for VFIO, so a quarantine leaves it bound; any other
 * bridge driver (shpchp) is unbound.
 */
static bool vq_bridge_driver_ok(struct pci_dev *pdev)
{
	struct device_driver *drv = pdev->dev.driver;

	return drv && to_pci_driver(drv)->driver_managed_dma;
}

/* ---- the group table (vq_lock) ---------------------------------------- */

static struct vq_group *vq_group_find_locked(struct iommu_group *grp)
{
	struct vq_group *g;

	lockdep_assert_held(&vq_lock);
	list_for_each_entry(g, &vq_groups, node)
		if (g->iommu_group == grp)
			return g;
	return NULL;
}

static struct vq_group *vq_group_find_id_locked(int id)
{
	struct vq_group *g;

	lockdep_assert_held(&vq_lock);
	list_for_each_entry(g, &vq_groups, node)
		if (g->id == id)
			return g;
	return NULL;
}

static struct vq_member *vq_member_find_locked(struct vq_group *g,
					       struct pci_dev *pdev)
{
	struct vq_member *m;

	lockdep_assert_held(&vq_lock);
	list_for_each_entry(m, &g->members, node)
		if (m->pdev == pdev)
			return m;
	return NULL;
}

/* The member for @pdev in any quarantined group; its group in @gp. */
static struct vq_member *vq_member_lookup_locked(struct pci_dev *pdev,
						 struct vq_group **gp)
{
	struct vq_member *m;
	struct vq_group *g;

	lockdep_assert_held(&vq_lock);
	list_for_each_entry(g, &vq_groups, node) {
		m = vq_member_find_locked(g, pdev);
		if (m) {
			*gp = g;
			return m;
		}
	}
	return NULL;
}

static void vq_member_free(struct vq_member *m)
{
	pci_dev_put(m->pdev);
	kfree(m->saved_override);
	kfree(m);
}

/* Frees @g, which nobody can find any more (it is off vq_groups). */
static void vq_group_free(struct vq_group *g)
{
	struct vq_member *m, *tmp;

	list_for_each_entry_safe(m, tmp, &g->members, node) {
		list_del(&m->node);
		vq_member_free(m);
	}
	iommu_group_put(g->iommu_group);
	kfree(g);
}

static void vq_group_unlink(struct vq_group *g)
{
	mutex_lock(&vq_lock);
	list_del(&g->node);
	vq_generation++;
	mutex_unlock(&vq_lock);
}

/*
 * The IOMMU group @pdev is in, or the one it will be put in (@predicted):
 * the IOMMU core's pci_device_group() puts a device into the group of the
 * first device on its DMA alias path that has one, and a bridge that takes
 * over its requester ID (PCIe-to-PCI, PCI-to-PCIe or conventional PCI) is
 * on that path; PCIe ports pass requester IDs through.  Counted reference.
 */
static struct iommu_group *vq_group_of(struct pci_dev *pdev, bool own,
				       bool *predicted)
{
	struct iommu_group *grp;
	struct pci_bus *bus;

	*predicted = false;
	if (own) {
		grp = iommu_group_get(&pdev->dev);
		if (grp)
			return grp;
	}
	for (bus = pdev->bus; !pci_is_root_bus(bus); bus = bus->parent) {
		struct pci_dev *bridge = bus->self;

		if (!bridge)
			continue;
		if (bridge->dev_flags & PCI_DEV_FLAGS_BRIDGE_XLATE_ROOT)
			break;
		if (pci_is_pcie(bridge) &&
		    pci_pcie_type(bridge) != PCI_EXP_TYPE_PCI_BRIDGE &&
		    pci_pcie_type(bridge) != PCI_EXP_TYPE_PCIE_BRIDGE)
			continue;
		grp = iommu_group_get(&bridge->dev);
		if (grp) {
			*predicted = true;
			return grp;
		}
	}
	return NULL;
}

/* ---- events ------------------------------------------------------------ */

static void vq_event(u32 event, int group, struct pci_dev *pdev,
		     const char *driver)
{
	struct sk_buff *skb;
	void *hdr;

	if (genl_has_listeners(&vq_family, &init_net, VQ_MCGRP_EVENTS) <= 0)
		return;
	skb = genlmsg_new(NLMSG_DEFAULT_SIZE, GFP_KERNEL);
	if (!skb)
		return;
	hdr = genlmsg_put(skb, 0, 0, &vq_family, 0, VFIO_QUARANTINE_CMD_EVENT);
	if (!hdr)
		goto err;
	if (nla_put_u32(skb, VFIO_QUARANTINE_A_EVENT, event) ||
	    nla_put_u32(skb, VFIO_QUARANTINE_A_GROUP, group))
		goto err;
	if (pdev &&
	    nla_put_string(skb, VFIO_QUARANTINE_A_DEVICE, pci_name(pdev)))
		goto err;
	if (driver && *driver &&
	    nla_put_string(skb, VFIO_QUARANTINE_A_DRIVER, driver))
		goto err;
	genlmsg_end(skb, hdr);
	genlmsg_multicast(&vq_family, skb, 0, VQ_MCGRP_EVENTS, GFP_KERNEL);
	return;
err:
	nlmsg_free(skb);
}

/* ---- the bus notifier ----------------------------------------------------- */

/*
 * Make @pdev, not yet a member of any quarantined group, a member of its
 * group if that is quarantined, and give it driver_override.  The caller
 * holds device_lock(&pdev->dev).  Returns the group number, or -1.
 */
static int vq_claim_locked(struct pci_dev *pdev, bool own_group)
{
	struct vq_member *m = NULL;
	struct iommu_group *grp;
	struct vq_group *g;
	bool predicted;
	int id = -1;

	device_lock_assert(&pdev->dev);
	grp = vq_group_of(pdev, own_group, &predicted);
	if (!grp)
		return -1;

	mutex_lock(&vq_lock);
	g = vq_group_find_locked(grp);
	if (!g || g->state == VQ_LEAVING || vq_member_find_locked(g, pdev))
		goto unlock;
	m = kzalloc(sizeof(*m), GFP_KERNEL);
	if (!m) {
		pr_err("%s: out of memory; it joins quarantined group %d unprotected\n",
		       pci_name(pdev), g->id);
		goto unlock;
	}
	if (vq_override_save_locked(pdev, &m->saved_override) ||
	    vq_override_set_locked(pdev, VFIO_QUARANTINE_DRIVER)) {
		pr_err("%s: cannot set driver_override; it joins quarantined group %d unprotected\n",
		       pci_name(pdev), g->id);
		goto unlock;
	}
	m->pdev = pci_dev_get(pdev);
	m->saved = true;
	m->hotplugged = true;
	m->predicted = predicted;
	list_add_tail(&m->node, &g->members);
	vq_generation++;
	id = g->id;
	m = NULL;
unlock:
	mutex_unlock(&vq_lock);
	if (m) {
		kfree(m->saved_override);
		kfree(m);
	}
	iommu_group_put(grp);
	if (id >= 0)
		pr_info("%s: joined quarantined group %d%s; driver_override=%s\n",
			pci_name(pdev), id, predicted ? " (predicted)" : "",
			VFIO_QUARANTINE_DRIVER);
	return id;
}

static void vq_device_added(struct pci_dev *pdev)
{
	int mode = test_add_notifier;
	int id;

	if (mode == 2)
		return;
	device_lock(&pdev->dev);
	id = vq_claim_locked(pdev, mode != 1);
	device_unlock(&pdev->dev);
	if (id >= 0)
		vq_event(VFIO_QUARANTINE_EVENT_DEVICE_ADDED, id, pdev, NULL);
}

/*
 * A member whose group was only predicted at ADD_DEVICE turned out to be in
 * another group: give it back its own driver_override.  The bind in
 * progress was matched through our override and fails; the device is
 * re-probed by whoever probes it next.
 */
static void vq_unclaim_locked(struct vq_group *g, struct vq_member *m)
{
	lockdep_assert_held(&vq_lock);
	device_lock_assert(&m->pdev->dev);
	if (vq_override_set_locked(m->pdev, m->saved_override))
		pr_err("%s: cannot restore driver_override\n",
		       pci_name(m->pdev));
	pr_warn("%s: not in group %d as predicted; released (re-probe it)\n",
		pci_name(m->pdev), g->id);
	list_del(&m->node);
	vq_generation++;
}

/* BUS_NOTIFY_BIND_DRIVER, under device_lock(): the guard. */
static void vq_bind_requested(struct pci_dev *pdev)
{
	struct device_driver *drv = pdev->dev.driver;
	char name[VQ_NAME_LEN] = "";
	struct vq_member *m, *gone = NULL;
	struct iommu_group *grp;
	bool blocked = false;
	struct vq_group *g;
	int id = -1;

	if (drv)
		strscpy(name, drv->name, sizeof(name));
	mutex_lock(&vq_lock);
	m = vq_member_lookup_locked(pdev, &g);
	if (m && m->predicted) {
		grp = iommu_group_get(&pdev->dev);
		if (grp && grp != g->iommu_group) {
			vq_unclaim_locked(g, m);
			gone = m;
			m = NULL;
		} else if (grp) {
			m->predicted = false;
		}
		iommu_group_put(grp);
	}
	mutex_unlock(&vq_lock);
	if (gone) {
		vq_member_free(gone);
		return;
	}
	if (!m) {
		/* joined its group after ADD_DEVICE (or the hook skipped it) */
		id = vq_claim_locked(pdev, true);
		if (id < 0)
			return;
		vq_event(VFIO_QUARANTINE_EVENT_DEVICE_ADDED, id, pdev, NULL);
	}

	mutex_lock(&vq_lock);
	m = vq_member_lookup_locked(pdev, &g);
	if (m && g->state != VQ_LEAVING && !vq_is_vfio_driver(drv)) {
		id = g->id;
		blocked = true;
		if (vq_override_set_locked(pdev, VFIO_QUARANTINE_DRIVER))
			pr_err("%s: cannot set driver_override; %s may bind\n",
			       pci_name(pdev), name);
	}
	mutex_unlock(&vq_lock);
	if (blocked) {
		pr_info("%s: %s refused: group %d is quarantined\n",
			pci_name(pdev), name, id);
		vq_event(VFIO_QUARANTINE_EVENT_BIND_BLOCKED, id, pdev, name);
	}
}

/* BOUND, UNBIND and UNBOUND of a member: track its driver, tell listeners. */
static void vq_driver_event(struct pci_dev *pdev, unsigned long action)
{
	struct device_driver *drv = pdev->dev.driver;
	char name[VQ_NAME_LEN] = "";
	struct vq_member *m;
	struct vq_group *g;
	u32 event;
	int id;

	mutex_lock(&vq_lock);
	m = vq_member_lookup_locked(pdev, &g);
	if (!m) {
		mutex_unlock(&vq_lock);
		return;
	}
	id = g->id;
	switch (action) {
	case BUS_NOTIFY_BOUND_DRIVER:
		event = VFIO_QUARANTINE_EVENT_BOUND;
		if (drv)
			strscpy(m->driver, drv->name, sizeof(m->driver));
		strscpy(name, m->driver, sizeof(name));
		break;
	case BUS_NOTIFY_UNBIND_DRIVER:
		event = VFIO_QUARANTINE_EVENT_UNBIND_REQUESTED;
		if (drv)
			strscpy(name, drv->name, sizeof(name));
		break;
	default: /* BUS_NOTIFY_UNBOUND_DRIVER: dev->driver is gone already */
		event = VFIO_QUARANTINE_EVENT_UNBOUND;
		strscpy(name, m->driver, sizeof(name));
		m->driver[0] = '\0';
		break;
	}
	mutex_unlock(&vq_lock);
	vq_event(event, id, pdev, name);
}

static void vq_device_removed(struct pci_dev *pdev)
{
	struct vq_member *m;
	struct vq_group *g;
	int id = -1;

	mutex_lock(&vq_lock);
	m = vq_member_lookup_locked(pdev, &g);
	if (m) {
		id = g->id;
		list_del(&m->node);
		vq_generation++;
	}
	mutex_unlock(&vq_lock);
	if (!m)
		return;
	vq_event(VFIO_QUARANTINE_EVENT_DEVICE_REMOVED, id, pdev, NULL);
	vq_member_free(m);
}

static int vq_bus_notify(struct notifier_block *nb, unsigned long action,
			 void *data)
{
	struct pci_dev *pdev = to_pci_dev(data);

	switch (action) {
	case BUS_NOTIFY_ADD_DEVICE:
		vq_device_added(pdev);
		break;
	case BUS_NOTIFY_BIND_DRIVER:
		vq_bind_requested(pdev);
		break;
	case BUS_NOTIFY_BOUND_DRIVER:
	case BUS_NOTIFY_UNBIND_DRIVER:
	case BUS_NOTIFY_UNBOUND_DRIVER:
		vq_driver_event(pdev, action);
		break;
	case BUS_NOTIFY_REMOVED_DEVICE:
		vq_device_removed(pdev);
		break;
	}
	return NOTIFY_DONE;
}

/* After the IOMMU core's notifier (0) and VT-d's (1): see the top. */
static struct notifier_block vq_nb = {
	.notifier_call = vq_bus_notify,
	.priority = -1,
};

/* ---- QUARANTINE and RELEASE (vq_op_lock) ----------------------------------- */

/*
 * Log the reason the extended ack now gives for @pdev's failure, and put the
 * device's name in the ack's cookie.  Returns @err.
 */
static int vq_fail_dev_cookie(struct netlink_ext_ack *extack,
			      struct pci_dev *pdev, int err)
{
	const char *name = pci_name(pdev);
	size_t len = strlen(name) + 1;

	if (!extack) {
		pr_warn("%s: failed (%d)\n", name, err);
		return err;
	}
#ifdef NL_SET_ERR_MSG_FMT
	pr_warn("%s (%d)\n", extack->_msg, err);	/* "name: why" */
#else
	pr_warn("%s: %s (%d)\n", name, extack->_msg, err);
#endif
	if (len <= sizeof(extack->cookie)) {
		memcpy(extack->cookie, name, len);
		extack->cookie_len = len;
	}
	return err;
}

/*
 * Fail an operation because of @pdev, returning @err: its name goes to the
 * extended ack's cookie on every kernel, and the message says @why, after
 * the name where the kernel can format one (6.2 and later).  @why must be a
 * string literal, as NL_SET_ERR_MSG() and NL_SET_ERR_MSG_FMT() require.
 */
#ifdef NL_SET_ERR_MSG_FMT
#define vq_fail_dev(extack, pdev, err, why) ({				\
	struct netlink_ext_ack *__ack = (extack);			\
	struct pci_dev *__pdev = (pdev);				\
									\
	NL_SET_ERR_MSG_FMT(__ack, "%s: " why, pci_name(__pdev));	\
	vq_fail_dev_cookie(__ack, __pdev, err);				\
})
#else
#define vq_fail_dev(extack, pdev, err, why) ({				\
	struct netlink_ext_ack *__ack = (extack);			\
									\
	NL_SET_ERR_MSG(__ack, why);					\
	vq_fail_dev_cookie(__ack, pdev, err);				\
})
#endif

struct vq_find {
	int id;
	struct iommu_group *grp;
};

static int vq_find_group_fn(struct device *dev, void *data)
{
	struct iommu_group *grp = iommu_group_get(dev);
	struct vq_find *f = data;

	if (!grp)
		return 0;
	if (iommu_group_id(grp) == f->id) {
		f->grp = grp;
		return 1;
	}
	iommu_group_put(grp);
	return 0;
}

/* The IOMMU group numbered @id that has a PCI device in it; counted. */
static struct iommu_group *vq_find_group(int id)
{
	struct vq_find f = { .id = id };

	bus_for_each_dev(&pci_bus_type, NULL, &f, vq_find_group_fn);
	return f.grp;
}

struct vq_enlist {
	struct list_head members;
	char bad_name[VQ_NAME_LEN];	/* a member that is no PCI device */
};

/* iommu_group_for_each_dev() callback: a member for each device. */
static int vq_enlist_fn(struct device *dev, void *data)
{
	struct vq_enlist *e = data;
	struct vq_member *m;

	if (!dev_is_pci(dev)) {
		strscpy(e->bad_name, dev_name(dev), sizeof(e->bad_name));
		return -EOPNOTSUPP;
	}
	m = kzalloc(sizeof(*m), GFP_KERNEL);
	if (!m)
		return -ENOMEM;
	m->pdev = pci_dev_get(to_pci_dev(dev));
	list_add_tail(&m->node, &e->members);
	return 0;
}

/*
 * The group's members, each with a counted reference, in @devs; the
 * caller works on them without vq_lock and puts them with vq_devs_put().
 */
static int vq_devs_get(struct vq_group *g, struct pci_dev ***devs,
		       unsigned int *n)
{
	struct vq_member *m;
	unsigned int i = 0;

	mutex_lock(&vq_lock);
	list_for_each_entry(m, &g->members, node)
		i++;
	*devs = kmalloc_array(i ?: 1, sizeof(**devs), GFP_KERNEL);
	if (!*devs) {
		mutex_unlock(&vq_lock);
		return -ENOMEM;
	}
	i = 0;
	list_for_each_entry(m, &g->members, node)
		(*devs)[i++] = pci_dev_get(m->pdev);
	mutex_unlock(&vq_lock);
	*n = i;
	return 0;
}

static void vq_devs_put(struct pci_dev **devs, unsigned int n)
{
	while (n--)
		pci_dev_put(devs[n]);
	kfree(devs);
}

/*
 * Move one member into quarantine: remember its driver_override and
 * driver, set driver_override, unbind its host driver and bind vfio-pci
 * (a bridge is left without a driver).
 */
static int vq_member_enter(struct vq_group *g, struct pci_dev *pdev,
			   struct netlink_ext_ack *extack)
{
	struct device *dev = &pdev->dev;
	bool bridge = vq_is_bridge(pdev);
	bool unbind = false, bound;
	struct vq_member *m;
	int ret = 0;

	device_lock(dev);
	mutex_lock(&vq_lock);
	m = vq_member_find_locked(g, pdev);
	if (!m) /* hot-removed meanwhile */
		goto unlock;
	if (!m->saved) {
		ret = vq_override_save_locked(pdev, &m->saved_override);
		if (ret)
			goto unlock;
		if (dev->driver) {
			strscpy(m->saved_driver, dev->driver->name,
				sizeof(m->saved_driver));
			strscpy(m->driver, dev->driver->name,
				sizeof(m->driver));
		}
		m->saved = true;
	}
	ret = vq_override_set_locked(pdev, VFIO_QUARANTINE_DRIVER);
	if (dev->driver && !vq_is_vfio_driver(dev->driver))
		unbind = !bridge || !vq_bridge_driver_ok(pdev);
unlock:
	mutex_unlock(&vq_lock);
	device_unlock(dev);
	if (ret)
		return vq_fail_dev(extack, pdev, ret,
				   "cannot set driver_override");
	if (!m)
		return 0;

	if (unbind)
		device_release_driver(dev);
	if (bridge)
		return 0;

	if (fail_after >= 0 && vq_moved++ >= fail_after)
		return vq_fail_dev(extack, pdev, -EIO,
				   "vfio-pci refused it (injected: fail_after test hook)");

	ret = device_attach(dev);
	if (ret < 0)
		return vq_fail_dev(extack, pdev, ret, "binding vfio-pci failed");
	device_lock(dev);
	bound = vq_is_vfio_driver(dev->driver);
	device_unlock(dev);
	if (!bound)
		return vq_fail_dev(extack, pdev, -ENODEV,
				   "vfio-pci did not bind it (see the kernel log)");
	return 0;
}

/*
 * Undo what the quarantine did to one member: its old driver_override,
 * off vfio-pci, and a re-probe if it had a driver before or was hot-plugged
 * meanwhile.  Returns false if it ends without the driver it had before.
 */
static bool vq_member_leave(struct vq_group *g, struct pci_dev *pdev)
{
	char want[VQ_NAME_LEN] = "", got[VQ_NAME_LEN] = "";
	struct device *dev = &pdev->dev;
	bool unbind, reprobe;
	struct vq_member *m;
	int ret;

	device_lock(dev);
	mutex_lock(&vq_lock);
	m = vq_member_find_locked(g, pdev);
	if (!m || !m->saved) { /* removed, or never touched */
		mutex_unlock(&vq_lock);
		device_unlock(dev);
		return true;
	}
	ret = vq_override_set_locked(pdev, m->saved_override);
	strscpy(want, m->saved_driver, sizeof(want));
	reprobe = want[0] || m->hotplugged;
	mutex_unlock(&vq_lock);
	unbind = vq_is_vfio_driver(dev->driver);
	device_unlock(dev);
	if (ret)
		pr_err("%s: cannot restore driver_override (%d)\n",
		       pci_name(pdev), ret);

	if (unbind)
		device_release_driver(dev);
	if (reprobe && device_attach(dev) < 0)
		pr_warn("%s: re-probe failed\n", pci_name(pdev));

	device_lock(dev);
	if (dev->driver)
		strscpy(got, dev->driver->name, sizeof(got));
	device_unlock(dev);
	if (!want[0] || !strcmp(want, got))
		return true;
	pr_warn("%s: had %s before the quarantine, now %s\n", pci_name(pdev),
		want, got[0] ? got : "no driver");
	return false;
}

/*
 * Give every member back what it had, last member first; false if one did
 * not get its old driver back.
 */
static bool vq_group_restore(struct vq_group *g)
{
	struct pci_dev **devs;
	unsigned int i, n;
	bool all = true;

	if (vq_devs_get(g, &devs, &n)) {
		pr_err("group %d: out of memory; members left on vfio-pci\n",
		       g->id);
		return false;
	}
	for (i = n; i > 0; i--)
		all &= vq_member_leave(g, devs[i - 1]);
	vq_devs_put(devs, n);
	return all;
}

static int vq_quarantine(int id, struct netlink_ext_ack *extack)
{
	struct vq_member *m, *tmp;
	struct iommu_group *grp;
	struct vq_enlist e;
	struct pci_dev **devs;
	struct vq_group *g;
	unsigned int i, n;
	int ret;

	if (!driver_find(VFIO_QUARANTINE_DRIVER, &pci_bus_type))
		request_module("vfio-pci");
	if (!driver_find(VFIO_QUARANTINE_DRIVER, &pci_bus_type)) {
		NL_SET_ERR_MSG(extack, "vfio-pci is not loaded");
		return -ENODEV;
	}
	grp = vq_find_group(id);
	if (!grp) {
		NL_SET_ERR_MSG(extack, "no IOMMU group with a PCI device has that number");
		return -ENOENT;
	}
	g = kzalloc(sizeof(*g), GFP_KERNEL);
	if (!g) {
		iommu_group_put(grp);
		return -ENOMEM;
	}
	g->iommu_group = grp;
	g->id = id;
	g->state = VQ_ENTERING;
	INIT_LIST_HEAD(&g->members);

	/*
	 * Publish the group before reading its members: a device that joins
	 * the IOMMU group after iommu_group_for_each_dev() below is seen by
	 * our ADD_DEVICE notifier, which runs after the IOMMU core put it in
	 * the group and so after this point.
	 */
	mutex_lock(&vq_lock);
	if (vq_group_find_locked(grp)) {
		mutex_unlock(&vq_lock);
		iommu_group_put(grp);
		kfree(g);
		NL_SET_ERR_MSG(extack, "the group is already quarantined");
		return -EALREADY;
	}
	list_add_tail(&g->node, &vq_groups);
	vq_generation++;
	mutex_unlock(&vq_lock);

	INIT_LIST_HEAD(&e.members);
	e.bad_name[0] = '\0';
	ret = iommu_group_for_each_dev(grp, &e, vq_enlist_fn);
	mutex_lock(&vq_lock);
	list_for_each_entry_safe(m, tmp, &e.members, node) {
		list_del(&m->node);
		if (vq_member_find_locked(g, m->pdev)) {
			vq_member_free(m);
			continue;
		}
		list_add_tail(&m->node, &g->members);
	}
	mutex_unlock(&vq_lock);
	if (ret == -EOPNOTSUPP) {
		pr_warn("group %d: %s is not a PCI device\n", id, e.bad_name);
		NL_SET_ERR_MSG(extack, "the group has a member that is not a PCI device");
		goto rollback;
	}
	if (ret)
		goto rollback;

	ret = vq_devs_get(g, &devs, &n);
	if (ret)
		goto rollback;
	vq_moved = 0;
	for (i = 0; i < n && !ret; i++)
		ret = vq_member_enter(g, devs[i], extack);
	vq_devs_put(devs, n);
	if (ret)
		goto rollback;

	mutex_lock(&vq_lock);
	g->state = VQ_QUARANTINED;
	mutex_unlock(&vq_lock);
	pr_info("group %d quarantined\n", id);
	vq_event(VFIO_QUARANTINE_EVENT_QUARANTINED, id, NULL, NULL);
	return 0;

rollback:
	mutex_lock(&vq_lock);
	g->state = VQ_LEAVING;
	mutex_unlock(&vq_lock);
	if (!vq_group_restore(g))
		pr_warn("group %d: rollback left a device without its old driver\n",
			id);
	vq_group_unlink(g);
	vq_group_free(g);
	pr_info("group %d: quarantine failed (%d) and was rolled back\n", id,
		ret);
	return ret;
}

static int vq_release(int id, u32 flags, struct netlink_ext_ack *extack)
{
	bool restore = flags & VFIO_QUARANTINE_RELEASE_RESTORE_DRIVERS;
	struct vq_group *g;

	/* only operations, serialized by vq_op_lock, free a group */
	mutex_lock(&vq_lock);
	g = vq_group_find_id_locked(id);
	mutex_unlock(&vq_lock);
	if (!g) {
		NL_SET_ERR_MSG(extack, "the group is not quarantined");
		return -ENOENT;
	}
	/*
	 * Unbinding vfio-pci from a device that a VFIO user holds blocks
	 * until the user lets go; refuse rather than hang.  A user who opens
	 * the group after this check is waited for.
	 */
	if (restore && iommu_group_dma_owner_claimed(g->iommu_group)) {
		NL_SET_ERR_MSG(extack, "a VFIO user holds the group");
		return -EBUSY;
	}
	mutex_lock(&vq_lock);
	g->state = VQ_LEAVING;
	mutex_unlock(&vq_lock);

	if (restore && !vq_group_restore(g))
		NL_SET_ERR_MSG(extack, "released; a device did not get its old driver back");
	vq_group_unlink(g);
	vq_group_free(g);
	pr_info("group %d released%s\n", id,
		restore ? ", host drivers restored" : "; members stay on vfio-pci");
	vq_event(VFIO_QUARANTINE_EVENT_RELEASED, id, NULL, NULL);
	return 0;
}

/* ---- device requests ------------------------------------------------------ */

/* eventfd_signal() lost its count argument in 6.8 (Kbuild asks the headers). */
#ifdef VQ_EVENTFD_SIGNAL_COUNT
#define vq_eventfd_signal(ctx) eventfd_signal(ctx, 1)
#else
#define vq_eventfd_signal(ctx) eventfd_signal(ctx)
#endif

/*
 * Signal the request eventfd of @vdev, as vfio_pci_core_request() does
 * while an unbind waits for the user; true if one was registered.  Where
 * the trigger lives and how it is protected differs between the kernels
 * we build for, and the version does not tell (Kbuild asks the headers):
 *
 * - 6.1: a plain struct eventfd_ctx *, replaced and put by
 *   vfio_pci_set_irqs_ioctl() (VFIO_DEVICE_SET_IRQS with DATA_EVENTFD, fd
 *   -1 or another eventfd) and by vfio_pci_core_close_device(), both under
 *   vdev->igate; vfio_pci_core_request() signals it under igate too.
 * - Debian 6.12.y: a struct vfio_pci_eventfd __rcu *, still replaced under
 *   igate but freed after an RCU grace period, and vfio_pci_core_request()
 *   only holds rcu_read_lock() (upstream dropped igate there to break a
 *   lock cycle; taking it here would bring that cycle back).
 *
 * So we do exactly what the kernel does on unbind, on each kernel.
 */
static bool vq_signal_request(struct vfio_pci_core_device *vdev)
{
#ifdef VQ_REQ_TRIGGER_RCU
	struct vfio_pci_eventfd *trigger;
	bool registered;

	rcu_read_lock();
	trigger = rcu_dereference(vdev->req_trigger);
	registered = trigger;
	if (trigger)
		vq_eventfd_signal(trigger->ctx);
	rcu_read_unlock();
	return registered;
#else
	bool registered;

	mutex_lock(&vdev->igate);
	registered = vdev->req_trigger;
	if (vdev->req_trigger)
		vq_eventfd_signal(vdev->req_trigger);
	mutex_unlock(&vdev->igate);
	return registered;
#endif
}

/*
 * REQUEST_DEVICE: relay a device request to the VFIO user of @pdev without
 * unbinding it.  Returns 1 if a request eventfd was registered (and was
 * signalled), 0 if none was, or -errno.
 *
 * Why this is safe:
 * - device_lock() keeps the driver where it is: binding, unbinding (the
 *   sysfs unbind, rmmod vfio-pci, vfio_pci_remove()) and hot-removal of the
 *   device (pci_stop_and_remove_bus_device() releases the driver first) all
 *   run under it.  So once we see vfio-pci bound under the lock, its probe
 *   has completed and its remove has not started: drvdata is the
 *   struct vfio_pci_core_device vfio_pci_probe() stored there, and it is
 *   not freed before we unlock.  The driver is checked by name, so a
 *   vfio-pci variant driver (another drvdata type) never matches.
 * - The trigger itself can be released or replaced at any time by its user
 *   (VFIO_DEVICE_SET_IRQS, or closing the device fd): igate on 6.1, RCU on
 *   6.12.y, as vq_signal_request() says, keep it alive while we signal.
 * - The pci_dev is counted by bus_find_device_by_name().
 * We only try the device lock, for a while: it is held for as long as an
 * unbind waits for the VFIO user to let go (the kernel then relays the
 * request itself, every 10 s), and our caller must not hang behind that.
 */
static int vq_request_device(const char *name, struct netlink_ext_ack *extack)
{
	struct vfio_pci_core_device *vdev;
	struct pci_dev *pdev;
	struct device *dev;
	int tries, ret;

	dev = bus_find_device_by_name(&pci_bus_type, NULL, name);
	if (!dev) {
		NL_SET_ERR_MSG(extack, "no PCI device by that name");
		return -ENODEV;
	}
	pdev = to_pci_dev(dev);
	for (tries = 0; !device_trylock(dev); tries++) {
		if (tries == 5) {
			NL_SET_ERR_MSG(extack, "the device is being bound or unbound; try again");
			ret = -EBUSY;
			goto out;
		}
		msleep(20);
	}
	if (!vq_is_vfio_driver(dev->driver) || !dev_get_drvdata(dev)) {
		NL_SET_ERR_MSG(extack, "the device is not bound to vfio-pci");
		ret = -ENXIO;
	} else {
		vdev = dev_get_drvdata(dev);
		ret = vq_signal_request(vdev);
	}
	device_unlock(dev);
	/* the broker relays every few seconds and logs it itself */
	if (ret >= 0)
		pci_dbg(pdev, "device request relayed: %s\n",
			ret ? "request eventfd signalled" : "no request eventfd registered");
out:
	put_device(dev);
	return ret;
}

/* ---- generic netlink ------------------------------------------------------ */

static int vq_get_group(struct genl_info *info, int *id)
{
	struct nlattr *attr = info->attrs[VFIO_QUARANTINE_A_GROUP];

	if (!attr) {
		NL_SET_ERR_MSG(info->extack, "GROUP is missing");
		return -EINVAL;
	}
	if (nla_get_u32(attr) > INT_MAX) {
		NL_SET_ERR_MSG_ATTR(info->extack, attr, "no such group number");
		return -EINVAL;
	}
	*id = nla_get_u32(attr);
	return 0;
}

static int vq_cmd_quarantine(struct sk_buff *skb, struct genl_info *info)
{
	int id, ret;

	ret = vq_get_group(info, &id);
	if (ret)
		return ret;
	mutex_lock(&vq_op_lock);
	ret = vq_quarantine(id, info->extack);
	mutex_unlock(&vq_op_lock);
	return ret;
}

static int vq_cmd_release(struct sk_buff *skb, struct genl_info *info)
{
	struct nlattr *flags = info->attrs[VFIO_QUARANTINE_A_FLAGS];
	int id, ret;

	ret = vq_get_group(info, &id);
	if (ret)
		return ret;
	mutex_lock(&vq_op_lock);
	ret = vq_release(id, flags ? nla_get_u32(flags) : 0, info->extack);
	mutex_unlock(&vq_op_lock);
	return ret;
}

static int vq_cmd_request_device(struct sk_buff *skb, struct genl_info *info)
{
	struct nlattr *attr = info->attrs[VFIO_QUARANTINE_A_DEVICE];
	char name[VQ_NAME_LEN];
	struct sk_buff *msg;
	void *hdr;
	int ret;

	if (!attr) {
		NL_SET_ERR_MSG(info->extack, "DEVICE is missing");
		return -EINVAL;
	}
	nla_strscpy(name, attr, sizeof(name));
	ret = vq_request_device(name, info->extack);
	if (ret < 0)
		return ret;
	msg = genlmsg_new(NLMSG_DEFAULT_SIZE, GFP_KERNEL);
	if (!msg)
		return -ENOMEM;
	hdr = genlmsg_put_reply(msg, info, &vq_family, 0,
				VFIO_QUARANTINE_CMD_REQUEST_DEVICE);
	if (!hdr ||
	    nla_put_string(msg, VFIO_QUARANTINE_A_DEVICE, name) ||
	    nla_put_u32(msg, VFIO_QUARANTINE_A_EVENTFD, ret)) {
		nlmsg_free(msg);
		return -EMSGSIZE;
	}
	genlmsg_end(msg, hdr);
	return genlmsg_reply(msg, info);
}

static int vq_fill_member(struct sk_buff *skb, struct vq_member *m)
{
	struct nlattr *nest;
	u32 flags = 0;

	if (m->hotplugged)
		flags |= VFIO_QUARANTINE_MEMBER_HOTPLUGGED;
	if (vq_is_bridge(m->pdev))
		flags |= VFIO_QUARANTINE_MEMBER_BRIDGE;
	nest = nla_nest_start(skb, VFIO_QUARANTINE_A_MEMBER);
	if (!nest)
		return -EMSGSIZE;
	if (nla_put_string(skb, VFIO_QUARANTINE_MEMBER_A_DEVICE,
			   pci_name(m->pdev)) ||
	    (m->driver[0] &&
	     nla_put_string(skb, VFIO_QUARANTINE_MEMBER_A_DRIVER, m->driver)) ||
	    nla_put_u32(skb, VFIO_QUARANTINE_MEMBER_A_FLAGS, flags)) {
		nla_nest_cancel(skb, nest);
		return -EMSGSIZE;
	}
	nla_nest_end(skb, nest);
	return 0;
}

static int vq_fill_group(struct sk_buff *skb, struct netlink_callback *cb,
			 struct vq_group *g)
{
	struct vq_member *m;
	void *hdr;

	hdr = genlmsg_put(skb, NETLINK_CB(cb->skb).portid, cb->nlh->nlmsg_seq,
			  &vq_family, NLM_F_MULTI, VFIO_QUARANTINE_CMD_LIST);
	if (!hdr)
		return -EMSGSIZE;
	genl_dump_check_consistent(cb, hdr);
	if (nla_put_u32(skb, VFIO_QUARANTINE_A_GROUP, g->id))
		goto cancel;
	list_for_each_entry(m, &g->members, node)
		if (vq_fill_member(skb, m))
			goto cancel;
	genlmsg_end(skb, hdr);
	return 0;
cancel:
	genlmsg_cancel(skb, hdr);
	return -EMSGSIZE;
}

/* LIST: one message per group; cb->args[0] counts the groups sent. */
static int vq_cmd_list(struct sk_buff *skb, struct netlink_callback *cb)
{
	long idx = 0, skip = cb->args[0];
	struct vq_group *g;
	int ret = 0;

	mutex_lock(&vq_lock);
	cb->seq = vq_generation;
	list_for_each_entry(g, &vq_groups, node) {
		if (idx < skip || g->state == VQ_LEAVING) {
			idx++;
			continue;
		}
		ret = vq_fill_group(skb, cb, g);
		if (ret)
			break;
		idx++;
	}
	mutex_unlock(&vq_lock);
	cb->args[0] = idx;
	/* a group too big for an empty message cannot be sent at all */
	if (ret && !skb->len)
		return ret;
	return skb->len;
}

static const struct nla_policy vq_policy[VFIO_QUARANTINE_A_MAX + 1] = {
	[VFIO_QUARANTINE_A_GROUP] = { .type = NLA_U32 },
	[VFIO_QUARANTINE_A_FLAGS] =
		NLA_POLICY_MASK(NLA_U32, VFIO_QUARANTINE_RELEASE_RESTORE_DRIVERS),
	[VFIO_QUARANTINE_A_DEVICE] = { .type = NLA_NUL_STRING,
				       .len = VQ_NAME_LEN - 1 },
};

/*
 * GENL_ADMIN_PERM is CAP_NET_ADMIN in the initial user namespace, checked
 * for both the process that opened the socket and the sender
 * (netlink_capable()), so a socket handed to a less privileged process is
 * no way around it.  It is the capability generic netlink checks for us,
 * and a narrower one than CAP_SYS_ADMIN for vfio-brokerd to keep after it
 * drops the rest.  LIST is admin-only too, like the operations whose state
 * it shows.  REQUEST_DEVICE too: it pesters any VFIO user on the system.
 */
static const struct genl_small_ops vq_ops[] = {
	{
		.cmd = VFIO_QUARANTINE_CMD_QUARANTINE,
		.flags = GENL_ADMIN_PERM,
		.doit = vq_cmd_quarantine,
	},
	{
		.cmd = VFIO_QUARANTINE_CMD_RELEASE,
		.flags = GENL_ADMIN_PERM,
		.doit = vq_cmd_release,
	},
	{
		.cmd = VFIO_QUARANTINE_CMD_LIST,
		.flags = GENL_ADMIN_PERM,
		.dumpit = vq_cmd_list,
	},
	{
		.cmd = VFIO_QUARANTINE_CMD_REQUEST_DEVICE,
		.flags = GENL_ADMIN_PERM,
		.doit = vq_cmd_request_device,
	},
};

static const struct genl_multicast_group vq_mcgrps[] = {
	[VQ_MCGRP_EVENTS] = { .name = VFIO_QUARANTINE_MCGRP_EVENTS },
};

/*
 * parallel_ops: our operations serialize on vq_op_lock, and must not hold
 * genl_mutex (and so every other family) while drivers unbind and probe.
 */
static struct genl_family vq_family __ro_after_init = {
	.name = VFIO_QUARANTINE_FAMILY_NAME,
	.version = VFIO_QUARANTINE_FAMILY_VERSION,
	.maxattr = VFIO_QUARANTINE_A_MAX,
	.policy = vq_policy,
	.parallel_ops = true,
	.module = THIS_MODULE,
	.small_ops = vq_ops,
	.n_small_ops = ARRAY_SIZE(vq_ops),
	.mcgrps = vq_mcgrps,
	.n_mcgrps = ARRAY_SIZE(vq_mcgrps),
};

/* ---- module ------------------------------------------------------------- */

static int __init vq_init(void)
{
	int ret;

	/* the notifier first: no group can be quarantined before the family */
	ret = bus_register_notifier(&pci_bus_type, &vq_nb);
	if (ret)
		return ret;
	ret = genl_register_family(&vq_family);
	if (ret) {
		bus_unregister_notifier(&pci_bus_type, &vq_nb);
		return ret;
	}
	return 0;
}

/*
 * Unloading leaves every quarantined device as safe as it was: on
 * vfio-pci, with driver_override = "vfio-pci" (a string the device owns and
 * frees), so no host driver can take it.  Only our bookkeeping goes.
 */
static void __exit vq_exit(void)
{
	struct vq_group *g, *tmp;
	unsigned int n = 0;

	/* returns once no notification is running */
	bus_unregister_notifier(&pci_bus_type, &vq_nb);
	/* returns once no operation is running */
	genl_unregister_family(&vq_family);

	list_for_each_entry_safe(g, tmp, &vq_groups, node) {
		list_del(&g->node);
		vq_group_free(g);
		n++;
	}
	if (n)
		pr_info("unloaded; %u quarantined group(s) stay on vfio-pci with driver_override set\n",
			n);
}

module_init(vq_init);
module_exit(vq_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Quarantine whole IOMMU groups on vfio-pci, hot-plug included");
MODULE_AUTHOR("vfio-broker");
MODULE_ALIAS_GENL_FAMILY(VFIO_QUARANTINE_FAMILY_NAME);
