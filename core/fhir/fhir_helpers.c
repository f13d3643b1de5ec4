#include "fhir/fhir_helpers.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "base/crypto.h"

bool fhir_is_id(const char *s)
{
	size_t n = 0;
	for (; s && s[n]; n++)
		if (!isalnum((unsigned char)s[n]) && s[n] != '-' && s[n] != '.')
			return false;
	return n >= 1 && n <= 64;
}

bool fhir_is_type_name(const char *s)
{
	if (!s || !isupper((unsigned char)s[0]))
		return false;
	size_t n = 1;
	for (; s[n]; n++)
		if (!isalnum((unsigned char)s[n]))
			return false;
	return n <= 64;
}

bool fhir_is_absolute_uri(const char *s)
{
	if (!s || !isalpha((unsigned char)s[0]))
		return false;
	const char *p = s + 1;
	while (isalnum((unsigned char)*p) || *p == '+' || *p == '-' || *p == '.')
		p++;
	if (*p != ':' || !p[1])
		return false;
	for (p++; *p; p++)
		if ((unsigned char)*p <= ' ' || *p == 0x7f)
			return false;
	return true;
}

int fhir_make_id(const char *ns, const char *key, char out[FHIR_ID_SIZE])
{
	if (!ns || !*ns || !key)
		return -1;
	uint8_t nsu[16], id[16];
	if (!crypto_uuid_parse(ns, nsu) && crypto_uuid5(crypto_ns_url, ns, strlen(ns), nsu) != 0)
		return -1;
	if (crypto_uuid5(nsu, key, strlen(key), id) != 0)
		return -1;
	crypto_uuid_format(id, out);
	return 0;
}

static bool digits(const char *s, size_t n, int *v)
{
	*v = 0;
	for (size_t i = 0; i < n; i++) {
		if (!isdigit((unsigned char)s[i]))
			return false;
		*v = *v * 10 + (s[i] - '0');
	}
	return true;
}

static bool valid_date(int y, int m, int d)
{
	static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	if (y < 1000 || y > 9999 || m < 1 || m > 12 || d < 1)
		return false;
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	return d <= mdays[m - 1] + (m == 2 && leap);
}

int fhir_iso_date(const char *text, char out[FHIR_DATE_SIZE])
{
	int y, m, d;
	if (!text) {
		time_t t = time(NULL);
		struct tm tm;
		if (!gmtime_r(&t, &tm))
			return -1;
		y = tm.tm_year + 1900;
		m = tm.tm_mon + 1;
		d = tm.tm_mday;
	} else {
		size_t n = strlen(text);
		bool ok;
		if (n == 10 && text[4] == '-' && text[7] == '-')
			ok = digits(text, 4, &y) && digits(text + 5, 2, &m) && digits(text + 8, 2, &d);
		else if (n == 8)
			ok = digits(text, 4, &y) && digits(text + 4, 2, &m) && digits(text + 6, 2, &d);
		else if (n == 10 && text[2] == '/' && text[5] == '/')
			ok = digits(text, 2, &m) && digits(text + 3, 2, &d) && digits(text + 6, 4, &y);
		else
			ok = false;
		if (!ok)
			return -1;
	}
	if (!valid_date(y, m, d))
		return -1;
	char buf[40];
	snprintf(buf, sizeof buf, "%04d-%02d-%02d", y, m, d);
	memcpy(out, buf, FHIR_DATE_SIZE - 1);
	out[FHIR_DATE_SIZE - 1] = '\0';
	return 0;
}

bool fhir_is_date(const char *s)
{
	char out[FHIR_DATE_SIZE];
	return s && strlen(s) == 10 && s[4] == '-' && s[7] == '-' && fhir_iso_date(s, out) == 0;
}

static cJSON *fail(char *why, size_t whylen, const char *msg)
{
	if (why && whylen)
		snprintf(why, whylen, "%s", msg);
	return NULL;
}

static bool add_str(cJSON *o, const char *k, const char *v)
{
	return !v || cJSON_AddStringToObject(o, k, v) != NULL;
}

