/* valueset — lookups in the generated core ValueSet tables (see valueset.h). */
#include "fhir/valueset.h"

#include <stdlib.h>
#include <string.h>

static int def_cmp(const void *key, const void *elem)
{
	const char *url = key;
	const struct valueset_def *d = elem;
	return strcmp(url, d->url);
}

const struct valueset_def *valueset_core(const char *url)
{
	if (!url)
		return NULL;
	const char *bar = strchr(url, '|');
	char buf[256];
	if (bar) {
		size_t n = (size_t)(bar - url);
		if (n >= sizeof buf)
			return NULL;
		memcpy(buf, url, n);
		buf[n] = '\0';
		url = buf;
	}
	return bsearch(url, valueset_defs, valueset_ndefs, sizeof valueset_defs[0], def_cmp);
}

bool valueset_contains(const struct valueset_def *vs, const char *system, const char *code)
{
	if (!vs || !code)
		return false;
	/* lower bound of code in the ValueSet's sorted run */
	size_t lo = vs->first, hi = (size_t)vs->first + vs->count;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (strcmp(valueset_codes[mid].code, code) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (size_t i = lo; i < (size_t)vs->first + vs->count && !strcmp(valueset_codes[i].code, code); i++)
		if (!system || !strcmp(valueset_systems[valueset_codes[i].system], system))
			return true;
	return false;
}

/* Compares "type.elem" with a binding's path without building the string. */
struct bkey {
	const char *type, *elem;
};

static int binding_cmp(const void *key, const void *elem)
{
	const struct bkey *k = key;
	const char *p = ((const struct valueset_binding *)elem)->path;
	size_t tl = strlen(k->type);
	int c = strncmp(k->type, p, tl);
	if (c)
		return c;
	p += tl;
	/* the key continues with '.': compare it with what the path has there */
	if ((unsigned char)*p != '.')
		return (int)'.' - (int)(unsigned char)*p;
	return strcmp(k->elem, p + 1);
}

const struct valueset_binding *valueset_binding(const char *type, const char *elem)
{
	if (!type || !elem)
		return NULL;
	struct bkey k = {type, elem};
	return bsearch(&k, valueset_bindings, valueset_nbindings, sizeof valueset_bindings[0], binding_cmp);
}

static int path_cmp(const void *key, const void *elem)
{
	return strcmp(key, ((const struct valueset_binding *)elem)->path);
}

const struct valueset_binding *valueset_binding_path(const char *path)
{
	if (!path)
		return NULL;
	return bsearch(path, valueset_bindings, valueset_nbindings, sizeof valueset_bindings[0], path_cmp);
}

static const char *str_member(const cJSON *o, const char *name)
{
	const cJSON *m = cJSON_GetObjectItemCaseSensitive(o, name);
	return cJSON_IsString(m) ? m->valuestring : NULL;
}

static int system_cmp(const void *key, const void *elem) { return strcmp(key, *(const char *const *)elem); }

/* Whether vs holds a code of system. */
static bool draws_on(const struct valueset_def *vs, const char *system)
{
	const char *const *s =
		bsearch(system, valueset_systems, valueset_nsystems, sizeof valueset_systems[0], system_cmp);
	if (!s)
		return false;
	uint16_t idx = (uint16_t)(s - valueset_systems);
	for (uint32_t i = vs->first; i < vs->first + vs->count; i++)
		if (valueset_codes[i].system == idx)
			return true;
	return false;
}

/* 1 in, 0 not in, 2 not in and of a system vs holds no code of, -1 no code. */
static int coding_in(const struct valueset_def *vs, const cJSON *coding)
{
	const char *code = str_member(coding, "code"), *system = str_member(coding, "system");
	if (!code)
		return -1;
	if (valueset_contains(vs, system, code))
		return 1;
	return system && !draws_on(vs, system) ? 2 : 0;
}

enum valueset_verdict valueset_check_value(const struct valueset_def *vs, const char *type, const cJSON *val)
{
	if (!vs || !type || !val)
		return VALUESET_SKIP;
	if (!strcmp(type, "code")) {
		if (!cJSON_IsString(val))
			return VALUESET_SKIP;
		return valueset_contains(vs, NULL, val->valuestring) ? VALUESET_IN : VALUESET_NOT_IN;
	}
	if (!cJSON_IsObject(val))
		return VALUESET_SKIP;
	static const enum valueset_verdict verdict[] = {VALUESET_NOT_IN, VALUESET_IN, VALUESET_ELSEWHERE};
	if (!strcmp(type, "Coding")) {
		int r = coding_in(vs, val);
		return r < 0 ? VALUESET_NO_CODE : verdict[r];
	}
	if (strcmp(type, "CodeableConcept") != 0)
		return VALUESET_SKIP;
	bool any = false, elsewhere = false;
	const cJSON *c;
	cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(val, "coding"))
	{
		int r = coding_in(vs, c);
		if (r == 1)
			return VALUESET_IN;
		any = any || r >= 0;
		elsewhere = elsewhere || r == 2;
	}
	return elsewhere ? VALUESET_ELSEWHERE : any ? VALUESET_NOT_IN : VALUESET_NO_CODE;
}
