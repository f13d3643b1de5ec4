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
