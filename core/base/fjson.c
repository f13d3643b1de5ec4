#include "base/fjson.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/strbuf.h"

/* cJSON's default hooks are malloc/free and this project never changes them
 * (DESIGN: plugins never call cJSON_InitHooks), so nodes and strings built
 * here with malloc are freed correctly by cJSON_Delete. */

const char *fjson_code_text(enum fjson_code code)
{
	switch (code) {
#define FJSON_TEXT(name, num, text) \
	case name:                  \
		return text;
		FJSON_ERRORS(FJSON_TEXT)
#undef FJSON_TEXT
	}
	return "unknown error";
}

void fjson_limits_default(struct fjson_limits *lim)
{
	lim->max_depth = 1000;
	lim->max_members = 10000;
	lim->max_array_items = 100000;
	lim->memory_budget = 64u << 20;
}

void fjson_limits_for_len(struct fjson_limits *lim, size_t len)
{
	fjson_limits_default(lim);
	if (lim->memory_budget < len * 16)
		lim->memory_budget = len * 16;
	if (lim->max_members < len)
		lim->max_members = len;
	if (lim->max_array_items < len)
		lim->max_array_items = len;
}

/* ------------------------------------------------------------ key sets */

/* Duplicate detection: small objects compare against their members; from
 * KEYSET_MIN members on, an open-addressing hash set keeps it O(n). */
#define KEYSET_MIN 16

struct keyset {
	const char **slots;
	size_t cap, n;
};

static uint64_t hash_key(const char *s)
{
	uint64_t h = 1469598103934665603ULL;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

/* Returns 1 if inserted, 0 if present, -1 on OOM. */
static int keyset_insert(struct keyset *ks, const char *key)
{
	size_t mask = ks->cap - 1, i = (size_t)hash_key(key) & mask;
	while (ks->slots[i]) {
		if (strcmp(ks->slots[i], key) == 0)
			return 0;
		i = (i + 1) & mask;
	}
	ks->slots[i] = key;
	ks->n++;
	return 1;
}

/* ------------------------------------------------------------- parser */

struct frame {
	cJSON *node;
	size_t count;      /* members or items started */
	const char *key;   /* current member name (object frames) */
	struct keyset ks;
};

struct parser {
	const unsigned char *p, *start, *end;
	struct fjson_limits lim;
	size_t used; /* bytes charged against the budget */
	struct frame *frames;
	size_t depth, cap;
	enum fjson_code code;
	const unsigned char *err_at;
	char *bad_key; /* a refused member name, kept for the error path */
	/* fjson_parse_in: the arena nodes and strings come from */
	struct arena *arena;
};

static bool fail(struct parser *ps, enum fjson_code code, const unsigned char *at)
{
	if (ps->code == FJSON_OK) {
		ps->code = code;
		ps->err_at = at;
	}
	return false;
}

static bool charge(struct parser *ps, size_t n)
{
	/* Each allocation also costs the allocator's own header. */
	ps->used += n + 16;
	if (ps->used > ps->lim.memory_budget)
		return fail(ps, FJSON_BUDGET, ps->p);
	return true;
}

static void *alloc(struct parser *ps, size_t n)
{
	if (!charge(ps, n))
		return NULL;
	void *m = ps->arena ? arena_alloc_raw(ps->arena, n) : malloc(n);
	if (!m)
		fail(ps, FJSON_NO_MEMORY, ps->p);
	return m;
}

/* Gives back what alloc gave (an arena's memory goes with the arena). */
static void drop(struct parser *ps, void *m)
{
	if (!ps->arena)
		free(m);
}

static cJSON *new_node(struct parser *ps, int type)
{
	cJSON *n = alloc(ps, sizeof *n);
	if (n) {
		memset(n, 0, sizeof *n);
		n->type = type;
	}
	return n;
}

/* Eight bytes at p as one word (any alignment), for looking at them at once. */
static inline uint64_t load8(const unsigned char *p)
{
	uint64_t v;
	memcpy(&v, p, sizeof v);
	return v;
}

#define BYTES8(c) (0x0101010101010101ULL * (unsigned char)(c))

/* True when one of the eight bytes of v is '"', '\\', a control character
 * (below 0x20) or not ASCII: a byte parse_string must look at alone. */
static inline bool special8(uint64_t v)
{
	uint64_t q = v ^ BYTES8('"'), b = v ^ BYTES8('\\');
	uint64_t t = ((q - BYTES8(1)) & ~q) | ((b - BYTES8(1)) & ~b) | (v - BYTES8(0x20)) | v;
	return (t & BYTES8(0x80)) != 0;
}

static void skip_ws(struct parser *ps)
{
	const unsigned char *p = ps->p, *e = ps->end;
	for (;;) {
		/* indentation, eight spaces at a time */
		while (e - p >= 8 && load8(p) == BYTES8(' '))
			p += 8;
		if (p < e && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
			p++;
		else
			break;
	}
	ps->p = p;
}

static int hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static bool read_hex4(const unsigned char *p, const unsigned char *e, unsigned *out)
{
	if (e - p < 4)
		return false;
	unsigned v = 0;
	for (int i = 0; i < 4; i++) {
		int h = hexval(p[i]);
		if (h < 0)
			return false;
		v = (v << 4) | (unsigned)h;
	}
	*out = v;
	return true;
}

/* Length of a valid UTF-8 sequence starting at p (lead byte >= 0x80), or 0. */
static size_t utf8_len(const unsigned char *p, const unsigned char *e)
{
	unsigned char c = p[0];
	size_t n;
	unsigned cp;
	if (c >= 0xC2 && c <= 0xDF) {
		n = 2;
		cp = c & 0x1F;
	} else if (c >= 0xE0 && c <= 0xEF) {
		n = 3;
		cp = c & 0x0F;
	} else if (c >= 0xF0 && c <= 0xF4) {
		n = 4;
		cp = c & 0x07;
	} else {
		return 0;
	}
	if ((size_t)(e - p) < n)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xC0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3F);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
	    (cp >= 0xD800 && cp <= 0xDFFF))
		return 0;
	return n;
}