cJSON *fhir_reference(const char *type, const char *id, const char *display, char *why, size_t whylen)
{
	if (!fhir_is_type_name(type))
		return fail(why, whylen, "reference: not a resource type");
	if (!fhir_is_id(id))
		return fail(why, whylen, "reference: not a valid FHIR id");
	char ref[160];
	snprintf(ref, sizeof ref, "%s/%s", type, id);
	cJSON *o = cJSON_CreateObject();
	if (!o || !add_str(o, "reference", ref) || !add_str(o, "display", display)) {
		cJSON_Delete(o);
		return fail(why, whylen, "out of memory");
	}
	return o;
}

cJSON *fhir_coding(const char *system, const char *code, const char *display, char *why, size_t whylen)
{
	if (!fhir_is_absolute_uri(system))
		return fail(why, whylen, "coding: system must be an absolute URI");
	if (!code || !*code || isspace((unsigned char)code[0]) || isspace((unsigned char)code[strlen(code) - 1]))
		return fail(why, whylen, "coding: code must be non-empty without leading or trailing space");
	cJSON *o = cJSON_CreateObject();
	if (!o || !add_str(o, "system", system) || !add_str(o, "code", code) ||
	    !add_str(o, "display", display && *display ? display : NULL)) {
		cJSON_Delete(o);
		return fail(why, whylen, "out of memory");
	}
	return o;
}

cJSON *fhir_identifier(const char *system, const char *value, char *why, size_t whylen)
{
	if (!fhir_is_absolute_uri(system))
		return fail(why, whylen, "identifier: system must be an absolute URI");
	if (!value || !*value)
		return fail(why, whylen, "identifier: value must be non-empty");
	cJSON *o = cJSON_CreateObject();
	if (!o || !add_str(o, "system", system) || !add_str(o, "value", value)) {
		cJSON_Delete(o);
		return fail(why, whylen, "out of memory");
	}
	return o;
}

/* ------------------------------------------------------------- merging */

enum merge_key { KEY_SYSTEM_VALUE, KEY_URL, KEY_LANGUAGE, KEY_CODING, KEY_VALUE };

static const char *member_str(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static bool same_str(const char *a, const char *b) { return a == b || (a && b && !strcmp(a, b)); }

static bool same_parts(const cJSON *a, const cJSON *b, const char *k1, const char *k2)
{
	return same_str(member_str(a, k1), member_str(b, k1)) && same_str(member_str(a, k2), member_str(b, k2));
}

static bool same_key(enum merge_key key, const cJSON *a, const cJSON *b)
{
	switch (key) {
	case KEY_SYSTEM_VALUE:
		return same_parts(a, b, "system", "value");
	case KEY_URL:
		return same_str(member_str(a, "url"), member_str(b, "url"));
	case KEY_CODING:
		return same_parts(a, b, "system", "code");
	case KEY_LANGUAGE: {
		const cJSON *la = cJSON_GetObjectItemCaseSensitive(a, "language"),
			    *lb = cJSON_GetObjectItemCaseSensitive(b, "language");
		const cJSON *ca = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(la, "coding"), 0),
			    *cb = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(lb, "coding"), 0);
		if (ca || cb)
			return ca && cb && same_parts(ca, cb, "system", "code");
		return same_str(member_str(la, "text"), member_str(lb, "text"));
	}
	case KEY_VALUE:
		break;
	}
	return cJSON_Compare(a, b, true);
}

/* Appends to the array into every element of stored no element of into
 * matches by key. */
static int unite(cJSON *into, const cJSON *stored, enum merge_key key)
{
	const cJSON *s;
	cJSON_ArrayForEach(s, stored)
	{
		bool found = false;
		const cJSON *i;
		cJSON_ArrayForEach(i, into)
		{
			if (same_key(key, i, s)) {
				found = true;
				break;
			}
		}
		cJSON *dup = found ? NULL : cJSON_Duplicate(s, true);
		if (!found && (!dup || !cJSON_AddItemToArray(into, dup))) {
			cJSON_Delete(dup);
			return -1;
		}
	}
	return 0;
}

/* A HumanName's text, or its given names and family name joined by
 * spaces, equals text. */
