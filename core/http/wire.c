#include "http/wire.h"

#include <string.h>
#include <strings.h>

#define STR_(x) #x
#define STR(x) STR_(x)

static bool is_tchar(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return true;
	return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

bool wire_is_token(const char *s, size_t n)
{
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!is_tchar((unsigned char)s[i]))
			return false;
	return true;
}

const char *wire_check_field(const char *name, size_t name_len, const char *value, size_t value_len)
{
	if (!wire_is_token(name, name_len))
		return "a header field name is not a token (whitespace before the colon, a control character or a "
		       "separator in the name)";
	for (size_t i = 0; i < value_len; i++) {
		unsigned char c = (unsigned char)value[i];
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return "a header field value holds a control character (a bare CR, LF, NUL or another)";
	}
	return NULL;
}

/* ------------------------------------------------------------- the walker */

static const char *const hidden = "a NUL byte or stray whitespace hides part of the request line or a header line";

static bool all_nul(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != '\0')
			return false;
	return true;
}

void wire_walk_start(struct wire_walk *w, const char *block, size_t block_len, size_t method_len,
		     size_t target_off, size_t target_len, size_t version_off, size_t version_len)
{
	w->block = block;
	w->len = block_len;
	w->pos = 0;
	w->err = NULL;
	if (method_len == 0 || method_len >= block_len || !wire_is_token(block, method_len)) {
		w->err = "the request method is not a token";
		return;
	}
	/* One space between method and target, one between target and version:
	 * the library replaced each with a NUL. */
	if (block[method_len] != '\0' || target_off != method_len + 1 || target_len > block_len ||
	    target_off > block_len - target_len || version_off != target_off + target_len + 1 ||
	    version_off > block_len || block[version_off - 1] != '\0' || version_len > block_len - version_off) {
		w->err = hidden;
		return;
	}
	w->pos = version_off + version_len;
}

/* The bytes from w->pos to off must be one line end (CRLF or LF), which the
 * library turned into one or two NUL bytes. */
static bool line_end_to(struct wire_walk *w, size_t off)
{
	if (off < w->pos || off > w->len)
		return false;
	size_t gap = off - w->pos;
	return (gap == 1 || gap == 2) && all_nul(w->block + w->pos, gap);
}

void wire_walk_field(struct wire_walk *w, size_t name_off, size_t name_len, size_t value_off, size_t value_len)
{
	if (w->err)
		return;
	if (!line_end_to(w, name_off) || name_len == 0 || name_len >= w->len - name_off) {
		w->err = hidden;
		return;
	}
	size_t colon = name_off + name_len;
	if (w->block[colon] != '\0' || value_off <= colon || value_off > w->len || value_len > w->len - value_off) {
		w->err = hidden;
		return;
	}
	for (size_t i = colon + 1; i < value_off; i++)
		if (w->block[i] != ' ' && w->block[i] != '\t') {
			w->err = hidden;
			return;
		}
	w->pos = value_off + value_len;
}

const char *wire_walk_end(struct wire_walk *w)
{
	if (w->err)
		return w->err;
	/* The last line's end and the empty line: two to four NUL bytes. */
	size_t tail = w->len - w->pos;
	if (tail < 2 || tail > 4 || !all_nul(w->block + w->pos, tail))
		w->err = hidden;
	return w->err;
}

/* --------------------------------------------------------------- framing */

const char *wire_content_length(const char *v, size_t n, uint64_t *out)
{
	if (n == 0)
		return "Content-Length is empty";
	uint64_t x = 0;
	for (size_t i = 0; i < n; i++) {
		if (v[i] < '0' || v[i] > '9')
			return "Content-Length is not a number";
		if (__builtin_mul_overflow(x, 10u, &x) || __builtin_add_overflow(x, (uint64_t)(v[i] - '0'), &x))
			return "Content-Length is too large";
	}
	*out = x;
	return NULL;
}

int wire_transfer_encoding(const char *v, size_t n, const char **why)
{
	if (n == 7 && strncasecmp(v, "chunked", 7) == 0) {
		*why = NULL;
		return 0;
	}
	if (n == 0 || v[0] == ' ' || v[0] == '\t' || v[n - 1] == ' ' || v[n - 1] == '\t') {
		*why = "Transfer-Encoding must be exactly \"chunked\", without surrounding whitespace";
		return 400;
	}
	size_t chunked = 0;
	bool chunked_last = false;
	for (size_t i = 0; i <= n;) {
		size_t e = i;
		while (e < n && v[e] != ',')
			e++;
		size_t a = i, b = e;
		while (a < b && (v[a] == ' ' || v[a] == '\t'))
			a++;
		while (b > a && (v[b - 1] == ' ' || v[b - 1] == '\t'))
			b--;
		if (a == b || !wire_is_token(v + a, b - a)) {
			*why = "Transfer-Encoding is not a list of transfer codings";
			return 400;
		}
		chunked_last = b - a == 7 && strncasecmp(v + a, "chunked", 7) == 0;
		if (chunked_last)
			chunked++;
		i = e + 1;
	}
	if (chunked > 1 || (chunked == 1 && !chunked_last)) {
		*why = "Transfer-Encoding must name \"chunked\" once, as the last coding";
		return 400;
	}
	*why = "only the \"chunked\" transfer coding is implemented (Transfer-Encoding)";
	return 501;
}

