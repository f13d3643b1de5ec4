#include "base/crypto.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

const uint8_t crypto_ns_dns[16] = {0x6b, 0xa7, 0xb8, 0x10, 0x9d, 0xad, 0x11, 0xd1,
				   0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8};
const uint8_t crypto_ns_url[16] = {0x6b, 0xa7, 0xb8, 0x11, 0x9d, 0xad, 0x11, 0xd1,
				   0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8};

int crypto_init(void)
{
	/* with the configuration: loading it later, on whichever thread first
	 * fetches an algorithm, leaves state on that thread */
	return OPENSSL_init_crypto(OPENSSL_INIT_LOAD_CONFIG, NULL) == 1 ? 0 : -1;
}

static int digest(const EVP_MD *md, const void *a, size_t alen, const void *b, size_t blen, uint8_t *out)
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	if (!c)
		return -1;
	unsigned int n = 0;
	int ok = EVP_DigestInit_ex(c, md, NULL) == 1 && EVP_DigestUpdate(c, a, alen) == 1 &&
		 (blen == 0 || EVP_DigestUpdate(c, b, blen) == 1) && EVP_DigestFinal_ex(c, out, &n) == 1;
	EVP_MD_CTX_free(c);
	return ok ? 0 : -1;
}

int crypto_sha1(const void *data, size_t len, uint8_t out[CRYPTO_SHA1_LEN])
{
	return digest(EVP_sha1(), data, len, NULL, 0, out);
}

int crypto_sha256(const void *data, size_t len, uint8_t out[CRYPTO_SHA256_LEN])
{
	return digest(EVP_sha256(), data, len, NULL, 0, out);
}

int crypto_sha256_pair(const void *a, size_t alen, const void *b, size_t blen, uint8_t out[CRYPTO_SHA256_LEN])
{
	return digest(EVP_sha256(), a, alen, b, blen, out);
}

int crypto_uuid5(const uint8_t ns[16], const void *name, size_t len, uint8_t out[16])
{
	uint8_t h[CRYPTO_SHA1_LEN];
	if (digest(EVP_sha1(), ns, 16, name, len, h) != 0)
		return -1;
	memcpy(out, h, 16);
	out[6] = (uint8_t)((out[6] & 0x0f) | 0x50); /* version 5 */
	out[8] = (uint8_t)((out[8] & 0x3f) | 0x80); /* RFC 4122 variant */
	return 0;
}

void crypto_uuid_format(const uint8_t u[16], char out[CRYPTO_UUID_TEXT])
{
	static const char hex[] = "0123456789abcdef";
	size_t p = 0;
	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[p++] = '-';
		out[p++] = hex[u[i] >> 4];
		out[p++] = hex[u[i] & 15];
	}
	out[p] = '\0';
}

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

bool crypto_uuid_parse(const char *t, uint8_t out[16])
{
	if (strlen(t) != 36)
		return false;
	int b = 0;
	for (int i = 0; i < 36;) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (t[i] != '-')
				return false;
			i++;
			continue;
		}
		int hi = hexval(t[i]), lo = hexval(t[i + 1]);
		if (hi < 0 || lo < 0)
			return false;
		out[b++] = (uint8_t)(hi << 4 | lo);
		i += 2;
	}
	return b == 16;
}

/* An encrypted key fails instead of prompting on the terminal. */
static int no_passphrase(char *buf, int size, int rwflag, void *ud)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)ud;
	return -1;
}

static FILE *open_pem(const char *file, char *why, size_t whylen)
{
	FILE *f = fopen(file, "r");
	char msg[128];
	if (!f)
		snprintf(why, whylen, "cannot read %s: %s", file, strerror_r(errno, msg, sizeof msg));
	return f;
}

static X509 *read_certificate(const char *file, char *why, size_t whylen)
{
	FILE *f = open_pem(file, why, whylen);
	if (!f)
		return NULL;
	X509 *x = PEM_read_X509(f, NULL, no_passphrase, NULL);
	fclose(f);
	ERR_clear_error();
	if (!x)
		snprintf(why, whylen, "%s holds no PEM certificate", file);
	return x;
}

