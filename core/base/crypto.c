#include "base/crypto.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

const uint8_t crypto_ns_dns[16] = {0x6b, 0xa7, 0xb8, 0x10, 0x9d, 0xad, 0x11, 0xd1,
				   0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8};
const uint8_t crypto_ns_url[16] = {0x6b, 0xa7, 0xb8, 0x11, 0x9d, 0xad, 0x11, 0xd1,
				   0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8};

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
