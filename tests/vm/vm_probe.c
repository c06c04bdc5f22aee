/*
 * vm-probe: the VFIO client used by the VM test tier (tests/vm/).
 *
 * It plays a user's workload: given VFIO group fds, it builds a container
 * (/dev/vfio/vfio, VFIO_GROUP_SET_CONTAINER, VFIO_SET_IOMMU(TYPE1v2)), maps
 * and unmaps one page of DMA, then opens each device with
 * VFIO_GROUP_GET_DEVICE_FD and reads vendor, device and class from its PCI
 * config region.  Every result is one line of key=value pairs on stdout,
 * so the scenarios can compare it with sysfs.
 *
 * usage:
 *   vm-probe [--bdf BDF]...            group fds from VFIO_BROKER_FDS=G=FD[,G=FD...]
 *                                      (what `vfioctl lease` hands over)
 *   vm-probe --open GROUP [--bdf BDF]... root only: open /dev/vfio/GROUP itself
 *   vm-probe --open-direct PATH        try open(PATH, O_RDWR) and report errno
 *   vm-probe --keep-device-fd FILE [--bdf BDF]...
 *                                      as the first form, then fork a child that
 *                                      keeps only the first device's fd (no group,
 *                                      no container fd), writes its pid to FILE
 *                                      and reads config space every 100 ms until
 *                                      killed; the parent exits 0 (issue 13: a
 *                                      child a hard removal must reach)
 *   vm-probe --on-request exit|ignore [--bdf BDF]...
 *                                      as the first form, keeping every device
 *                                      fd open, then registers a request eventfd
 *                                      on each (VFIO_DEVICE_SET_IRQS at
 *                                      VFIO_PCI_REQ_IRQ_INDEX) and waits for the
 *                                      VFIO device request, as a VMM does: "exit"
 *                                      (cooperative) closes every VFIO fd and
 *                                      exits 0 at the first request; "ignore"
 *                                      (stubborn) reports each and goes on.
 *                                      Either gives up after 600 s (exit 4).
 *
 * With VFIO_BROKER_CONTAINER_FD=FD (what `vfioctl lease --merge` hands
 * over) the probe uses that container, which the broker attached the groups
 * to, instead of opening one: it sets the IOMMU on it and maps DMA through
 * it, and a group already in a container is then probed through this one
 * (VFIO_GROUP_GET_DEVICE_FD fails unless the group's container has an
 * IOMMU, so reading a device proves its group is in the merged container).
 *
 * Without --bdf, every device of the groups that is bound to vfio-pci is
 * probed.  Exit status: 0 all steps worked; 1 a VFIO step failed; 2 usage;
 * 3 --open-direct could not open the file (the errno is printed).
 *
 * Output lines (all prefixed "vm-probe: "):
 *   group=G fd=FD source=env|open viable=0|1
 *   container source=env|open fd=FD
 *   container api=0 type1v2=1 iommu=TYPE1v2 pgsizes=0x...
 *   dma map+unmap iova=0x... size=4096 ok
 *   device=BDF group=G vendor=8086 device_id=10d3 class=020000 regions=9 irqs=5
 *   open-direct PATH: ok | open-direct PATH: errno=EACCES (Permission denied)
 *   ok
 *   request eventfd registered device=BDF          (--on-request)
 *   device request device=BDF count=N action=exit|ignore
 *   released: every VFIO fd closed                 (--on-request exit)
 *
 * Builds with gcc -O2 -Wall; needs only <linux/vfio.h> from linux-libc-dev.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/vfio.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#define MAX_GROUPS  16
#define MAX_DEVICES 32

struct group {
	int id;
	int fd;
	const char *source;
};

static struct group groups[MAX_GROUPS];
static int ngroups;
/* --keep-device-fd: where the child writes its pid, and the device fd it keeps. */
static const char *keep_fd_file;
static int keep_device_fd = -1;
/* --on-request: "exit" or "ignore"; every probed device's fd is kept for it. */
static const char *on_request;
static int device_fds[MAX_DEVICES];
static char device_names[MAX_DEVICES][32];
static int ndevice_fds;

static void say(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("vm-probe: ", stdout);
	vprintf(fmt, ap);
	fputc('\n', stdout);
	va_end(ap);
	fflush(stdout);
}

static int fail(const char *what, int err)
{
	printf("vm-probe: error: %s: %s (%s)\n", what, strerrorname_np(err) ?: "?", strerror(err));
	fflush(stdout);
	return 1;
}

