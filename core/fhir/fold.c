/* fold — case and accent folding for string search over the generated table. */
#include "fhir/fold.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* The code point of the well-formed UTF-8 sequence at p (its length in *len),
 * or -1 when the bytes there are not one. */
static int32_t utf8_decode(const unsigned char *p, size_t *len)
{
	uint32_t c = p[0];
	size_t n = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 ? 2 : 0;
	if (!n || c > 0xF4)
		return -1;
	c &= 0x3F >> (n - 1);
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xC0) != 0x80)
			return -1;
		c = (c << 6) | (p[i] & 0x3F);
	}
	/* overlong, surrogate or beyond U+10FFFF */
	if ((n == 3 && c < 0x800) || (n == 4 && (c < 0x10000 || c > 0x10FFFF)) || (c >= 0xD800 && c < 0xE000))
		return -1;
	*len = n;
	return (int32_t)c;
}

static size_t utf8_encode(uint32_t c, unsigned char *out)
{
	if (c < 0x80) {
		out[0] = (unsigned char)c;
		return 1;
	}
	if (c < 0x800) {
		out[0] = (unsigned char)(0xC0 | (c >> 6));
		out[1] = (unsigned char)(0x80 | (c & 0x3F));
		return 2;
	}
	if (c < 0x10000) {
		out[0] = (unsigned char)(0xE0 | (c >> 12));
		out[1] = (unsigned char)(0x80 | ((c >> 6) & 0x3F));
		out[2] = (unsigned char)(0x80 | (c & 0x3F));
		return 3;
	}
	out[0] = (unsigned char)(0xF0 | (c >> 18));
	out[1] = (unsigned char)(0x80 | ((c >> 12) & 0x3F));
	out[2] = (unsigned char)(0x80 | ((c >> 6) & 0x3F));
	out[3] = (unsigned char)(0x80 | (c & 0x3F));
	return 4;
}

/* Index of the row of rows (n rows of width w, sorted on column 0) whose
 * first column is c, or n. */
static size_t find_cp(const uint32_t *rows, size_t n, size_t w, uint32_t c)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (rows[mid * w] < c)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n && rows[lo * w] == c ? lo : n;
}

static bool dropped(uint32_t c)
{
	size_t lo = 0, hi = fold_drop_count;
	while (lo < hi) { /* the first range ending at or after c */
		size_t mid = lo + (hi - lo) / 2;
		if (fold_drop[mid][1] < c)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < fold_drop_count && fold_drop[lo][0] <= c;
}

char *fold_text(const char *s)
{
	size_t n = strlen(s);
	unsigned char *out = malloc(3 * n + 1), *o = out;
	if (!out)
		return NULL;
	const unsigned char *p = (const unsigned char *)s;
	while (*p) {
		if (*p < 0x80) {
			*o++ = (*p >= 'A' && *p <= 'Z') ? (unsigned char)(*p - 'A' + 'a') : *p;
			p++;
			continue;
		}
		size_t len = 0;
		int32_t c = utf8_decode(p, &len);
		if (c < 0) {
			*o++ = *p++; /* not UTF-8: kept as it is */
			continue;
		}
		p += len;
		size_t i = find_cp(&fold_single[0][0], fold_single_count, 2, (uint32_t)c);
		if (i < fold_single_count) {
			o += utf8_encode(fold_single[i][1], o);
		} else if ((i = find_cp(&fold_multi[0][0], fold_multi_count, 4, (uint32_t)c)) < fold_multi_count) {
			for (int k = 1; k < 4 && fold_multi[i][k]; k++)
				o += utf8_encode(fold_multi[i][k], o);
		} else if (!dropped((uint32_t)c)) {
			memcpy(o, p - len, len);
			o += len;
		}
	}
	*o = '\0';
	return (char *)out;
}
