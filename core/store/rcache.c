/* rcache — see rcache.h. Each shard is a chained hash table with an LRU list;
 * a shard's generation counts its invalidations and is the ticket a miss
 * hands out (an invalidation of any key of the shard voids it: conservative,
 * never wrong). */
#include "store/rcache.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define SHARDS 64
_Static_assert(SHARDS == 64, "BUCKET skips the 6 bits that pick the shard");
#define ENTRY_OVERHEAD 96 /* counted per entry beside key and text */
/* the low bits pick the shard, the bits above them the bucket */
#define BUCKET(h, nb) ((size_t)((h) >> 6) & ((nb)-1))

struct entry {
	struct entry *chain;       /* next in the bucket */
	struct entry *prev, *next; /* LRU: head is the most recent */
	uint64_t hash;
	size_t cost;
	int64_t version;
	char last_updated[STORE_TIME_SIZE];
	size_t len;
	char *text;
	char key[]; /* "type\0id\0" */
};

struct shard {
	pthread_mutex_t mu;
	uint64_t gen;
	struct entry **buckets;
	size_t nbuckets, n, bytes;
	struct entry head; /* LRU sentinel */
};

struct rcache {
	size_t shard_max, text_max;
	struct shard shards[SHARDS];
};

static uint64_t hash_key(const char *type, const char *id)
{
	uint64_t h = 1469598103934665603ULL;
	for (const unsigned char *p = (const unsigned char *)type; *p; p++)
		h = (h ^ *p) * 1099511628211ULL;
	h = (h ^ '/') * 1099511628211ULL;
	for (const unsigned char *p = (const unsigned char *)id; *p; p++)
		h = (h ^ *p) * 1099511628211ULL;
	return h ^ (h >> 29);
}

static bool key_is(const struct entry *e, const char *type, const char *id)
{
	size_t tl = strlen(e->key);
	return strcmp(e->key, type) == 0 && strcmp(e->key + tl + 1, id) == 0;
}

struct rcache *rcache_new(size_t max_bytes)
{
	if (max_bytes == 0)
		return NULL;
	struct rcache *c = calloc(1, sizeof *c);
	if (!c)
		return NULL;
	c->shard_max = max_bytes / SHARDS;
	c->text_max = max_bytes / 64;
	for (size_t i = 0; i < SHARDS; i++) {
		struct shard *s = &c->shards[i];
		pthread_mutex_init(&s->mu, NULL);
		s->head.prev = s->head.next = &s->head;
	}
	return c;
}

static void unlink_entry(struct shard *s, struct entry *e)
{
	struct entry **pp = &s->buckets[BUCKET(e->hash, s->nbuckets)];
	while (*pp != e)
		pp = &(*pp)->chain;
	*pp = e->chain;
	e->prev->next = e->next;
	e->next->prev = e->prev;
	s->n--;
	s->bytes -= e->cost;
	free(e->text);
	free(e);
}

void rcache_free(struct rcache *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < SHARDS; i++) {
		struct shard *s = &c->shards[i];
		while (s->head.next != &s->head)
			unlink_entry(s, s->head.next);
		free(s->buckets);
		pthread_mutex_destroy(&s->mu);
	}
	free(c);
}

static struct entry *find(struct shard *s, uint64_t h, const char *type, const char *id)
{
	if (!s->nbuckets)
		return NULL;
	for (struct entry *e = s->buckets[BUCKET(h, s->nbuckets)]; e; e = e->chain)
		if (e->hash == h && key_is(e, type, id))
			return e;
	return NULL;
}

static void lru_front(struct shard *s, struct entry *e)
{
	e->prev->next = e->next;
	e->next->prev = e->prev;
	e->next = s->head.next;
	e->prev = &s->head;
	s->head.next->prev = e;
	s->head.next = e;
}

bool rcache_get(struct rcache *c, const char *type, const char *id, struct store_text *out, uint64_t *ticket)
{
	uint64_t h = hash_key(type, id);
	struct shard *s = &c->shards[h % SHARDS];
	pthread_mutex_lock(&s->mu);
	struct entry *e = find(s, h, type, id);
	char *copy = e ? malloc(e->len + 1) : NULL;
	if (!copy) {
		*ticket = s->gen;
		pthread_mutex_unlock(&s->mu);
		return false;
	}
	memcpy(copy, e->text, e->len + 1);
	out->text = copy;
	out->len = e->len;
	out->version = e->version;
	memcpy(out->last_updated, e->last_updated, sizeof out->last_updated);
	lru_front(s, e);
	pthread_mutex_unlock(&s->mu);
	return true;
}