static int add_group(int id, int fd, const char *source)
{
	if (ngroups == MAX_GROUPS) {
		say("error: too many groups");
		return -1;
	}
	groups[ngroups].id = id;
	groups[ngroups].fd = fd;
	groups[ngroups].source = source;
	ngroups++;
	return 0;
}

/* Parse VFIO_BROKER_FDS=G=FD[,G=FD...]. */
static int groups_from_env(void)
{
	const char *env = getenv("VFIO_BROKER_FDS");
	char *copy, *item, *save = NULL;
	int ret = 0;

	if (!env || !*env)
		return 0;
	say("VFIO_BROKER_FDS=%s", env);
	copy = strdup(env);
	if (!copy)
		return -1;
	for (item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
		int id, fd, n = -1;

		if (sscanf(item, "%d=%d%n", &id, &fd, &n) != 2 || item[n] != '\0' || id < 0 ||
		    fd < 0) {
			say("error: bad VFIO_BROKER_FDS entry '%s'", item);
			ret = -1;
			break;
		}
		if (fcntl(fd, F_GETFD) < 0) {
			say("error: fd %d of group %d is not open in this process", fd, id);
			ret = -1;
			break;
		}
		if (add_group(id, fd, "env") < 0) {
			ret = -1;
			break;
		}
	}
	free(copy);
	return ret;
}

/*
 * VFIO_BROKER_CONTAINER_FD=FD: the container of a merge, or -1 when unset.
 * Anything but an open VFIO container there is an error, not a fallback.
 */
static int container_from_env(void)
{
	const char *env = getenv("VFIO_BROKER_CONTAINER_FD");
	int fd, n = -1;

	if (!env || !*env)
		return -1;
	if (sscanf(env, "%d%n", &fd, &n) != 1 || env[n] != '\0' || fd < 0 ||
	    fcntl(fd, F_GETFD) < 0) {
		say("error: VFIO_BROKER_CONTAINER_FD=%s is not an open descriptor", env);
		return -2;
	}
	if (ioctl(fd, VFIO_GET_API_VERSION) != VFIO_API_VERSION) {
		say("error: VFIO_BROKER_CONTAINER_FD=%s is not a VFIO container", env);
		return -2;
	}
	return fd;
}

static int open_direct(const char *path)
{
	int fd = open(path, O_RDWR | O_CLOEXEC);

	if (fd < 0) {
		int err = errno;

		say("open-direct %s: errno=%s (%s)", path, strerrorname_np(err) ?: "?",
		    strerror(err));
		return 3;
	}
	say("open-direct %s: ok", path);
	close(fd);
	return 0;
}

/* The IOMMU group number of a PCI device, from sysfs; -1 if unknown. */
static int group_of(const char *bdf)
{
	char path[PATH_MAX], target[PATH_MAX];
	ssize_t n;
	const char *slash;

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/iommu_group", bdf);
	n = readlink(path, target, sizeof(target) - 1);
	if (n < 0)
		return -1;
	target[n] = '\0';
	slash = strrchr(target, '/');
	return atoi(slash ? slash + 1 : target);
}

/* True if the device is bound to vfio-pci. */
static int on_vfio_pci(const char *group_dir, const char *bdf)
{
	char path[PATH_MAX], target[PATH_MAX];
	ssize_t n;
	const char *slash;

	snprintf(path, sizeof(path), "%s/%s/driver", group_dir, bdf);
	n = readlink(path, target, sizeof(target) - 1);
	if (n < 0)
		return 0;
	target[n] = '\0';
	slash = strrchr(target, '/');
	return strcmp(slash ? slash + 1 : target, "vfio-pci") == 0;
}

static int cmp_bdf(const void *a, const void *b)
{
	return strcmp(a, b);
}

/* Append the vfio-pci devices of a group (from sysfs) to bdfs[], sorted. */
static int devices_of_group(int id, char bdfs[][32], int *nbdfs)
{
	char dir[96];
	struct dirent *de;
	int first = *nbdfs;
	DIR *d;

	snprintf(dir, sizeof(dir), "/sys/kernel/iommu_groups/%d/devices", id);
	d = opendir(dir);
	if (!d)
		return -1;
	while ((de = readdir(d))) {
		size_t len = strlen(de->d_name);

		if (de->d_name[0] == '.' || len >= 32 || *nbdfs == MAX_DEVICES ||
		    !on_vfio_pci(dir, de->d_name))
			continue;
		memcpy(bdfs[*nbdfs], de->d_name, len + 1);
		(*nbdfs)++;
	}
	closedir(d);
	qsort(bdfs[first], *nbdfs - first, 32, cmp_bdf);
	return 0;
}