int crypto_check_certificate(const char *file, char *why, size_t whylen)
{
	X509 *x = read_certificate(file, why, whylen);
	X509_free(x);
	return x ? 0 : -1;
}

int crypto_check_private_key(const char *cert_file, const char *key_file, char *why, size_t whylen)
{
	X509 *x = read_certificate(cert_file, why, whylen);
	if (!x)
		return -1;
	FILE *f = open_pem(key_file, why, whylen);
	EVP_PKEY *k = f ? PEM_read_PrivateKey(f, NULL, no_passphrase, NULL) : NULL;
	if (f)
		fclose(f);
	int rc = -1;
	if (f && !k)
		snprintf(why, whylen, "%s holds no unencrypted PEM private key", key_file);
	else if (k && X509_check_private_key(x, k) != 1)
		snprintf(why, whylen, "the key in %s does not match the certificate in %s", key_file, cert_file);
	else if (k)
		rc = 0;
	ERR_clear_error();
	EVP_PKEY_free(k);
	X509_free(x);
	return rc;
}

int crypto_cert_identity(const void *der, size_t len, char sha256_hex[65], char *subject, size_t subjectlen)
{
	const unsigned char *p = der;
	X509 *x = d2i_X509(NULL, &p, (long)len);
	uint8_t md[CRYPTO_SHA256_LEN];
	if (!x || crypto_sha256(der, len, md) != 0) {
		X509_free(x);
		ERR_clear_error();
		return -1;
	}
	static const char hex[] = "0123456789abcdef";
	for (size_t i = 0; i < sizeof md; i++) {
		sha256_hex[2 * i] = hex[md[i] >> 4];
		sha256_hex[2 * i + 1] = hex[md[i] & 15];
	}
	sha256_hex[64] = '\0';
	int rc = -1;
	BIO *b = BIO_new(BIO_s_mem());
	if (b && X509_NAME_print_ex(b, X509_get_subject_name(x), 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) >= 0) {
		char *data = NULL;
		long n = BIO_get_mem_data(b, &data);
		if (n >= 0 && (size_t)n < subjectlen) {
			memcpy(subject, data, (size_t)n);
			subject[n] = '\0';
			rc = 0;
		}
	}
	BIO_free(b);
	X509_free(x);
	ERR_clear_error();
	return rc;
}

/* ------------------------------------------------------------------ JWS */

static const char b64url_chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* base64 of in with the alphabet chars (64 characters), '=' padding when pad. */
static size_t b64_encode(const char *chars, bool pad, const void *in, size_t len, char *out, size_t cap)
{
	const uint8_t *p = in;
	size_t need = pad ? (len + 2) / 3 * 4 : len / 3 * 4 + (len % 3 ? len % 3 + 1 : 0);
	if (need + 1 > cap)
		return 0;
	size_t o = 0;
	for (size_t i = 0; i < len; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < len ? (uint32_t)p[i + 1] << 8 : 0) |
			     (i + 2 < len ? p[i + 2] : 0);
		out[o++] = chars[v >> 18 & 63];
		out[o++] = chars[v >> 12 & 63];
		if (i + 1 < len)
			out[o++] = chars[v >> 6 & 63];
		else if (pad)
			out[o++] = '=';
		if (i + 2 < len)
			out[o++] = chars[v & 63];
		else if (pad)
			out[o++] = '=';
	}
	out[o] = '\0';
	return o;
}

size_t crypto_b64url_encode(const void *in, size_t len, char *out, size_t cap)
{
	return b64_encode(b64url_chars, false, in, len, out, cap);
}

size_t crypto_b64_encode(const void *in, size_t len, char *out, size_t cap)
{
	return b64_encode("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", true, in, len, out, cap);
}

static int b64url_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	return c == '-' ? 62 : c == '_' ? 63 : -1;
}