bool wire_host_ok(const char *v, size_t n)
{
	size_t i = 0;
	if (n > 0 && v[0] == '[') {
		for (i = 1; i < n && v[i] != ']'; i++) {
			char c = v[i];
			if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == ':' ||
			      c == '.'))
				return false;
		}
		if (i >= n || i == 1)
			return false;
		i++;
	} else {
		for (; i < n && v[i] != ':'; i++) {
			char c = v[i];
			if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
			      c == '.' || c == '_' || c == '~'))
				return false;
		}
		if (i == 0)
			return false;
	}
	if (i == n)
		return true;
	if (v[i] != ':' || n - i - 1 < 1 || n - i - 1 > 5)
		return false;
	for (i++; i < n; i++)
		if (v[i] < '0' || v[i] > '9')
			return false;
	return true;
}

/* ------------------------------------------------------ the request target */

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* The byte at in[*i] decoded; advances *i. -1 for a bad escape. */
static int next_byte(const char *in, size_t n, size_t *i, bool plus_is_space, bool *escaped)
{
	char c = in[*i];
	*escaped = false;
	if (c == '%') {
		if (n - *i < 3)
			return -1;
		int h = hexval(in[*i + 1]), l = hexval(in[*i + 2]);
		if (h < 0 || l < 0)
			return -1;
		*i += 3;
		*escaped = true;
		return h * 16 + l;
	}
	(*i)++;
	if (c == '+' && plus_is_space)
		return ' ';
	return (unsigned char)c;
}

long wire_pct_decode(const char *in, size_t n, char *out, bool plus_is_space)
{
	size_t i = 0, o = 0;
	bool esc;
	while (i < n) {
		int b = next_byte(in, n, &i, plus_is_space, &esc);
		if (b < 0)
			return -1;
		out[o++] = (char)b;
	}
	return (long)o;
}

static const char *check_path(const char *p, size_t n)
{
	size_t i = 0;
	while (i < n) {
		/* p[i] is '/': one segment follows, up to the next raw '/'. */
		i++;
		size_t dots = 0, len = 0;
		while (i < n && p[i] != '/') {
			if (p[i] == '\\')
				return "the path holds a backslash";
			bool esc;
			int b = next_byte(p, n, &i, false, &esc);
			if (b < 0)
				return "the path holds a '%' not followed by two hexadecimal digits";
			if (b == 0)
				return "the path holds an encoded NUL (%00)";
			if (b < 0x20 || b == 0x7f)
				return "the path holds an encoded control character";
			if (esc && (b == '/' || b == '\\'))
				return "the path holds an encoded '/' or '\\' (%2F, %5C)";
			len++;
			if (b == '.')
				dots++;
		}
		if (len > 0 && len <= 2 && dots == len)
			return "the path holds a \".\" or \"..\" segment";
	}
	return NULL;
}

const char *wire_check_target(const char *t, size_t n, int *status)
{
	*status = 400;
	if (n == 0 || t[0] != '/')
		return "the request target must be a path starting with '/'";
	size_t q = n;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)t[i];
		if (c <= 0x20 || c == 0x7f || c == '#')
			return "the request target holds a space, a control character or '#'";
		if (c == '?' && q == n)
			q = i;
	}
	const char *why = check_path(t, q);
	if (why)
		return why;
	size_t params = 0;
	for (size_t i = q + 1; i < n;) {
		size_t start = i;
		while (i < n && t[i] != '&') {
			bool esc;
			int b = next_byte(t, n, &i, true, &esc);
			if (b < 0)
				return "the query holds a '%' not followed by two hexadecimal digits";
			if (b == 0)
				return "the query holds an encoded NUL (%00)";
		}
		if (i > start && ++params > WIRE_MAX_QUERY_PARAMS) {
			*status = 414;
			return "the request has more than " STR(WIRE_MAX_QUERY_PARAMS) " query parameters";
		}
		i++; /* the '&' */
	}
	*status = 0;
	return NULL;
}