static int probe_device(const char *bdf)
{
	struct vfio_device_info info = {.argsz = sizeof(info)};
	struct vfio_region_info reg = {.argsz = sizeof(reg)};
	uint8_t cfg[12];
	int id = group_of(bdf), i, fd;
	struct group *g = NULL;
	char what[96];

	for (i = 0; i < ngroups; i++)
		if (groups[i].id == id)
			g = &groups[i];
	if (!g) {
		say("error: device %s is in group %d, which this process was not given", bdf, id);
		return 1;
	}
	fd = ioctl(g->fd, VFIO_GROUP_GET_DEVICE_FD, bdf);
	if (fd < 0) {
		snprintf(what, sizeof(what), "VFIO_GROUP_GET_DEVICE_FD(%s)", bdf);
		return fail(what, errno);
	}
	if (ioctl(fd, VFIO_DEVICE_GET_INFO, &info) < 0)
		return fail("VFIO_DEVICE_GET_INFO", errno);
	reg.index = VFIO_PCI_CONFIG_REGION_INDEX;
	if (ioctl(fd, VFIO_DEVICE_GET_REGION_INFO, &reg) < 0)
		return fail("VFIO_DEVICE_GET_REGION_INFO(config)", errno);
	if (pread(fd, cfg, sizeof(cfg), reg.offset) != (ssize_t)sizeof(cfg))
		return fail("pread(config space)", errno ?: EIO);
	say("device=%s group=%d vendor=%02x%02x device_id=%02x%02x class=%02x%02x%02x "
	    "regions=%u irqs=%u",
	    bdf, id, cfg[1], cfg[0], cfg[3], cfg[2], cfg[11], cfg[10], cfg[9], info.num_regions,
	    info.num_irqs);
	if (keep_fd_file && keep_device_fd < 0) {
		keep_device_fd = fd;
	} else if (on_request) {
		snprintf(device_names[ndevice_fds], sizeof(device_names[0]), "%s", bdf);
		device_fds[ndevice_fds++] = fd;
	} else {
		close(fd);
	}
	return 0;
}

/*
 * --on-request: register an eventfd as each kept device's request trigger
 * (what QEMU does for every vfio-pci device), then wait for the VFIO device
 * request. The kernel signals it while an unbind of the device waits for its
 * user; vfio_quarantine relays it without an unbind. "exit" closes every VFIO
 * fd at the first request (the group is released); "ignore" only reports.
 */
static int wait_for_request(int container)
{
	struct pollfd pfds[MAX_DEVICES];
	int i;

	for (i = 0; i < ndevice_fds; i++) {
		char buf[sizeof(struct vfio_irq_set) + sizeof(int32_t)];
		struct vfio_irq_set *set = (struct vfio_irq_set *)buf;
		int32_t efd = eventfd(0, EFD_CLOEXEC);
		char what[96];

		if (efd < 0)
			return fail("eventfd", errno);
		set->argsz = sizeof(buf);
		set->flags = VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER;
		set->index = VFIO_PCI_REQ_IRQ_INDEX;
		set->start = 0;
		set->count = 1;
		memcpy(set->data, &efd, sizeof(efd));
		snprintf(what, sizeof(what), "VFIO_DEVICE_SET_IRQS(%s, REQ)", device_names[i]);
		if (ioctl(device_fds[i], VFIO_DEVICE_SET_IRQS, set) < 0)
			return fail(what, errno);
		pfds[i] = (struct pollfd){.fd = efd, .events = POLLIN};
		say("request eventfd registered device=%s", device_names[i]);
	}
	for (;;) {
		int n = poll(pfds, ndevice_fds, 600 * 1000);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return fail("poll", errno);
		if (n == 0) {
			say("no device request within 600 s; giving up");
			return 4;
		}
		for (i = 0; i < ndevice_fds; i++) {
			uint64_t count;

			if (!(pfds[i].revents & POLLIN))
				continue;
			if (read(pfds[i].fd, &count, sizeof(count)) != (ssize_t)sizeof(count))
				return fail("read(eventfd)", errno ?: EIO);
			say("device request device=%s count=%llu action=%s", device_names[i],
			    (unsigned long long)count, on_request);
			if (strcmp(on_request, "exit") != 0)
				continue;
			for (i = 0; i < ndevice_fds; i++)
				close(device_fds[i]);
			for (i = 0; i < ngroups; i++)
				close(groups[i].fd);
			close(container);
			say("released: every VFIO fd closed");
			return 0;
		}
	}
}

