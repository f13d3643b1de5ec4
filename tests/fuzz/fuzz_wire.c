/* libFuzzer harness: the HTTP front door's strict checks (core/http/wire.h)
 * on a raw request head: "METHOD TARGET VERSION\r\nName: value\r\n…\r\n".
 *
 * The harness parses the bytes the way libmicrohttpd 0.9.75 does, in place
 * (line ends and each field's colon become NUL bytes; lengths are strlen()s,
 * so a NUL sent by the client cuts a string short), then runs the walker,
 * the field checks and the target check over what that parse reports, as
 * http.c does. Properties:
 *  - when everything is accepted, the raw bytes hold no bare CR, no NUL but
 *    right before a line end (where it hides nothing), and every field name
 *    is a token: what the gateway saw is all there was;
 *  - an accepted target decodes to a path without NUL, control characters
 *    or '/' from %2F, and a query without NUL;
 *  - Transfer-Encoding and Content-Length accepted only in their one form;
 *  - the walker never reads outside the block, whatever offsets it is given
 *    (a second pass feeds it offsets taken from the input). */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_FIELDS 64

struct span {
	size_t name_off, name_len, value_off, value_len;
};

/* The end of the line starting at pos (CRLF or bare LF); sets *term. */
static size_t line_end(const char *b, size_t n, size_t pos, size_t *term)
{
	for (size_t i = pos; i < n; i++) {
		if (b[i] == '\r' && i + 1 < n && b[i + 1] == '\n') {
			*term = 2;
			return i;
		}
		if (b[i] == '\n') {
			*term = 1;
			return i;
		}
	}
	return SIZE_MAX;
}

static void check_target(const char *t, size_t n)
{
	int status;
	const char *why = wire_check_target(t, n, &status);
	if (why) {
		if (status != 400 && status != 414)
			abort();
		return;
	}
	if (status != 0)
		abort();
	char *out = malloc(n + 1);
	if (!out)
		abort();
	size_t q = 0;
	while (q < n && t[q] != '?')
		q++;
	long d = wire_pct_decode(t, q, out, false);
	if (d < 0 || (size_t)d > q || memchr(out, 0, (size_t)d))
		abort();
	for (long i = 0; i < d; i++)
		if ((unsigned char)out[i] < 0x20 || out[i] == 0x7f)
			abort();
	size_t slashes = 0, dslashes = 0;
	for (size_t i = 0; i < q; i++)
		slashes += t[i] == '/';
	for (long i = 0; i < d; i++)
		dslashes += out[i] == '/';
	if (slashes != dslashes)
		abort(); /* a '/' came from %2F */
	if (q < n) {
		d = wire_pct_decode(t + q + 1, n - q - 1, out, true);
		if (d < 0 || memchr(out, 0, (size_t)d))
			abort();
	}
	free(out);
}

