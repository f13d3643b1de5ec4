#include "auth/jwt.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/fjson.h"

static cJSON *decode_json(const char *b64, size_t len)
{
	char buf[JWT_MAX_LEN];
	long n = crypto_b64url_decode(b64, len, (uint8_t *)buf, sizeof buf - 1);
	if (n <= 0)
		return NULL;
	struct fjson_limits lim;
	fjson_limits_default(&lim);
	lim.max_depth = 16;
	lim.max_members = 256;
	lim.memory_budget = 1 << 20;
	struct fjson_error err;
	cJSON *j = fjson_parse(buf, (size_t)n, &lim, &err);
	if (j && !cJSON_IsObject(j)) {
		cJSON_Delete(j);
		return NULL;
	}
	return j;
}

int jwt_parse(const char *token, struct jwt *out, enum metrics_auth_refusal *why)
{
	memset(out, 0, sizeof *out);
	*why = METRICS_AUTH_MALFORMED;
	size_t len = strnlen(token, JWT_MAX_LEN + 1);
	if (len > JWT_MAX_LEN)
		return -1;
	const char *d1 = memchr(token, '.', len);
	const char *d2 = d1 ? memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - token)) : NULL;
	if (!d1 || !d2 || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - token)) || d1 == token || d2 == d1 + 1)
		return -1;
	out->header = decode_json(token, (size_t)(d1 - token));
	if (!out->header)
		return -1;
	const cJSON *alg = cJSON_GetObjectItemCaseSensitive(out->header, "alg");
	const cJSON *kid = cJSON_GetObjectItemCaseSensitive(out->header, "kid");
	const cJSON *typ = cJSON_GetObjectItemCaseSensitive(out->header, "typ");
	out->alg = cJSON_IsString(alg) ? crypto_alg_parse(alg->valuestring) : CRYPTO_ALG_INVALID;
	out->kid = cJSON_IsString(kid) ? kid->valuestring : NULL;
	out->typ = cJSON_IsString(typ) ? typ->valuestring : NULL;
	if (out->alg == CRYPTO_ALG_INVALID || cJSON_GetObjectItemCaseSensitive(out->header, "crit")) {
		/* none, HMAC, anything else: refused before the rest is read */
		*why = METRICS_AUTH_BAD_ALG;
		jwt_release(out);
		return -1;
	}
	out->claims = decode_json(d1 + 1, (size_t)(d2 - d1 - 1));
	long sl = out->claims ? crypto_b64url_decode(d2 + 1, len - (size_t)(d2 + 1 - token), out->sig, sizeof out->sig)
			      : -1;
	if (sl <= 0) {
		jwt_release(out);
		return -1;
	}
	out->sig_len = (size_t)sl;
	out->input = token;
	out->input_len = (size_t)(d2 - token);
	if ((kid && !cJSON_IsString(kid)) || (typ && !cJSON_IsString(typ))) {
		jwt_release(out);
		return -1;
	}
	return 0;
}

void jwt_release(struct jwt *t)
{
	cJSON_Delete(t->header);
	cJSON_Delete(t->claims);
	t->header = t->claims = NULL;
}

bool jwt_time(const struct jwt *t, const char *name, long long *out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(t->claims, name);
	if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble < 0 || v->valuedouble > 1e15)
		return false;
	*out = (long long)v->valuedouble;
	return true;
}

