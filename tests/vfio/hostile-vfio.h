/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Small helpers for hostile-vfio.c: a seeded PRNG, picking from tables, and the
 * per-kind result counters.
 */
#ifndef HOSTILE_VFIO_H
#define HOSTILE_VFIO_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/*
 * The vfio and iommufd uAPI of the kernel under test (Linux 7.2), newer than the build
 * machine's libc headers: images.sh copies them with __user stripped, as
 * headers_install does. Older libc headers lack __counted_by.
 */
#ifndef __counted_by
#define __counted_by(m)
#endif
#include <linux/iommufd.h>
#include <linux/vfio.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* xoshiro256** seeded through splitmix64: fast, and the seed reproduces a run. */
static uint64_t rng_s[4];

static inline uint64_t rotl64(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static inline void rng_seed(uint64_t seed)
{
	for (int i = 0; i < 4; i++) {
		uint64_t z = (seed += 0x9e3779b97f4a7c15ULL);

		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
		z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
		rng_s[i] = z ^ (z >> 31);
	}
}

static inline uint64_t rnd64(void)
{
	uint64_t r = rotl64(rng_s[1] * 5, 7) * 9, t = rng_s[1] << 17;

	rng_s[2] ^= rng_s[0];
	rng_s[3] ^= rng_s[1];
	rng_s[1] ^= rng_s[2];
	rng_s[0] ^= rng_s[3];
	rng_s[2] ^= t;
	rng_s[3] = rotl64(rng_s[3], 45);
	return r;
}

/* A number in [0, n); 0 for n == 0. */
static inline uint64_t rnd(uint64_t n)
{
	return n ? rnd64() % n : 0;
}

/* True with probability 1/n. */
static inline int one_in(uint64_t n)
{
	return rnd(n) == 0;
}

static inline void rnd_fill(void *p, size_t n)
{
	unsigned char *b = p;

	while (n >= 8) {
		uint64_t v = rnd64();

		memcpy(b, &v, 8);
		b += 8;
		n -= 8;
	}
	while (n--)
		*b++ = (unsigned char)rnd64();
}

#define PICK(table) ((table)[rnd(ARRAY_SIZE(table))])

/* Result counters: per kind, successes and each errno. */
#define MAX_ERRNO 256

struct kind_stats {
	const char *name;
	uint64_t ok;
	uint64_t err[MAX_ERRNO];
};

#endif
