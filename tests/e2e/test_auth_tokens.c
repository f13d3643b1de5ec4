/* End-to-end tests of the gateway's own authorization server (SMART Backend
 * Services) and of bearer verification: a client assertion signed outside
 * the gateway, by the openssl command (RS384 with an RSA key, ES384 with a
 * P-384 key), is exchanged at POST /auth/token for an access token that
 * then opens /fhir; the negative matrix (expired, too far ahead, not yet
 * valid, wrong aud, unknown or mismatched iss, alg none, HS256 keyed with
 * the public key, tampered payload, unknown kid, replayed jti — also after
 * a restart — and scope escalation) fails closed, each counted in /metrics
 * by reason, and no token or assertion reaches the log. Access tokens are
 * also forged with the gateway's own key file (exp, nbf, aud, iss, typ) to
 * prove each claim is checked, not only the signature. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/crypto.h"
#include "e2e/harness.h"
#include "pgserver.h"

static char dir[64]; /* keys and scratch files */
static char rsa_jwk[1024], ec_jwk[512];

static size_t slurp(const char *path, uint8_t *buf, size_t cap)
{
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	size_t n = fread(buf, 1, cap, f);
	fclose(f);
	return n;
}

static void spit(const char *path, const char *text)
{
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void b64(const void *data, size_t len, char *out, size_t cap)
{
	assert_true(crypto_b64url_encode(data, len, out, cap) > 0);
}

/* The public JWKs of the test keys, from the openssl command's output. */
static void make_jwks(void)
{
	char path[128], line[2048];
	snprintf(path, sizeof path, "%s/mod.txt", dir);
	run_shell("openssl rsa -in %s/rsa.pem -noout -modulus > %s", dir, path);
	size_t n = slurp(path, (uint8_t *)line, sizeof line - 1);
	line[n] = '\0';
	const char *hex = strchr(line, '=') + 1;
	uint8_t mod[512];
	size_t ml = 0;
	for (; hex[0] && hex[1] && hex[0] != '\n'; hex += 2) {
		unsigned v;
		sscanf(hex, "%2x", &v);
		mod[ml++] = (uint8_t)v;
	}
	char nb[800];
	b64(mod, ml, nb, sizeof nb);
	snprintf(rsa_jwk, sizeof rsa_jwk, "{\"kty\":\"RSA\",\"kid\":\"r1\",\"e\":\"AQAB\",\"n\":\"%s\"}", nb);
	snprintf(path, sizeof path, "%s/ec.der", dir);
	run_shell("openssl pkey -in %s/ec.pem -pubout -outform DER -out %s", dir, path);
	uint8_t der[256];
	n = slurp(path, der, sizeof der);
	assert_true(n > 97);
	char x[80], y[80];
	b64(der + n - 96, 48, x, sizeof x);
	b64(der + n - 48, 48, y, sizeof y);
	snprintf(ec_jwk, sizeof ec_jwk, "{\"kty\":\"EC\",\"kid\":\"e1\",\"crv\":\"P-384\",\"x\":\"%s\",\"y\":\"%s\"}",
		 x, y);
}

static int setup(void **state)
{
	(void)state;
	if (!have_tool("openssl"))
		return 0;
	snprintf(dir, sizeof dir, "/tmp/cw-tok-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	harness_remove_at_exit(dir);
	char cmd[512];
	snprintf(cmd, sizeof cmd,
		 "openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out %s/rsa.pem 2>/dev/null && "
		 "openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out %s/other.pem 2>/dev/null && "
		 "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out %s/ec.pem 2>/dev/null",
		 dir, dir, dir);
	if (system(cmd) != 0)
		return -1;
	make_jwks();
	return 0;
}

static void needs_openssl(void)
{
	if (!dir[0])
		skip_because("the openssl command is not installed (the tests sign with it)");
}

/* DER ECDSA-Sig-Value → JWS R||S of half bytes each. */
static size_t der_to_raw(const uint8_t *der, size_t n, size_t half, uint8_t *out)
{
	size_t i = 2;
	if (der[1] & 0x80)
		i = 2 + (der[1] & 0x7f);
	memset(out, 0, 2 * half);
	for (int part = 0; part < 2; part++) {
		assert_int_equal(der[i], 0x02);
		size_t len = der[i + 1];
		const uint8_t *v = der + i + 2;
		while (len > half) {
			v++;
			len--;
		}
		memcpy(out + part * half + (half - len), v, len);
		i += 2 + der[i + 1];
	}
	assert_true(i <= n);
	return 2 * half;
}

/* A compact JWS of header and claims (JSON texts) signed by the openssl
 * command with key (a PEM file in dir): how = "RS384", "ES384", "ES256"
 * or "HS256" (HMAC keyed with the text of key, as the algorithm-confusion
 * attack does with a public key), or "none" (no signature). */
static char *sign(const char *how, const char *key, const char *header, const char *claims)
{
	char hb[1024], cb[4096];
	b64(header, strlen(header), hb, sizeof hb);
	b64(claims, strlen(claims), cb, sizeof cb);
	char *out = malloc(8192);
	snprintf(out, 8192, "%s.%s", hb, cb);
	if (!strcmp(how, "none")) {
		strcat(out, ".");
		return out;
	}
	char in[128], sigf[128];
	snprintf(in, sizeof in, "%s/input", dir);
	snprintf(sigf, sizeof sigf, "%s/sig", dir);
	spit(in, out);
	bool es = how[0] == 'E';
	const char *md = strstr(how, "384") ? "sha384" : "sha256";
	if (!strcmp(how, "HS256")) {
		char pub[128];
		snprintf(pub, sizeof pub, "%s/pub.pem", dir);
		run_shell("openssl pkey -in %s/%s -pubout -out %s && openssl dgst -sha256 -mac HMAC -macopt "
			  "hexkey:$(xxd -p "
			  "%s | tr -d '\\n') "
			  "-binary -out %s %s",
			  dir, key, pub, pub, sigf, in);
	} else {
		run_shell("openssl dgst -%s -sign %s/%s -out %s %s", md, dir, key, sigf, in);
	}
	uint8_t sig[1024], raw[128];
	size_t n = slurp(sigf, sig, sizeof sig);
	const uint8_t *use = sig;
	if (es) {
		n = der_to_raw(sig, n, strstr(how, "384") ? 48 : 32, raw);
		use = raw;
	}
	char sb[1500];
	b64(use, n, sb, sizeof sb);
	strcat(out, ".");
	strcat(out, sb);
	return out;
}

static long now_s(void) { return (long)time(NULL); }

/* Client assertion claims for the gateway g. */
static void assertion_claims(char *buf, size_t n, const struct gw *g, const char *iss, const char *sub, long exp,
			     const char *jti)
{
	snprintf(
		buf, n,
		"{\"iss\":\"%s\",\"sub\":\"%s\",\"aud\":\"http://127.0.0.1:%u/auth/token\",\"exp\":%ld,\"jti\":\"%s\"}",
		iss, sub, g->port, exp, jti);
}

static const char *form_hdr[] = {"Content-Type: application/x-www-form-urlencoded", NULL};

/* POST /auth/token with assertion and scope; returns the status, the body in r. */
static long token_request(const struct gw *g, const char *assertion, const char *scope, struct resp *r)
{
	char body[10000];
	snprintf(body, sizeof body,
		 "grant_type=client_credentials&client_assertion_type=urn%%3Aietf%%3Aparams%%3Aoauth%%3Aclient-"
		 "assertion-type"
		 "%%3Ajwt-bearer&client_assertion=%s%s%s",
		 assertion, scope ? "&scope=" : "", scope ? scope : "");
	assert_int_equal(http_do(g, "POST", "/auth/token", form_hdr, body, strlen(body), r), 0);
	return r->status;
}

static long refused(const struct gw *g, const char *reason) { return gw_auth_refused(g, reason); }

/* Starts a gateway with the two clients; data_dir and extra (a JSON
 * fragment spliced into the configuration) may be NULL. */
static void start_with(struct gw *g, const char *data_dir, const char *extra)
{
	char cfg[4096];
	int n = snprintf(cfg, sizeof cfg,
			 "\"auth\":{\"clients\":[{\"client_id\":\"backend\",\"jwks\":{\"keys\":[%s,%s]},"
			 "\"scopes\":\"system/Patient.rs system/Observation.rs\"},"
			 "{\"client_id\":\"portal\",\"patient\":\"p1\",\"jwks\":{\"keys\":[%s]},"
			 "\"scopes\":\"patient/Patient.rs\"}]}",
			 rsa_jwk, ec_jwk, ec_jwk);
	if (data_dir)
		n += snprintf(cfg + n, sizeof cfg - (size_t)n, ",\"data_dir\":\"%s\"", data_dir);
	if (extra)
		snprintf(cfg + n, sizeof cfg - (size_t)n, ",%s", extra);
	assert_int_equal(gw_start(g, cfg), 0);
}

static void start(struct gw *g, const char *data_dir) { start_with(g, data_dir, NULL); }

static char *access_token_from(const struct resp *r)
{
	cJSON *j = cJSON_Parse(r->body);
	assert_non_null(j);
	const cJSON *t = cJSON_GetObjectItem(j, "access_token");
	assert_true(cJSON_IsString(t));
	char *out = strdup(t->valuestring);
	cJSON_Delete(j);
	return out;
}

static long get_with(const struct gw *g, const char *path, const char *token, struct resp *r)
{
	char h[9000];
	snprintf(h, sizeof h, "Authorization: Bearer %s", token);
	const char *hdrs[] = {h, NULL};
	assert_int_equal(http_do(g, "GET", path, hdrs, NULL, 0, r), 0);
	return r->status;
}

static void client_credentials_with_rs384_and_es384(void **state)
{
	(void)state;
	needs_openssl();
	struct gw g;
	start(&g, NULL);
	struct resp r;
	char claims[1024];
	static const char *const kinds[][3] = {{"RS384", "rsa.pem", "r1"}, {"ES384", "ec.pem", "e1"}};
	for (size_t i = 0; i < 2; i++) {
		char header[128], jti[32];
		snprintf(header, sizeof header, "{\"alg\":\"%s\",\"kid\":\"%s\",\"typ\":\"JWT\"}", kinds[i][0],
			 kinds[i][2]);
		snprintf(jti, sizeof jti, "ok-%zu", i);
		assertion_claims(claims, sizeof claims, &g, "backend", "backend", now_s() + 240, jti);
		char *a = sign(kinds[i][0], kinds[i][1], header, claims);
		/* asked: one allowed scope and one beyond what the client may have */
		assert_int_equal(token_request(&g, a, "system%2FPatient.rs+system%2FPatient.cruds", &r), 200);
		cJSON *j = cJSON_Parse(r.body);
		assert_string_equal(cJSON_GetObjectItem(j, "token_type")->valuestring, "bearer");
		assert_int_equal(cJSON_GetObjectItem(j, "expires_in")->valueint, 300);
		assert_string_equal(cJSON_GetObjectItem(j, "scope")->valuestring, "system/Patient.rs");
		cJSON_Delete(j);
		char *tok = access_token_from(&r);
		resp_free(&r);
		assert_int_equal(get_with(&g, "/fhir/Patient", tok, &r), 200);
		resp_free(&r);
		/* reused: the same answer (from the verified-token cache) */
		assert_int_equal(get_with(&g, "/fhir/Patient", tok, &r), 200);
		resp_free(&r);
		char *log = gw_log(&g);
		assert_null(strstr(log, tok));
		assert_null(strstr(log, a));
		free(log);
		free(tok);
		free(a);
	}
	/* without a token: 401 */
	assert_int_equal(http_do(&g, "GET", "/fhir/Patient", NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 401);
	resp_free(&r);
	/* discovery */
	assert_int_equal(http_do(&g, "GET", "/fhir/.well-known/smart-configuration", NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 200);
	cJSON *j = cJSON_Parse(r.body);
	char want[128];
	snprintf(want, sizeof want, "http://127.0.0.1:%u/auth/token", g.port);
	assert_string_equal(cJSON_GetObjectItem(j, "token_endpoint")->valuestring, want);
	assert_non_null(strstr(r.body, "\"system/Observation.rs\""));
	assert_non_null(strstr(r.body, "\"ES384\""));
	assert_null(strstr(r.body, "HS256"));
	cJSON_Delete(j);
	resp_free(&r);
	assert_int_equal(gw_stop(&g, 5000), 0);
}

/* A client configured with a patient (auth.clients[].patient) gets it as
 * the launch context: in the token response and as the token's patient
 * claim, and its patient/ scope reaches that patient's compartment. */
static void a_clients_patient_is_its_launch_context(void **state)
{
	(void)state;
	needs_openssl();
	struct gw g;
	start(&g, NULL);
	struct resp r;
	char claims[1024];
	assertion_claims(claims, sizeof claims, &g, "portal", "portal", now_s() + 240, "launch-1");
	char *a = sign("ES384", "ec.pem", "{\"alg\":\"ES384\",\"kid\":\"e1\",\"typ\":\"JWT\"}", claims);
	assert_int_equal(token_request(&g, a, NULL, &r), 200);
	cJSON *j = cJSON_Parse(r.body);
	assert_string_equal(cJSON_GetObjectItem(j, "patient")->valuestring, "p1");
	assert_string_equal(cJSON_GetObjectItem(j, "scope")->valuestring, "patient/Patient.rs");
	cJSON_Delete(j);
	char *tok = access_token_from(&r);
	resp_free(&r);
	/* the claim, in the token's payload */
	const char *p = strchr(tok, '.') + 1;
	size_t plen = strcspn(p, ".");
	uint8_t payload[2048];
	long n = crypto_b64url_decode(p, plen, payload, sizeof payload - 1);
	assert_true(n > 0);
	payload[n] = '\0';
	assert_non_null(strstr((const char *)payload, "\"patient\":\"p1\""));
	/* accepted with its launch patient: nothing of p1 is stored, so a read
	 * is 404 and a search (confined to p1) finds nothing; without the
	 * patient the scope would grant nothing (403) */
	assert_int_equal(get_with(&g, "/fhir/Patient/p1", tok, &r), 404);
	resp_free(&r);
	assert_int_equal(get_with(&g, "/fhir/Patient", tok, &r), 200);
	assert_null(strstr(r.body, "\"entry\""));
	resp_free(&r);
	free(tok);
	free(a);
	assert_int_equal(gw_stop(&g, 5000), 0);
}

struct bad_assertion {
	const char *name, *how, *key, *header;
	const char *iss, *sub;
	long exp_delta;
	const char *aud; /* NULL: the right one */
	const char *reason;
	long status;
	const char *error;
};

static void client_assertion_negative_matrix(void **state)
{
	(void)state;
	needs_openssl();
	struct gw g;
	start(&g, NULL);
	static const struct bad_assertion cases[] = {
		{"expired", "RS384", "rsa.pem", NULL, "backend", "backend", -600, NULL, "expired", 401,
		 "invalid_client"},
		{"too far ahead", "RS384", "rsa.pem", NULL, "backend", "backend", 3600, NULL, "expired", 401,
		 "invalid_client"},
		{"wrong aud", "RS384", "rsa.pem", NULL, "backend", "backend", 120, "https://elsewhere.example/token",
		 "bad_audience", 401, "invalid_client"},
		{"unknown client", "RS384", "rsa.pem", NULL, "stranger", "stranger", 120, NULL, "unknown_client", 401,
		 "invalid_client"},
		{"iss is not sub", "RS384", "rsa.pem", NULL, "backend", "someone", 120, NULL, "unknown_client", 401,
		 "invalid_client"},
		{"alg none", "none", "rsa.pem", "{\"alg\":\"none\",\"kid\":\"r1\"}", "backend", "backend", 120, NULL,
		 "bad_alg", 401, "invalid_client"},
		{"HS256 keyed with the public key", "HS256", "rsa.pem", "{\"alg\":\"HS256\",\"kid\":\"r1\"}", "backend",
		 "backend", 120, NULL, "bad_alg", 401, "invalid_client"},
		{"another key under a known kid", "RS384", "other.pem", NULL, "backend", "backend", 120, NULL,
		 "bad_signature", 401, "invalid_client"},
		{"unknown kid", "RS384", "rsa.pem", "{\"alg\":\"RS384\",\"kid\":\"r9\"}", "backend", "backend", 120,
		 NULL, "unknown_kid", 401, "invalid_client"},
		{"alg of another key type", "ES384", "ec.pem", "{\"alg\":\"ES384\",\"kid\":\"r1\"}", "backend",
		 "backend", 120, NULL, "bad_alg", 401, "invalid_client"},
	};
	struct resp r;
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		const struct bad_assertion *c = &cases[i];
		char claims[1024], jti[32];
		snprintf(jti, sizeof jti, "bad-%zu", i);
		if (c->aud)
			snprintf(claims, sizeof claims,
				 "{\"iss\":\"%s\",\"sub\":\"%s\",\"aud\":\"%s\",\"exp\":%ld,\"jti\":\"%s\"}", c->iss,
				 c->sub, c->aud, now_s() + c->exp_delta, jti);
		else
			assertion_claims(claims, sizeof claims, &g, c->iss, c->sub, now_s() + c->exp_delta, jti);
		char *a = sign(c->how, c->key, c->header ? c->header : "{\"alg\":\"RS384\",\"kid\":\"r1\"}", claims);
		long before = refused(&g, c->reason);
		long st = token_request(&g, a, NULL, &r);
		if (st != c->status || !strstr(r.body, c->error))
			fail_msg("%s: %ld %s", c->name, st, r.body);
		resp_free(&r);
		if (refused(&g, c->reason) != before + 1)
			fail_msg("%s: not counted as %s", c->name, c->reason);
		free(a);
	}
	/* a tampered payload: signed, then a claim changed */
	char claims[1024];
	assertion_claims(claims, sizeof claims, &g, "backend", "backend", now_s() + 120, "tamper");
	char *a = sign("RS384", "rsa.pem", "{\"alg\":\"RS384\",\"kid\":\"r1\"}", claims);
	char *dot = strchr(a, '.');
	dot[3] = dot[3] == 'A' ? 'B' : 'A';
	assert_int_equal(token_request(&g, a, NULL, &r), 401);
	resp_free(&r);
	free(a);
	/* scope escalation: nothing asked for is allowed */
	assertion_claims(claims, sizeof claims, &g, "backend", "backend", now_s() + 120, "escalate");
	a = sign("RS384", "rsa.pem", "{\"alg\":\"RS384\",\"kid\":\"r1\"}", claims);
	long before = refused(&g, "bad_scope");
	assert_int_equal(token_request(&g, a, "system%2F*.cruds", &r), 400);
	assert_non_null(strstr(r.body, "invalid_scope"));
	resp_free(&r);
	assert_int_equal(refused(&g, "bad_scope"), before + 1);
	free(a);
	/* request errors */
	assert_int_equal(http_do(&g, "POST", "/auth/token", form_hdr, "grant_type=password", 19, &r), 0);
	assert_int_equal(r.status, 400);
	assert_non_null(strstr(r.body, "unsupported_grant_type"));
	resp_free(&r);
	assert_int_equal(http_do(&g, "POST", "/auth/token", form_hdr,
				 "grant_type=client_credentials&client_assertion_type=x", 52, &r),
			 0);
	assert_int_equal(r.status, 400);
	assert_non_null(strstr(r.body, "invalid_request"));
	resp_free(&r);
	assert_int_equal(gw_stop(&g, 5000), 0);
}

static void replayed_assertion_is_refused_also_after_a_restart(void **state)
{
	(void)state;
	needs_openssl();
	char data[128];
	snprintf(data, sizeof data, "%s/data", dir);
	struct gw g;
	start(&g, data);
	char claims[1024];
	assertion_claims(claims, sizeof claims, &g, "backend", "backend", now_s() + 200, "once-only");
	char *a = sign("ES384", "ec.pem", "{\"alg\":\"ES384\",\"kid\":\"e1\"}", claims);
	struct resp r;
	assert_int_equal(token_request(&g, a, NULL, &r), 200);
	resp_free(&r);
	long before = refused(&g, "replayed");
	assert_int_equal(token_request(&g, a, NULL, &r), 401);
	assert_non_null(strstr(r.body, "invalid_client"));
	resp_free(&r);
	assert_int_equal(refused(&g, "replayed"), before + 1);
	assert_int_equal(gw_stop(&g, 5000), 0);
	/* the port changes with the restart, so the aud of a new assertion with
	 * the same jti would differ: the replay record is by issuer and jti */
	struct gw g2;
	start(&g2, data);
	assertion_claims(claims, sizeof claims, &g2, "backend", "backend", now_s() + 200, "once-only");
	char *b = sign("ES384", "ec.pem", "{\"alg\":\"ES384\",\"kid\":\"e1\"}", claims);
	assert_int_equal(token_request(&g2, b, NULL, &r), 401);
	assert_non_null(strstr(r.body, "used before"));
	resp_free(&r);
	assert_int_equal(gw_stop(&g2, 5000), 0);
	free(a);
	free(b);
}

/* Two gateways on one PostgreSQL share the replay cache: an assertion
 * (its aud naming both token endpoints) taken by one is refused by the
 * other, whichever comes first; sent to both at once, it is taken once. */
static void replayed_assertion_is_refused_by_another_gateway(void **state)
{
	(void)state;
	needs_openssl();
	struct pg_server pg;
	assert_int_equal(harness_pg_gateways(&pg, NULL, 0, NULL), 0);
	char extra[512];
	harness_pg_store(extra, sizeof extra, &pg, NULL);
	struct gw g[2];
	start_with(&g[0], NULL, extra);
	start_with(&g[1], NULL, extra);
	char claims[1024], jti[32];
	struct resp r;
	for (int i = 0; i < 2; i++) {
		const struct gw *first = &g[i], *second = &g[1 - i];
		long before = refused(second, "replayed");
		snprintf(jti, sizeof jti, "shared-%d", i);
		snprintf(claims, sizeof claims,
			 "{\"iss\":\"backend\",\"sub\":\"backend\",\"aud\":[\"http://127.0.0.1:%u/auth/token\","
			 "\"http://127.0.0.1:%u/auth/token\"],\"exp\":%ld,\"jti\":\"%s\"}",
			 g[0].port, g[1].port, now_s() + 200, jti);
		char *a = sign("ES384", "ec.pem", "{\"alg\":\"ES384\",\"kid\":\"e1\"}", claims);
		assert_int_equal(token_request(first, a, NULL, &r), 200);
		resp_free(&r);
		assert_int_equal(token_request(second, a, NULL, &r), 401);
		assert_non_null(strstr(r.body, "used before"));
		resp_free(&r);
		assert_int_equal(refused(second, "replayed"), before + 1);
		free(a);
	}
	/* a fresh jti is still taken on either */
	assertion_claims(claims, sizeof claims, &g[1], "backend", "backend", now_s() + 200, "shared-fresh");
	char *b = sign("ES384", "ec.pem", "{\"alg\":\"ES384\",\"kid\":\"e1\"}", claims);
	assert_int_equal(token_request(&g[1], b, NULL, &r), 200);
	resp_free(&r);
	free(b);
	for (int i = 0; i < 2; i++)
		assert_int_equal(gw_stop(&g[i], 5000), 0);
	pg_server_stop(&pg);
}

/* Access tokens forged with the gateway's own signing key: every claim is
 * checked, not only the signature. */
static void bearer_tokens_are_checked_claim_by_claim(void **state)
{
	(void)state;
	needs_openssl();
	char data[128];
	snprintf(data, sizeof data, "%s/data2", dir);
	struct gw g;
	start(&g, data);
	/* the key the gateway generated, and its kid as published */
	run_shell("cp %s/auth-signing-key.pem %s/gw.pem", data, dir);
	struct resp r;
	assert_int_equal(http_do(&g, "GET", "/auth/jwks", NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 200);
	cJSON *jwks = cJSON_Parse(r.body);
	resp_free(&r);
	const cJSON *k0 = cJSON_GetArrayItem(cJSON_GetObjectItem(jwks, "keys"), 0);
	char kid[64], alg[16];
	snprintf(kid, sizeof kid, "%s", cJSON_GetObjectItem(k0, "kid")->valuestring);
	snprintf(alg, sizeof alg, "%s", cJSON_GetObjectItem(k0, "alg")->valuestring);
	assert_string_equal(alg, "ES256");
	cJSON_Delete(jwks);
	char iss[128], aud[128];
	snprintf(iss, sizeof iss, "http://127.0.0.1:%u/auth", g.port);
	snprintf(aud, sizeof aud, "http://127.0.0.1:%u/fhir", g.port);
	struct {
		const char *name, *typ, *iss, *aud;
		long exp, nbf;
		const char *kid, *how;
		const char *reason; /* NULL: accepted */
	} cases[] = {
		{"well formed", "at+jwt", iss, aud, 120, 0, kid, "ES256", NULL},
		{"expired", "at+jwt", iss, aud, -300, 0, kid, "ES256", "expired"},
		{"not yet valid", "at+jwt", iss, aud, 600, 300, kid, "ES256", "not_yet_valid"},
		{"wrong aud", "at+jwt", iss, "https://other.example/fhir", 120, 0, kid, "ES256", "bad_audience"},
		{"wrong iss", "at+jwt", "https://idp.example/auth", aud, 120, 0, kid, "ES256", "bad_issuer"},
		{"no at+jwt type", "JWT", iss, aud, 120, 0, kid, "ES256", "malformed"},
		{"unknown kid", "at+jwt", iss, aud, 120, 0, "nope", "ES256", "unknown_kid"},
		{"alg none", "at+jwt", iss, aud, 120, 0, kid, "none", "bad_alg"},
		{"HS256 keyed with the public key", "at+jwt", iss, aud, 120, 0, kid, "HS256", "bad_alg"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		char header[256], claims[1024], nbf[32] = "";
		const char *algname = !strcmp(cases[i].how, "ES256") ? "ES256" : cases[i].how;
		snprintf(header, sizeof header, "{\"alg\":\"%s\",\"kid\":\"%s\",\"typ\":\"%s\"}", algname, cases[i].kid,
			 cases[i].typ);
		if (cases[i].nbf)
			snprintf(nbf, sizeof nbf, ",\"nbf\":%ld", now_s() + cases[i].nbf);
		snprintf(claims, sizeof claims,
			 "{\"iss\":\"%s\",\"aud\":\"%s\",\"sub\":\"backend\",\"client_id\":\"backend\","
			 "\"scope\":\"system/Patient.rs\",\"exp\":%ld%s,\"jti\":\"f%zu\"}",
			 cases[i].iss, cases[i].aud, now_s() + cases[i].exp, nbf, i);
		char *t = sign(cases[i].how, "gw.pem", header, claims);
		long before = cases[i].reason ? refused(&g, cases[i].reason) : 0;
		long st = get_with(&g, "/fhir/Patient", t, &r);
		char hdr[256] = "";
		resp_header(&r, "WWW-Authenticate", hdr, sizeof hdr);
		resp_free(&r);
		if (!cases[i].reason) {
			if (st != 200)
				fail_msg("%s: %ld", cases[i].name, st);
		} else {
			if (st != 401 || !strstr(hdr, "error=\"invalid_token\""))
				fail_msg("%s: %ld '%s'", cases[i].name, st, hdr);
			if (refused(&g, cases[i].reason) != before + 1)
				fail_msg("%s: not counted as %s", cases[i].name, cases[i].reason);
		}
		/* a tampered copy of each accepted token */
		if (!cases[i].reason) {
			char *dot = strchr(t, '.');
			dot[5] = dot[5] == 'A' ? 'B' : 'A';
			long bs = refused(&g, "bad_signature") + refused(&g, "malformed");
			assert_int_equal(get_with(&g, "/fhir/Patient", t, &r), 401);
			resp_free(&r);
			assert_int_equal(refused(&g, "bad_signature") + refused(&g, "malformed"), bs + 1);
		}
		free(t);
	}
	char *log = gw_log(&g);
	assert_null(strstr(log, "eyJ"));
	free(log);
	assert_int_equal(gw_stop(&g, 5000), 0);
}

/* How many GET /auth/jwks the gateway g answered 200. */
static long jwks_served(const struct gw *g)
{
	struct resp r;
	assert_int_equal(http_do(g, "GET", "/metrics", NULL, NULL, 0, &r), 0);
	const char *key = "crosswalk_http_requests_total{route=\"/auth/jwks\",status=\"200\"} ";
	const char *p = strstr(r.body, key);
	long n = p ? strtol(p + strlen(key), NULL, 10) : 0;
	resp_free(&r);
	return n;
}

/* A second gateway trusts the first as an external issuer (auth.issuers):
 * it fetches the issuer's JWK Set over HTTP with libcurl, accepts its
 * tokens for the configured audience, and an unknown kid does not make it
 * refetch on every request. */
static void external_issuer_tokens_verified_through_its_jwks_url(void **state)
{
	(void)state;
	needs_openssl();
	char data[128];
	snprintf(data, sizeof data, "%s/issuer", dir);
	struct gw idp;
	start(&idp, data);
	run_shell("cp %s/auth-signing-key.pem %s/idp.pem", data, dir);
	char cfg[2048];
	snprintf(cfg, sizeof cfg,
		 "\"auth\":{\"issuers\":[{\"issuer\":\"http://127.0.0.1:%u/auth\",\"jwks_url\":\"http://127.0.0.1:%u/"
		 "auth/jwks\","
		 "\"audience\":\"http://127.0.0.1:%u/fhir\",\"purpose\":\"operations\"}]}",
		 idp.port, idp.port, idp.port);
	struct gw rs;
	assert_int_equal(gw_start(&rs, cfg), 0);
	assert_int_equal(jwks_served(&idp), 0);

	char claims[1024];
	assertion_claims(claims, sizeof claims, &idp, "backend", "backend", now_s() + 120, "ext-1");
	char *a = sign("RS384", "rsa.pem", "{\"alg\":\"RS384\",\"kid\":\"r1\"}", claims);
	struct resp r;
	assert_int_equal(token_request(&idp, a, "system%2FPatient.rs", &r), 200);
	char *tok = access_token_from(&r);
	resp_free(&r);
	free(a);
	assert_int_equal(get_with(&rs, "/fhir/Patient", tok, &r), 200);
	resp_free(&r);
	assert_int_equal(jwks_served(&idp), 1);
	/* reused: verified once, no second fetch */
	assert_int_equal(get_with(&rs, "/fhir/Patient", tok, &r), 200);
	resp_free(&r);
	assert_int_equal(jwks_served(&idp), 1);

	/* tokens of the issuer's key under kids it does not publish: refused,
	 * and the set is not fetched again for each of them */
	char iss[128], aud[128];
	snprintf(iss, sizeof iss, "http://127.0.0.1:%u/auth", idp.port);
	snprintf(aud, sizeof aud, "http://127.0.0.1:%u/fhir", idp.port);
	snprintf(claims, sizeof claims,
		 "{\"iss\":\"%s\",\"aud\":\"%s\",\"sub\":\"x\",\"scope\":\"system/Patient.rs\",\"exp\":%ld}", iss, aud,
		 now_s() + 120);
	char *unknown = sign("ES256", "idp.pem", "{\"alg\":\"ES256\",\"kid\":\"rotated\",\"typ\":\"at+jwt\"}", claims);
	long before = refused(&rs, "unknown_kid");
	for (int i = 0; i < 200; i++) {
		assert_int_equal(get_with(&rs, "/fhir/Patient", unknown, &r), 401);
		resp_free(&r);
	}
	assert_int_equal(refused(&rs, "unknown_kid"), before + 200);
	assert_int_equal(jwks_served(&idp), 1);
	free(unknown);

	/* the algorithm comes from the key: HS256 keyed with the public key fails */
	char *hs = sign("HS256", "idp.pem", "{\"alg\":\"HS256\",\"typ\":\"at+jwt\"}", claims);
	before = refused(&rs, "bad_alg");
	assert_int_equal(get_with(&rs, "/fhir/Patient", hs, &r), 401);
	resp_free(&r);
	assert_int_equal(refused(&rs, "bad_alg"), before + 1);
	free(hs);
	/* another audience */
	struct gw other;
	snprintf(cfg, sizeof cfg,
		 "\"auth\":{\"issuers\":[{\"issuer\":\"http://127.0.0.1:%u/auth\",\"jwks_url\":\"http://127.0.0.1:%u/"
		 "auth/jwks\","
		 "\"audience\":\"https://somewhere.example/fhir\"}]}",
		 idp.port, idp.port);
	assert_int_equal(gw_start(&other, cfg), 0);
	before = refused(&other, "bad_audience");
	assert_int_equal(get_with(&other, "/fhir/Patient", tok, &r), 401);
	resp_free(&r);
	assert_int_equal(refused(&other, "bad_audience"), before + 1);
	free(tok);
	assert_int_equal(gw_stop(&other, 5000), 0);
	assert_int_equal(gw_stop(&rs, 5000), 0);
	assert_int_equal(gw_stop(&idp, 5000), 0);
}

/* A token for client backend with scope (URL-encoded), by an RS384 assertion. */
static char *token_for(const struct gw *g, const char *scope, const char *jti)
{
	char claims[1024];
	assertion_claims(claims, sizeof claims, g, "backend", "backend", now_s() + 120, jti);
	char *a = sign("RS384", "rsa.pem", "{\"alg\":\"RS384\",\"kid\":\"r1\"}", claims);
	struct resp r;
	assert_int_equal(token_request(g, a, scope, &r), 200);
	char *tok = access_token_from(&r);
	resp_free(&r);
	free(a);
	return tok;
}

static long call_with(const struct gw *g, const char *method, const char *path, const char *token, const char *body,
		      struct resp *r)
{
	char h[9000];
	snprintf(h, sizeof h, "Authorization: Bearer %s", token);
	const char *hdrs[] = {h, "Content-Type: application/fhir+json", NULL};
	assert_int_equal(http_do(g, method, path, hdrs, body, body ? strlen(body) : 0, r), 0);
	return r->status;
}

/* Each interaction needs its letter of the scope on its type; what is not
 * checked type by type (/plugins, chains outside a search) needs every
 * permission on every type; /metrics, /outbox and /console/api/ need
 * system/crosswalk.admin unless asked from loopback without credentials;
 * the console's files are public. */
static void scopes_are_enforced_per_interaction(void **state)
{
	(void)state;
	needs_openssl();
	struct gw g;
	start(&g, NULL);
	char *tok = token_for(&g, "system%2FPatient.rs+system%2FObservation.rs", "scope-1");
	static const char pat[] = "{\"resourceType\":\"Patient\",\"id\":\"p1\"}";
	static const struct {
		const char *method, *path, *body;
		long status;
		const char *names; /* the missing scope the 403 names */
	} cases[] = {
		{"GET", "/fhir/Patient", NULL, 200, NULL},
		{"GET", "/fhir/Patient/nope", NULL, 404, NULL},
		{"GET", "/fhir/Patient/nope/_history", NULL, 404, NULL},
		{"GET", "/fhir/Patient/_history", NULL, 200, NULL},
		{"POST", "/fhir/Patient/_search", "", 200, NULL},
		{"GET", "/fhir/Observation?code=x", NULL, 200, NULL},
		{"POST", "/fhir/Patient", pat, 403, "system/Patient.c"},
		{"PUT", "/fhir/Patient/p1", pat, 403, "system/Patient.u"},
		{"DELETE", "/fhir/Patient/p1", NULL, 403, "system/Patient.d"},
		{"PATCH", "/fhir/Patient/p1", "[]", 403, "system/Patient.u"},
		{"DELETE", "/fhir/Patient?name=x", NULL, 403, "system/Patient.ds"},
		{"GET", "/fhir/Encounter", NULL, 403, "system/Encounter.s"},
		{"GET", "/fhir/Encounter/e1", NULL, 403, "system/Encounter.r"},
		{"GET", "/fhir/_history", NULL, 403, "system/*.s"},
		/* includes leave out what may not be read (test_scopes); a chain
		 * needs search on the type it passes through */
		{"GET", "/fhir/Patient?_revinclude=Encounter:subject", NULL, 200, NULL},
		{"GET", "/fhir/Observation?_include=Observation:subject", NULL, 200, NULL},
		{"GET", "/fhir/Observation?encounter.status=x", NULL, 403, "system/Encounter.s"},
		{"PUT", "/fhir/Patient?organization.name=x", pat, 403, "system/*.cruds"},
		{"POST", "/fhir",
		 "{\"resourceType\":\"Bundle\",\"type\":\"transaction\",\"entry\":[{\"request\":{\"method\":"
		 "\"DELETE\",\"url\":\"Patient/p1\"}}]}",
		 403, "system/Patient.d"},
		{"GET", "/plugins", NULL, 403, "system/*.cruds"},
		{"GET", "/metrics", NULL, 403, "system/crosswalk.admin"},
		{"GET", "/outbox", NULL, 403, "system/crosswalk.admin"},
		{"GET", "/console/api/series", NULL, 403, "system/crosswalk.admin"},
		/* the console's files hold no data: any caller gets them */
		{"GET", "/console", NULL, 200, NULL},
		{"GET", "/console/app.js", NULL, 200, NULL},
	};
	struct resp r;
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		long before = refused(&g, "insufficient_scope");
		long st = call_with(&g, cases[i].method, cases[i].path, tok, cases[i].body, &r);
		if (st != cases[i].status || (cases[i].names && !strstr(r.body, cases[i].names)))
			fail_msg("%s %s: %ld %s", cases[i].method, cases[i].path, st, r.body);
		if (cases[i].status == 403) {
			assert_non_null(strstr(r.body, "\"forbidden\""));
			assert_int_equal(refused(&g, "insufficient_scope"), before + 1);
		}
		resp_free(&r);
	}
	/* nothing was written by the refused requests */
	assert_int_equal(http_do(&g, "GET", "/fhir/Patient/p1", NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 401);
	resp_free(&r);
	assert_int_equal(call_with(&g, "GET", "/fhir/Patient/p1", tok, NULL, &r), 404);
	resp_free(&r);
	/* $validate needs any valid token */
	assert_int_equal(call_with(&g, "POST", "/fhir/Patient/$validate", tok, pat, &r), 200);
	resp_free(&r);
	free(tok);
	assert_int_equal(gw_stop(&g, 5000), 0);

	/* a client with every scope and the admin scope */
	char cfg[4096];
	snprintf(cfg, sizeof cfg,
		 "\"auth\":{\"clients\":[{\"client_id\":\"backend\",\"jwks\":{\"keys\":[%s]},"
		 "\"scopes\":\"system/*.cruds system/crosswalk.admin\"}]}",
		 rsa_jwk);
	assert_int_equal(gw_start(&g, cfg), 0);
	tok = token_for(&g, NULL, "scope-2");
	assert_int_equal(call_with(&g, "PUT", "/fhir/Patient/p1", tok, pat, &r), 201);
	resp_free(&r);
	assert_int_equal(call_with(&g, "GET", "/fhir/Patient?_revinclude=Encounter:subject", tok, NULL, &r), 200);
	resp_free(&r);
	assert_int_equal(call_with(&g, "GET", "/metrics", tok, NULL, &r), 200);
	resp_free(&r);
	assert_int_equal(call_with(&g, "GET", "/console/api/series", tok, NULL, &r), 200);
	resp_free(&r);
	assert_int_equal(call_with(&g, "DELETE", "/fhir/Patient/p1", tok, NULL, &r), 200);
	resp_free(&r);
	free(tok);
	assert_int_equal(gw_stop(&g, 5000), 0);
}

/* One request with X-Request-Id rid and, when token is not NULL, the token. */
static long call_rid(const struct gw *g, const char *method, const char *path, const char *token, const char *rid,
		     struct resp *r)
{
	char h[9000], id[128];
	snprintf(h, sizeof h, "Authorization: Bearer %s", token ? token : "");
	snprintf(id, sizeof id, "X-Request-Id: %s", rid);
	const char *hdrs[] = {id, token ? h : NULL, NULL};
	assert_int_equal(http_do(g, method, path, hdrs, NULL, 0, r), 0);
	return r->status;
}

/* The AuditEvent in events naming X-Request-Id rid, or with event type
 * code type when rid is NULL. */
static const cJSON *audit_find(const cJSON *events, const char *rid, const char *type)
{
	const cJSON *e;
	cJSON_ArrayForEach(e, events)
	{
		const cJSON *ev = cJSON_GetObjectItem(e, "resource");
		if (!rid) {
			const char *code =
				cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(ev, "type"), "code"));
			if (code && !strcmp(code, type))
				return ev;
			continue;
		}
		const cJSON *en;
		cJSON_ArrayForEach(en, cJSON_GetObjectItem(ev, "entity"))
		{
			const cJSON *ident = cJSON_GetObjectItem(cJSON_GetObjectItem(en, "what"), "identifier");
			const char *v = cJSON_GetStringValue(cJSON_GetObjectItem(ident, "value"));
			if (v && !strcmp(v, rid))
				return ev;
		}
	}
	return NULL;
}

/* The requesting agent's client id ("" when anonymous). */
static const char *audit_client(const cJSON *ev)
{
	const cJSON *who = cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(ev, "agent"), 0), "who");
	const char *v = cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(who, "identifier"), "value"));
	return v ? v : "";
}