/* Doubles the bucket array when the load passes 1 (a failed growth keeps the
 * old array: chains get longer, nothing is lost). */
static void maybe_grow(struct shard *s)
{
	if (s->n < s->nbuckets)
		return;
	size_t nb = s->nbuckets ? s->nbuckets * 2 : 16;
	struct entry **b = calloc(nb, sizeof *b);
	if (!b)
		return;
	for (struct entry *e = s->head.next; e != &s->head; e = e->next) {
		size_t i = BUCKET(e->hash, nb);
		e->chain = b[i];
		b[i] = e;
	}
	free(s->buckets);
	s->buckets = b;
	s->nbuckets = nb;
}

void rcache_put(struct rcache *c, const char *type, const char *id, uint64_t ticket, const struct store_text *t)
{
	if (!t->text || t->len > c->text_max)
		return;
	size_t tl = strlen(type), il = strlen(id);
	size_t cost = ENTRY_OVERHEAD + tl + il + 2 + t->len + 1;
	uint64_t h = hash_key(type, id);
	struct shard *s = &c->shards[h % SHARDS];
	/* allocated before the lock; dropped if the ticket is void */
	struct entry *e = malloc(sizeof *e + tl + il + 2);
	char *text = malloc(t->len + 1);
	if (!e || !text) {
		free(e);
		free(text);
		return;
	}
	memcpy(e->key, type, tl + 1);
	memcpy(e->key + tl + 1, id, il + 1);
	memcpy(text, t->text, t->len);
	text[t->len] = '\0';
	e->text = text;
	e->len = t->len;
	e->version = t->version;
	memcpy(e->last_updated, t->last_updated, sizeof e->last_updated);
	e->hash = h;
	e->cost = cost;
	pthread_mutex_lock(&s->mu);
	if (s->gen != ticket || cost > c->shard_max) {
		pthread_mutex_unlock(&s->mu);
		free(text);
		free(e);
		return;
	}
	struct entry *old = find(s, h, type, id);
	if (old)
		unlink_entry(s, old);
	while (s->bytes + cost > c->shard_max && s->head.prev != &s->head)
		unlink_entry(s, s->head.prev);
	maybe_grow(s);
	if (!s->nbuckets) {
		pthread_mutex_unlock(&s->mu);
		free(text);
		free(e);
		return;
	}
	size_t i = BUCKET(h, s->nbuckets);
	e->chain = s->buckets[i];
	s->buckets[i] = e;
	e->next = s->head.next;
	e->prev = &s->head;
	s->head.next->prev = e;
	s->head.next = e;
	s->n++;
	s->bytes += cost;
	pthread_mutex_unlock(&s->mu);
}

void rcache_invalidate(struct rcache *c, const char *type, const char *id)
{
	uint64_t h = hash_key(type, id);
	struct shard *s = &c->shards[h % SHARDS];
	pthread_mutex_lock(&s->mu);
	s->gen++;
	struct entry *e = find(s, h, type, id);
	if (e)
		unlink_entry(s, e);
	pthread_mutex_unlock(&s->mu);
}

void rcache_clear(struct rcache *c)
{
	for (size_t i = 0; i < SHARDS; i++) {
		struct shard *s = &c->shards[i];
		pthread_mutex_lock(&s->mu);
		s->gen++;
		while (s->head.next != &s->head)
			unlink_entry(s, s->head.next);
		pthread_mutex_unlock(&s->mu);
	}
}

void rcache_stats(struct rcache *c, struct rcache_stats *out)
{
	memset(out, 0, sizeof *out);
	if (!c)
		return;
	for (size_t i = 0; i < SHARDS; i++) {
		struct shard *s = &c->shards[i];
		pthread_mutex_lock(&s->mu);
		out->entries += s->n;
		out->bytes += s->bytes;
		pthread_mutex_unlock(&s->mu);
	}
}
