/*
 * vm-iommufd-probe: the modern VFIO path, as root, on the VM tier's own
 * kernel (tests/vm/build-kernel.sh): /dev/iommu plus a VFIO device cdev
 * instead of a group and a container.
 *
 * usage: vm-iommufd-probe CDEV        e.g. /dev/vfio/devices/vfio1
 *        vm-iommufd-probe --fds IOMMUFD:DEVFD [--map BYTES] [--hold] [--expect-busy]
 *
 * --fds takes descriptors the probe inherited instead of opening anything:
 * what `vfioctl run --cdev -- vm-iommufd-probe --fds {iommufd}:{fd}` hands an
 * unprivileged process (the broker's iommufd has per-process accounting).
 * --map BYTES maps that much anonymous memory into the IOAS (instead of one
 * page) and reports the process's VmLck and VmPin while it is mapped;
 * --hold then keeps it mapped and the device bound until killed ("holding").
 * --expect-busy: the bind must fail with EBUSY (the group is in use through
 * the legacy path); exit 0 when it does.
 *
 * Steps, each one line on stdout (prefixed "vm-iommufd-probe: "):
 *   open /dev/iommu, IOMMU_IOAS_ALLOC             ioas=N
 *   open CDEV, VFIO_DEVICE_BIND_IOMMUFD           devid=N
 *   VFIO_DEVICE_ATTACH_IOMMUFD_PT(ioas)           hwpt=N
 *   IOMMU_IOAS_MAP of one page at a fixed IOVA, then IOMMU_IOAS_UNMAP
 *   VFIO_DEVICE_GET_INFO and a config-space read  vendor=8086 device_id=10d3 ...
 *   VFIO_DEVICE_DETACH_IOMMUFD_PT
 *   ok
 * Exit status: 0 every step worked; 1 a step failed (named, with its errno);
 * 2 usage.
 *
 * Needs the uapi headers of a 6.6+ kernel (linux/iommufd.h and the cdev
 * ioctls of linux/vfio.h): Debian 12's linux-libc-dev is 6.1, so
 * tests/vm/host-lib.sh builds it with -I BUILD/vm/<kver>/uapi/include.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/iommufd.h>
#include <linux/vfio.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#define PROBE_IOVA 0x100000ULL

static void say(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("vm-iommufd-probe: ", stdout);
	vprintf(fmt, ap);
	fputc('\n', stdout);
	va_end(ap);
	fflush(stdout);
}

static int fail(const char *what, int err)
{
	printf("vm-iommufd-probe: error: %s: %s (%s)\n", what, strerrorname_np(err) ?: "?",
	       strerror(err));
	fflush(stdout);
	return 1;
}

/* bytes of new anonymous memory, mapped into the IOAS at PROBE_IOVA: *ret_buf. */
static int probe_ioas_map(int iommufd, uint32_t ioas, size_t bytes, void **ret_buf)
{
	void *buf = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (buf == MAP_FAILED)
		return fail("mmap", errno);
	struct iommu_ioas_map map = {
		.size = sizeof(map),
		.flags = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE |
			 IOMMU_IOAS_MAP_WRITEABLE,
		.ioas_id = ioas,
		.user_va = (uintptr_t)buf,
		.length = bytes,
		.iova = PROBE_IOVA,
	};
	if (ioctl(iommufd, IOMMU_IOAS_MAP, &map) < 0) {
		int err = errno;

		munmap(buf, bytes);
		return fail("IOMMU_IOAS_MAP", err);
	}
	*ret_buf = buf;
	return 0;
}

/* What probe_ioas_map mapped, unmapped from the IOAS and from the process. */
static int probe_ioas_unmap(int iommufd, uint32_t ioas, void *buf, size_t bytes)
{
	struct iommu_ioas_unmap unmap = {
		.size = sizeof(unmap), .ioas_id = ioas, .iova = PROBE_IOVA, .length = bytes};
	int r = 0;

	if (ioctl(iommufd, IOMMU_IOAS_UNMAP, &unmap) < 0)
		r = fail("IOMMU_IOAS_UNMAP", errno);
	munmap(buf, bytes);
	return r;
}