/* The access record names who asked — the client of a token, of a refused
 * request (403) and of a token's issuance; no one for a request without
 * credentials (401) — and AuditEvents are read with
 * system/crosswalk.admin only, never written over REST. */
static void access_record_names_the_client_and_needs_the_admin_scope(void **state)
{
	(void)state;
	needs_openssl();
	char data[128];
	snprintf(data, sizeof data, "%s/audit-XXXXXX", dir);
	assert_non_null(mkdtemp(data));
	struct gw g;
	start(&g, data);
	char *tok = token_for(&g, "system%2FPatient.rs", "audit-1");
	struct resp r;
	assert_int_equal(call_rid(&g, "GET", "/fhir/Patient/nope", NULL, "a-401", &r), 401);
	resp_free(&r);
	assert_int_equal(call_rid(&g, "GET", "/fhir/Encounter", tok, "a-403", &r), 403);
	resp_free(&r);
	assert_int_equal(call_rid(&g, "GET", "/fhir/Patient/nope", tok, "a-read", &r), 404);
	resp_free(&r);
	/* every scope on Patient is not enough to read the record */
	assert_int_equal(call_rid(&g, "GET", "/fhir/AuditEvent", tok, "a-audit", &r), 403);
	assert_non_null(strstr(r.body, "system/crosswalk.admin"));
	resp_free(&r);
	free(tok);
	assert_int_equal(gw_stop(&g, 5000), 0);

	char cfg[4096];
	snprintf(cfg, sizeof cfg,
		 "\"auth\":{\"clients\":[{\"client_id\":\"backend\",\"jwks\":{\"keys\":[%s]},"
		 "\"scopes\":\"system/*.cruds system/crosswalk.admin\"}]},\"data_dir\":\"%s\"",
		 rsa_jwk, data);
	assert_int_equal(gw_start(&g, cfg), 0);
	tok = token_for(&g, NULL, "audit-2");
	assert_int_equal(call_rid(&g, "GET", "/fhir/AuditEvent?_count=1000", tok, "a-list", &r), 200);
	cJSON *b = cJSON_Parse(r.body);
	resp_free(&r);
	const cJSON *events = cJSON_GetObjectItem(b, "entry");
	const cJSON *ev = audit_find(events, "a-401", NULL);
	assert_non_null(ev);
	assert_string_equal(audit_client(ev), "");
	assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(ev, "outcome")), "4");
	ev = audit_find(events, "a-403", NULL);
	assert_non_null(ev);
	assert_string_equal(audit_client(ev), "backend");
	assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(ev, "outcome")), "4");
	assert_non_null(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(ev, "agent"), 0), "purposeOfUse"));
	ev = audit_find(events, "a-read", NULL);
	assert_non_null(ev);
	assert_string_equal(audit_client(ev), "backend");
	ev = audit_find(events, "a-audit", NULL);
	assert_non_null(ev);
	assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(ev, "outcome")), "4");
	/* the token's issuance (DICOM 110114 User Authentication) */
	ev = audit_find(events, NULL, "110114");
	assert_non_null(ev);
	assert_string_equal(audit_client(ev), "backend");
	assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(ev, "outcome")), "0");
	cJSON_Delete(b);
	/* the admin reads the record but cannot change it */
	static const char ae[] = "{\"resourceType\":\"AuditEvent\",\"id\":\"x\"}";
	assert_int_equal(call_with(&g, "PUT", "/fhir/AuditEvent/x", tok, ae, &r), 405);
	resp_free(&r);
	assert_int_equal(call_with(&g, "DELETE", "/fhir/AuditEvent/x", tok, NULL, &r), 405);
	resp_free(&r);
	free(tok);
	assert_int_equal(gw_stop(&g, 5000), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(client_credentials_with_rs384_and_es384),
		cmocka_unit_test(a_clients_patient_is_its_launch_context),
		cmocka_unit_test(client_assertion_negative_matrix),
		cmocka_unit_test(replayed_assertion_is_refused_also_after_a_restart),
		cmocka_unit_test(replayed_assertion_is_refused_by_another_gateway),
		cmocka_unit_test(bearer_tokens_are_checked_claim_by_claim),
		cmocka_unit_test(external_issuer_tokens_verified_through_its_jwks_url),
		cmocka_unit_test(scopes_are_enforced_per_interaction),
		cmocka_unit_test(access_record_names_the_client_and_needs_the_admin_scope),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