/*
 * Fork a child that holds the group only through device fd dev: every other
 * descriptor of a group or the container is closed in it. It writes its pid
 * to keep_fd_file once it has read config space, then reads it every 100 ms
 * (and says so on stdout once a second) until it is killed or a read fails.
 */
static int keep_device_in_child(int dev, int container)
{
	struct vfio_region_info reg = {.argsz = sizeof(reg)};
	pid_t child;
	int i;

	reg.index = VFIO_PCI_CONFIG_REGION_INDEX;
	if (ioctl(dev, VFIO_DEVICE_GET_REGION_INFO, &reg) < 0)
		return fail("VFIO_DEVICE_GET_REGION_INFO(config)", errno);
	fflush(stdout);
	child = fork();
	if (child < 0)
		return fail("fork", errno);
	if (child == 0) {
		char tmp[PATH_MAX];
		FILE *f;

		for (i = 0; i < ngroups; i++)
			close(groups[i].fd);
		close(container);
		for (unsigned n = 0;; n++) {
			uint8_t cfg[4];

			if (pread(dev, cfg, sizeof(cfg), reg.offset) != (ssize_t)sizeof(cfg)) {
				say("child: pread(config space) failed: errno=%d", errno);
				_exit(1);
			}
			if (n == 0) {
				snprintf(tmp, sizeof(tmp), "%s.tmp", keep_fd_file);
				f = fopen(tmp, "w");
				if (!f || fprintf(f, "%d\n", (int)getpid()) < 0 || fclose(f) != 0 ||
				    rename(tmp, keep_fd_file) < 0)
					_exit(1);
			}
			if (n % 10 == 0)
				say("child pid=%d holds only device fd=%d: read vendor=%02x%02x",
				    (int)getpid(), dev, cfg[1], cfg[0]);
			usleep(100 * 1000);
		}
	}
	close(dev);
	say("child pid=%d keeps the device fd; the parent exits", (int)child);
	return 0;
}

/* Map one page for DMA through the container's IOMMU, then unmap it. */
static int dma_check(int container)
{
	struct vfio_iommu_type1_dma_map map = {.argsz = sizeof(map)};
	struct vfio_iommu_type1_dma_unmap unmap = {.argsz = sizeof(unmap)};
	long page = sysconf(_SC_PAGESIZE);
	void *buf;

	buf = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (buf == MAP_FAILED)
		return fail("mmap", errno);
	map.vaddr = (uintptr_t)buf;
	map.iova = 0x100000;
	map.size = page;
	map.flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE;
	if (ioctl(container, VFIO_IOMMU_MAP_DMA, &map) < 0)
		return fail("VFIO_IOMMU_MAP_DMA", errno);
	unmap.iova = map.iova;
	unmap.size = map.size;
	if (ioctl(container, VFIO_IOMMU_UNMAP_DMA, &unmap) < 0)
		return fail("VFIO_IOMMU_UNMAP_DMA", errno);
	munmap(buf, page);
	say("dma map+unmap iova=0x%llx size=%ld ok", (unsigned long long)map.iova, page);
	return 0;
}

static int usage(void)
{
	fputs("usage: vm-probe [--bdf BDF]...            (group fds from VFIO_BROKER_FDS)\n"
	      "       vm-probe --open GROUP... [--bdf BDF]...\n"
	      "       vm-probe --open-direct PATH\n"
	      "       vm-probe --keep-device-fd FILE [--bdf BDF]...\n"
	      "       vm-probe --on-request exit|ignore [--bdf BDF]...\n",
	      stderr);
	return 2;
}