long crypto_b64url_decode(const char *text, size_t len, uint8_t *out, size_t cap)
{
	if (len % 4 == 1)
		return -1;
	size_t o = 0;
	uint32_t acc = 0;
	int bits = 0;
	for (size_t i = 0; i < len; i++) {
		int v = b64url_value(text[i]);
		if (v < 0)
			return -1;
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (o >= cap)
				return -1;
			out[o++] = (uint8_t)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	if (acc != 0) /* bits left over must be zero: one text per value */
		return -1;
	return (long)o;
}

enum crypto_alg crypto_alg_parse(const char *name)
{
	if (!name)
		return CRYPTO_ALG_INVALID;
	if (!strcmp(name, "RS256"))
		return CRYPTO_RS256;
	if (!strcmp(name, "RS384"))
		return CRYPTO_RS384;
	if (!strcmp(name, "ES256"))
		return CRYPTO_ES256;
	if (!strcmp(name, "ES384"))
		return CRYPTO_ES384;
	return CRYPTO_ALG_INVALID;
}

const char *crypto_alg_name(enum crypto_alg alg)
{
	switch (alg) {
	case CRYPTO_RS256:
		return "RS256";
	case CRYPTO_RS384:
		return "RS384";
	case CRYPTO_ES256:
		return "ES256";
	case CRYPTO_ES384:
		return "ES384";
	default:
		return "invalid";
	}
}

enum key_kind { KEY_RSA, KEY_P256, KEY_P384 };

struct crypto_key {
	EVP_PKEY *pkey;
	enum key_kind kind;
	bool priv;
};

void crypto_key_free(struct crypto_key *k)
{
	if (!k)
		return;
	EVP_PKEY_free(k->pkey);
	free(k);
}

/* Wraps pkey (consumed) after checking its type and size. */
static struct crypto_key *wrap_key(EVP_PKEY *pkey, bool priv, char *why, size_t whylen)
{
	struct crypto_key *k = NULL;
	enum key_kind kind;
	if (EVP_PKEY_is_a(pkey, "RSA")) {
		if (EVP_PKEY_get_bits(pkey) < 2048) {
			snprintf(why, whylen, "RSA keys must have at least 2048 bits");
			goto out;
		}
		kind = KEY_RSA;
	} else if (EVP_PKEY_is_a(pkey, "EC")) {
		char group[64] = "";
		size_t gl = 0;
		if (EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group, &gl) != 1) {
			snprintf(why, whylen, "an EC key without a named curve");
			goto out;
		}
		if (!strcmp(group, "prime256v1") || !strcmp(group, "P-256"))
			kind = KEY_P256;
		else if (!strcmp(group, "secp384r1") || !strcmp(group, "P-384"))
			kind = KEY_P384;
		else {
			snprintf(why, whylen, "EC keys must be on P-256 or P-384");
			goto out;
		}
	} else {
		snprintf(why, whylen, "only RSA and EC keys are accepted");
		goto out;
	}
	k = calloc(1, sizeof *k);
	if (!k) {
		snprintf(why, whylen, "out of memory");
		goto out;
	}
	*k = (struct crypto_key){pkey, kind, priv};
	pkey = NULL;
out:
	EVP_PKEY_free(pkey);
	ERR_clear_error();
	return k;
}

/* The bytes of a base64url JWK member into a new BIGNUM; NULL when absent
 * or malformed. */
static BIGNUM *jwk_bn(const cJSON *jwk, const char *name, size_t max, size_t *len)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(jwk, name);
	if (!cJSON_IsString(v))
		return NULL;
	uint8_t buf[1024];
	size_t tl = strlen(v->valuestring);
	long n = tl <= 1400 ? crypto_b64url_decode(v->valuestring, tl, buf, sizeof buf) : -1;
	if (n <= 0 || (size_t)n > max)
		return NULL;
	if (len)
		*len = (size_t)n;
	return BN_bin2bn(buf, (int)n, NULL);
}

