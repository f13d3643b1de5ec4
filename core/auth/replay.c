#include "auth/replay.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/crypto.h"

#define SLOTS 65536 /* a power of two above REPLAY_CAPACITY */

struct entry {
	uint8_t h[CRYPTO_SHA256_LEN];
	int64_t exp; /* 0: never used */
};

struct replay {
	pthread_mutex_t lock;
	int fd;
	size_t used; /* slots ever filled since the last rebuild */
	struct entry *slots;
};

static size_t slot_of(const uint8_t h[CRYPTO_SHA256_LEN])
{
	return ((size_t)h[0] | (size_t)h[1] << 8 | (size_t)h[2] << 16) & (SLOTS - 1);
}

/* 1 inserted, 0 present (and live), -1 full. */
static int insert(struct replay *r, const uint8_t h[CRYPTO_SHA256_LEN], int64_t exp, int64_t now)
{
	struct entry *reuse = NULL;
	size_t i = slot_of(h);
	for (size_t n = 0; n < SLOTS; n++, i = (i + 1) & (SLOTS - 1)) {
		struct entry *e = &r->slots[i];
		if (e->exp == 0) {
			if (!reuse) {
				if (r->used >= REPLAY_CAPACITY)
					return -1;
				reuse = e;
				r->used++;
			}
			break;
		}
		if (!memcmp(e->h, h, sizeof e->h) && e->exp >= now)
			return 0;
		if (!reuse && e->exp < now)
			reuse = e;
	}
	if (!reuse)
		return -1;
	memcpy(reuse->h, h, sizeof reuse->h);
	reuse->exp = exp;
	return 1;
}

/* Drops what expired: the table is rebuilt with the live entries. */
static void rebuild(struct replay *r, int64_t now)
{
	struct entry *old = r->slots;
	struct entry *fresh = calloc(SLOTS, sizeof *fresh);
	if (!fresh)
		return;
	r->slots = fresh;
	r->used = 0;
	for (size_t i = 0; i < SLOTS; i++)
		if (old[i].exp >= now)
			insert(r, old[i].h, old[i].exp, now);
	free(old);
}

static void digest(const char *iss, const char *jti, uint8_t h[CRYPTO_SHA256_LEN])
{
	size_t il = strlen(iss), jl = strlen(jti);
	char buf[1024];
	if (il + jl + 1 < sizeof buf) {
		memcpy(buf, iss, il);
		buf[il] = '\n';
		memcpy(buf + il + 1, jti, jl);
		crypto_sha256(buf, il + jl + 1, h);
	} else {
		memset(h, 0xff, CRYPTO_SHA256_LEN); /* never: iss and jti are bounded by the caller */
	}
}

struct replay *replay_open(const char *data_dir, long long now, char *why, size_t whylen)
{
	struct replay *r = calloc(1, sizeof *r);
	if (!r || !(r->slots = calloc(SLOTS, sizeof *r->slots))) {
		free(r);
		snprintf(why, whylen, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&r->lock, NULL);
	char path[4200], tmp[4210];
	snprintf(path, sizeof path, "%s/auth-jti", data_dir);
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	/* keep what is still live, then write it back compacted */
	FILE *f = fopen(path, "rb");
	struct entry e;
	while (f && fread(&e, sizeof e, 1, f) == 1)
		if (e.exp >= now)
			insert(r, e.h, e.exp, now);
	if (f)
		fclose(f);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	bool ok = fd >= 0;
	for (size_t i = 0; ok && i < SLOTS; i++)
		if (r->slots[i].exp >= now)
			ok = write(fd, &r->slots[i], sizeof r->slots[i]) == (ssize_t)sizeof r->slots[i];
	ok = ok && fsync(fd) == 0;
	if (fd >= 0)
		close(fd);
	ok = ok && rename(tmp, path) == 0;
	r->fd = ok ? open(path, O_WRONLY | O_APPEND | O_CLOEXEC) : -1;
	if (r->fd < 0) {
		snprintf(why, whylen, "cannot write %s: %s", path, strerror(errno));
		replay_close(r);
		return NULL;
	}
	return r;
}

void replay_close(struct replay *r)
{
	if (!r)
		return;
	if (r->fd >= 0)
		close(r->fd);
	pthread_mutex_destroy(&r->lock);
	free(r->slots);
	free(r);
}

int replay_record(struct replay *r, const char *iss, const char *jti, long long exp, long long now)
{
	uint8_t h[CRYPTO_SHA256_LEN];
	digest(iss, jti, h);
	pthread_mutex_lock(&r->lock);
	int rc = insert(r, h, exp, now);
	if (rc < 0) {
		rebuild(r, now);
		rc = insert(r, h, exp, now);
	}
	if (rc == 1) {
		struct entry e = {{0}, exp};
		memcpy(e.h, h, sizeof e.h);
		if (write(r->fd, &e, sizeof e) != (ssize_t)sizeof e || fdatasync(r->fd) != 0)
			rc = -1; /* kept in memory all the same: refused now, refused on replay */
	}
	pthread_mutex_unlock(&r->lock);
	return rc;
}
