// SPDX-License-Identifier: GPL-2.0
/*
 * hostile-vfio: a misbehaving vfio client for a gvtpv vGPU.
 *
 * Opens the mdev UUID the way QEMU does, either through a type1 container (legacy) or
 * through iommufd and the device's vfio cdev, maps some of its own memory for DMA, and
 * then issues a stream of random and edge-case operations drawn from a seeded PRNG:
 * region reads and writes anywhere, every vfio device ioctl with good and bad
 * arguments, config-space sequences (command register, BAR sizing, MSI, INTx), PVINFO
 * and g2v_notify accesses, DMA map and unmap, device re-opens and IOAS re-attaches.
 * Any operation may fail; the kernel must stay healthy, which the caller checks on the
 * console. At the end the device must still answer sanely (GET_INFO, the vendor ID,
 * the PVINFO magic).
 *
 * Before the random run it checks, deterministically, that re-opening the device powers
 * it on (config space and PVINFO's guest half back to reset values) and that the host
 * reaches this process's DMA memory through its pin cache (debugfs mem_probe: the host
 * complements the qwords it reads) and lets go of the pins when the range is unmapped.
 * During the run, host probes of mapped and unmapped buffers are mixed in, so unmaps
 * meet pinned pages.
 *
 * With -j, a second thread asks the host to probe the upper half of the buffers in a loop
 * while the main thread maps and unmaps them: host pins race unmaps for real.
 *
 * Usage: hostile-vfio [-n OPS] [-s SEED] [-t] [-j] legacy|iommufd UUID
 * Prints the seed, one line "hostile client: N operations" (N = syscalls issued on the
 * device, container or iommufd) and a summary per kind. Exits 0, 1 if the device is
 * unhealthy at the end, 2 if it could not be opened at all.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "hostile-vfio.h"

/* shared-abi/src/abi/pvinfo.rs */
#define PVINFO_OFFSET 0x78000ULL
#define PVINFO_SIZE 0x1000ULL
#define PVINFO_GUEST_HALF 0x800
#define VGT_MAGIC 0x4776544776544776ULL
#define PV_G2V_NOTIFY 0x818
#define PV_SHARED_AREA_PAGES 0x864
#define PV_SHARED_AREA_GPA 0x868
#define PV_CAPS_REQUEST 0x860
#define G2V_PV_REGISTER 8
#define G2V_PV_DOORBELL 9
#define G2V_PV_UNREGISTER 10
#define PCI_VENDOR_ID_INTEL 0x8086
#define PCI_CAPABILITY_LIST_OFF 0x34

/* drivers/vfio/pci/vfio_pci_priv.h: the region index is in the top bits of a position. */
#define VFIO_PCI_OFFSET_SHIFT 40
#define PAGE 4096ULL
#define NREG 16		/* region indices queried at start */
#define NSLOT 8		/* DMA buffers */
#define SLOT_SIZE (16 * PAGE)
#define SLOT_IOVA(i) (0x40000000ULL + (uint64_t)(i) * 0x200000ULL)
#define NEVENTFD 4
#define SCRATCH (64 * 1024)

enum kind {
	K_PREAD, K_PWRITE, K_PREADV, K_PWRITEV, K_CFG_READ, K_CFG_WRITE, K_PVINFO_READ,
	K_PVINFO_WRITE, K_G2V, K_GET_INFO, K_REGION_INFO, K_IRQ_INFO, K_SET_IRQS, K_RESET,
	K_HOT_RESET_INFO, K_HOT_RESET, K_FEATURE, K_VFIO_IOCTL, K_UNKNOWN_IOCTL, K_MMAP,
	K_DMA_MAP, K_DMA_UNMAP, K_OPEN, K_IOMMUFD, K_PROBE, K_NKINDS
};

static struct kind_stats stats[K_NKINDS] = {
	[K_PREAD] = { "pread" },
	[K_PWRITE] = { "pwrite" },
	[K_PREADV] = { "preadv" },
	[K_PWRITEV] = { "pwritev" },
	[K_CFG_READ] = { "config read" },
	[K_CFG_WRITE] = { "config write" },
	[K_PVINFO_READ] = { "PVINFO read" },
	[K_PVINFO_WRITE] = { "PVINFO write" },
	[K_G2V] = { "g2v_notify write" },
	[K_GET_INFO] = { "GET_INFO" },
	[K_REGION_INFO] = { "GET_REGION_INFO" },
	[K_IRQ_INFO] = { "GET_IRQ_INFO" },
	[K_SET_IRQS] = { "SET_IRQS" },
	[K_RESET] = { "RESET" },
	[K_HOT_RESET_INFO] = { "GET_PCI_HOT_RESET_INFO" },
	[K_HOT_RESET] = { "PCI_HOT_RESET" },
	[K_FEATURE] = { "DEVICE_FEATURE" },
	[K_VFIO_IOCTL] = { "other vfio ioctl" },
	[K_UNKNOWN_IOCTL] = { "unknown ioctl" },
	[K_MMAP] = { "mmap" },
	[K_DMA_MAP] = { "DMA map" },
	[K_DMA_UNMAP] = { "DMA unmap" },
	[K_OPEN] = { "open/bind/close" },
	[K_IOMMUFD] = { "iommufd attach/detach/destroy" },
	[K_PROBE] = { "host mem_probe (debugfs)" },
};

static uint64_t nops;		/* syscalls issued on the device, container or iommufd */
static uint64_t short_rw;	/* reads/writes that returned a count other than asked */
static uint64_t irqs_seen;	/* eventfd signals read back */
static int trace;
static int iommufd_mode;
static const char *uuid;

/* File descriptors. */
static int container = -1, group = -1, dev = -1, iommufd = -1;
static uint32_t ioas[2], devid;
static char cdev_path[PATH_MAX];
static int evfd[NEVENTFD], closed_fd, null_fd, pipe_fd[2];

/* What GET_REGION_INFO said at start. */
static struct {
	int ok;
	uint64_t offset, size;
	uint32_t flags;
} reg[NREG];

/* Memory. */
static unsigned char *dmamem;		/* NSLOT buffers, mapped for DMA */
static int slot_mapped[NSLOT];
static unsigned char *scratch;		/* SCRATCH bytes, then one PROT_NONE page */
static unsigned char *guard;		/* the PROT_NONE page */

