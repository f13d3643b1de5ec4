/* strbuf — a growable byte buffer for writers (XML, CSV, text).
 *
 * Ownership: the buffer owns buf; strbuf_take hands it to the caller (free()).
 * Threads: one buffer per thread. Errors: allocation failure sets oom; later
 * appends do nothing, so writers check oom once at the end. */
#ifndef CW_STRBUF_H
#define CW_STRBUF_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

struct strbuf {
	char *buf;
	size_t len, cap;
	bool oom;
};

#define STRBUF_INIT {0}

void strbuf_add_slow(struct strbuf *b, const char *s, size_t n);
/* n bytes; inline when there is room (one byte stays for the NUL). */
static inline void strbuf_add(struct strbuf *b, const char *s, size_t n)
{
	if (b->buf && n < b->cap - b->len && !b->oom) {
		memcpy(b->buf + b->len, s, n);
		b->len += n;
	} else {
		strbuf_add_slow(b, s, n);
	}
}
void strbuf_adds(struct strbuf *b, const char *s);
/* One byte; inline when there is room. */
static inline void strbuf_addc(struct strbuf *b, char c)
{
	if (b->buf && b->len + 2 <= b->cap && !b->oom)
		b->buf[b->len++] = c;
	else
		strbuf_add_slow(b, &c, 1);
}
/* s percent-encoded for a URL's query or path: letters, digits and
 * - . _ ~ : , | / stay as they are, every other byte becomes %XX. */
void strbuf_add_pct(struct strbuf *b, const char *s);
/* NUL-terminates and returns the bytes (caller frees), *len without the NUL;
 * NULL on out of memory (the buffer is released either way). */
char *strbuf_take(struct strbuf *b, size_t *len);
void strbuf_release(struct strbuf *b);

/* Appends an element path segment to the NUL-terminated text of len bytes in
 * buf (cap bytes): ".name" ("name" at the start; name NULL: none) and
 * "[index]" when index >= 0. Returns the new length, or (size_t)-1 when the
 * segment does not fit, buf left as it was. Written out by hand rather than
 * with snprintf: validation and conversion call it for every element. */
size_t strbuf_path_into(char *buf, size_t cap, size_t len, const char *name, long index);

#endif