static size_t put_utf8(unsigned char *o, unsigned cp)
{
	if (cp < 0x80) {
		o[0] = (unsigned char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (unsigned char)(0xC0 | (cp >> 6));
		o[1] = (unsigned char)(0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (unsigned char)(0xE0 | (cp >> 12));
		o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
		o[2] = (unsigned char)(0x80 | (cp & 0x3F));
		return 3;
	}
	o[0] = (unsigned char)(0xF0 | (cp >> 18));
	o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
	o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
	o[3] = (unsigned char)(0x80 | (cp & 0x3F));
	return 4;
}

/* Parses a string at ps->p (on the opening quote); returns a malloc'd,
 * NUL-terminated copy, or NULL on error. */
static char *parse_string(struct parser *ps)
{
	const unsigned char *p = ps->p + 1, *e = ps->end;
	/* First pass: find the end and validate, so one exact allocation
	 * suffices (decoded text is never longer than the source). */
	const unsigned char *q = p;
	bool escapes = false;
	while (q < e && *q != '"') {
		if (e - q >= 8 && !special8(load8(q))) {
			q += 8;
			continue;
		}
		if (*q == '\\') {
			escapes = true;
			q += 2;
		} else if (*q < 0x20) {
			fail(ps, FJSON_CONTROL_CHAR, q);
			return NULL;
		} else if (*q < 0x80) {
			q++;
		} else {
			size_t n = utf8_len(q, e);
			if (!n) {
				fail(ps, FJSON_INVALID_UTF8, q);
				return NULL;
			}
			q += n;
		}
	}
	if (q >= e) {
		fail(ps, FJSON_SYNTAX, e);
		return NULL;
	}
	size_t srclen = (size_t)(q - p);
	char *out = alloc(ps, srclen + 1);
	if (!out)
		return NULL;
	if (!escapes) {
		memcpy(out, p, srclen);
		out[srclen] = '\0';
		ps->p = q + 1;
		return out;
	}
	unsigned char *o = (unsigned char *)out;
	while (p < q) {
		if (*p != '\\') {
			*o++ = *p++;
			continue;
		}
		const unsigned char *esc = p;
		p++;
		switch (*p) {
		case '"': *o++ = '"'; p++; break;
		case '\\': *o++ = '\\'; p++; break;
		case '/': *o++ = '/'; p++; break;
		case 'b': *o++ = '\b'; p++; break;
		case 'f': *o++ = '\f'; p++; break;
		case 'n': *o++ = '\n'; p++; break;
		case 'r': *o++ = '\r'; p++; break;
		case 't': *o++ = '\t'; p++; break;
		case 'u': {
			unsigned cp;
			if (!read_hex4(p + 1, q, &cp)) {
				drop(ps, out);
				fail(ps, FJSON_BAD_ESCAPE, esc);
				return NULL;
			}
			p += 5;
			if (cp >= 0xD800 && cp <= 0xDBFF) {
				unsigned lo;
				if (q - p < 6 || p[0] != '\\' || p[1] != 'u' || !read_hex4(p + 2, q, &lo) ||
				    lo < 0xDC00 || lo > 0xDFFF) {
					drop(ps, out);
					fail(ps, FJSON_BAD_ESCAPE, esc);
					return NULL;
				}
				cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
				p += 6;
			} else if (cp >= 0xDC00 && cp <= 0xDFFF) {
				drop(ps, out);
				fail(ps, FJSON_BAD_ESCAPE, esc);
				return NULL;
			} else if (cp == 0) {
				drop(ps, out);
				fail(ps, FJSON_NUL_CHAR, esc);
				return NULL;
			}
			o += put_utf8(o, cp);
			break;
		}
		default:
			drop(ps, out);
			fail(ps, FJSON_BAD_ESCAPE, esc);
			return NULL;
		}
	}
	*o = '\0';
	ps->p = q + 1;
	return out;
}

static size_t number_len(const unsigned char *p, const unsigned char *e)
{
	const unsigned char *s = p;
	if (p < e && *p == '-')
		p++;
	if (p >= e)
		return 0;
	if (*p == '0') {
		p++;
	} else if (*p >= '1' && *p <= '9') {
		while (p < e && *p >= '0' && *p <= '9')
			p++;
	} else {
		return 0;
	}
	if (p < e && *p == '.') {
		p++;
		if (p >= e || *p < '0' || *p > '9')
			return 0;
		while (p < e && *p >= '0' && *p <= '9')
			p++;
	}
	if (p < e && (*p == 'e' || *p == 'E')) {
		p++;
		if (p < e && (*p == '+' || *p == '-'))
			p++;
		if (p >= e || *p < '0' || *p > '9')
			return 0;
		while (p < e && *p >= '0' && *p <= '9')
			p++;
	}
	return (size_t)(p - s);
}

bool fjson_valid_number(const char *s, size_t len)
{
	return len > 0 && number_len((const unsigned char *)s, (const unsigned char *)s + len) == len;
}

static void set_number(cJSON *n, char *lit)
{
	n->valuestring = lit;
	double d = strtod(lit, NULL);
	n->valuedouble = d;
	if (d >= (double)INT_MAX)
		n->valueint = INT_MAX;
	else if (d <= (double)INT_MIN)
		n->valueint = INT_MIN;
	else
		n->valueint = (int)d;
}

static cJSON *parse_scalar(struct parser *ps)
{
	const unsigned char *p = ps->p, *e = ps->end;
	if (*p == '"') {
		char *s = parse_string(ps);
		if (!s)
			return NULL;
		cJSON *n = new_node(ps, cJSON_String);
		if (!n) {
			drop(ps, s);
			return NULL;
		}
		n->valuestring = s;
		return n;
	}
	if (*p == '-' || (*p >= '0' && *p <= '9')) {
		size_t len = number_len(p, e);
		/* A number must end at a delimiter: 01, 1.e5, 1x are errors. */
		if (!len || (p + len < e && ((p[len] >= '0' && p[len] <= '9') || p[len] == '.' ||
					     p[len] == 'e' || p[len] == 'E' || p[len] == '-' || p[len] == '+' ||
					     (p[len] >= 'a' && p[len] <= 'z') || (p[len] >= 'A' && p[len] <= 'Z')))) {
			fail(ps, FJSON_BAD_NUMBER, p);
			return NULL;
		}
		char *lit = alloc(ps, len + 1);
		if (!lit)
			return NULL;
		memcpy(lit, p, len);
		lit[len] = '\0';
		cJSON *n = new_node(ps, cJSON_Number);
		if (!n) {
			drop(ps, lit);
			return NULL;
		}
		set_number(n, lit);
		ps->p = p + len;
		return n;
	}
	static const struct {
		const char *word;
		size_t len;
		int type;
	} words[] = {{"true", 4, cJSON_True}, {"false", 5, cJSON_False}, {"null", 4, cJSON_NULL}};
	for (size_t i = 0; i < 3; i++) {
		if ((size_t)(e - p) >= words[i].len && memcmp(p, words[i].word, words[i].len) == 0) {
			cJSON *n = new_node(ps, words[i].type);
			if (n) {
				if (words[i].type == cJSON_True)
					n->valueint = 1;
				ps->p = p + words[i].len;
			}
			return n;
		}
	}
	fail(ps, FJSON_SYNTAX, p);
	return NULL;
}

static void append_child(cJSON *parent, cJSON *item)
{
	cJSON *head = parent->child;
	if (!head) {
		parent->child = item;
		item->prev = item;
	} else {
		cJSON *tail = head->prev;
		tail->next = item;
		item->prev = tail;
		head->prev = item;
	}
}

static bool push(struct parser *ps, cJSON *node)
{
	if (ps->depth >= ps->lim.max_depth)
		return fail(ps, FJSON_DEPTH, ps->p);
	if (ps->depth == ps->cap) {
		size_t ncap = ps->cap ? ps->cap * 2 : 32;
		if (!charge(ps, (ncap - ps->cap) * sizeof(struct frame)))
			return false;
		struct frame *nf = realloc(ps->frames, ncap * sizeof *nf);
		if (!nf)
			return fail(ps, FJSON_NO_MEMORY, ps->p);
		ps->frames = nf;
		ps->cap = ncap;
	}
	struct frame *f = &ps->frames[ps->depth++];
	memset(f, 0, sizeof *f);
	f->node = node;
	return true;
}

static void pop(struct parser *ps)
{
	struct frame *f = &ps->frames[--ps->depth];
	free(f->ks.slots);
}

/* Checks a new member name against its object; true when unique. */
static bool check_key(struct parser *ps, struct frame *f, const char *key, const unsigned char *at)
{
	if (f->count < KEYSET_MIN) {
		for (const cJSON *c = f->node->child; c; c = c->next)
			if (strcmp(c->string, key) == 0)
				return fail(ps, FJSON_DUPLICATE_KEY, at);
		return true;
	}
	if (!f->ks.slots || (f->ks.n + 1) * 2 > f->ks.cap) {
		size_t ncap = f->ks.cap ? f->ks.cap * 2 : 64;
		if (!charge(ps, ncap * sizeof(char *)))
			return false;
		const char **slots = calloc(ncap, sizeof *slots);
		if (!slots)
			return fail(ps, FJSON_NO_MEMORY, at);
		free(f->ks.slots);
		f->ks = (struct keyset){slots, ncap, 0};
		for (const cJSON *c = f->node->child; c; c = c->next)
			keyset_insert(&f->ks, c->string);
	}
	if (keyset_insert(&f->ks, key) == 0)
		return fail(ps, FJSON_DUPLICATE_KEY, at);
	return true;
}

/* Reads `"key" :` for the object frame f; the key becomes f->key. */
static char *parse_member_name(struct parser *ps, struct frame *f)
{
	f->key = NULL;
	skip_ws(ps);
	if (ps->p >= ps->end || *ps->p != '"') {
		fail(ps, FJSON_SYNTAX, ps->p);
		return NULL;
	}
	const unsigned char *at = ps->p;
	char *key = parse_string(ps);
	if (!key)
		return NULL;
	if (f->count >= ps->lim.max_members) {
		drop(ps, key);
		fail(ps, FJSON_TOO_MANY_MEMBERS, at);
		return NULL;
	}
	if (!check_key(ps, f, key, at)) {
		f->key = ps->bad_key = key; /* named in the error's location */
		return NULL;
	}
	skip_ws(ps);
	if (ps->p >= ps->end || *ps->p != ':') {
		drop(ps, key);
		fail(ps, FJSON_SYNTAX, ps->p);
		return NULL;
	}
	ps->p++;
	f->count++;
	f->key = key;
	return key;
}

static void describe(struct parser *ps, struct fjson_error *err, cJSON *root)
{
	err->code = ps->code;
	err->status = ps->code == FJSON_BUDGET ? 413 : 400;
	const unsigned char *at = ps->err_at ? ps->err_at : ps->p;
	if (at > ps->end)
		at = ps->end;
	err->offset = (size_t)(at - ps->start);
	int line = 1, col = 1;
	for (const unsigned char *c = ps->start; c < at; c++) {
		if (*c == '\n') {
			line++;
			col = 1;
		} else {
			col++;
		}
	}
	err->line = line;
	err->column = col;
	/* FHIRPath-style location from the open containers. */
	size_t pos = 0;
	const char *rt = NULL;
	if (root && cJSON_IsObject(root)) {
		for (const cJSON *c = root->child; c; c = c->next)
			if (c->string && strcmp(c->string, "resourceType") == 0 && cJSON_IsString(c))
				rt = c->valuestring;
	}
	pos += (size_t)snprintf(err->path, sizeof err->path, "%s", rt ? rt : "$");
	for (size_t i = 0; i < ps->depth && pos < sizeof err->path; i++) {
		const struct frame *f = &ps->frames[i];
		if (cJSON_IsObject(f->node)) {
			if (f->key)
				pos += (size_t)snprintf(err->path + pos, sizeof err->path - pos, ".%s", f->key);
		} else if (f->count > 0) {
			pos += (size_t)snprintf(err->path + pos, sizeof err->path - pos, "[%zu]", f->count - 1);
		}
	}
	snprintf(err->message, sizeof err->message, "%s at line %d, column %d (%s)", fjson_code_text(ps->code),
		 line, col, err->path);
}

static cJSON *parse(struct arena *a, const char *buf, size_t len, const struct fjson_limits *lim,
		    struct fjson_error *err)
{
	struct parser ps = {0};
	ps.arena = a;
	ps.start = ps.p = (const unsigned char *)buf;
	ps.end = ps.start + len;
	if (lim)
		ps.lim = *lim;
	else
		fjson_limits_default(&ps.lim);
	if (len >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0)
		ps.p += 3;

	cJSON *root = NULL;
	char *pending_key = NULL; /* member name waiting for its value */
	skip_ws(&ps);
	if (ps.p >= ps.end) {
		fail(&ps, FJSON_EMPTY, ps.p);
		goto error;
	}
	for (;;) {
		/* Expecting a value. */
		skip_ws(&ps);
		if (ps.p >= ps.end) {
			fail(&ps, FJSON_SYNTAX, ps.p);
			goto error;
		}
		cJSON *node;
		bool container = (*ps.p == '{' || *ps.p == '[');
		if (container) {
			node = new_node(&ps, *ps.p == '{' ? cJSON_Object : cJSON_Array);
			if (node)
				ps.p++;
		} else {
			node = parse_scalar(&ps);
		}
		if (!node)
			goto error;
		if (ps.depth == 0) {
			root = node;
		} else {
			struct frame *parent = &ps.frames[ps.depth - 1];
			if (cJSON_IsObject(parent->node)) {
				node->string = pending_key;
				pending_key = NULL;
			}
			append_child(parent->node, node);
		}
		if (container) {
			if (!push(&ps, node))
				goto error;
			skip_ws(&ps);
			struct frame *f = &ps.frames[ps.depth - 1];
			if (ps.p < ps.end && *ps.p == (cJSON_IsObject(node) ? '}' : ']')) {
				ps.p++;
				pop(&ps);
			} else if (cJSON_IsObject(node)) {
				if (!(pending_key = parse_member_name(&ps, f)))
					goto error;
				continue;
			} else {
				f->count = 1;
				continue;
			}
		}
		/* After a value: close containers or move to the next member. */
		for (;;) {
			if (ps.depth == 0)
				goto done;
			struct frame *f = &ps.frames[ps.depth - 1];
			bool is_obj = cJSON_IsObject(f->node);
			skip_ws(&ps);
			if (ps.p >= ps.end) {
				fail(&ps, FJSON_SYNTAX, ps.p);
				goto error;
			}
			if (*ps.p == ',') {
				ps.p++;
				if (is_obj) {
					if (!(pending_key = parse_member_name(&ps, f)))
						goto error;
				} else {
					if (f->count >= ps.lim.max_array_items) {
						fail(&ps, FJSON_TOO_MANY_ITEMS, ps.p);
						goto error;
					}
					f->count++;
				}
				break;
			}
			if (*ps.p == (is_obj ? '}' : ']')) {
				ps.p++;
				pop(&ps);
				continue;
			}
			fail(&ps, FJSON_SYNTAX, ps.p);
			goto error;
		}
	}
done:
	skip_ws(&ps);
	if (ps.p != ps.end) {
		fail(&ps, FJSON_TRAILING_DATA, ps.p);
		goto error;
	}
	free(ps.frames);
	if (err)
		memset(err, 0, sizeof *err);
	return root;
error:
	if (err)
		describe(&ps, err, root);
	drop(&ps, pending_key);
	drop(&ps, ps.bad_key);
	while (ps.depth)
		pop(&ps);
	free(ps.frames);
	if (!a)
		cJSON_Delete(root);
	return NULL;
}

cJSON *fjson_parse(const char *buf, size_t len, const struct fjson_limits *lim, struct fjson_error *err)
{
	return parse(NULL, buf, len, lim, err);
}

cJSON *fjson_parse_in(struct arena *a, const char *buf, size_t len, const struct fjson_limits *lim,
		      struct fjson_error *err)
{
	return parse(a, buf, len, lim, err);
}

const char *fjson_number_literal(const cJSON *item)
{
	if (!item || !cJSON_IsNumber(item) || !item->valuestring)
		return NULL;
	return item->valuestring;
}

cJSON *fjson_create_number_literal(const char *lit)
{
	if (!lit || !fjson_valid_number(lit, strlen(lit)))
		return NULL;
	cJSON *n = cJSON_CreateNumber(0);
	char *copy = strdup(lit);
	if (!n || !copy) {
		cJSON_Delete(n);
		free(copy);
		return NULL;
	}
	set_number(n, copy);
	return n;
}

/* -------------------------------------------------------------- printer */

struct out {
	char *buf;
	size_t len, cap;
	bool oom;
};

static bool reserve(struct out *o, size_t n)
{
	if (o->oom)
		return false;
	if (o->len + n + 1 <= o->cap)
		return true;
	size_t ncap = o->cap ? o->cap : 256;
	while (ncap < o->len + n + 1)
		ncap *= 2;
	char *nb = realloc(o->buf, ncap);
	if (!nb) {
		o->oom = true;
		return false;
	}
	o->buf = nb;
	o->cap = ncap;
	return true;
}

static void put(struct out *o, const char *s, size_t n)
{
	if (!reserve(o, n))
		return;
	memcpy(o->buf + o->len, s, n);
	o->len += n;
}

static void put_indent(struct out *o, size_t depth)
{
	if (!reserve(o, 1 + depth * 2))
		return;
	o->buf[o->len++] = '\n';
	memset(o->buf + o->len, ' ', depth * 2);
	o->len += depth * 2;
}

static void put_string(struct out *o, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	if (!s)
		s = "";
	put(o, "\"", 1);
	const unsigned char *p = (const unsigned char *)s, *run = p;
	for (;; p++) {
		unsigned char c = *p;
		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		put(o, (const char *)run, (size_t)(p - run));
		if (c == '\0')
			break;
		char esc[6] = {'\\', 0, 0, 0, 0, 0};
		size_t n = 2;
		switch (c) {
		case '"': esc[1] = '"'; break;
		case '\\': esc[1] = '\\'; break;
		case '\n': esc[1] = 'n'; break;
		case '\r': esc[1] = 'r'; break;
		case '\t': esc[1] = 't'; break;
		case '\b': esc[1] = 'b'; break;
		case '\f': esc[1] = 'f'; break;
		default:
			esc[1] = 'u';
			esc[2] = '0';
			esc[3] = '0';
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 15];
			n = 6;
		}
		put(o, esc, n);
		run = p + 1;
	}
	put(o, "\"", 1);
}

void fjson_add_string(struct strbuf *b, const char *s)
{
	/* the same growth rules (realloc, one byte kept for the NUL) */
	struct out o = {b->buf, b->len, b->cap, b->oom};
	put_string(&o, s);
	b->buf = o.buf;
	b->len = o.len;
	b->cap = o.cap;
	b->oom = o.oom;
}

static void put_number(struct out *o, const cJSON *n)
{
	double d = n->valuedouble;
	if (n->valuestring && strtod(n->valuestring, NULL) == d) {
		put(o, n->valuestring, strlen(n->valuestring));
		return;
	}
	char tmp[40];
	if (!isfinite(d)) {
		put(o, "null", 4);
		return;
	}
	if (d == floor(d) && fabs(d) < 1e15)
		snprintf(tmp, sizeof tmp, "%.0f", d);
	else {
		snprintf(tmp, sizeof tmp, "%.15g", d);
		if (strtod(tmp, NULL) != d)
			snprintf(tmp, sizeof tmp, "%.17g", d);
	}
	put(o, tmp, strlen(tmp));
}

static void put_scalar(struct out *o, const cJSON *n)
{
	switch (n->type & 0xFF) {
	case cJSON_False: put(o, "false", 5); break;
	case cJSON_True: put(o, "true", 4); break;
	case cJSON_NULL: put(o, "null", 4); break;
	case cJSON_Number: put_number(o, n); break;
	case cJSON_String: put_string(o, n->valuestring); break;
	case cJSON_Raw:
		if (n->valuestring)
			put(o, n->valuestring, strlen(n->valuestring));
		else
			put(o, "null", 4);
		break;
	case cJSON_Array: put(o, "[]", 2); break;
	case cJSON_Object: put(o, "{}", 2); break;
	default: put(o, "null", 4); break;
	}
}

static bool is_container(const cJSON *n) { return cJSON_IsObject(n) || cJSON_IsArray(n); }

char *fjson_print(const cJSON *root, bool pretty, size_t *out_len)
{
	struct out o = {0};
	const cJSON **stack = NULL;
	size_t depth = 0, cap = 0;
	const cJSON *n = root;
	if (!n)
		return NULL;
	for (;;) {
		if (is_container(n) && n->child) {
			put(&o, cJSON_IsObject(n) ? "{" : "[", 1);
			if (depth == cap) {
				size_t ncap = cap ? cap * 2 : 64;
				const cJSON **ns = realloc(stack, ncap * sizeof *ns);
				if (!ns) {
					o.oom = true;
					break;
				}
				stack = ns;
				cap = ncap;
			}
			stack[depth++] = n;
			n = n->child;
			if (pretty)
				put_indent(&o, depth);
			if (cJSON_IsObject(stack[depth - 1])) {
				put_string(&o, n->string);
				put(&o, pretty ? ": " : ":", pretty ? 2 : 1);
			}
			continue;
		}
		put_scalar(&o, n);
		while (depth > 0 && !n->next) {
			n = stack[--depth];
			if (pretty)
				put_indent(&o, depth);
			put(&o, cJSON_IsObject(n) ? "}" : "]", 1);
		}
		if (depth == 0 || o.oom)
			break;
		n = n->next;
		put(&o, ",", 1);
		if (pretty)
			put_indent(&o, depth);
		if (cJSON_IsObject(stack[depth - 1])) {
			put_string(&o, n->string);
			put(&o, pretty ? ": " : ":", pretty ? 2 : 1);
		}
	}
	free(stack);
	if (o.oom || !reserve(&o, 1)) {
		free(o.buf);
		return NULL;
	}
	o.buf[o.len] = '\0';
	if (out_len)
		*out_len = o.len;
	return o.buf;
}
