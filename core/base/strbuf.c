#include "base/strbuf.h"

#include <stdlib.h>
#include <string.h>

static bool grow(struct strbuf *b, size_t n)
{
	if (b->oom)
		return false;
	if (n <= b->cap - b->len && b->buf)
		return true;
	size_t cap = b->cap ? b->cap : 256;
	while (cap - b->len < n + 1) {
		if (cap > ((size_t)-1) / 2) {
			b->oom = true;
			return false;
		}
		cap *= 2;
	}
	char *p = realloc(b->buf, cap);
	if (!p) {
		b->oom = true;
		return false;
	}
	b->buf = p;
	b->cap = cap;
	return true;
}

void strbuf_add_slow(struct strbuf *b, const char *s, size_t n)
{
	if (!grow(b, n + 1))
		return;
	memcpy(b->buf + b->len, s, n);
	b->len += n;
}

void strbuf_adds(struct strbuf *b, const char *s) { strbuf_add(b, s, strlen(s)); }

char *strbuf_take(struct strbuf *b, size_t *len)
{
	if (!grow(b, 1)) {
		strbuf_release(b);
		return NULL;
	}
	b->buf[b->len] = '\0';
	char *p = b->buf;
	if (len)
		*len = b->len;
	b->buf = NULL;
	b->len = b->cap = 0;
	return p;
}

void strbuf_release(struct strbuf *b)
{
	free(b->buf);
	b->buf = NULL;
	b->len = b->cap = 0;
	b->oom = false;
}

void strbuf_add_pct(struct strbuf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		bool safe = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
			    c == '.' || c == '_' || c == '~' || c == ':' || c == ',' || c == '|' || c == '/';
		if (safe) {
			strbuf_addc(b, (char)c);
		} else {
			char e[3] = {'%', hex[c >> 4], hex[c & 15]};
			strbuf_add(b, e, 3);
		}
	}
}

size_t strbuf_path_into(char *buf, size_t cap, size_t len, const char *name, long index)
{
	char num[24];
	size_t nl = 0;
	if (index >= 0) {
		char rev[24];
		unsigned long u = (unsigned long)index;
		do {
			rev[nl++] = (char)('0' + u % 10);
			u /= 10;
		} while (u);
		for (size_t i = 0; i < nl; i++)
			num[i] = rev[nl - 1 - i];
	}
	size_t namel = name ? strlen(name) : 0;
	size_t need = (name && len ? 1 : 0) + namel + (index >= 0 ? nl + 2 : 0);
	if (len >= cap || need >= cap - len)
		return (size_t)-1;
	char *w = buf + len;
	if (name && len)
		*w++ = '.';
	memcpy(w, name ? name : "", namel);
	w += namel;
	if (index >= 0) {
		*w++ = '[';
		memcpy(w, num, nl);
		w += nl;
		*w++ = ']';
	}
	*w = '\0';
	return (size_t)(w - buf);
}