const char *jwt_string(const struct jwt *t, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(t->claims, name);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

bool jwt_audience_is(const struct jwt *t, const char *want)
{
	const cJSON *aud = cJSON_GetObjectItemCaseSensitive(t->claims, "aud");
	if (cJSON_IsString(aud))
		return !strcmp(aud->valuestring, want);
	for (const cJSON *a = cJSON_IsArray(aud) ? aud->child : NULL; a; a = a->next)
		if (cJSON_IsString(a) && !strcmp(a->valuestring, want))
			return true;
	return false;
}

int keyset_from_jwks(const cJSON *jwks, bool strict, struct keyset *out, char *why, size_t whylen)
{
	memset(out, 0, sizeof *out);
	const cJSON *keys = cJSON_GetObjectItemCaseSensitive(jwks, "keys");
	size_t n = cJSON_IsArray(keys) ? (size_t)cJSON_GetArraySize(keys) : 0;
	if (!n || n > 64) {
		snprintf(why, whylen, "a JWK Set needs \"keys\": 1 to 64 keys");
		return -1;
	}
	out->v = calloc(n, sizeof *out->v);
	if (!out->v) {
		snprintf(why, whylen, "out of memory");
		return -1;
	}
	size_t i = 0;
	for (const cJSON *k = keys->child; k; k = k->next, i++) {
		const cJSON *use = cJSON_GetObjectItemCaseSensitive(k, "use");
		const cJSON *kid = cJSON_GetObjectItemCaseSensitive(k, "kid");
		char w[200];
		struct crypto_key *key = NULL;
		if (use && !(cJSON_IsString(use) && !strcmp(use->valuestring, "sig")))
			snprintf(w, sizeof w, "\"use\" must be \"sig\"");
		else if (kid && !cJSON_IsString(kid))
			snprintf(w, sizeof w, "\"kid\" must be a string");
		else
			key = crypto_key_from_jwk(k, w, sizeof w);
		if (!key) {
			if (!strict)
				continue;
			snprintf(why, whylen, "keys[%zu]: %s", i, w);
			keyset_release(out);
			return -1;
		}
		struct keyset_entry *e = &out->v[out->n++];
		e->key = key;
		e->kid = kid ? strdup(kid->valuestring) : NULL;
		if (kid && !e->kid) {
			snprintf(why, whylen, "out of memory");
			keyset_release(out);
			return -1;
		}
	}
	if (!out->n) {
		snprintf(why, whylen, "no usable key (RSA of 2048 bits or more, EC P-256 or P-384)");
		keyset_release(out);
		return -1;
	}
	return 0;
}

void keyset_release(struct keyset *ks)
{
	for (size_t i = 0; i < ks->n; i++) {
		free(ks->v[i].kid);
		crypto_key_free(ks->v[i].key);
	}
	free(ks->v);
	memset(ks, 0, sizeof *ks);
}

const struct crypto_key *keyset_find(const struct keyset *ks, const char *kid, enum crypto_alg alg, bool *kid_known)
{
	*kid_known = false;
	const struct keyset_entry *found = NULL;
	if (kid) {
		for (size_t i = 0; i < ks->n && !found; i++)
			if (ks->v[i].kid && !strcmp(ks->v[i].kid, kid))
				found = &ks->v[i];
	} else if (ks->n == 1) {
		found = &ks->v[0];
	}
	if (!found)
		return NULL;
	*kid_known = true;
	return crypto_key_fits(found->key, alg) ? found->key : NULL;
}

int jwt_verify(const struct jwt *t, const struct crypto_key *k)
{
	return crypto_jws_verify(k, t->alg, t->input, t->input_len, t->sig, t->sig_len);
}

static char *b64_json(const cJSON *j)
{
	char *text = cJSON_PrintUnformatted(j);
	if (!text)
		return NULL;
	size_t n = strlen(text), cap = n / 3 * 4 + 8;
	char *out = malloc(cap);
	if (out && !crypto_b64url_encode(text, n, out, cap)) {
		free(out);
		out = NULL;
	}
	cJSON_free(text);
	return out;
}

char *jwt_sign(const struct crypto_key *k, enum crypto_alg alg, const char *kid, const char *typ, const cJSON *claims)
{
	cJSON *h = cJSON_CreateObject();
	if (!h || !cJSON_AddStringToObject(h, "alg", crypto_alg_name(alg)) ||
	    (kid && !cJSON_AddStringToObject(h, "kid", kid)) || (typ && !cJSON_AddStringToObject(h, "typ", typ))) {
		cJSON_Delete(h);
		return NULL;
	}
	char *hb = b64_json(h), *cb = b64_json(claims);
	cJSON_Delete(h);
	char *out = NULL;
	uint8_t sig[1024];
	if (hb && cb) {
		size_t hl = strlen(hb), cl = strlen(cb);
		out = malloc(hl + cl + 2 + sizeof sig * 4 / 3 + 8);
		if (out) {
			memcpy(out, hb, hl);
			out[hl] = '.';
			memcpy(out + hl + 1, cb, cl);
			long sl = crypto_jws_sign(k, alg, out, hl + 1 + cl, sig, sizeof sig);
			out[hl + 1 + cl] = '.';
			if (sl <= 0 ||
			    !crypto_b64url_encode(sig, (size_t)sl, out + hl + cl + 2, sizeof sig * 4 / 3 + 8)) {
				free(out);
				out = NULL;
			}
		}
	}
	free(hb);
	free(cb);
	return out;
}
