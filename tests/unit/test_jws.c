/* The JWS/JWK primitives of base/crypto: base64url strictness, the
 * algorithms that exist (none and HMAC do not), JWK import with its
 * refusals, the RFC 7638 thumbprint test vector, signatures that verify and
 * the ways they must not (tampered input, another key, an algorithm that
 * does not fit the key). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/crypto.h"

static void base64url_is_strict(void **state)
{
	(void)state;
	char out[64];
	assert_int_equal(crypto_b64url_encode("\xfb\xff", 2, out, sizeof out), 3);
	assert_string_equal(out, "-_8");
	uint8_t buf[16];
	assert_int_equal(crypto_b64url_decode("-_8", 3, buf, sizeof buf), 2);
	assert_memory_equal(buf, "\xfb\xff", 2);
	assert_int_equal(crypto_b64url_decode("+/8", 3, buf, sizeof buf), -1);  /* base64, not base64url */
	assert_int_equal(crypto_b64url_decode("-_8=", 4, buf, sizeof buf), -1); /* padding */
	assert_int_equal(crypto_b64url_decode("-_9", 3, buf, sizeof buf), -1);  /* bits left over */
	assert_int_equal(crypto_b64url_decode("A", 1, buf, sizeof buf), -1);
	assert_int_equal(crypto_b64url_decode("AAAAAAAA", 8, buf, 5), -1); /* does not fit */
	assert_int_equal(crypto_b64url_encode("abc", 3, out, 4), 0);       /* no room for the NUL */
}

static void only_asymmetric_algorithms_exist(void **state)
{
	(void)state;
	static const char *const refused[] = {"none", "None", "HS256", "HS384", "HS512", "PS256", "rs256", "", "ES512"};
	for (size_t i = 0; i < sizeof refused / sizeof *refused; i++)
		assert_int_equal(crypto_alg_parse(refused[i]), CRYPTO_ALG_INVALID);
	assert_int_equal(crypto_alg_parse("RS384"), CRYPTO_RS384);
	assert_int_equal(crypto_alg_parse("ES384"), CRYPTO_ES384);
	assert_string_equal(crypto_alg_name(CRYPTO_ES256), "ES256");
}

/* RFC 7638 §3.1 */
static const char rfc7638_n[] = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc"
				"_BJECPebWKRXjBZCiFV4n3oknj"
				"hMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_"
				"FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQ"
				"vRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_"
				"xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKn"
				"qDKgw";

static void thumbprint_matches_rfc7638(void **state)
{
	(void)state;
	char text[1024], why[256];
	snprintf(text, sizeof text,
		 "{\"kty\":\"RSA\",\"n\":\"%s\",\"e\":\"AQAB\",\"alg\":\"RS256\",\"kid\":\"2011-04-29\"}", rfc7638_n);
	cJSON *jwk = cJSON_Parse(text);
	struct crypto_key *k = crypto_key_from_jwk(jwk, why, sizeof why);
	assert_non_null(k);
	char tp[44];
	assert_int_equal(crypto_key_thumbprint(k, tp), 0);
	assert_string_equal(tp, "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
	assert_false(crypto_key_is_private(k));
	assert_true(crypto_key_fits(k, CRYPTO_RS256));
	assert_true(crypto_key_fits(k, CRYPTO_RS384));
	assert_false(crypto_key_fits(k, CRYPTO_ES256));
	/* the exported JWK carries the same n and e */
	cJSON *back = crypto_key_to_jwk(k, "x", CRYPTO_RS384);
	assert_string_equal(cJSON_GetObjectItem(back, "n")->valuestring, rfc7638_n);
	assert_string_equal(cJSON_GetObjectItem(back, "e")->valuestring, "AQAB");
	assert_string_equal(cJSON_GetObjectItem(back, "alg")->valuestring, "RS384");
	cJSON_Delete(back);
	crypto_key_free(k);
	cJSON_Delete(jwk);
}

static void jwk_refusals(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"{\"kty\":\"oct\",\"k\":\"c2VjcmV0\"}",
		"{\"kty\":\"RSA\",\"n\":\"AQAB\",\"e\":\"AQAB\"}", /* far too small */
		"{\"kty\":\"EC\",\"crv\":\"P-521\",\"x\":\"AA\",\"y\":\"AA\"}",
		"{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\","
		"\"y\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"}", /* not on the curve */
		"{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"AAAA\",\"y\":\"AAAA\",\"d\":\"AAAA\"}",
		"{\"n\":\"AQAB\"}",
	};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		char why[256] = "";
		cJSON *j = cJSON_Parse(bad[i]);
		struct crypto_key *k = crypto_key_from_jwk(j, why, sizeof why);
		if (k)
			fail_msg("case %zu accepted", i);
		assert_true(why[0] != '\0');
		cJSON_Delete(j);
	}
}