static bool name_says(const cJSON *name, const char *text)
{
	if (same_str(member_str(name, "text"), text))
		return true;
	char buf[512];
	size_t n = 0;
	const cJSON *g;
	cJSON_ArrayForEach(g, cJSON_GetObjectItemCaseSensitive(name, "given"))
	{
		if (cJSON_IsString(g))
			n += (size_t)snprintf(buf + n, sizeof buf - n, "%s%s", n ? " " : "", g->valuestring);
		if (n >= sizeof buf)
			return false;
	}
	const char *family = member_str(name, "family");
	if (family)
		n += (size_t)snprintf(buf + n, sizeof buf - n, "%s%s", n ? " " : "", family);
	return n > 0 && n < sizeof buf && !strcmp(buf, text);
}

/* Every name of names is text alone, said by one of stored. */
static bool names_restate(const cJSON *names, const cJSON *stored)
{
	const cJSON *nm;
	cJSON_ArrayForEach(nm, names)
	{
		const char *text = member_str(nm, "text");
		if (!text || cJSON_GetArraySize(nm) != 1)
			return false;
		bool said = false;
		const cJSON *s;
		cJSON_ArrayForEach(s, stored)
		{
			if (name_says(s, text)) {
				said = true;
				break;
			}
		}
		if (!said)
			return false;
	}
	return true;
}

static enum merge_key array_key(const char *name, bool *united)
{
	static const struct {
		const char *name;
		enum merge_key key;
	} keyed[] = {
		{"identifier", KEY_SYSTEM_VALUE},
		{"telecom", KEY_SYSTEM_VALUE},
		{"extension", KEY_URL},
		{"modifierExtension", KEY_URL},
		{"communication", KEY_LANGUAGE},
		{"profile", KEY_VALUE},
		{"tag", KEY_CODING},
		{"security", KEY_CODING},
	};
	for (size_t i = 0; i < sizeof keyed / sizeof keyed[0]; i++)
		if (!strcmp(name, keyed[i].name)) {
			*united = true;
			return keyed[i].key;
		}
	*united = false;
	return KEY_VALUE;
}

/* The members of stored into into, as fhir_merge_elements says; skip names
 * the members left alone at this level. */
static int merge_members(cJSON *into, const cJSON *stored, const char *const *skip)
{
	const cJSON *s;
	cJSON_ArrayForEach(s, stored)
	{
		bool skipped = false;
		for (size_t k = 0; skip[k]; k++)
			skipped |= !strcmp(s->string, skip[k]);
		if (skipped)
			continue;
		cJSON *mine = cJSON_GetObjectItemCaseSensitive(into, s->string);
		if (!mine) {
			cJSON *dup = cJSON_Duplicate(s, true);
			if (!dup || !cJSON_AddItemToObject(into, s->string, dup)) {
				cJSON_Delete(dup);
				return -1;
			}
			continue;
		}
		bool united;
		enum merge_key key = array_key(s->string, &united);
		if (cJSON_IsArray(mine) && cJSON_IsArray(s) && united) {
			if (unite(mine, s, key))
				return -1;
		} else if (!strcmp(s->string, "name") && cJSON_IsArray(s) && names_restate(mine, s)) {
			cJSON *dup = cJSON_Duplicate(s, true);
			if (!dup || !cJSON_ReplaceItemInObjectCaseSensitive(into, "name", dup)) {
				cJSON_Delete(dup);
				return -1;
			}
		}
	}
	return 0;
}

int fhir_merge_elements(cJSON *into, const cJSON *stored)
{
	static const char *const top[] = {"resourceType", "id", "text", "meta", NULL};
	static const char *const meta[] = {"versionId", "lastUpdated", NULL};
	if (!cJSON_IsObject(into) || !cJSON_IsObject(stored))
		return 0;
	if (merge_members(into, stored, top))
		return -1;
	const cJSON *sm = cJSON_GetObjectItemCaseSensitive(stored, "meta");
	if (!cJSON_IsObject(sm))
		return 0;
	cJSON *mm = cJSON_GetObjectItemCaseSensitive(into, "meta");
	if (!mm) {
		mm = cJSON_CreateObject();
		if (!mm || !cJSON_AddItemToObject(into, "meta", mm)) {
			cJSON_Delete(mm);
			return -1;
		}
	}
	if (!cJSON_IsObject(mm))
		return 0;
	if (merge_members(mm, sm, meta))
		return -1;
	if (!mm->child)
		cJSON_DeleteItemFromObjectCaseSensitive(into, "meta");
	return 0;
}
