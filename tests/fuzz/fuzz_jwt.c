/* libFuzzer harness: what core/auth reads from a client before any key is
 * involved — a compact JWS (auth/jwt.h) and SMART scopes (auth/scope.h).
 * Input: a token, optionally followed by a NUL and two scope lists
 * separated by another NUL (granted, asked).
 * Properties:
 *  - jwt_parse accepts only the four asymmetric algorithms: an accepted
 *    token has an RS256/RS384/ES256/ES384 alg, a non-empty signature and a
 *    signing input that ends right before the last '.';
 *  - base64url decoding is strict: encoding what was decoded gives the text
 *    back;
 *  - every scope scope_intersect grants is in what was asked (or, when
 *    nothing was asked, in what was granted) and covered by a granted one. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth/jwt.h"
#include "auth/scope.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool covered(const char *granted, const char *one, size_t n)
{
	for (const char *g = granted; *g;) {
		while (*g == ' ')
			g++;
		size_t gn = strcspn(g, " ");
		if (gn && scope_covers(g, gn, one, n))
			return true;
		g += gn;
	}
	return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > JWT_MAX_LEN + 4096)
		return 0;
	char *buf = malloc(size + 3);
	if (!buf)
		return 0;
	memcpy(buf, data, size);
	buf[size] = buf[size + 1] = buf[size + 2] = '\0';
	const char *parts[3] = {buf, "", ""};
	for (size_t i = 0, k = 1; i < size && k < 3; i++)
		if (buf[i] == '\0')
			parts[k++] = buf + i + 1;
	const char *token = parts[0], *granted = parts[1], *asked = parts[2];

	struct jwt t;
	enum metrics_auth_refusal why;
	if (jwt_parse(token, &t, &why) == 0) {
		if (t.alg == CRYPTO_ALG_INVALID || t.sig_len == 0 || t.input != token || token[t.input_len] != '.' ||
		    strchr(token + t.input_len + 1, '.'))
			abort();
		const char *sig = token + t.input_len + 1;
		char back[JWT_MAX_LEN + 8];
		if (!crypto_b64url_encode(t.sig, t.sig_len, back, sizeof back) || strcmp(back, sig) != 0)
			abort();
		jwt_release(&t);
	}

	char out[2048];
	long n = scope_intersect(granted, asked, out, sizeof out);
	if (n > 0) {
		const char *src = *asked ? asked : granted;
		for (const char *p = out; *p;) {
			size_t len = strcspn(p, " ");
			bool in_src = false;
			for (const char *q = src; *q && !in_src;) {
				while (*q == ' ')
					q++;
				size_t ql = strcspn(q, " ");
				in_src = ql == len && !memcmp(q, p, len);
				q += ql;
			}
			if (!in_src || !covered(granted, p, len))
				abort();
			p += len;
			while (*p == ' ')
				p++;
		}
	}
	free(buf);
	return 0;
}
