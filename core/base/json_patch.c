/* json_patch — see json_patch.h. */
#include "base/json_patch.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ptr {
	char **tok; /* unescaped reference tokens */
	size_t n;
};

struct ctx {
	enum json_patch_status st;
	char *msg;
	size_t msglen;
	size_t op; /* index of the operation being applied */
};

static enum json_patch_status fail(struct ctx *c, enum json_patch_status st, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static enum json_patch_status fail(struct ctx *c, enum json_patch_status st, const char *fmt, ...)
{
	if (c->st == JSON_PATCH_OK) {
		c->st = st;
		if (c->msg && c->msglen) {
			int n = snprintf(c->msg, c->msglen, "operation %zu: ", c->op);
			va_list ap;
			va_start(ap, fmt);
			if (n >= 0 && (size_t)n < c->msglen)
				vsnprintf(c->msg + n, c->msglen - (size_t)n, fmt, ap);
			va_end(ap);
		}
	}
	return c->st;
}

static void ptr_free(struct ptr *p)
{
	for (size_t i = 0; i < p->n; i++)
		free(p->tok[i]);
	free(p->tok);
	p->tok = NULL;
	p->n = 0;
}

/* RFC 6901: "" is the whole document, else "/"-separated tokens with "~1"
 * for "/" and "~0" for "~". */
static enum json_patch_status ptr_parse(struct ctx *c, const char *what, const char *s, struct ptr *out)
{
	memset(out, 0, sizeof *out);
	if (!*s)
		return JSON_PATCH_OK;
	if (*s != '/')
		return fail(c, JSON_PATCH_MALFORMED, "%s is not a JSON Pointer (it must start with '/')", what);
	size_t count = 0;
	for (const char *p = s; *p; p++)
		count += *p == '/';
	if (!(out->tok = calloc(count, sizeof *out->tok)))
		return fail(c, JSON_PATCH_NO_MEMORY, "out of memory");
	const char *p = s + 1;
	for (;;) {
		size_t len = strcspn(p, "/");
		char *t = malloc(len + 1);
		if (!t) {
			ptr_free(out);
			return fail(c, JSON_PATCH_NO_MEMORY, "out of memory");
		}
		size_t o = 0;
		for (size_t i = 0; i < len; i++) {
			if (p[i] != '~') {
				t[o++] = p[i];
				continue;
			}
			if (i + 1 < len && (p[i + 1] == '0' || p[i + 1] == '1')) {
				t[o++] = p[++i] == '0' ? '~' : '/';
				continue;
			}
			free(t);
			ptr_free(out);
			return fail(c, JSON_PATCH_MALFORMED, "%s has a '~' not followed by 0 or 1", what);
		}
		t[o] = '\0';
		out->tok[out->n++] = t;
		if (!p[len])
			break;
		p += len + 1;
	}
	return JSON_PATCH_OK;
}

/* An array index token: "0" or [1-9][0-9]*; -1 when it is not one. */
static long array_index(const char *t)
{
	if (!t[0] || (t[0] == '0' && t[1]) || strspn(t, "0123456789") != strlen(t) || strlen(t) > 9)
		return -1;
	return strtol(t, NULL, 10);
}

/* The value at tokens [0, n) below root, or NULL (FAILED set) when absent. */
static cJSON *resolve(struct ctx *c, cJSON *root, const struct ptr *p, size_t n, const char *what)
{
	cJSON *cur = root;
	for (size_t i = 0; i < n; i++) {
		const char *t = p->tok[i];
		cJSON *next = NULL;
		if (cJSON_IsObject(cur)) {
			next = cJSON_GetObjectItemCaseSensitive(cur, t);
		} else if (cJSON_IsArray(cur)) {
			long k = array_index(t);
			if (k >= 0 && k < cJSON_GetArraySize(cur))
				next = cJSON_GetArrayItem(cur, (int)k);
		}
		if (!next) {
			fail(c, JSON_PATCH_FAILED, "%s does not exist in the resource", what);
			return NULL;
		}
		cur = next;
	}
	return cur;
}

/* Links item into array before at (cJSON 1.7.15's InsertItemInArray refuses
 * to). The first item's prev is the last one, as cJSON keeps it. */
static void insert_before(cJSON *array, cJSON *at, cJSON *item)
{
	item->next = at;
	item->prev = at->prev;
	if (at == array->child)
		array->child = item;
	else
		at->prev->next = item;
	at->prev = item;
}

/* Puts value (consumed) at p: adds a member or replaces it, or inserts
 * into an array (index or "-" for the end). */
static enum json_patch_status put(struct ctx *c, cJSON *root, const struct ptr *p, cJSON *value, const char *what)
{
	if (p->n == 0) {
		/* the whole document: a resource stays an object */
		if (!cJSON_IsObject(value)) {
			cJSON_Delete(value);
			return fail(c, JSON_PATCH_FAILED, "the whole resource can only be replaced by an object");
		}
		cJSON *tmp = root->child;
		root->child = value->child;
		value->child = tmp;
		cJSON_Delete(value);
		return JSON_PATCH_OK;
	}
	cJSON *parent = resolve(c, root, p, p->n - 1, what);
	const char *last = p->tok[p->n - 1];
	if (cJSON_IsObject(parent)) {
		if (cJSON_GetObjectItemCaseSensitive(parent, last))
			cJSON_ReplaceItemInObjectCaseSensitive(parent, last, value);
		else
			cJSON_AddItemToObject(parent, last, value);
		return JSON_PATCH_OK;
	}
	if (cJSON_IsArray(parent)) {
		int size = cJSON_GetArraySize(parent);
		long k = strcmp(last, "-") == 0 ? size : array_index(last);
		if (k < 0 || k > size) {
			cJSON_Delete(value);
			return fail(c, JSON_PATCH_FAILED, "%s: index out of range", what);
		}
		if (k == size)
			cJSON_AddItemToArray(parent, value);
		else
			insert_before(parent, cJSON_GetArrayItem(parent, (int)k), value);
		return JSON_PATCH_OK;
	}
	cJSON_Delete(value);
	return parent ? fail(c, JSON_PATCH_FAILED, "%s is below a value that is neither object nor array", what)
		      : c->st;
}

/* Replaces the existing value at p by value (consumed), in place. */
static void replace_at(struct ctx *c, cJSON *root, const struct ptr *p, cJSON *value)
{
	if (p->n == 0) {
		put(c, root, p, value, "path");
		return;
	}
	cJSON *parent = resolve(c, root, p, p->n - 1, "path");
	const char *last = p->tok[p->n - 1];
	if (cJSON_IsObject(parent))
		cJSON_ReplaceItemInObjectCaseSensitive(parent, last, value);
	else
		cJSON_ReplaceItemInArray(parent, (int)array_index(last), value);
}

/* Detaches the value at p (which must exist and not be the root). */
static cJSON *take(struct ctx *c, cJSON *root, const struct ptr *p, const char *what)
{
	if (p->n == 0) {
		fail(c, JSON_PATCH_FAILED, "the whole resource cannot be removed");
		return NULL;
	}
	if (!resolve(c, root, p, p->n, what))
		return NULL;
	cJSON *parent = resolve(c, root, p, p->n - 1, what);
	const char *last = p->tok[p->n - 1];
	if (cJSON_IsObject(parent))
		return cJSON_DetachItemFromObjectCaseSensitive(parent, last);
	return cJSON_DetachItemFromArray(parent, (int)array_index(last));
}

static bool equal(const cJSON *a, const cJSON *b)
{
	if ((a->type & 0xFF) != (b->type & 0xFF))
		return false;
	if (cJSON_IsNumber(a))
		return a->valuedouble == b->valuedouble;
	if (cJSON_IsString(a))
		return strcmp(a->valuestring, b->valuestring) == 0;
	if (cJSON_IsArray(a)) {
		const cJSON *x = a->child, *y = b->child;
		for (; x && y; x = x->next, y = y->next)
			if (!equal(x, y))
				return false;
		return !x && !y;
	}
	if (cJSON_IsObject(a)) {
		if (cJSON_GetArraySize(a) != cJSON_GetArraySize(b))
			return false;
		for (const cJSON *x = a->child; x; x = x->next) {
			const cJSON *y = cJSON_GetObjectItemCaseSensitive(b, x->string);
			if (!y || !equal(x, y))
				return false;
		}
		return true;
	}
	return true; /* true, false, null */
}

/* A copy of value; NULL (NO_MEMORY set) on failure. */
static cJSON *dup(struct ctx *c, const cJSON *value)
{
	cJSON *d = cJSON_Duplicate(value, true);
	if (!d)
		fail(c, JSON_PATCH_NO_MEMORY, "out of memory");
	return d;
}

static const char *member_string(const cJSON *o, const char *name)
{
	const cJSON *m = cJSON_GetObjectItemCaseSensitive(o, name);
	return cJSON_IsString(m) ? m->valuestring : NULL;
}

static enum json_patch_status apply_one(struct ctx *c, cJSON *root, const cJSON *op)
{
	if (!cJSON_IsObject(op))
		return fail(c, JSON_PATCH_MALFORMED, "is not an object");
	const char *name = member_string(op, "op"), *path = member_string(op, "path");
	if (!name)
		return fail(c, JSON_PATCH_MALFORMED, "has no \"op\"");
	if (!path)
		return fail(c, JSON_PATCH_MALFORMED, "has no \"path\"");
	bool add = !strcmp(name, "add"), rem = !strcmp(name, "remove"), rep = !strcmp(name, "replace"),
	     mov = !strcmp(name, "move"), cpy = !strcmp(name, "copy"), tst = !strcmp(name, "test");
	if (!(add || rem || rep || mov || cpy || tst))
		return fail(c, JSON_PATCH_MALFORMED, "\"%.20s\" is not a JSON Patch operation", name);
	const cJSON *value = cJSON_GetObjectItemCaseSensitive(op, "value");
	if ((add || rep || tst) && !value)
		return fail(c, JSON_PATCH_MALFORMED, "%s needs a \"value\"", name);
	const char *from = member_string(op, "from");
	if ((mov || cpy) && !from)
		return fail(c, JSON_PATCH_MALFORMED, "%s needs a \"from\"", name);

	struct ptr to, src = {0};
	if (ptr_parse(c, "path", path, &to) != JSON_PATCH_OK)
		return c->st;
	if ((mov || cpy) && ptr_parse(c, "from", from, &src) != JSON_PATCH_OK) {
		ptr_free(&to);
		return c->st;
	}
	if (mov) {
		size_t fl = strlen(from);
		if (strncmp(path, from, fl) == 0 && path[fl] == '/') {
			ptr_free(&to);
			ptr_free(&src);
			return fail(c, JSON_PATCH_MALFORMED, "move into a child of \"from\"");
		}
	}
	if (add) {
		cJSON *v = dup(c, value);
		if (v)
			put(c, root, &to, v, "path");
	} else if (rem) {
		cJSON_Delete(take(c, root, &to, "path"));
	} else if (rep) {
		if (to.n == 0 || resolve(c, root, &to, to.n, "path")) {
			cJSON *v = dup(c, value);
			if (v)
				replace_at(c, root, &to, v);
		}
	} else if (mov) {
		cJSON *v = take(c, root, &src, "from");
		if (v)
			put(c, root, &to, v, "path");
	} else if (cpy) {
		cJSON *at = resolve(c, root, &src, src.n, "from");
		cJSON *v = at ? dup(c, at) : NULL;
		if (v)
			put(c, root, &to, v, "path");
	} else {
		cJSON *at = resolve(c, root, &to, to.n, "path");
		if (at && !equal(at, value))
			fail(c, JSON_PATCH_FAILED, "test failed: the value at path differs");
	}
	ptr_free(&to);
	ptr_free(&src);
	return c->st;
}

enum json_patch_status json_patch_apply(cJSON *doc, const cJSON *patch, char *message, size_t msglen)
{
	struct ctx c = {.st = JSON_PATCH_OK, .msg = message, .msglen = msglen};
	if (message && msglen)
		message[0] = '\0';
	if (!cJSON_IsObject(doc))
		return fail(&c, JSON_PATCH_FAILED, "the document is not an object");
	if (!cJSON_IsArray(patch))
		return fail(&c, JSON_PATCH_MALFORMED, "a JSON Patch is an array of operations");
	if (cJSON_GetArraySize(patch) > JSON_PATCH_MAX_OPS)
		return fail(&c, JSON_PATCH_MALFORMED, "more than %d operations", JSON_PATCH_MAX_OPS);
	cJSON *work = cJSON_Duplicate(doc, true);
	if (!work)
		return fail(&c, JSON_PATCH_NO_MEMORY, "out of memory");
	const cJSON *op;
	cJSON_ArrayForEach(op, patch)
	{
		if (apply_one(&c, work, op) != JSON_PATCH_OK)
			break;
		c.op++;
	}
	if (c.st == JSON_PATCH_OK) {
		cJSON *tmp = doc->child;
		doc->child = work->child;
		work->child = tmp;
	}
	cJSON_Delete(work);
	return c.st;
}