/* One page mapped into the IOAS and unmapped again: DMA through iommufd. */
static int probe_dma(int iommufd, uint32_t ioas, long page)
{
	void *buf;
	int r;

	r = probe_ioas_map(iommufd, ioas, page, &buf);
	if (r)
		return r;
	r = probe_ioas_unmap(iommufd, ioas, buf, page);
	if (r)
		return r;
	say("dma map+unmap iova=0x%llx size=%ld ok", PROBE_IOVA, page);
	return 0;
}

/* "VmLck: ... kB VmPin: ... kB" of this process, as /proc/self/status says. */
static void say_pinned(void)
{
	char line[256], out[256] = "";
	FILE *f = fopen("/proc/self/status", "re");

	if (!f)
		return;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, "VmLck:", 6) == 0 || strncmp(line, "VmPin:", 6) == 0) {
			line[strcspn(line, "\n")] = '\0';
			strncat(out, line, sizeof(out) - strlen(out) - 2);
			strcat(out, " ");
		}
	fclose(f);
	say("pid=%d %s", (int)getpid(), out);
}

/* bytes of anonymous memory mapped into the IOAS, reported, and kept mapped when hold. */
static int probe_map(int iommufd, uint32_t ioas, size_t bytes, bool hold)
{
	void *buf;
	int r;

	r = probe_ioas_map(iommufd, ioas, bytes, &buf);
	if (r)
		return r;
	say("dma map iova=0x%llx size=%zu ok", PROBE_IOVA, bytes);
	say_pinned();
	if (hold)
		return 0;
	return probe_ioas_unmap(iommufd, ioas, buf, bytes);
}

/* The device's info and the first bytes of its PCI config space. */
static int probe_config(int dev)
{
	struct vfio_device_info info = {.argsz = sizeof(info)};
	struct vfio_region_info reg = {.argsz = sizeof(reg)};
	uint8_t cfg[12];

	if (ioctl(dev, VFIO_DEVICE_GET_INFO, &info) < 0)
		return fail("VFIO_DEVICE_GET_INFO", errno);
	if (!(info.flags & VFIO_DEVICE_FLAGS_PCI))
		return fail("VFIO_DEVICE_GET_INFO: not a PCI device", ENODEV);
	reg.index = VFIO_PCI_CONFIG_REGION_INDEX;
	if (ioctl(dev, VFIO_DEVICE_GET_REGION_INFO, &reg) < 0)
		return fail("VFIO_DEVICE_GET_REGION_INFO(config)", errno);
	if (pread(dev, cfg, sizeof(cfg), reg.offset) != (ssize_t)sizeof(cfg))
		return fail("pread(config space)", errno ?: EIO);
	say("vendor=%02x%02x device_id=%02x%02x class=%02x%02x%02x regions=%u irqs=%u", cfg[1],
	    cfg[0], cfg[3], cfg[2], cfg[11], cfg[10], cfg[9], info.num_regions, info.num_irqs);
	return 0;
}

struct probe_opts {
	size_t map_bytes; /* 0: one page, mapped and unmapped */
	bool hold;
	bool expect_busy;
};

/*
 * Bind dev to iommufd, attach it to a new IOAS, map DMA and read its config
 * space; the fds close on exit, which also undoes the bind.
 */
