/*
 * vm-iommufd-probe: the modern VFIO path, as root, on the VM tier's own
 * kernel (tests/vm/build-kernel.sh): /dev/iommu plus a VFIO device cdev
 * instead of a group and a container.
 *
 * usage: vm-iommufd-probe CDEV        e.g. /dev/vfio/devices/vfio1
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
#include <stdint.h>
#include <stdio.h>
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

/* One page mapped into the IOAS and unmapped again: DMA through iommufd. */
static int probe_dma(int iommufd, uint32_t ioas, long page)
{
	void *buf;
	int r = 0;

	buf = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (buf == MAP_FAILED)
		return fail("mmap", errno);
	struct iommu_ioas_map map = {
		.size = sizeof(map),
		.flags = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE |
			 IOMMU_IOAS_MAP_WRITEABLE,
		.ioas_id = ioas,
		.user_va = (uintptr_t)buf,
		.length = page,
		.iova = PROBE_IOVA,
	};
	if (ioctl(iommufd, IOMMU_IOAS_MAP, &map) < 0) {
		r = fail("IOMMU_IOAS_MAP", errno);
		goto unmap_buf;
	}
	struct iommu_ioas_unmap unmap = {
		.size = sizeof(unmap), .ioas_id = ioas, .iova = PROBE_IOVA, .length = page};
	if (ioctl(iommufd, IOMMU_IOAS_UNMAP, &unmap) < 0) {
		r = fail("IOMMU_IOAS_UNMAP", errno);
		goto unmap_buf;
	}
	say("dma map+unmap iova=0x%llx size=%ld ok", PROBE_IOVA, page);
unmap_buf:
	munmap(buf, page);
	return r;
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

/*
 * Bind CDEV to a fresh iommufd, attach it to an IOAS, map DMA and read its
 * config space; the fds close on exit, which also undoes the bind.
 */
static int probe(const char *cdev)
{
	int iommufd, dev, r;

	iommufd = open("/dev/iommu", O_RDWR | O_CLOEXEC);
	if (iommufd < 0)
		return fail("open /dev/iommu", errno);
	struct iommu_ioas_alloc alloc = {.size = sizeof(alloc)};
	if (ioctl(iommufd, IOMMU_IOAS_ALLOC, &alloc) < 0)
		return fail("IOMMU_IOAS_ALLOC", errno);
	say("iommufd ioas=%u", alloc.out_ioas_id);

	dev = open(cdev, O_RDWR | O_CLOEXEC);
	if (dev < 0)
		return fail(cdev, errno);
	struct vfio_device_bind_iommufd bind = {
		.argsz = sizeof(bind), .flags = 0, .iommufd = iommufd};
	if (ioctl(dev, VFIO_DEVICE_BIND_IOMMUFD, &bind) < 0)
		return fail("VFIO_DEVICE_BIND_IOMMUFD", errno);
	struct vfio_device_attach_iommufd_pt attach = {
		.argsz = sizeof(attach), .flags = 0, .pt_id = alloc.out_ioas_id};
	if (ioctl(dev, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &attach) < 0)
		return fail("VFIO_DEVICE_ATTACH_IOMMUFD_PT", errno);
	say("cdev=%s devid=%u hwpt=%u", cdev, bind.out_devid, attach.pt_id);

	r = probe_dma(iommufd, alloc.out_ioas_id, sysconf(_SC_PAGESIZE));
	if (r == 0)
		r = probe_config(dev);
	if (r != 0)
		return r;
	struct vfio_device_detach_iommufd_pt detach = {.argsz = sizeof(detach), .flags = 0};
	if (ioctl(dev, VFIO_DEVICE_DETACH_IOMMUFD_PT, &detach) < 0)
		return fail("VFIO_DEVICE_DETACH_IOMMUFD_PT", errno);
	close(dev);
	close(iommufd);
	say("ok");
	return 0;
}

int main(int argc, char **argv)
{
	if (argc != 2 || argv[1][0] != '/') {
		fprintf(stderr, "usage: vm-iommufd-probe CDEV   (e.g. /dev/vfio/devices/vfio1)\n");
		return 2;
	}
	return probe(argv[1]);
}
