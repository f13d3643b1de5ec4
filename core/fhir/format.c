#include "fhir/format.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *format_media_type(enum format f)
{
	return f == FORMAT_XML ? "application/fhir+xml; charset=utf-8" : "application/fhir+json; charset=utf-8";
}

/* Compares the media type at s (up to ';' or ',' or end, spaces trimmed)
 * with name, case-insensitively. */
static bool type_is(const char *s, size_t len, const char *name)
{
	while (len && isspace((unsigned char)*s)) {
		s++;
		len--;
	}
	while (len && isspace((unsigned char)s[len - 1]))
		len--;
	return strlen(name) == len && strncasecmp(s, name, len) == 0;
}

static enum format classify(const char *s, size_t len)
{
	static const char *const json[] = {"json", "application/fhir+json", "application/json", "text/json"};
	static const char *const xml[] = {"xml", "application/fhir+xml", "application/xml", "text/xml"};
	for (size_t i = 0; i < 4; i++) {
		if (type_is(s, len, json[i]))
			return FORMAT_JSON;
		if (type_is(s, len, xml[i]))
			return FORMAT_XML;
	}
	return FORMAT_NONE;
}

enum format format_from_param(const char *value)
{
	if (!value)
		return FORMAT_NONE;
	size_t len = strcspn(value, ";");
	return classify(value, len);
}

/* q value of one Accept element's parameters; 1 when absent. */
static double q_of(const char *params, size_t len)
{
	const char *end = params + len;
	for (const char *p = params; p < end; p++) {
		if (*p != ';')
			continue;
		const char *k = p + 1;
		while (k < end && isspace((unsigned char)*k))
			k++;
		if (end - k >= 2 && (k[0] == 'q' || k[0] == 'Q') && k[1] == '=') {
			char buf[16];
			size_t n = (size_t)(end - (k + 2));
			n = strcspn(k + 2, ";,") < n ? strcspn(k + 2, ";,") : n;
			if (n >= sizeof buf)
				n = sizeof buf - 1;
			memcpy(buf, k + 2, n);
			buf[n] = '\0';
			char *e;
			double q = strtod(buf, &e);
			if (e == buf || q < 0 || q > 1)
				return 0;
			return q;
		}
	}
	return 1;
}

enum format format_negotiate(const char *format_param, const char *accept)
{
	if (format_param && *format_param)
		return format_from_param(format_param);
	if (!accept || !*accept)
		return FORMAT_JSON;
	double best_q = 0;
	enum format best = FORMAT_NONE;
	const char *p = accept;
	while (*p) {
		size_t elen = strcspn(p, ",");
		size_t tlen = strcspn(p, ";,");
		double q = q_of(p + tlen, elen - tlen);
		enum format f = classify(p, tlen);
		if (f == FORMAT_NONE && (type_is(p, tlen, "*/*") || type_is(p, tlen, "application/*")))
			f = FORMAT_JSON;
		else if (f == FORMAT_NONE && type_is(p, tlen, "text/*"))
			f = FORMAT_XML;
		if (f != FORMAT_NONE && q > best_q) {
			best_q = q;
			best = f;
		}
		p += elen;
		if (*p == ',')
			p++;
	}
	return best;
}

enum format format_of_body(const char *content_type, const char *body, size_t len)
{
	if (!content_type || !*content_type) {
		for (size_t i = 0; i < len; i++) {
			if (isspace((unsigned char)body[i]))
				continue;
			return body[i] == '{' ? FORMAT_JSON : body[i] == '<' ? FORMAT_XML : FORMAT_NONE;
		}
		return FORMAT_NONE;
	}
	size_t tlen = strcspn(content_type, ";");
	enum format f = classify(content_type, tlen);
	if (f == FORMAT_NONE || strlen(content_type) == tlen)
		return f;
	/* Parameters: only a UTF-8 charset is acceptable. */
	const char *cs = strcasestr(content_type + tlen, "charset=");
	if (cs) {
		cs += 8;
		if (*cs == '"')
			cs++;
		if (strncasecmp(cs, "utf-8", 5) != 0 || (cs[5] && cs[5] != ';' && cs[5] != '"' && !isspace((unsigned char)cs[5])))
			return FORMAT_NONE;
	}
	return f;
}