static int probe_fds(int iommufd, int dev, const char *what, const struct probe_opts *o)
{
	int r;

	struct iommu_ioas_alloc alloc = {.size = sizeof(alloc)};
	if (ioctl(iommufd, IOMMU_IOAS_ALLOC, &alloc) < 0)
		return fail("IOMMU_IOAS_ALLOC", errno);
	say("iommufd ioas=%u", alloc.out_ioas_id);

	struct vfio_device_bind_iommufd bind = {
		.argsz = sizeof(bind), .flags = 0, .iommufd = iommufd};
	if (ioctl(dev, VFIO_DEVICE_BIND_IOMMUFD, &bind) < 0) {
		if (o->expect_busy && errno == EBUSY) {
			say("bind refused: EBUSY, as expected");
			return 0;
		}
		return fail("VFIO_DEVICE_BIND_IOMMUFD", errno);
	}
	if (o->expect_busy)
		return fail("VFIO_DEVICE_BIND_IOMMUFD succeeded where EBUSY was expected", EEXIST);
	struct vfio_device_attach_iommufd_pt attach = {
		.argsz = sizeof(attach), .flags = 0, .pt_id = alloc.out_ioas_id};
	if (ioctl(dev, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &attach) < 0)
		return fail("VFIO_DEVICE_ATTACH_IOMMUFD_PT", errno);
	say("cdev=%s devid=%u hwpt=%u", what, bind.out_devid, attach.pt_id);

	r = probe_config(dev);
	if (r == 0)
		r = o->map_bytes ? probe_map(iommufd, alloc.out_ioas_id, o->map_bytes, o->hold)
				 : probe_dma(iommufd, alloc.out_ioas_id, sysconf(_SC_PAGESIZE));
	if (r != 0)
		return r;
	if (o->hold) {
		say("holding");
		for (;;)
			pause();
	}
	struct vfio_device_detach_iommufd_pt detach = {.argsz = sizeof(detach), .flags = 0};
	if (ioctl(dev, VFIO_DEVICE_DETACH_IOMMUFD_PT, &detach) < 0)
		return fail("VFIO_DEVICE_DETACH_IOMMUFD_PT", errno);
	say("ok");
	return 0;
}

/* Open /dev/iommu and CDEV ourselves (as root, without the broker). */
static int probe(const char *cdev, const struct probe_opts *o)
{
	int iommufd, dev, r;

	iommufd = open("/dev/iommu", O_RDWR | O_CLOEXEC);
	if (iommufd < 0)
		return fail("open /dev/iommu", errno);
	dev = open(cdev, O_RDWR | O_CLOEXEC);
	if (dev < 0)
		return fail(cdev, errno);
	r = probe_fds(iommufd, dev, cdev, o);
	close(dev);
	close(iommufd);
	return r;
}

static int usage(void)
{
	fprintf(stderr, "usage: vm-iommufd-probe CDEV   (e.g. /dev/vfio/devices/vfio1)\n"
			"       vm-iommufd-probe --fds IOMMUFD:DEVFD [--map BYTES] [--hold] "
			"[--expect-busy]\n");
	return 2;
}

int main(int argc, char **argv)
{
	struct probe_opts o = {0};
	int iommufd = -1, dev = -1;
	char what[32], tail;

	if (argc == 2 && argv[1][0] == '/')
		return probe(argv[1], &o);
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--fds") == 0 && i + 1 < argc) {
			if (sscanf(argv[++i], "%d:%d%c", &iommufd, &dev, &tail) != 2 ||
			    iommufd < 0 || dev < 0)
				return usage();
		} else if (strcmp(argv[i], "--map") == 0 && i + 1 < argc) {
			o.map_bytes = strtoull(argv[++i], NULL, 0);
		} else if (strcmp(argv[i], "--hold") == 0) {
			o.hold = true;
		} else if (strcmp(argv[i], "--expect-busy") == 0) {
			o.expect_busy = true;
		} else {
			return usage();
		}
	}
	if (dev < 0)
		return usage();
	/* Inherited, as vfioctl run --cdev hands them: say what they are. */
	say("fds iommufd=%d dev=%d uid=%d", iommufd, dev, (int)getuid());
	snprintf(what, sizeof(what), "fd %d", dev);
	return probe_fds(iommufd, dev, what, &o);
}