struct crypto_key *crypto_key_from_jwk(const cJSON *jwk, char *why, size_t whylen)
{
	const cJSON *kty = cJSON_GetObjectItemCaseSensitive(jwk, "kty");
	if (!cJSON_IsObject(jwk) || !cJSON_IsString(kty)) {
		snprintf(why, whylen, "a JWK needs \"kty\"");
		return NULL;
	}
	if (cJSON_GetObjectItemCaseSensitive(jwk, "d")) {
		snprintf(why, whylen, "a private key (\"d\") has no place here: give the public key only");
		return NULL;
	}
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	EVP_PKEY *pkey = NULL;
	BIGNUM *a = NULL, *b = NULL;
	uint8_t point[1 + 2 * 66];
	const char *type = NULL;
	snprintf(why, whylen, "a malformed %s JWK", kty->valuestring);
	if (!bld)
		goto out;
	if (!strcmp(kty->valuestring, "RSA")) {
		type = "RSA";
		a = jwk_bn(jwk, "n", 1024, NULL);
		b = jwk_bn(jwk, "e", 8, NULL);
		if (!a || !b || !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, a) ||
		    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, b))
			goto out;
	} else if (!strcmp(kty->valuestring, "EC")) {
		type = "EC";
		const cJSON *crv = cJSON_GetObjectItemCaseSensitive(jwk, "crv");
		size_t size = cJSON_IsString(crv) && !strcmp(crv->valuestring, "P-256")   ? 32
			      : cJSON_IsString(crv) && !strcmp(crv->valuestring, "P-384") ? 48
											  : 0;
		if (!size) {
			snprintf(why, whylen, "EC keys must be on P-256 or P-384 (\"crv\")");
			goto out;
		}
		size_t xl = 0, yl = 0;
		a = jwk_bn(jwk, "x", size, &xl);
		b = jwk_bn(jwk, "y", size, &yl);
		if (!a || !b || xl != size || yl != size)
			goto out;
		point[0] = 0x04;
		BN_bn2binpad(a, point + 1, (int)size);
		BN_bn2binpad(b, point + 1 + size, (int)size);
		if (!OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME,
						     size == 32 ? "prime256v1" : "secp384r1", 0) ||
		    !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point, 1 + 2 * size))
			goto out;
	} else {
		snprintf(why, whylen, "only RSA and EC keys are accepted (kty \"%.16s\")", kty->valuestring);
		goto out;
	}
	params = OSSL_PARAM_BLD_to_param(bld);
	ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
	if (!params || !ctx || EVP_PKEY_fromdata_init(ctx) != 1 ||
	    EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1)
		goto out;
	if (!strcmp(type, "EC")) {
		/* the point must lie on the curve */
		EVP_PKEY_CTX *check = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
		int ok = check && EVP_PKEY_public_check(check) == 1;
		EVP_PKEY_CTX_free(check);
		if (!ok) {
			snprintf(why, whylen, "the EC point is not on the curve");
			EVP_PKEY_free(pkey);
			pkey = NULL;
			goto out;
		}
	}
out:;
	struct crypto_key *k = pkey ? wrap_key(pkey, false, why, whylen) : NULL;
	BN_free(a);
	BN_free(b);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	EVP_PKEY_CTX_free(ctx);
	ERR_clear_error();
	return k;
}

struct crypto_key *crypto_key_load_private(const char *file, char *why, size_t whylen)
{
	FILE *f = open_pem(file, why, whylen);
	if (!f)
		return NULL;
	EVP_PKEY *pkey = PEM_read_PrivateKey(f, NULL, no_passphrase, NULL);
	fclose(f);
	ERR_clear_error();
	if (!pkey) {
		snprintf(why, whylen, "%s holds no unencrypted PEM private key", file);
		return NULL;
	}
	char w[128];
	struct crypto_key *k = wrap_key(pkey, true, w, sizeof w);
	if (!k)
		snprintf(why, whylen, "%s: %s", file, w);
	return k;
}