static void tracef(const char *fmt, ...)
{
	va_list ap;

	if (!trace)
		return;
	va_start(ap, fmt);
	fprintf(stderr, "#%" PRIu64 " ", nops);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

static long note(enum kind k, long r)
{
	nops++;
	if (r >= 0)
		stats[k].ok++;
	else
		stats[k].err[errno > 0 && errno < MAX_ERRNO ? errno : 0]++;
	return r;
}

static long xioctl(enum kind k, int fd, unsigned long cmd, void *arg)
{
	tracef("%s fd %d cmd %#lx arg %p", stats[k].name, fd, cmd, arg);
	return note(k, ioctl(fd, cmd, arg));
}

static long xpread(enum kind k, void *buf, size_t n, uint64_t pos)
{
	long r;

	tracef("%s pos %#" PRIx64 " len %#zx buf %p", stats[k].name, pos, n, buf);
	r = note(k, pread(dev, buf, n, (off_t)pos));
	if (r >= 0 && (size_t)r != n)
		short_rw++;
	return r;
}

static long xpwrite(enum kind k, const void *buf, size_t n, uint64_t pos)
{
	long r;

	tracef("%s pos %#" PRIx64 " len %#zx buf %p", stats[k].name, pos, n, buf);
	r = note(k, pwrite(dev, buf, n, (off_t)pos));
	if (r >= 0 && (size_t)r != n)
		short_rw++;
	return r;
}

static void die(int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "hostile-vfio: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	exit(code);
}

static uint64_t reg_pos(uint32_t index)
{
	if (index < NREG && reg[index].ok)
		return reg[index].offset;
	return (uint64_t)index << VFIO_PCI_OFFSET_SHIFT;
}

#define CFG(off) (reg_pos(VFIO_PCI_CONFIG_REGION_INDEX) + (off))
#define BAR0(off) (reg_pos(VFIO_PCI_BAR0_REGION_INDEX) + (off))

/* ---- opening the device ---- */

static int sysfs_group_number(void)
{
	char path[PATH_MAX], link[PATH_MAX];
	ssize_t n;
	char *slash;

	snprintf(path, sizeof(path), "/sys/bus/mdev/devices/%s/iommu_group", uuid);
	n = readlink(path, link, sizeof(link) - 1);
	if (n < 0)
		die(2, "readlink %s: %s", path, strerror(errno));
	link[n] = 0;
	slash = strrchr(link, '/');
	return atoi(slash ? slash + 1 : link);
}

static void find_cdev(void)
{
	char path[PATH_MAX];
	struct dirent *e;
	DIR *d;

	snprintf(path, sizeof(path), "/sys/bus/mdev/devices/%s/vfio-dev", uuid);
	d = opendir(path);
	if (!d)
		die(2, "opendir %s: %s (no vfio cdev: CONFIG_VFIO_DEVICE_CDEV?)", path, strerror(errno));
	while ((e = readdir(d))) {
		if (!strncmp(e->d_name, "vfio", 4)) {
			snprintf(cdev_path, sizeof(cdev_path), "/dev/vfio/devices/%s", e->d_name);
			break;
		}
	}
	closedir(d);
	if (!cdev_path[0])
		die(2, "no vfioN under %s", path);
}

static int legacy_open_device(void)
{
	tracef("GROUP_GET_DEVICE_FD %s", uuid);
	return (int)note(K_OPEN, ioctl(group, VFIO_GROUP_GET_DEVICE_FD, uuid));
}

static int cdev_open_device(void)
{
	struct vfio_device_bind_iommufd bind = { .argsz = sizeof(bind), .iommufd = iommufd };
	struct vfio_device_attach_iommufd_pt at = { .argsz = sizeof(at), .pt_id = ioas[0] };
	int fd;

	tracef("open %s", cdev_path);
	fd = (int)note(K_OPEN, open(cdev_path, O_RDWR | O_CLOEXEC));
	if (fd < 0)
		return -1;
	if (xioctl(K_OPEN, fd, VFIO_DEVICE_BIND_IOMMUFD, &bind) < 0) {
		int e = errno;

		close(fd);
		errno = e;
		return -1;
	}
	devid = bind.out_devid;
	if (xioctl(K_OPEN, fd, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &at) < 0) {
		int e = errno;

		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

static void open_legacy(void)
{
	struct vfio_group_status st = { .argsz = sizeof(st) };
	char path[64];
	int g = sysfs_group_number();

	container = open("/dev/vfio/vfio", O_RDWR | O_CLOEXEC);
	if (container < 0)
		die(2, "open /dev/vfio/vfio: %s", strerror(errno));
	if (note(K_OPEN, ioctl(container, VFIO_GET_API_VERSION)) != VFIO_API_VERSION)
		die(2, "VFIO_GET_API_VERSION is not %d", VFIO_API_VERSION);
	if (note(K_OPEN, ioctl(container, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU)) <= 0)
		die(2, "the container has no VFIO_TYPE1v2_IOMMU");
	snprintf(path, sizeof(path), "/dev/vfio/%d", g);
	group = open(path, O_RDWR | O_CLOEXEC);
	if (group < 0)
		die(2, "open %s: %s", path, strerror(errno));
	if (xioctl(K_OPEN, group, VFIO_GROUP_GET_STATUS, &st) < 0 ||
	    !(st.flags & VFIO_GROUP_FLAGS_VIABLE))
		die(2, "group %d is not viable", g);
	if (xioctl(K_OPEN, group, VFIO_GROUP_SET_CONTAINER, &container) < 0)
		die(2, "VFIO_GROUP_SET_CONTAINER: %s", strerror(errno));
	if (note(K_OPEN, ioctl(container, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU)) < 0)
		die(2, "VFIO_SET_IOMMU(TYPE1v2): %s", strerror(errno));
	dev = legacy_open_device();
	if (dev < 0)
		die(2, "VFIO_GROUP_GET_DEVICE_FD(%s): %s", uuid, strerror(errno));
	printf("opened %s through group %d in a type1 container\n", uuid, g);
}

static void open_iommufd(void)
{
	struct iommu_ioas_alloc a = { .size = sizeof(a) };

	find_cdev();
	iommufd = open("/dev/iommu", O_RDWR | O_CLOEXEC);
	if (iommufd < 0)
		die(2, "open /dev/iommu: %s", strerror(errno));
	for (int i = 0; i < 2; i++) {
		if (xioctl(K_IOMMUFD, iommufd, IOMMU_IOAS_ALLOC, &a) < 0)
			die(2, "IOMMU_IOAS_ALLOC: %s", strerror(errno));
		ioas[i] = a.out_ioas_id;
	}
	dev = cdev_open_device();
	if (dev < 0)
		die(2, "%s: open, VFIO_DEVICE_BIND_IOMMUFD, VFIO_DEVICE_ATTACH_IOMMUFD_PT: %s",
		    cdev_path, strerror(errno));
	printf("opened %s as %s, bound to iommufd (devid %u), attached to IOAS %u\n", uuid,
	       cdev_path, devid, ioas[0]);
}

static void query_regions(void)
{
	for (uint32_t i = 0; i < NREG; i++) {
		struct vfio_region_info ri = { .argsz = sizeof(ri), .index = i };

		if (xioctl(K_REGION_INFO, dev, VFIO_DEVICE_GET_REGION_INFO, &ri) == 0) {
			reg[i].ok = 1;
			reg[i].offset = ri.offset;
			reg[i].size = ri.size;
			reg[i].flags = ri.flags;
			if (ri.size)
				printf("region %u: offset %#llx size %#llx flags %#x\n", i,
				       (unsigned long long)ri.offset, (unsigned long long)ri.size,
				       ri.flags);
		}
	}
}

/* ---- DMA ---- */

/*
 * Maps [vaddr, vaddr + size) at iova. An odd map may also go to the second IOAS, to a
 * bogus one, or carry reserved bits (iommufd); what it maps elsewhere than the first
 * IOAS or where the kernel chose is unmapped again at once (the return value is 1 then).
 */
static long dma_map(uint64_t vaddr, uint64_t iova, uint64_t size, uint32_t flags, uint32_t argsz,
		    int odd)
{
	if (iommufd_mode) {
		struct iommu_ioas_map m = {
			.size = argsz, .flags = flags, .ioas_id = ioas[0],
			.user_va = vaddr, .length = size, .iova = iova,
		};
		long r;

		if (odd && one_in(8))
			m.ioas_id = ioas[1];
		if (odd && one_in(16))
			m.ioas_id = (uint32_t)rnd64();
		if (odd && one_in(16))
			m.__reserved = (uint32_t)rnd64() | 1;
		r = xioctl(K_DMA_MAP, iommufd, IOMMU_IOAS_MAP, &m);
		if (r == 0 && !(flags & IOMMU_IOAS_MAP_FIXED_IOVA)) {
			/* The kernel chose the IOVA: give it back right away. */
			struct iommu_ioas_unmap u = { .size = sizeof(u), .ioas_id = m.ioas_id,
						      .iova = m.iova, .length = size };

			xioctl(K_DMA_UNMAP, iommufd, IOMMU_IOAS_UNMAP, &u);
			return 1;
		}
		if (r == 0 && m.ioas_id != ioas[0]) {
			struct iommu_ioas_unmap u = { .size = sizeof(u), .ioas_id = m.ioas_id,
						      .iova = iova, .length = size };

			xioctl(K_DMA_UNMAP, iommufd, IOMMU_IOAS_UNMAP, &u);
			return 1;
		}
		return r;
	} else {
		struct vfio_iommu_type1_dma_map m = {
			.argsz = argsz, .flags = flags, .vaddr = vaddr, .iova = iova, .size = size,
		};

		return xioctl(K_DMA_MAP, container, VFIO_IOMMU_MAP_DMA, &m);
	}
}

static long dma_unmap(uint64_t iova, uint64_t size, uint32_t flags, uint32_t argsz)
{
	if (iommufd_mode) {
		struct iommu_ioas_unmap u = { .size = argsz, .ioas_id = ioas[0], .iova = iova,
					      .length = size };

		(void)flags;
		return xioctl(K_DMA_UNMAP, iommufd, IOMMU_IOAS_UNMAP, &u);
	} else {
		struct vfio_iommu_type1_dma_unmap u = { .argsz = argsz, .flags = flags,
							.iova = iova, .size = size };

		return xioctl(K_DMA_UNMAP, container, VFIO_IOMMU_UNMAP_DMA, &u);
	}
}

static uint32_t map_flags_rw(void)
{
	return iommufd_mode ? IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE |
				      IOMMU_IOAS_MAP_WRITEABLE
			    : VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE;
}

static uint32_t map_argsz(void)
{
	return iommufd_mode ? sizeof(struct iommu_ioas_map)
			    : sizeof(struct vfio_iommu_type1_dma_map);
}

static uint32_t unmap_argsz(void)
{
	return iommufd_mode ? sizeof(struct iommu_ioas_unmap)
			    : sizeof(struct vfio_iommu_type1_dma_unmap);
}

static void unmap_all(void)
{
	if (iommufd_mode)
		dma_unmap(0, UINT64_MAX, 0, unmap_argsz());
	else
		dma_unmap(0, 0, VFIO_DMA_UNMAP_FLAG_ALL, unmap_argsz());
	memset(slot_mapped, 0, sizeof(slot_mapped));
}

static long map_slot(int i)
{
	long r = dma_map((uintptr_t)(dmamem + i * SLOT_SIZE), SLOT_IOVA(i), SLOT_SIZE,
			 map_flags_rw(), map_argsz(), 0);

	if (r == 0)
		slot_mapped[i] = 1;
	return r;
}

static long unmap_slot(int i)
{
	long r = dma_unmap(SLOT_IOVA(i), SLOT_SIZE, 0, unmap_argsz());

	if (r == 0)
		slot_mapped[i] = 0;
	return r;
}

static void op_dma(void)
{
	int i = (int)rnd(NSLOT);
	static const uint64_t odd_sizes[] = { 0, 1, PAGE - 1, PAGE + 1, PAGE, 2 * PAGE,
					      SLOT_SIZE, 1ULL << 30, 1ULL << 40, 1ULL << 62,
					      UINT64_MAX, UINT64_MAX - PAGE + 1 };
	static const uint64_t odd_iovas[] = { 0, 1, PAGE - 1, PAGE, SLOT_IOVA(0) + PAGE,
					      SLOT_IOVA(0) - PAGE, 0xfee00000, 1ULL << 47,
					      1ULL << 52, 1ULL << 63, UINT64_MAX - PAGE + 1,
					      UINT64_MAX };
	uint64_t vaddr, iova, size;
	long r;

	switch (rnd(10)) {
	case 0: case 1: case 2:
		/* Flip one slot, as QEMU does when guest memory comes and goes. */
		if (slot_mapped[i])
			unmap_slot(i);
		else
			map_slot(i);
		break;
	case 3:
		/* Fill a mapped buffer with garbage the device might read. */
		rnd_fill(dmamem + i * SLOT_SIZE, SLOT_SIZE);
		if (!slot_mapped[i])
			map_slot(i);
		else
			map_slot(i);	/* EEXIST */
		break;
	case 4:
		/* Part of a mapping: type1 v2 refuses to split, iommufd too. */
		dma_unmap(SLOT_IOVA(i) + PAGE * rnd(16), PAGE * (1 + rnd(4)), 0, unmap_argsz());
		break;
	case 5:
		/* Odd maps; whatever the kernel accepts is unmapped again at once. */
		vaddr = (uintptr_t)(dmamem + i * SLOT_SIZE);
		switch (rnd(5)) {
		case 0: vaddr += 1 + rnd(PAGE - 1); break;
		case 1: vaddr = 0; break;
		case 2: vaddr = 0xffff888000000000ULL; break;
		case 3: vaddr = (uintptr_t)guard; break;
		default: break;
		}
		iova = one_in(2) ? PICK(odd_iovas) : SLOT_IOVA(i) + rnd(SLOT_SIZE);
		size = PICK(odd_sizes);
		{
			uint32_t flags = map_flags_rw();

			if (one_in(3))
				flags = (uint32_t)rnd(16);
			if (one_in(8))
				flags = (uint32_t)rnd64();
			if (!iommufd_mode && one_in(6))
				flags |= VFIO_DMA_MAP_FLAG_VADDR;
			r = dma_map(vaddr, iova, size, flags,
				    one_in(6) ? (uint32_t)rnd(64) : map_argsz(), 1);
		}
		if (r == 0) {
			if (dma_unmap(iova, size, 0, unmap_argsz()) != 0)
				unmap_all();
		}
		break;
	case 6: {
		/* Odd unmaps. */
		uint32_t flags = 0;

		if (one_in(3))
			flags = (uint32_t)rnd(8);
		if (one_in(8))
			flags = (uint32_t)rnd64();
		iova = one_in(2) ? PICK(odd_iovas) : SLOT_IOVA(i) + rnd(SLOT_SIZE);
		size = PICK(odd_sizes);
		if (flags & (VFIO_DMA_UNMAP_FLAG_ALL | VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP))
			flags &= ~VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP;
		r = dma_unmap(iova, size, flags, one_in(6) ? (uint32_t)rnd(64) : unmap_argsz());
		if (r == 0)	/* something may be gone: start over */
			unmap_all();
		break;
	}
	case 7:
		/* Overlapping map of a neighbour's IOVA range. */
		dma_map((uintptr_t)(dmamem + i * SLOT_SIZE), SLOT_IOVA(i) + SLOT_SIZE / 2,
			SLOT_SIZE, map_flags_rw(), map_argsz(), 1);
		if (!slot_mapped[i] && one_in(2))
			unmap_all();
		break;
	case 8:
		if (one_in(8))
			unmap_all();
		else
			unmap_slot(i);
		break;
	default:
		/* Map everything: the normal state for the other operations. */
		for (int j = 0; j < NSLOT; j++)
			if (!slot_mapped[j])
				map_slot(j);
		break;
	}
}

/* ---- buffers and picks ---- */

/* A buffer of len bytes, sometimes bad: NULL, unmapped, ending inside the guard page. */
static void *pick_buf(size_t len)
{
	switch (rnd(24)) {
	case 0: return NULL;
	case 1: return guard;
	case 2: return (void *)0xffff888000000000ULL;
	case 3: return len < SCRATCH ? guard - len / 2 : guard;	/* straddles the guard */
	case 4: case 5: return len <= SCRATCH ? guard - len : scratch;	/* ends at the guard */
	case 6: return scratch + 1 + rnd(7);
	default: return scratch;
	}
}

static size_t pick_len(void)
{
	static const size_t small[] = { 1, 2, 4, 8, 4, 4, 8, 2 };
	static const size_t edge[] = { 0, 3, 5, 6, 7, 9, 12, 15, 16, 17, 31, 64, 255, 256,
				       257, 1023, 4095, 4096, 4097, 8192, 65536, 1 << 20,
				       1UL << 31, SIZE_MAX, SIZE_MAX / 2, 0x7ffff000 };

	switch (rnd(10)) {
	case 0: case 1: case 2: case 3: case 4: return PICK(small);
	case 5: case 6: return PICK(edge);
	case 7: return 1 + rnd(16);
	case 8: return 1 + rnd(4096);
	default: return 1 + rnd(64);
	}
}

static uint32_t pick_region_index(void)
{
	uint64_t r = rnd(100);

	if (r < 25) return VFIO_PCI_BAR0_REGION_INDEX;
	if (r < 40) return VFIO_PCI_CONFIG_REGION_INDEX;
	if (r < 50) return VFIO_PCI_BAR2_REGION_INDEX;
	if (r < 75) return (uint32_t)rnd(10);
	if (r < 90) return 10 + (uint32_t)rnd(6);
	switch (rnd(5)) {
	case 0: return 0xff;
	case 1: return 0xffff;
	case 2: return 0x7fffff;	/* the largest positive file position */
	case 3: return 0xffffff;	/* a negative one */
	default: return (uint32_t)rnd(0x1000000);
	}
}

static uint64_t pick_offset(uint64_t size, size_t len)
{
	switch (rnd(12)) {
	case 0: return 0;
	case 1: return rnd(size);
	case 2: return size - len;		/* exactly at the end (wraps if len > size) */
	case 3: return size - len + 1 + rnd(7);	/* straddles the end */
	case 4: return size;
	case 5: return size + rnd(4096);
	case 6: return rnd64() & ((1ULL << VFIO_PCI_OFFSET_SHIFT) - 1);
	case 7: return (1ULL << VFIO_PCI_OFFSET_SHIFT) - 1 - rnd(8);
	case 8: return rnd(size) & ~7ULL;
	case 9: return (rnd(size) & ~7ULL) | (1 + rnd(7));
	case 10: return PVINFO_OFFSET - 8 + rnd(PVINFO_SIZE + 16);
	default: return rnd(256);
	}
}

/* ---- region accesses ---- */

static void op_rw(void)
{
	uint32_t idx = pick_region_index();
	size_t len = pick_len();
	uint64_t size = idx < NREG ? reg[idx].size : 0;
	uint64_t pos = ((uint64_t)idx << VFIO_PCI_OFFSET_SHIFT) + pick_offset(size, len);
	void *buf = pick_buf(len);
	int write = (int)rnd(2);

	if (one_in(16))
		pos = rnd64();
	if (one_in(32))
		pos = (uint64_t)-(int64_t)(1 + rnd(4096));	/* negative file positions */
	if (write && buf == scratch)
		rnd_fill(scratch, len < SCRATCH ? len : SCRATCH);
	if (one_in(10)) {
		/* Vectored: each iovec becomes its own ->read/->write. */
		struct iovec iov[3];
		int n = 1 + (int)rnd(3);
		size_t each = len < SCRATCH / 4 ? len : 1 + rnd(64);

		for (int i = 0; i < n; i++) {
			iov[i].iov_base = i == 1 ? pick_buf(each) : scratch + i * (SCRATCH / 4);
			iov[i].iov_len = each;
		}
		tracef("%s pos %#" PRIx64 " n %d each %#zx", write ? "pwritev" : "preadv", pos, n, each);
		if (write)
			note(K_PWRITEV, pwritev(dev, iov, n, (off_t)pos));
		else
			note(K_PREADV, preadv(dev, iov, n, (off_t)pos));
		return;
	}
	if (write)
		xpwrite(K_PWRITE, buf, len, pos);
	else
		xpread(K_PREAD, buf, len, pos);
}

static long cfg_read(void *v, size_t n, uint64_t off)
{
	return xpread(K_CFG_READ, v, n, CFG(off));
}

static long cfg_write(const void *v, size_t n, uint64_t off)
{
	return xpwrite(K_CFG_WRITE, v, n, CFG(off));
}

static void cfg_write32(uint64_t off, uint32_t v)
{
	cfg_write(&v, 4, off);
}

static void cfg_write16(uint64_t off, uint16_t v)
{
	cfg_write(&v, 2, off);
}

/* The MSI capability found by walking the list (0 if none), walked again now and then. */
static uint8_t msi_cap;

static void walk_caps(void)
{
	uint8_t ptr = 0, hdr[2];
	int steps = 0;

	if (cfg_read(&ptr, 1, PCI_CAPABILITY_LIST_OFF) != 1)
		return;
	while (ptr >= 0x40 && steps++ < 48) {
		if (cfg_read(hdr, 2, ptr & ~3u) != 2)
			return;
		if (hdr[0] == 0x05)
			msi_cap = ptr & ~3u;
		ptr = hdr[1];
	}
}

static void op_cfg(void)
{
	static const uint16_t cmds[] = { 0x0000, 0x0002, 0x0004, 0x0006, 0x0007, 0x0406,
					 0x0400, 0x0106, 0xffff };
	static const uint8_t bars[] = { 0x10, 0x14, 0x18, 0x1c, 0x20, 0x24, 0x30 };
	uint32_t v32, old;
	uint16_t v16;
	uint8_t b;

	switch (rnd(10)) {
	case 0: case 1:
		/* Command register: memory, I/O, bus master, INTx disable. */
		v16 = one_in(4) ? (uint16_t)rnd64() : PICK(cmds);
		if (one_in(4))
			cfg_write32(0x04, v16 | (uint32_t)rnd64() << 16);	/* with status */
		else
			cfg_write16(0x04, v16);
		cfg_read(&v16, 2, 0x04);
		break;
	case 2: case 3: {
		/* BAR sizing, as a guest BIOS does it, and a (random) restore. */
		uint8_t bar = PICK(bars);

		cfg_read(&old, 4, bar);
		cfg_write32(bar, 0xffffffff);
		cfg_read(&v32, 4, bar);
		if (bar != 0x30 && one_in(2)) {
			cfg_write32(bar + 4, 0xffffffff);
			cfg_read(&v32, 4, bar + 4);
			cfg_write32(bar + 4, one_in(2) ? 0 : (uint32_t)rnd64());
		}
		cfg_write32(bar, one_in(2) ? old : (uint32_t)rnd64());
		break;
	}
	case 4: case 5:
		/* MSI: address, data, enable or disable. */
		if (!msi_cap || one_in(16))
			walk_caps();
		if (!msi_cap)
			break;
		if (one_in(2)) {
			cfg_write32(msi_cap + 4, 0xfee00000 | ((uint32_t)rnd(256) << 12));
			cfg_write32(msi_cap + 8, one_in(4) ? (uint32_t)rnd64() : 0);
			cfg_write16(msi_cap + 12, (uint16_t)rnd64());
		}
		v16 = one_in(4) ? (uint16_t)rnd64() : (uint16_t)(0x0080 | rnd(2));
		cfg_write16(msi_cap + 2, v16);
		if (one_in(4)) {
			/* The whole capability in one write. */
			unsigned char cap[24];

			rnd_fill(cap, sizeof(cap));
			cfg_write(cap, 1 + rnd(sizeof(cap)), msi_cap + rnd(4));
		}
		cfg_read(&v16, 2, msi_cap + 2);
		break;
	case 6:
		/* INTx: line, the read-only pin, disable bit. */
		b = (uint8_t)rnd64();
		cfg_write(&b, 1, 0x3c);
		cfg_write(&b, 1, 0x3d);
		cfg_read(&v32, 4, 0x3c);
		break;
	case 7:
		/* The whole space, and past it. */
		cfg_read(scratch, PICK(((const size_t[]){ 64, 256, 257, 4096 })), 0);
		break;
	default: {
		/* Anywhere, any size, into the extended space and beyond. */
		uint64_t off = one_in(4) ? rnd(4096 + 8) : rnd(256 + 8);
		size_t len = PICK(((const size_t[]){ 1, 2, 4, 8, 3, 1, 2, 4 }));

		if (one_in(2)) {
			rnd_fill(scratch, 8);
			cfg_write(scratch, len, off);
		} else {
			cfg_read(scratch, len, off);
		}
		break;
	}
	}
}


/* ---- PVINFO and g2v_notify ---- */

static uint64_t pick_gpa(void)
{
	int i = (int)rnd(NSLOT);

	switch (rnd(8)) {
	case 0: return 0;
	case 1: return UINT64_MAX - PAGE + 1;
	case 2: return SLOT_IOVA(i) + 1 + rnd(PAGE - 1);	/* misaligned */
	case 3: return SLOT_IOVA(i) + SLOT_SIZE - PAGE;	/* the last page of a slot */
	case 4: return 0x7f000000ULL + PAGE * rnd(16);		/* not mapped */
	default: return SLOT_IOVA(i);
	}
}

static void g2v(uint32_t v)
{
	xpwrite(K_G2V, &v, 4, BAR0(PVINFO_OFFSET + PV_G2V_NOTIFY));
}

static void op_pvinfo(void)
{
	static const uint32_t g2v_vals[] = { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
					     G2V_PV_REGISTER, G2V_PV_REGISTER, G2V_PV_DOORBELL,
					     G2V_PV_UNREGISTER, 0x7fffffff, 0xffffffff };
	static const uint32_t guest_fields[] = { 0x800, 0x804, 0x808, 0x818, 0x81c, 0x830,
						 0x834, 0x838, 0x83c, 0x840, 0x850, 0x858, 0x85c,
						 0x860, 0x864, 0x868, 0x86c, 0x870, 0xffc };
	static const uint32_t pages[] = { 0, 1, 2, 4, 16, 17, 256, 0x10000, 0xffffffff };
	uint64_t off, v64;
	size_t len;

	switch (rnd(10)) {
	case 0: case 1: case 2:
		/* Reads anywhere in and around the page. */
		off = PVINFO_OFFSET - 16 + rnd(PVINFO_SIZE + 32);
		len = PICK(((const size_t[]){ 1, 2, 4, 8, 8, 4, 3, 5, 7, 16, 64 }));
		if (one_in(16)) {
			off = PVINFO_OFFSET;
			len = PVINFO_SIZE;
		}
		xpread(K_PVINFO_READ, pick_buf(len), len, BAR0(off));
		break;
	case 3: case 4:
		/* Guest-half fields. */
		off = PVINFO_OFFSET + PICK(guest_fields);
		len = PICK(((const size_t[]){ 4, 4, 8, 1, 2 }));
		rnd_fill(scratch, 8);
		xpwrite(K_PVINFO_WRITE, scratch, len, BAR0(off));
		break;
	case 5:
		/* The host half, read-only; across the halves; across the page ends. */
		switch (rnd(4)) {
		case 0: off = PVINFO_OFFSET + rnd(PVINFO_GUEST_HALF); break;
		case 1: off = PVINFO_OFFSET + PVINFO_GUEST_HALF - 4; break;
		case 2: off = PVINFO_OFFSET - 4; break;
		default: off = PVINFO_OFFSET + PVINFO_SIZE - 4; break;
		}
		len = PICK(((const size_t[]){ 1, 2, 4, 8, 16, 4096 }));
		rnd_fill(scratch, len);
		xpwrite(K_PVINFO_WRITE, scratch, len, BAR0(off));
		break;
	case 6: case 7:
		/* A PV registration with arguments good and bad, then maybe a doorbell. */
		v64 = (uint64_t)PICK(pages);
		xpwrite(K_PVINFO_WRITE, &v64, 4, BAR0(PVINFO_OFFSET + PV_SHARED_AREA_PAGES));
		v64 = pick_gpa();
		if (one_in(3)) {
			xpwrite(K_PVINFO_WRITE, &v64, 4, BAR0(PVINFO_OFFSET + PV_SHARED_AREA_GPA));
			xpwrite(K_PVINFO_WRITE, (uint32_t *)&v64 + 1, 4,
				BAR0(PVINFO_OFFSET + PV_SHARED_AREA_GPA + 4));
		} else {
			xpwrite(K_PVINFO_WRITE, &v64, 8, BAR0(PVINFO_OFFSET + PV_SHARED_AREA_GPA));
		}
		v64 = one_in(2) ? 7 : rnd64();
		xpwrite(K_PVINFO_WRITE, &v64, 4, BAR0(PVINFO_OFFSET + PV_CAPS_REQUEST));
		g2v(G2V_PV_REGISTER);
		if (one_in(2))
			g2v(G2V_PV_DOORBELL);
		if (one_in(2))
			g2v(G2V_PV_UNREGISTER);
		break;
	default:
		/* g2v_notify: every value, odd widths. */
		if (one_in(4)) {
			len = PICK(((const size_t[]){ 1, 2, 8 }));
			rnd_fill(scratch, 8);
			xpwrite(K_G2V, scratch, len, BAR0(PVINFO_OFFSET + PV_G2V_NOTIFY + rnd(4)));
		} else {
			g2v(one_in(8) ? (uint32_t)rnd64() : PICK(g2v_vals));
		}
		break;
	}
}

/* ---- info ioctls ---- */

static uint32_t pick_argsz(uint32_t good)
{
	switch (rnd(12)) {
	case 0: return 0;
	case 1: return good - 1;
	case 2: return good / 2;
	case 3: return good + 1 + (uint32_t)rnd(256);
	case 4: return 0xffffffff;
	case 5: return (uint32_t)rnd64();
	case 6: return SCRATCH;
	default: return good;
	}
}

/* An ioctl argument: usually scratch (random after argsz), sometimes a bad pointer. */
static void *pick_arg(size_t need)
{
	switch (rnd(20)) {
	case 0: return NULL;
	case 1: return guard;
	case 2: return guard - need / 2;
	case 3: return (void *)(uintptr_t)rnd64();
	default: return scratch;
	}
}

static void op_info(void)
{
	static const uint32_t indices[] = { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0xff,
					    0x7fffffff, 0x80000000, 0xffffffff };
	void *arg;

	rnd_fill(scratch, 256);
	switch (rnd(3)) {
	case 0: {
		struct vfio_device_info *i = (void *)scratch;

		i->argsz = pick_argsz(sizeof(*i));
		i->flags = one_in(4) ? (uint32_t)rnd64() : 0;
		arg = pick_arg(sizeof(*i));
		xioctl(K_GET_INFO, dev, VFIO_DEVICE_GET_INFO, arg);
		break;
	}
	case 1: {
		struct vfio_region_info *r = (void *)scratch;

		r->argsz = pick_argsz(sizeof(*r));
		r->index = one_in(8) ? (uint32_t)rnd64() : PICK(indices);
		r->flags = one_in(4) ? (uint32_t)rnd64() : 0;
		r->cap_offset = 0;
		arg = pick_arg(sizeof(*r));
		xioctl(K_REGION_INFO, dev, VFIO_DEVICE_GET_REGION_INFO, arg);
		break;
	}
	default: {
		struct vfio_irq_info *q = (void *)scratch;

		q->argsz = pick_argsz(sizeof(*q));
		q->index = one_in(8) ? (uint32_t)rnd64() : PICK(indices);
		q->flags = one_in(4) ? (uint32_t)rnd64() : 0;
		arg = pick_arg(sizeof(*q));
		xioctl(K_IRQ_INFO, dev, VFIO_DEVICE_GET_IRQ_INFO, arg);
		break;
	}
	}
}

/* ---- interrupts ---- */

static void drain_eventfds(void)
{
	for (int i = 0; i < NEVENTFD; i++) {
		uint64_t v;

		if (read(evfd[i], &v, 8) == 8)
			irqs_seen += v;
	}
}

static int32_t pick_fd(void)
{
	switch (rnd(12)) {
	case 0: return -1;
	case 1: return closed_fd;
	case 2: return null_fd;
	case 3: return pipe_fd[(int)rnd(2)];
	case 4: return dev;
	case 5: return iommufd_mode ? iommufd : container;
	case 6: return (int32_t)rnd64();
	case 7: return INT32_MAX;
	case 8: return -2 - (int32_t)rnd(1000);
	default: return evfd[rnd(NEVENTFD)];
	}
}

#define NFDS 16

/* SET_IRQS with argsz covering the data; fds, if given, holds NFDS descriptors. */
static long set_irqs(uint32_t flags, uint32_t index, uint32_t start, uint32_t count,
		     const int32_t *fds)
{
	struct vfio_irq_set *s = (void *)scratch;
	uint32_t data = 0;

	s->flags = flags;
	s->index = index;
	s->start = start;
	s->count = count;
	if (flags & VFIO_IRQ_SET_DATA_EVENTFD)
		data = 4 * (count < 16 ? count : 16);
	else if (flags & VFIO_IRQ_SET_DATA_BOOL)
		data = count < 64 ? count : 64;
	s->argsz = sizeof(*s) + data;
	if (flags & VFIO_IRQ_SET_DATA_BOOL) {
		for (uint32_t i = 0; i < data; i++)
			s->data[i] = PICK(((const uint8_t[]){ 0, 1, 1, 2, 0xff }));
	} else if (fds) {
		memcpy(s->data, fds, 4 * NFDS);
	}
	return xioctl(K_SET_IRQS, dev, VFIO_DEVICE_SET_IRQS, s);
}

static void op_set_irqs(void)
{
	static const uint32_t datas[] = { VFIO_IRQ_SET_DATA_NONE, VFIO_IRQ_SET_DATA_BOOL,
					  VFIO_IRQ_SET_DATA_EVENTFD };
	static const uint32_t actions[] = { VFIO_IRQ_SET_ACTION_MASK, VFIO_IRQ_SET_ACTION_UNMASK,
					    VFIO_IRQ_SET_ACTION_TRIGGER };
	static const uint32_t indices[] = { 0, 1, 0, 1, 2, 3, 4, 5, 6, 0xffffffff };
	static const uint32_t starts[] = { 0, 0, 0, 0, 1, 2, 0xffffffff, 0x80000000 };
	static const uint32_t counts[] = { 0, 1, 1, 1, 1, 2, 3, 16, 0x40000000, 0xffffffff };
	struct vfio_irq_set *s = (void *)scratch;
	int32_t fds[NFDS];
	uint32_t flags;

	drain_eventfds();
	for (int i = 0; i < NFDS; i++)
		fds[i] = pick_fd();
	switch (rnd(8)) {
	case 0:
		/* What QEMU does for MSI: wire an eventfd, fire, maybe tear down. */
		fds[0] = evfd[rnd(NEVENTFD)];
		set_irqs(VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER,
			 VFIO_PCI_MSI_IRQ_INDEX, 0, 1, fds);
		set_irqs(VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER,
			 VFIO_PCI_MSI_IRQ_INDEX, 0, 1, NULL);
		if (one_in(3))
			set_irqs(VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER,
				 VFIO_PCI_MSI_IRQ_INDEX, 0, 0, NULL);
		break;
	case 1:
		/* INTx: trigger and unmask eventfds, mask, fire, unmask, disable. */
		fds[0] = evfd[rnd(NEVENTFD)];
		set_irqs(VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER,
			 VFIO_PCI_INTX_IRQ_INDEX, 0, 1, fds);
		fds[0] = pick_fd();
		set_irqs(VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_UNMASK,
			 VFIO_PCI_INTX_IRQ_INDEX, 0, 1, fds);
		set_irqs(PICK(datas) | PICK(actions), VFIO_PCI_INTX_IRQ_INDEX, 0, 1, NULL);
		set_irqs(VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER,
			 VFIO_PCI_INTX_IRQ_INDEX, 0, 1, NULL);
		if (one_in(3))
			set_irqs(VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER,
				 VFIO_PCI_INTX_IRQ_INDEX, 0, 0, NULL);
		break;
	case 2:
		/* A bad or non-eventfd fd where an eventfd belongs. */
		set_irqs(VFIO_IRQ_SET_DATA_EVENTFD | PICK(actions), (uint32_t)rnd(3),
			 (uint32_t)rnd(2), 1 + (uint32_t)rnd(2), fds);
		break;
	case 3: {
		/* Several action or data bits at once, or random flags. */
		flags = PICK(datas) | PICK(actions);
		switch (rnd(4)) {
		case 0: flags |= PICK(actions); break;
		case 1: flags |= PICK(datas); break;
		case 2: flags = (uint32_t)rnd(64); break;
		default: flags = (uint32_t)rnd64(); break;
		}
		set_irqs(flags, PICK(indices), PICK(starts), PICK(counts), fds);
		break;
	}
	case 4:
		/* A valid-looking header with a bad argsz or pointer. */
		fds[0] = evfd[0];
		set_irqs(PICK(datas) | PICK(actions), (uint32_t)rnd(2), 0, 1, fds);
		s->flags = PICK(datas) | PICK(actions);
		s->index = (uint32_t)rnd(3);
		s->start = 0;
		s->count = (uint32_t)rnd(3);
		s->argsz = pick_argsz(sizeof(*s) + 4);
		xioctl(K_SET_IRQS, dev, VFIO_DEVICE_SET_IRQS, pick_arg(sizeof(*s) + 4));
		break;
	default:
		/* Any combination of the enumerated values. */
		set_irqs(PICK(datas) | PICK(actions), PICK(indices), PICK(starts), PICK(counts),
			 fds);
		break;
	}
}

/* ---- everything else on the device fd ---- */

static void op_misc(void)
{
	void *arg;

	rnd_fill(scratch, 512);
	switch (rnd(12)) {
	case 0: case 1:
		xioctl(K_RESET, dev, VFIO_DEVICE_RESET, one_in(2) ? NULL : scratch);
		break;
	case 2: {
		struct vfio_pci_hot_reset_info *h = (void *)scratch;

		h->argsz = pick_argsz(sizeof(*h));
		h->flags = one_in(2) ? 0 : (uint32_t)rnd64();
		h->count = (uint32_t)rnd(4);
		xioctl(K_HOT_RESET_INFO, dev, VFIO_DEVICE_GET_PCI_HOT_RESET_INFO,
		       pick_arg(sizeof(*h)));
		break;
	}
	case 3: {
		struct vfio_pci_hot_reset *h = (void *)scratch;

		h->argsz = pick_argsz(sizeof(*h) + 4);
		h->flags = one_in(2) ? 0 : (uint32_t)rnd64();
		h->count = (uint32_t)rnd(3);
		h->group_fds[0] = group >= 0 ? group : pick_fd();
		xioctl(K_HOT_RESET, dev, VFIO_DEVICE_PCI_HOT_RESET, pick_arg(sizeof(*h)));
		break;
	}
	case 4: case 5: {
		struct vfio_device_feature *f = (void *)scratch;
		static const uint32_t ops[] = { VFIO_DEVICE_FEATURE_GET, VFIO_DEVICE_FEATURE_SET,
						VFIO_DEVICE_FEATURE_PROBE,
						VFIO_DEVICE_FEATURE_PROBE | VFIO_DEVICE_FEATURE_GET,
						VFIO_DEVICE_FEATURE_PROBE | VFIO_DEVICE_FEATURE_SET,
						VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_SET, 0 };

		f->flags = (uint32_t)(one_in(8) ? rnd(0x10000) : rnd(16)) | PICK(ops);
		if (one_in(8))
			f->flags |= (uint32_t)rnd64() & ~0x7ffffu;
		f->argsz = pick_argsz(sizeof(*f) + 8 * (uint32_t)rnd(8));
		xioctl(K_FEATURE, dev, VFIO_DEVICE_FEATURE, pick_arg(sizeof(*f)));
		break;
	}
	case 6: case 7: {
		/* Every other vfio ioctl number on the device fd, with random contents. */
		unsigned int nr = VFIO_BASE + (unsigned int)rnd(32);

		((uint32_t *)scratch)[0] = pick_argsz(16 + 8 * (uint32_t)rnd(4));
		if (nr == VFIO_BASE + 18 && !iommufd_mode)
			((int32_t *)scratch)[2] = (int32_t)rnd(64);	/* BIND: some fd */
		arg = pick_arg(64);
		xioctl(K_VFIO_IOCTL, dev, _IO(VFIO_TYPE, nr), arg);
		break;
	}
	case 8: case 9: {
		/* Unknown numbers, any direction and size; no generic VFS ones ('X', 'f', 'T'). */
		unsigned long cmd;

		do {
			cmd = one_in(2) ? (unsigned long)(uint32_t)rnd64()
					: _IOC(rnd(4), VFIO_TYPE, VFIO_BASE + 32 + rnd(200),
					       rnd(256));
		} while (_IOC_TYPE(cmd) == 'X' || _IOC_TYPE(cmd) == 'f' ||
			 _IOC_TYPE(cmd) == 'T' || _IOC_TYPE(cmd) == 0x94);
		xioctl(K_UNKNOWN_IOCTL, dev, cmd, pick_arg(256));
		break;
	}
	default: {
		/* mmap of a region: the vGPU offers none yet. */
		uint32_t idx = (uint32_t)rnd(10);
		size_t len = PICK(((const size_t[]){ PAGE, 2 * PAGE, 1 << 20 }));
		void *p;

		tracef("mmap region %u", idx);
		p = mmap(NULL, len, PROT_READ | (one_in(2) ? PROT_WRITE : 0),
			 one_in(8) ? MAP_PRIVATE : MAP_SHARED, dev,
			 (off_t)(reg_pos(idx) + PAGE * rnd(4)));
		note(K_MMAP, p == MAP_FAILED ? -1 : 0);
		if (p != MAP_FAILED)
			munmap(p, len);
		break;
	}
	}
}

/* ---- opens, re-attaches ---- */

static void reopen(void)
{
	close(dev);
	dev = iommufd_mode ? cdev_open_device() : legacy_open_device();
	if (dev < 0)
		die(1, "the device could not be opened again: %s", strerror(errno));
}

static void op_rare(void)
{
	int fd;

	switch (rnd(iommufd_mode ? 6 : 3)) {
	case 0:
		/* Close with interrupts wired, open again. */
		reopen();
		break;
	case 1:
		/* A second open while open: a second fd (group), or refused (cdev). */
		if (iommufd_mode) {
			struct vfio_device_bind_iommufd bind = { .argsz = sizeof(bind),
								 .iommufd = iommufd };

			fd = (int)note(K_OPEN, open(cdev_path, O_RDWR | O_CLOEXEC));
			if (fd >= 0) {
				xioctl(K_OPEN, fd, VFIO_DEVICE_BIND_IOMMUFD, &bind);
				close(fd);
			}
		} else {
			fd = legacy_open_device();
			if (fd >= 0) {
				struct vfio_device_info i = { .argsz = sizeof(i) };

				xioctl(K_GET_INFO, fd, VFIO_DEVICE_GET_INFO, &i);
				close(fd);
			}
		}
		break;
	case 2:
		/* Reads on a device fd being closed by nobody else: just a burst of resets. */
		for (int i = 0; i < 4; i++)
			xioctl(K_RESET, dev, VFIO_DEVICE_RESET, NULL);
		break;
	case 3: {
		/* Detach and attach again, maybe to the other IOAS first. */
		struct vfio_device_detach_iommufd_pt d = { .argsz = sizeof(d) };
		struct vfio_device_attach_iommufd_pt a = { .argsz = sizeof(a), .pt_id = ioas[1] };

		xioctl(K_IOMMUFD, dev, VFIO_DEVICE_DETACH_IOMMUFD_PT, &d);
		if (one_in(2))
			xioctl(K_IOMMUFD, dev, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &a);
		a.pt_id = ioas[0];
		xioctl(K_IOMMUFD, dev, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &a);
		break;
	}
	case 4: {
		/* Replace the IOAS while attached, bad ids, odd flags. */
		struct vfio_device_attach_iommufd_pt a = { .argsz = sizeof(a) };

		a.pt_id = one_in(2) ? ioas[1] : (uint32_t)rnd64();
		if (one_in(3))
			a.flags = (uint32_t)rnd(4);
		if (one_in(3))
			a.argsz = pick_argsz(sizeof(a));
		xioctl(K_IOMMUFD, dev, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &a);
		a = (struct vfio_device_attach_iommufd_pt){ .argsz = sizeof(a), .pt_id = ioas[0] };
		xioctl(K_IOMMUFD, dev, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &a);
		break;
	}
	default: {
		/* Destroy an object in use (EBUSY), the device id, a bogus one. */
		struct iommu_destroy d = { .size = sizeof(d) };

		d.id = PICK(((const uint32_t[]){ ioas[0], devid, 0, 0xffffffff }));
		xioctl(K_IOMMUFD, iommufd, IOMMU_DESTROY, &d);
		break;
	}
	}
}

/* ---- the host's path to this process's memory (debugfs mem_probe) ---- */

#define DBG_DIR "/sys/kernel/debug/gvtpv_host"
static uint64_t probes_verified, probe_mismatches;

/* Asks the host to probe [iova, iova + len): 0 or -errno. */
static long mem_probe(uint64_t iova, uint64_t len)
{
	char path[PATH_MAX], buf[64];
	int fd, n, e;
	long r;

	snprintf(path, sizeof(path), DBG_DIR "/%s/mem_probe", uuid);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = snprintf(buf, sizeof(buf), "%#" PRIx64 " %" PRIu64, iova, len);
	r = note(K_PROBE, write(fd, buf, n));
	e = errno;
	close(fd);
	nops++;
	return r < 0 ? -e : 0;
}

/* The value of "KEY VALUE" (decimal or 0x hex) in a debugfs file of this vGPU. */
static int dbg_field(const char *file, const char *key, uint64_t *v)
{
	char path[PATH_MAX], line[256];
	size_t k = strlen(key);
	FILE *f;
	int found = 0;

	snprintf(path, sizeof(path), DBG_DIR "/%s/%s", uuid, file);
	f = fopen(path, "r");
	if (!f)
		return 0;
	while (!found && fgets(line, sizeof(line), f)) {
		char *p = strstr(line, key);

		while (p && !found) {
			if ((p == line || p[-1] == ' ') && p[k] == ' ') {
				*v = strtoull(p + k + 1, NULL, 0);
				found = 1;
			}
			p = strstr(p + 1, key);
		}
	}
	fclose(f);
	return found;
}

/* Whole-path check: pattern in, probe, complement and XOR out; unmap while pinned. */
static int probe_selftest(void)
{
	uint64_t *q = (uint64_t *)dmamem, xor = 0, got = 0, before = 0, after = 0;
	const size_t n = 2 * PAGE / 8;
	int bad = 0;
	long r;

	for (size_t i = 0; i < n; i++) {
		q[i] = 0x0123456789abcdefULL * (i + 1);
		xor ^= q[i];
	}
	/* Right after an unmap (a re-open or re-attach unmaps everything) the host refuses
	 * new pins for a few milliseconds: retry EFAULT for up to 200 ms. */
	for (int t = 0; (r = mem_probe(SLOT_IOVA(0), 2 * PAGE)) == -EFAULT && t < 20; t++)
		usleep(10000);
	if (r) {
		printf("probe: the host could not probe mapped memory: %s\n", strerror((int)-r));
		return 1;
	}
	for (size_t i = 0; i < n; i++)
		if (q[i] != ~(0x0123456789abcdefULL * (i + 1))) {
			printf("probe: qword %zu is %#" PRIx64 ", not the complement\n", i, q[i]);
			bad++;
			break;
		}
	if (!dbg_field("mem_probe", "xor", &got) || got != xor) {
		printf("probe: host XOR %#" PRIx64 ", want %#" PRIx64 "\n", got, xor);
		bad++;
	}
	dbg_field("counters", "unpinned_by_unmap", &before);
	/* The two pages stay pinned in the host's cache: unmapping them must drop them. */
	if (unmap_slot(0)) {
		printf("probe: unmapping a buffer the host holds pinned failed: %s\n", strerror(errno));
		bad++;
	}
	dbg_field("counters", "unpinned_by_unmap", &after);
	if (after < before + 2) {
		printf("probe: the unmap dropped %" PRIu64 " host pins, want 2\n", after - before);
		bad++;
	}
	if (mem_probe(SLOT_IOVA(0), 8) == 0) {
		printf("probe: the host still reached an unmapped buffer\n");
		bad++;
	}
	if (map_slot(0)) {
		printf("probe: mapping the buffer again failed: %s\n", strerror(errno));
		bad++;
	}
	if (!bad)
		printf("probe self-test: ok (host complemented %zu qwords, XOR %#" PRIx64
		       ", unmap dropped %" PRIu64 " pins)\n", n, xor, after - before);
	return bad;
}

/* A random probe of a buffer, mapped or not; a success on a mapped one is verified. */
static int racer;			/* -j: a thread probes the upper half of the buffers */
static atomic_int racer_stop;
static atomic_ulong racer_ok, racer_err;

/* The racing thread: host probes of the upper buffers, mapped or not, as fast as the
 * host answers. Its own PRNG and counters: nothing shared with the main thread but the
 * buffers' memory, which it does not read. */
static void *racer_main(void *arg)
{
	uint64_t x = (uint64_t)(uintptr_t)arg | 1;
	char path[PATH_MAX], buf[64];

	snprintf(path, sizeof(path), DBG_DIR "/%s/mem_probe", uuid);
	while (!atomic_load(&racer_stop)) {
		int fd, n;

		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		n = snprintf(buf, sizeof(buf), "%#" PRIx64 " %" PRIu64,
			     (uint64_t)(SLOT_IOVA(NSLOT / 2 + x % (NSLOT / 2)) +
					(x >> 8) % (SLOT_SIZE / PAGE) * PAGE),
			     (uint64_t)((1 + (x >> 20) % 4) * PAGE));
		fd = open(path, O_WRONLY | O_CLOEXEC);
		if (fd < 0)
			break;
		if (write(fd, buf, n) < 0)
			atomic_fetch_add(&racer_err, 1);
		else
			atomic_fetch_add(&racer_ok, 1);
		close(fd);
	}
	return NULL;
}

static void op_probe(void)
{
	int i = (int)rnd(racer ? NSLOT / 2 : NSLOT);
	uint64_t off = one_in(4) ? rnd(SLOT_SIZE) : rnd(SLOT_SIZE / 8) * 8;
	uint64_t len = one_in(8) ? rnd64() % (1 << 20) : (rnd(2 * PAGE / 8) + 1) * 8;
	unsigned char *p = dmamem + i * SLOT_SIZE + off;
	int mapped = slot_mapped[i] && off + len <= SLOT_SIZE;
	static unsigned char copy[2 * PAGE + 8];

	if (mapped && len <= sizeof(copy))
		memcpy(copy, p, len);
	if (mem_probe(SLOT_IOVA(i) + off, len) || !mapped || len > sizeof(copy))
		return;
	for (uint64_t k = 0; k < len; k++)
		if (p[k] != (unsigned char)~copy[k]) {
			probe_mismatches++;
			return;
		}
	probes_verified++;
}

/* Re-opening the device is a power-on: nothing of the previous open survives. */
static int lifecycle_selftest(void)
{
	uint32_t bar0 = 0, pv = 0, one = 1;
	uint16_t cmd = 0, msi = 0;
	int bad = 0;

	cfg_write32(0x10, 0xfe000000);
	cfg_write16(0x04, 0x0407);
	if (msi_cap)
		cfg_write16(msi_cap + 2, 0x0001);
	xpwrite(K_PVINFO_WRITE, &one, 4, BAR0(PVINFO_OFFSET + 0x804));
	cfg_read(&bar0, 4, 0x10);
	xpread(K_PVINFO_READ, &pv, 4, BAR0(PVINFO_OFFSET + 0x804));
	if (bar0 != 0xfe000004 || pv != 1) {
		printf("lifecycle: the writes did not take (BAR0 %#x, display_ready %u)\n", bar0, pv);
		bad++;
	}
	reopen();
	cfg_read(&bar0, 4, 0x10);
	cfg_read(&cmd, 2, 0x04);
	if (msi_cap)
		cfg_read(&msi, 2, msi_cap + 2);
	xpread(K_PVINFO_READ, &pv, 4, BAR0(PVINFO_OFFSET + 0x804));
	if (bar0 != 0x4 || cmd != 0 || (msi & 1) || pv != 0) {
		printf("lifecycle: state survived a re-open: BAR0 %#x command %#x MSI flags %#x "
		       "display_ready %u\n", bar0, cmd, msi, pv);
		bad++;
	}
	if (!bad)
		printf("lifecycle self-test: ok (re-open reset BAR0, command, MSI and PVINFO)\n");
	return bad;
}

/* ---- main ---- */

static void usage(void)
{
	die(2, "usage: hostile-vfio [-n OPS] [-s SEED] [-t] [-j] legacy|iommufd UUID");
}

static void setup_memory(void)
{
	unsigned char *m;

	dmamem = mmap(NULL, NSLOT * SLOT_SIZE, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	m = mmap(NULL, SCRATCH + PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		 -1, 0);
	if (dmamem == MAP_FAILED || m == MAP_FAILED)
		die(2, "mmap: %s", strerror(errno));
	scratch = m;
	guard = m + SCRATCH;
	if (mprotect(guard, PAGE, PROT_NONE))
		die(2, "mprotect: %s", strerror(errno));
	rnd_fill(dmamem, NSLOT * SLOT_SIZE);

	for (int i = 0; i < NEVENTFD; i++) {
		evfd[i] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (evfd[i] < 0)
			die(2, "eventfd: %s", strerror(errno));
	}
	closed_fd = eventfd(0, 0);
	close(closed_fd);
	null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null_fd < 0 || pipe2(pipe_fd, O_CLOEXEC))
		die(2, "/dev/null or pipe: %s", strerror(errno));
}

/* The device must still answer sanely. Returns the number of problems. */
static int health(void)
{
	struct vfio_device_info info = { .argsz = sizeof(info) };
	uint64_t magic = 0;
	uint16_t vendor = 0;
	int bad = 0;

	if (xioctl(K_GET_INFO, dev, VFIO_DEVICE_GET_INFO, &info) ||
	    !(info.flags & VFIO_DEVICE_FLAGS_PCI) || info.num_regions < VFIO_PCI_NUM_REGIONS) {
		printf("health: GET_INFO failed or odd (%s, flags %#x, %u regions)\n",
		       strerror(errno), info.flags, info.num_regions);
		bad++;
	}
	if (cfg_read(&vendor, 2, 0) != 2 || vendor != PCI_VENDOR_ID_INTEL) {
		printf("health: config vendor ID %#x, want %#x\n", vendor, PCI_VENDOR_ID_INTEL);
		bad++;
	}
	if (xpread(K_PVINFO_READ, &magic, 8, BAR0(PVINFO_OFFSET)) != 8 || magic != VGT_MAGIC) {
		printf("health: PVINFO magic %#" PRIx64 ", want %#llx\n", magic, VGT_MAGIC);
		bad++;
	} else {
		printf("health: PVINFO magic %#" PRIx64 " ok\n", magic);
	}
	if (short_rw) {
		printf("health: %" PRIu64 " reads or writes returned a short count\n", short_rw);
		bad++;
	}
	return bad;
}

int main(int argc, char **argv)
{
	uint64_t target = 100000, seed = 0;
	int have_seed = 0, opt, bad = 0;
	struct timespec t0, t1;
	const char *mode;

	while ((opt = getopt(argc, argv, "n:s:tj")) != -1) {
		switch (opt) {
		case 'j': racer = 1; break;
		case 'n': target = strtoull(optarg, NULL, 0); break;
		case 's': seed = strtoull(optarg, NULL, 0); have_seed = 1; break;
		case 't': trace = 1; break;
		default: usage();
		}
	}
	if (argc - optind != 2)
		usage();
	mode = argv[optind];
	uuid = argv[optind + 1];
	if (!strcmp(mode, "iommufd"))
		iommufd_mode = 1;
	else if (strcmp(mode, "legacy"))
		usage();
	if (!have_seed) {
		clock_gettime(CLOCK_REALTIME, &t0);
		seed = (uint64_t)t0.tv_sec * 1000000007ULL ^ (uint64_t)t0.tv_nsec ^
		       (uint64_t)getpid() << 32;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("hostile-vfio: mode %s, seed %#" PRIx64 ", target %" PRIu64 " operations\n",
	       mode, seed, target);
	printf("replay: hostile-vfio -s %#" PRIx64 " -n %" PRIu64 " %s %s\n", seed, target, mode,
	       uuid);
	rng_seed(seed);
	setup_memory();

	if (iommufd_mode)
		open_iommufd();
	else
		open_legacy();
	query_regions();
	if (!reg[VFIO_PCI_BAR0_REGION_INDEX].ok || !reg[VFIO_PCI_CONFIG_REGION_INDEX].ok)
		die(2, "GET_REGION_INFO failed for BAR0 or config space");
	for (int i = 0; i < NSLOT; i++)
		if (map_slot(i))
			die(2, "mapping DMA buffer %d at IOVA %#llx: %s", i, SLOT_IOVA(i),
			    strerror(errno));
	walk_caps();
	printf("MSI capability at %#x\n", msi_cap);
	bad = lifecycle_selftest() + probe_selftest();

	pthread_t racer_thread;

	if (racer && pthread_create(&racer_thread, NULL, racer_main, (void *)(uintptr_t)seed))
		die(2, "pthread_create failed");
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (nops < target) {
		uint64_t r = rnd(1000);

		if (r < 300) op_rw();
		else if (r < 420) op_cfg();
		else if (r < 600) op_pvinfo();
		else if (r < 700) op_info();
		else if (r < 820) op_set_irqs();
		else if (r < 910) op_misc();
		else if (r < 985) op_dma();
		else if (r < 998) op_probe();
		else op_rare();
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (racer) {
		atomic_store(&racer_stop, 1);
		pthread_join(racer_thread, NULL);
		nops += atomic_load(&racer_ok) + atomic_load(&racer_err);
	}
	drain_eventfds();

	if (iommufd_mode) {
		/* Whatever the run left, attach to the first IOAS again. */
		struct vfio_device_attach_iommufd_pt a = { .argsz = sizeof(a), .pt_id = ioas[0] };

		xioctl(K_IOMMUFD, dev, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &a);
	}
	bad += health();
	if (iommufd_mode) {
		if (dma_unmap(0, UINT64_MAX, 0, unmap_argsz()) < 0 && errno != ENOENT) {
			printf("health: unmapping everything failed: %s\n", strerror(errno));
			bad++;
		}
	} else if (dma_unmap(0, 0, VFIO_DMA_UNMAP_FLAG_ALL, unmap_argsz()) < 0) {
		printf("health: unmapping everything failed: %s\n", strerror(errno));
		bad++;
	}

	printf("hostile client: %" PRIu64 " operations\n", nops);
	printf("  host probes: %" PRIu64 " verified, %" PRIu64 " mismatches\n", probes_verified,
	       probe_mismatches);
	if (racer)
		printf("  racing host probes (second thread): %lu ok, %lu failed\n",
		       atomic_load(&racer_ok), atomic_load(&racer_err));
	printf("  %.1f s, %" PRIu64 " interrupts seen on the eventfds\n",
	       (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9,
	       irqs_seen);
	for (int k = 0; k < K_NKINDS; k++) {
		uint64_t total = stats[k].ok;

		for (int e = 0; e < MAX_ERRNO; e++)
			total += stats[k].err[e];
		if (!total)
			continue;
		printf("  %-30s %7" PRIu64 ": ok %" PRIu64, stats[k].name, total, stats[k].ok);
		for (int e = 0; e < MAX_ERRNO; e++)
			if (stats[k].err[e])
				printf(", %s %" PRIu64, e ? strerrorname_np(e) : "?",
				       stats[k].err[e]);
		printf("\n");
	}

	close(dev);
	if (group >= 0)
		close(group);
	if (container >= 0)
		close(container);
	if (iommufd >= 0)
		close(iommufd);
	if (bad)
		printf("hostile-vfio: the device is unhealthy after the run (%d problems)\n", bad);
	return bad ? 1 : 0;
}