static void signatures_verify_and_fail_closed(void **state)
{
	(void)state;
	char dir[] = "/tmp/cw-jws-XXXXXX", file[64], why[256];
	assert_non_null(mkdtemp(dir));
	snprintf(file, sizeof file, "%s/key.pem", dir);
	struct crypto_key *k = crypto_key_generate(file, why, sizeof why);
	assert_non_null(k);
	assert_null(crypto_key_generate(file, why, sizeof why)); /* never overwritten */
	struct crypto_key *again = crypto_key_load_private(file, why, sizeof why);
	assert_non_null(again);
	char t1[44], t2[44];
	assert_int_equal(crypto_key_thumbprint(k, t1), 0);
	assert_int_equal(crypto_key_thumbprint(again, t2), 0);
	assert_string_equal(t1, t2);
	assert_int_equal(crypto_key_default_alg(k, false), CRYPTO_ES256);

	const char input[] = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0";
	uint8_t sig[512];
	long n = crypto_jws_sign(k, CRYPTO_ES256, input, strlen(input), sig, sizeof sig);
	assert_int_equal(n, 64);
	/* the public half alone verifies it */
	cJSON *jwk = crypto_key_to_jwk(k, NULL, CRYPTO_ALG_INVALID);
	struct crypto_key *pub = crypto_key_from_jwk(jwk, why, sizeof why);
	cJSON_Delete(jwk);
	assert_non_null(pub);
	assert_int_equal(crypto_jws_verify(pub, CRYPTO_ES256, input, strlen(input), sig, (size_t)n), 0);
	assert_int_equal(crypto_jws_sign(pub, CRYPTO_ES256, input, strlen(input), sig, sizeof sig), -1);
	/* tampered input, tampered signature, wrong length, wrong algorithm */
	char other[sizeof input];
	memcpy(other, input, sizeof input);
	other[5] ^= 1;
	assert_int_equal(crypto_jws_verify(pub, CRYPTO_ES256, other, strlen(other), sig, (size_t)n), -1);
	sig[10] ^= 1;
	assert_int_equal(crypto_jws_verify(pub, CRYPTO_ES256, input, strlen(input), sig, (size_t)n), -1);
	sig[10] ^= 1;
	assert_int_equal(crypto_jws_verify(pub, CRYPTO_ES256, input, strlen(input), sig, (size_t)n - 1), -1);
	assert_int_equal(crypto_jws_verify(pub, CRYPTO_ES384, input, strlen(input), sig, (size_t)n), -1);
	assert_int_equal(crypto_jws_verify(pub, CRYPTO_RS256, input, strlen(input), sig, (size_t)n), -1);
	assert_int_equal(crypto_jws_verify(pub, CRYPTO_ALG_INVALID, input, strlen(input), sig, (size_t)n), -1);
	/* another key */
	char file2[80];
	snprintf(file2, sizeof file2, "%s/key2.pem", dir);
	struct crypto_key *k2 = crypto_key_generate(file2, why, sizeof why);
	assert_non_null(k2);
	assert_int_equal(crypto_jws_verify(k2, CRYPTO_ES256, input, strlen(input), sig, (size_t)n), -1);
	crypto_key_free(k);
	crypto_key_free(k2);
	crypto_key_free(again);
	crypto_key_free(pub);
	unlink(file);
	unlink(file2);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(base64url_is_strict),
		cmocka_unit_test(only_asymmetric_algorithms_exist),
		cmocka_unit_test(thumbprint_matches_rfc7638),
		cmocka_unit_test(jwk_refusals),
		cmocka_unit_test(signatures_verify_and_fail_closed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