struct crypto_key *crypto_key_generate(const char *file, char *why, size_t whylen)
{
	EVP_PKEY *pkey = EVP_EC_gen("P-256");
	char msg[128];
	if (!pkey) {
		snprintf(why, whylen, "cannot generate a key");
		ERR_clear_error();
		return NULL;
	}
	int fd = open(file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
	if (!f) {
		snprintf(why, whylen, "cannot create %s: %s", file, strerror_r(errno, msg, sizeof msg));
		if (fd >= 0)
			close(fd);
		EVP_PKEY_free(pkey);
		return NULL;
	}
	int ok = PEM_write_PrivateKey(f, pkey, NULL, NULL, 0, NULL, NULL) == 1;
	ok &= fflush(f) == 0 && fsync(fileno(f)) == 0;
	ok &= fclose(f) == 0;
	if (!ok) {
		snprintf(why, whylen, "cannot write %s", file);
		unlink(file);
		EVP_PKEY_free(pkey);
		ERR_clear_error();
		return NULL;
	}
	return wrap_key(pkey, true, why, whylen);
}

enum crypto_alg crypto_key_default_alg(const struct crypto_key *k, bool rsa384)
{
	return k->kind == KEY_RSA    ? (rsa384 ? CRYPTO_RS384 : CRYPTO_RS256)
	       : k->kind == KEY_P256 ? CRYPTO_ES256
				     : CRYPTO_ES384;
}

bool crypto_key_fits(const struct crypto_key *k, enum crypto_alg alg)
{
	switch (alg) {
	case CRYPTO_RS256:
	case CRYPTO_RS384:
		return k->kind == KEY_RSA;
	case CRYPTO_ES256:
		return k->kind == KEY_P256;
	case CRYPTO_ES384:
		return k->kind == KEY_P384;
	default:
		return false;
	}
}

bool crypto_key_is_private(const struct crypto_key *k) { return k->priv; }

static int add_bn_member(cJSON *o, const char *name, const EVP_PKEY *pkey, const char *param, size_t pad)
{
	BIGNUM *bn = NULL;
	uint8_t buf[1024];
	char text[1400];
	if (EVP_PKEY_get_bn_param(pkey, param, &bn) != 1)
		return -1;
	int n = pad ? BN_bn2binpad(bn, buf, (int)pad) : BN_bn2bin(bn, buf);
	BN_free(bn);
	if (n <= 0 || !crypto_b64url_encode(buf, (size_t)n, text, sizeof text))
		return -1;
	return cJSON_AddStringToObject(o, name, text) ? 0 : -1;
}

/* The members of the canonical JWK (RFC 7638), in lexicographic order. */
static cJSON *canonical_jwk(const struct crypto_key *k)
{
	cJSON *o = cJSON_CreateObject();
	int rc = !o;
	if (!rc && k->kind == KEY_RSA) {
		rc |= add_bn_member(o, "e", k->pkey, OSSL_PKEY_PARAM_RSA_E, 0);
		rc |= !cJSON_AddStringToObject(o, "kty", "RSA");
		rc |= add_bn_member(o, "n", k->pkey, OSSL_PKEY_PARAM_RSA_N, 0);
	} else if (!rc) {
		size_t size = k->kind == KEY_P256 ? 32 : 48;
		rc |= !cJSON_AddStringToObject(o, "crv", k->kind == KEY_P256 ? "P-256" : "P-384");
		rc |= !cJSON_AddStringToObject(o, "kty", "EC");
		rc |= add_bn_member(o, "x", k->pkey, OSSL_PKEY_PARAM_EC_PUB_X, size);
		rc |= add_bn_member(o, "y", k->pkey, OSSL_PKEY_PARAM_EC_PUB_Y, size);
	}
	ERR_clear_error();
	if (rc) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

cJSON *crypto_key_to_jwk(const struct crypto_key *k, const char *kid, enum crypto_alg alg)
{
	cJSON *o = canonical_jwk(k);
	if (o && kid && !cJSON_AddStringToObject(o, "kid", kid))
		goto fail;
	if (o && alg != CRYPTO_ALG_INVALID && !cJSON_AddStringToObject(o, "alg", crypto_alg_name(alg)))
		goto fail;
	if (o && !cJSON_AddStringToObject(o, "use", "sig"))
		goto fail;
	return o;
fail:
	cJSON_Delete(o);
	return NULL;
}

int crypto_key_thumbprint(const struct crypto_key *k, char out[44])
{
	cJSON *o = canonical_jwk(k);
	char *text = o ? cJSON_PrintUnformatted(o) : NULL;
	cJSON_Delete(o);
	uint8_t md[CRYPTO_SHA256_LEN];
	int rc =
		text && crypto_sha256(text, strlen(text), md) == 0 && crypto_b64url_encode(md, sizeof md, out, 44) == 43
			? 0
			: -1;
	cJSON_free(text);
	return rc;
}

static const EVP_MD *alg_md(enum crypto_alg alg)
{
	return alg == CRYPTO_RS256 || alg == CRYPTO_ES256 ? EVP_sha256() : EVP_sha384();
}

int crypto_jws_verify(const struct crypto_key *k, enum crypto_alg alg, const void *input, size_t len,
		      const uint8_t *sig, size_t siglen)
{
	if (!crypto_key_fits(k, alg))
		return -1;
	uint8_t der[160];
	const uint8_t *use = sig;
	size_t use_len = siglen;
	if (k->kind != KEY_RSA) {
		/* JWS: R||S, each the curve's size; OpenSSL: DER */
		size_t half = k->kind == KEY_P256 ? 32 : 48;
		if (siglen != 2 * half)
			return -1;
		ECDSA_SIG *es = ECDSA_SIG_new();
		BIGNUM *r = BN_bin2bn(sig, (int)half, NULL), *s = BN_bin2bn(sig + half, (int)half, NULL);
		if (!es || !r || !s || ECDSA_SIG_set0(es, r, s) != 1) {
			ECDSA_SIG_free(es);
			BN_free(r);
			BN_free(s);
			return -1;
		}
		uint8_t *p = der;
		int n = i2d_ECDSA_SIG(es, NULL);
		if (n <= 0 || (size_t)n > sizeof der || i2d_ECDSA_SIG(es, &p) != n) {
			ECDSA_SIG_free(es);
			return -1;
		}
		ECDSA_SIG_free(es);
		use = der;
		use_len = (size_t)n;
	}
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	int ok = c && EVP_DigestVerifyInit(c, NULL, alg_md(alg), NULL, k->pkey) == 1 &&
		 EVP_DigestVerify(c, use, use_len, input, len) == 1;
	EVP_MD_CTX_free(c);
	ERR_clear_error();
	return ok ? 0 : -1;
}

long crypto_jws_sign(const struct crypto_key *k, enum crypto_alg alg, const void *input, size_t len, uint8_t *sig,
		     size_t cap)
{
	if (!k->priv || !crypto_key_fits(k, alg))
		return -1;
	uint8_t buf[1024];
	size_t n = sizeof buf;
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	int ok = c && EVP_DigestSignInit(c, NULL, alg_md(alg), NULL, k->pkey) == 1 &&
		 EVP_DigestSign(c, buf, &n, input, len) == 1;
	EVP_MD_CTX_free(c);
	long out = -1;
	if (ok && k->kind == KEY_RSA) {
		if (n <= cap) {
			memcpy(sig, buf, n);
			out = (long)n;
		}
	} else if (ok) {
		size_t half = k->kind == KEY_P256 ? 32 : 48;
		const uint8_t *p = buf;
		ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)n);
		const BIGNUM *r = NULL, *s = NULL;
		if (es && 2 * half <= cap) {
			ECDSA_SIG_get0(es, &r, &s);
			if (BN_bn2binpad(r, sig, (int)half) == (int)half &&
			    BN_bn2binpad(s, sig + half, (int)half) == (int)half)
				out = (long)(2 * half);
		}
		ECDSA_SIG_free(es);
	}
	ERR_clear_error();
	return out;
}

int crypto_random(void *out, size_t len) { return RAND_bytes(out, (int)len) == 1 ? 0 : -1; }
