/* wire — strict checks of what a client sent, on bytes alone.
 *
 * RFC 9110/9112 leave room for parsers to disagree (a space before a header's
 * colon, a bare CR inside a line, a NUL inside a value, several Host or
 * Transfer-Encoding headers, a percent-encoded NUL or slash in the target).
 * When two parsers on a request's path disagree, one of them is fooled, so
 * the gateway refuses every such request instead of guessing what it means.
 * The HTTP front door (http.c) feeds these functions what the HTTP library
 * parsed; they depend on no library, so a fuzz harness calls them directly.
 *
 * Every check returns NULL when the input is acceptable, else a static
 * sentence saying what is wrong (fit for an OperationOutcome's diagnostics).
 * Threads: pure functions, no state; the walker lives in the caller's frame. */
#ifndef CW_WIRE_H
#define CW_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Query parameters a request may carry; more is refused with 414. */
#define WIRE_MAX_QUERY_PARAMS 200

/* A field name is an RFC 9110 token: 1*tchar. */
bool wire_is_token(const char *s, size_t n);

/* One header field as received: the name a token; the value free of NUL,
 * CR, LF and every other control character but HTAB. */
const char *wire_check_field(const char *name, size_t name_len, const char *value, size_t value_len);

/* The header block walker. The HTTP library parses the request line and the
 * header lines in place, replacing each line end (CRLF or LF) and each
 * field's colon with NUL bytes and keeping pointers into that block. A NUL
 * sent by the client ends a string early and hides what follows it; an
 * obsolete line folding makes the library copy the field elsewhere. The
 * walker proves that the request line and the fields it was told about
 * cover the whole block with nothing hidden between them: every byte that
 * no field accounts for must be a separator the library wrote. (A NUL right
 * before a line end looks like the library's own; it hides nothing.)
 *
 * Offsets are into block (the method's first byte) of block_len bytes (the
 * library's header size: request line, fields and the empty line). All
 * positions are checked against block_len before any byte is read. */
struct wire_walk {
	const char *block;
	size_t len;
	size_t pos;      /* end of what has been accounted for */
	const char *err; /* first problem, sticky */
};

/* Starts with the request line: the method at offset 0 (method_len bytes),
 * the target at target_off whose raw form (as first seen) is target_len
 * bytes, and the version at version_off (version_len bytes). */
void wire_walk_start(struct wire_walk *w, const char *block, size_t block_len, size_t method_len,
		     size_t target_off, size_t target_len, size_t version_off, size_t version_len);
/* The next header field, in the order received. */
void wire_walk_field(struct wire_walk *w, size_t name_off, size_t name_len, size_t value_off, size_t value_len);
/* After the last field: the empty line must end the block. Returns w->err. */
const char *wire_walk_end(struct wire_walk *w);

/* Content-Length: 1*DIGIT, no sign, no list, no whitespace; the value must
 * fit in 64 bits. Returns NULL and sets *out, or a reason. */
const char *wire_content_length(const char *v, size_t n, uint64_t *out);

/* Transfer-Encoding: the only coding accepted is a single "chunked" (any
 * case). Returns 0 for that; 501 for a list naming a coding the gateway does
 * not implement (gzip, compress, deflate, identity, anything else); 400 for
 * anything malformed or ambiguous (chunked twice, chunked not last, empty
 * elements, whitespace around the value). *why gets the reason. */
int wire_transfer_encoding(const char *v, size_t n, const char **why);

/* Host: uri-host [ ":" port ] with a reg-name of letters, digits, '-', '.',
 * '_' and '~', or an IP literal in brackets; the port 1–5 digits. */
bool wire_host_ok(const char *v, size_t n);

/* Percent-decodes in[0..n) into out (room for n bytes); '+' becomes a space
 * when plus_is_space (query components). Returns the decoded length, or -1
 * for a '%' not followed by two hex digits. */
long wire_pct_decode(const char *in, size_t n, char *out, bool plus_is_space);

/* The request target as sent (origin-form, "/path[?query]"): no control
 * characters, space, DEL or '#'; every '%' followed by two hex digits; the
 * decoded path without NUL or other control characters, without an encoded
 * '/' or '\' (which would change where the path routes), without a raw '\'
 * and without "." or ".." segments; the decoded query without NUL; at most
 * WIRE_MAX_QUERY_PARAMS query parameters (empty ones between '&'s do not
 * count). Returns NULL, or a reason with *status set to 400 or 414. */
const char *wire_check_target(const char *t, size_t n, int *status);

#endif
