#include "auth/scope.h"

#include <stdio.h>
#include <string.h>

static unsigned perms_of(const char *p, size_t n)
{
	if (n == 4 && !memcmp(p, "read", 4))
		return SCOPE_R | SCOPE_S;
	if (n == 5 && !memcmp(p, "write", 5))
		return SCOPE_C | SCOPE_U | SCOPE_D;
	if (n == 1 && *p == '*')
		return SCOPE_C | SCOPE_R | SCOPE_U | SCOPE_D | SCOPE_S;
	static const char order[] = "cruds";
	unsigned bits = 0;
	size_t at = 0;
	for (size_t i = 0; i < n; i++) {
		const char *hit = memchr(order + at, p[i], sizeof order - 1 - at);
		if (!hit)
			return 0; /* unknown letter, repeated or out of order */
		at = (size_t)(hit - order) + 1;
		bits |= 1u << (hit - order);
	}
	return bits;
}

bool scope_parse(const char *text, size_t len, struct scope *out)
{
	memset(out, 0, sizeof *out);
	const char *slash = memchr(text, '/', len);
	if (!slash)
		return false;
	size_t cl = (size_t)(slash - text);
	if (!((cl == 7 && !memcmp(text, "patient", 7)) || (cl == 4 && !memcmp(text, "user", 4)) ||
	      (cl == 6 && !memcmp(text, "system", 6))))
		return false;
	const char *rest = slash + 1, *end = text + len;
	const char *q = memchr(rest, '?', (size_t)(end - rest));
	const char *body_end = q ? q : end;
	const char *dot = memchr(rest, '.', (size_t)(body_end - rest));
	if (!dot || dot == rest || (size_t)(dot - rest) >= sizeof out->type)
		return false;
	for (const char *c = rest; c < dot; c++)
		if (!((*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') || (*c == '*' && dot - rest == 1)))
			return false;
	out->perms = perms_of(dot + 1, (size_t)(body_end - dot - 1));
	if (!out->perms)
		return false;
	memcpy(out->context, text, cl);
	memcpy(out->type, rest, (size_t)(dot - rest));
	if (q) {
		out->query = q + 1;
		out->query_len = (size_t)(end - q - 1);
	}
	return true;
}

bool scope_covers(const char *granted, size_t glen, const char *asked, size_t alen)
{
	if (glen == alen && !memcmp(granted, asked, glen))
		return true;
	struct scope g, a;
	if (!scope_parse(granted, glen, &g) || !scope_parse(asked, alen, &a))
		return false;
	if (strcmp(g.context, a.context) != 0)
		return false;
	if (strcmp(g.type, "*") != 0 && strcmp(g.type, a.type) != 0)
		return false;
	if ((a.perms & g.perms) != a.perms)
		return false;
	return !g.query || (a.query && a.query_len == g.query_len && !memcmp(a.query, g.query, g.query_len));
}

long scope_intersect(const char *allowed, const char *asked, char *out, size_t cap)
{
	size_t o = 0;
	long count = 0;
	const char *src = asked && *asked ? asked : allowed;
	if (cap)
		out[0] = '\0';
	for (const char *p = src; *p;) {
		while (*p == ' ')
			p++;
		size_t n = strcspn(p, " ");
		if (!n)
			break;
		bool ok = false;
		for (const char *g = allowed; *g && !ok;) {
			while (*g == ' ')
				g++;
			size_t gn = strcspn(g, " ");
			if (gn)
				ok = scope_covers(g, gn, p, n);
			g += gn;
		}
		if (ok) {
			if (o + n + 2 > cap)
				return -1;
			if (o)
				out[o++] = ' ';
			memcpy(out + o, p, n);
			o += n;
			out[o] = '\0';
			count++;
		}
		p += n;
	}
	return count;
}

bool scope_allows(const char *granted, const char *type, unsigned perms)
{
	for (const char *g = granted; *g;) {
		while (*g == ' ')
			g++;
		size_t n = strcspn(g, " ");
		struct scope sc;
		if (n && scope_parse(g, n, &sc) && strcmp(sc.context, "patient") != 0 && !sc.query &&
		    (!strcmp(sc.type, "*") || !strcmp(sc.type, type)) && (sc.perms & perms) == perms)
			return true;
		g += n;
	}
	return false;
}

size_t scope_queries(const char *granted, const char *type, unsigned perms, const char **q, size_t *qlen, size_t max)
{
	size_t n = 0;
	for (const char *g = granted; *g;) {
		while (*g == ' ')
			g++;
		size_t len = strcspn(g, " ");
		struct scope sc;
		if (len && scope_parse(g, len, &sc) && strcmp(sc.context, "patient") != 0 && sc.query && sc.query_len &&
		    (!strcmp(sc.type, "*") || !strcmp(sc.type, type)) && (sc.perms & perms) == perms) {
			if (n < max) {
				q[n] = sc.query;
				qlen[n] = sc.query_len;
			}
			n++;
		}
		g += len;
	}
	return n;
}