static void check_framing(const char *v, size_t n)
{
	const char *why;
	int te = wire_transfer_encoding(v, n, &why);
	if (te == 0 && (n != 7 || strncasecmp(v, "chunked", 7) != 0))
		abort();
	if (te != 0 && te != 400 && te != 501)
		abort();
	uint64_t cl;
	if (!wire_content_length(v, n, &cl)) {
		for (size_t i = 0; i < n; i++)
			if (v[i] < '0' || v[i] > '9')
				abort();
	}
	wire_host_ok(v, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 65536)
		return 0;
	char *b = malloc(size + 1);
	if (!b)
		abort();
	memcpy(b, data, size);
	b[size] = '\0';
	const char *raw = (const char *)data;

	/* The request line, as the library splits it. */
	size_t term, eol = line_end(b, size, 0, &term);
	struct span f[MAX_FIELDS];
	size_t nf = 0;
	char *sp = eol == SIZE_MAX ? NULL : memchr(b, ' ', eol);
	if (!sp)
		goto second_pass;
	*sp = '\0';
	size_t method_len = strlen(b);
	size_t uri = (size_t)(sp - b) + 1;
	while (uri < eol && b[uri] == ' ')
		uri++;
	size_t v = eol;
	while (v > uri && b[v - 1] == ' ')
		v--;
	size_t vend = v;
	while (v > uri && b[v - 1] != ' ')
		v--;
	if (v <= uri || vend - v != 8 || memcmp(b + v, "HTTP/1.", 7) != 0 || b[v + 7] < '0' || b[v + 7] > '9')
		goto second_pass; /* the library refuses these itself */
	b[v - 1] = '\0';
	size_t target_len = strlen(b + uri);
	char *target = strndup(b + uri, target_len);
	if (!target)
		abort();
	memset(b + eol, 0, term);
	size_t pos = eol + term;
	bool bad_line = false;
	for (;;) {
		eol = line_end(b, size, pos, &term);
		if (eol == SIZE_MAX) {
			bad_line = true;
			break;
		}
		if (eol == pos) { /* the empty line */
			memset(b + eol, 0, term);
			pos = eol + term;
			break;
		}
		if (b[pos] == ' ' || b[pos] == '\t' || nf == MAX_FIELDS) {
			bad_line = true; /* folding: the library copies the field elsewhere */
			break;
		}
		char *colon = strchr(b + pos, ':');
		if (!colon || (size_t)(colon - b) >= eol) {
			bad_line = true; /* the library refuses a line without a colon */
			break;
		}
		*colon = '\0';
		memset(b + eol, 0, term);
		size_t val = (size_t)(colon - b) + 1;
		while (b[val] == ' ' || b[val] == '\t')
			val++;
		f[nf++] = (struct span){pos, strlen(b + pos), val, strlen(b + val)};
		pos = eol + term;
	}
	if (!bad_line) {
		struct wire_walk w;
		wire_walk_start(&w, b, pos, method_len, uri, target_len, v, 8);
		const char *field_err = NULL;
		for (size_t i = 0; i < nf; i++) {
			wire_walk_field(&w, f[i].name_off, f[i].name_len, f[i].value_off, f[i].value_len);
			if (!field_err)
				field_err = wire_check_field(b + f[i].name_off, f[i].name_len, b + f[i].value_off,
							     f[i].value_len);
			check_framing(b + f[i].value_off, f[i].value_len);
		}
		const char *why = wire_walk_end(&w);
		int status;
		check_target(target, target_len);
		if (!why && !field_err && !wire_check_target(target, target_len, &status)) {
			/* Accepted: the raw head is clean. */
			if (!wire_is_token(raw, method_len))
				abort();
			for (size_t i = 0; i < pos; i++) {
				if (raw[i] != '\0')
					continue;
				/* A NUL right before a line end hides nothing. */
				size_t j = i + 1;
				while (j < pos && (raw[j] == '\0' || raw[j] == '\r'))
					j++;
				if (j >= pos || raw[j] != '\n')
					abort();
			}
			for (size_t i = 0; i + 1 < pos; i++)
				if (raw[i] == '\r' && raw[i + 1] != '\n')
					abort();
			for (size_t i = 0; i < nf; i++)
				if (!wire_is_token(raw + f[i].name_off, f[i].name_len) || raw[f[i].name_off + f[i].name_len] != ':')
					abort();
		}
	}
	free(target);

second_pass:
	/* Arbitrary offsets: the walker must stay inside the block. */
	if (size >= 8) {
		struct wire_walk w;
		wire_walk_start(&w, raw, size, data[0] % 8, data[1], data[2], data[3], data[4] % 10);
		for (size_t i = 5; i + 4 <= size && i < 64; i += 4)
			wire_walk_field(&w, data[i], data[i + 1], data[i + 2], data[i + 3]);
		wire_walk_end(&w);
	}
	check_target(raw, size);
	check_framing(raw, size);
	free(b);
	return 0;
}
