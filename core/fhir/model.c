#include "fhir/model.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

static int cmp_name(const char *a, const char *b, size_t blen)
{
	int c = strncmp(a, b, blen);
	if (c != 0)
		return c;
	return a[blen] == '\0' ? 0 : 1;
}

const struct model_type *model_type_n(const char *name, size_t len)
{
	if (!name)
		return NULL;
	if (len == (size_t)-1)
		len = strlen(name);
	if (len == 0 || memchr(name, '\0', len))
		return NULL;
	size_t lo = 0, hi = model_ntypes;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = cmp_name(model_types[mid].name, name, len);
		if (c == 0)
			return &model_types[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

const struct model_type *model_type(const char *name) { return model_type_n(name, (size_t)-1); }

const struct model_type *model_resource(const char *name)
{
	const struct model_type *t = model_type(name);
	return t && t->kind == MODEL_RESOURCE && !t->abstract ? t : NULL;
}

const struct model_type *model_elem_type(const struct model_elem *e, size_t i)
{
	if (i >= e->ntypes)
		return NULL;
	return &model_types[model_elem_types[e->types + i]];
}

bool model_ref_target_ok(const struct model_elem *e, const char *type)
{
	uint16_t k = model_elem_refs[e - model_elems];
	if (k == MODEL_NONE)
		return true;
	for (; model_ref_targets[k] != MODEL_NONE; k++)
		if (strcmp(model_types[model_ref_targets[k]].name, type) == 0)
			return true;
	return false;
}

void model_ref_targets_text(const struct model_elem *e, char *out, size_t n)
{
	size_t pos = 0;
	if (n)
		out[0] = '\0';
	uint16_t k = model_elem_refs[e - model_elems];
	for (; k != MODEL_NONE && model_ref_targets[k] != MODEL_NONE && pos < n; k++)
		pos += (size_t)snprintf(out + pos, n - pos, "%s%s", pos ? ", " : "", model_types[model_ref_targets[k]].name);
}

/* Does suffix[0..len) equal the type name with its first letter upper-cased? */
static bool type_suffix_eq(const char *tname, const char *suffix, size_t len)
{
	if (len == 0 || strlen(tname) != len)
		return false;
	if (toupper((unsigned char)tname[0]) != suffix[0])
		return false;
	return memcmp(tname + 1, suffix + 1, len - 1) == 0;
}

const struct model_elem *model_find_elem(const struct model_type *t, const char *name, size_t len,
					 const struct model_type **choice)
{
	if (!t || len == 0)
		return NULL;
	for (size_t i = 0; i < t->nelems; i++) {
		const struct model_elem *e = &model_elems[t->elems + i];
		size_t n = e->namelen;
		if (e->name[0] != name[0])
			continue;
		if (!(e->flags & MODEL_F_CHOICE)) {
			if (n == len && memcmp(e->name, name, len) == 0) {
				if (choice)
					*choice = model_elem_type(e, 0);
				return e;
			}
			continue;
		}
		if (len <= n || memcmp(e->name, name, n) != 0)
			continue;
		for (size_t k = 0; k < e->ntypes; k++) {
			const struct model_type *ct = model_elem_type(e, k);
			if (type_suffix_eq(ct->name, name + n, len - n)) {
				if (choice)
					*choice = ct;
				return e;
			}
		}
	}
	return NULL;
}

size_t model_elem_json_name(const struct model_elem *e, const struct model_type *chosen, char *buf,
			    size_t bufsize)
{
	size_t n = strlen(e->name);
	size_t m = (e->flags & MODEL_F_CHOICE) && chosen ? strlen(chosen->name) : 0;
	if (n + m + 1 > bufsize)
		return 0;
	memcpy(buf, e->name, n);
	if (m) {
		memcpy(buf + n, chosen->name, m);
		buf[n] = (char)toupper((unsigned char)buf[n]);
	}
	buf[n + m] = '\0';
	return n + m;
}

const struct model_elem *model_resolve_path(const char *path, const struct model_type **owner,
					    const struct model_type **chosen)
{
	if (!path)
		return NULL;
	const char *dot = strchr(path, '.');
	if (!dot)
		return NULL;
	const struct model_type *t = model_type_n(path, (size_t)(dot - path));
	if (!t || t->kind == MODEL_PRIMITIVE)
		return NULL;
	const struct model_elem *e = NULL;
	const struct model_type *ct = NULL;
	const char *seg = dot + 1;
	for (;;) {
		const char *end = strchr(seg, '.');
		size_t len = end ? (size_t)(end - seg) : strlen(seg);
		if (len == 0)
			return NULL;
		bool xsuffix = len > 3 && memcmp(seg + len - 3, "[x]", 3) == 0;
		size_t blen = xsuffix ? len - 3 : len;
		bool whole_choice = false;
		e = NULL;
		for (size_t i = 0; i < t->nelems; i++) {
			const struct model_elem *c = &model_elems[t->elems + i];
			if ((c->flags & MODEL_F_CHOICE) && strlen(c->name) == blen && memcmp(c->name, seg, blen) == 0) {
				e = c;
				whole_choice = true;
				break;
			}
		}
		if (!e && !xsuffix)
			e = model_find_elem(t, seg, len, &ct);
		if (!e)
			return NULL;
		if (whole_choice) {
			ct = e->ntypes == 1 ? model_elem_type(e, 0) : NULL;
			if (end)
				return NULL; /* cannot walk into a choice not narrowed to one type */
		}
		if (!end) {
			if (owner)
				*owner = t;
			if (chosen)
				*chosen = ct;
			return e;
		}
		t = ct;
		if (!t || t->kind == MODEL_PRIMITIVE)
			return NULL;
		seg = end + 1;
	}
}