int main(int argc, char **argv)
{
	static char bdfs[MAX_DEVICES][32];
	struct vfio_iommu_type1_info iinfo = {.argsz = sizeof(iinfo)};
	int nbdfs = 0, container = -1, iommu_set = 0, env_container = 0, i, ret = 0;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--open-direct") && i + 1 < argc && argc == 3) {
			return open_direct(argv[i + 1]);
		} else if (!strcmp(argv[i], "--open") && i + 1 < argc) {
			char path[64];
			int id = atoi(argv[++i]), fd;

			snprintf(path, sizeof(path), "/dev/vfio/%d", id);
			fd = open(path, O_RDWR | O_CLOEXEC);
			if (fd < 0)
				return fail(path, errno);
			if (add_group(id, fd, "open") < 0)
				return 1;
		} else if (!strcmp(argv[i], "--keep-device-fd") && i + 1 < argc) {
			keep_fd_file = argv[++i];
		} else if (!strcmp(argv[i], "--on-request") && i + 1 < argc &&
			   (!strcmp(argv[i + 1], "exit") || !strcmp(argv[i + 1], "ignore"))) {
			on_request = argv[++i];
		} else if (!strcmp(argv[i], "--bdf") && i + 1 < argc && nbdfs < MAX_DEVICES) {
			snprintf(bdfs[nbdfs++], 32, "%s", argv[++i]);
		} else {
			return usage();
		}
	}
	if (groups_from_env() < 0)
		return 1;
	if (ngroups == 0) {
		say("error: no group fds: VFIO_BROKER_FDS is not set and no --open given");
		return 2;
	}

	container = container_from_env();
	if (container == -2)
		return 1;
	env_container = container >= 0;
	if (!env_container)
		container = open("/dev/vfio/vfio", O_RDWR | O_CLOEXEC);
	if (container < 0)
		return fail("open /dev/vfio/vfio", errno);
	say("container source=%s fd=%d", env_container ? "env" : "open", container);
	if (ioctl(container, VFIO_GET_API_VERSION) != VFIO_API_VERSION) {
		say("error: VFIO API version is not %d", VFIO_API_VERSION);
		return 1;
	}
	if (ioctl(container, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU) != 1) {
		say("error: the kernel lacks VFIO_TYPE1v2_IOMMU");
		return 1;
	}

	for (i = 0; i < ngroups; i++) {
		struct vfio_group_status st = {.argsz = sizeof(st)};
		char what[64];

		snprintf(what, sizeof(what), "VFIO_GROUP_GET_STATUS(group %d)", groups[i].id);
		if (ioctl(groups[i].fd, VFIO_GROUP_GET_STATUS, &st) < 0)
			return fail(what, errno);
		say("group=%d fd=%d source=%s viable=%d", groups[i].id, groups[i].fd,
		    groups[i].source, !!(st.flags & VFIO_GROUP_FLAGS_VIABLE));
		if (!(st.flags & VFIO_GROUP_FLAGS_VIABLE)) {
			say("error: group %d is not viable (a member is on a host driver)",
			    groups[i].id);
			return 1;
		}
		if (st.flags & VFIO_GROUP_FLAGS_CONTAINER_SET) {
			say("group=%d already has a container; using it", groups[i].id);
			continue;
		}
		snprintf(what, sizeof(what), "VFIO_GROUP_SET_CONTAINER(group %d)", groups[i].id);
		if (ioctl(groups[i].fd, VFIO_GROUP_SET_CONTAINER, &container) < 0)
			return fail(what, errno);
		if (!iommu_set) {
			if (ioctl(container, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU) < 0)
				return fail("VFIO_SET_IOMMU(TYPE1v2)", errno);
			iommu_set = 1;
		}
	}
	/*
	 * The merged container: the broker attached the groups, the IOMMU is the
	 * holder's to set (EINVAL if a previous holder process set it already).
	 */
	if (env_container && !iommu_set) {
		if (ioctl(container, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU) < 0 && errno != EINVAL)
			return fail("VFIO_SET_IOMMU(TYPE1v2) on the merged container", errno);
		iommu_set = 1;
	}
	if (iommu_set) {
		if (ioctl(container, VFIO_IOMMU_GET_INFO, &iinfo) < 0)
			return fail("VFIO_IOMMU_GET_INFO", errno);
		say("container api=%d type1v2=1 iommu=TYPE1v2 pgsizes=0x%llx", VFIO_API_VERSION,
		    (unsigned long long)iinfo.iova_pgsizes);
		if (dma_check(container))
			return 1;
	}

	if (nbdfs == 0)
		for (i = 0; i < ngroups; i++)
			if (devices_of_group(groups[i].id, bdfs, &nbdfs) < 0)
				return fail("listing the group's devices", errno ?: EIO);
	if (nbdfs == 0) {
		say("error: no device on vfio-pci in the given groups");
		return 1;
	}
	for (i = 0; i < nbdfs; i++)
		ret |= probe_device(bdfs[i]);
	if (ret)
		return 1;
	say("ok");
	if (keep_fd_file)
		return keep_device_in_child(keep_device_fd, container) ? 1 : 0;
	if (on_request)
		return wait_for_request(container);
	return 0;
}
