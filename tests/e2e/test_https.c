/* End-to-end tests of HTTPS on the front door: TLS 1.2 and 1.3 served and
 * older versions refused, links built with https, the certificate, key and
 * client CA checked at start (exit 2 naming the key and the file), the rule
 * that an address beyond loopback needs authentication and TLS, and mutual
 * TLS: a verified client certificate mapped to a configured client by its
 * SHA-256 fingerprint or its subject, anything else answered 401 with a
 * Bearer challenge and counted in /metrics by reason.
 * The test PKI is made at start in a temporary directory by
 * tests/upstream/pki.sh (the openssl command); without it the tests skip. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "e2e/harness.h"

static char pki[64]; /* the test PKI's directory */

static const char *pem(char *buf, size_t n, const char *name)
{
	snprintf(buf, n, "%s/%s", pki, name);
	return buf;
}

static int setup(void **state)
{
	(void)state;
	return harness_make_pki(pki, sizeof pki); /* no openssl: no PKI, the tests skip */
}

static void needs_pki(void)
{
	if (!pki[0])
		skip_because("the openssl command is not installed (tests/upstream/pki.sh makes the test PKI with it)");
}

/* The "tls" member for the server certificate, with a client CA when ca is
 * not NULL (a file name in the PKI). */
static void tls_json(char *buf, size_t n, const char *client_ca)
{
	if (client_ca)
		snprintf(buf, n,
			 "\"tls\":{\"cert_file\":\"%s/server.pem\",\"key_file\":\"%s/server.key\","
			 "\"client_ca_file\":\"%s/%s\"}",
			 pki, pki, pki, client_ca);
	else
		snprintf(buf, n, "\"tls\":{\"cert_file\":\"%s/server.pem\",\"key_file\":\"%s/server.key\"}", pki, pki);
}

/* Trusts the test CA; shows the certificate NAME.pem with NAME.key when
 * name is not NULL. */
static struct tls_files trust(const char *name)
{
	struct tls_files t = {0};
	pem(t.ca_file, sizeof t.ca_file, "ca.pem");
	if (name) {
		snprintf(t.client_cert, sizeof t.client_cert, "%s/%s.pem", pki, name);
		snprintf(t.client_key, sizeof t.client_key, "%s/%s.key", pki, name);
	}
	return t;
}

/* The SHA-256 fingerprint of pki/name.pem as the openssl command prints it
 * ("AB:CD:..."), which is how an operator copies it into the configuration. */
static void fingerprint(const char *name, char out[128])
{
	char cmd[256];
	snprintf(cmd, sizeof cmd, "openssl x509 -in '%s/%s.pem' -noout -fingerprint -sha256", pki, name);
	FILE *p = popen(cmd, "r");
	assert_non_null(p);
	char line[256] = "";
	assert_non_null(fgets(line, sizeof line, p));
	pclose(p);
	const char *eq = strchr(line, '=');
	assert_non_null(eq);
	snprintf(out, 128, "%.*s", (int)strcspn(eq + 1, "\r\n"), eq + 1);
	assert_int_equal(strlen(out), 95);
}

static long refused(const struct gw *g, const char *reason)
{
	struct resp r;
	assert_int_equal(http_do(g, "GET", "/metrics", NULL, NULL, 0, &r), -1); /* plain HTTP is no more */
	resp_free(&r);
	struct tls_files t = trust(NULL);
	assert_int_equal(https_do(g, &t, "GET", "/metrics", NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 200);
	char key[128];
	snprintf(key, sizeof key, "crosswalk_auth_refused_total{reason=\"%s\"} ", reason);
	const char *p = strstr(r.body, key);
	long n = p ? strtol(p + strlen(key), NULL, 10) : -1;
	resp_free(&r);
	return n;
}

static void https_serves_tls12_and_tls13_only(void **state)
{
	(void)state;
	needs_pki();
	char tls[512];
	tls_json(tls, sizeof tls, NULL);
	struct gw g;
	assert_int_equal(gw_start(&g, tls), 0);
	struct resp r;
	static const long versions[][2] = {
		{CURL_SSLVERSION_TLSv1_2, CURL_SSLVERSION_MAX_TLSv1_2},
		{CURL_SSLVERSION_TLSv1_3, CURL_SSLVERSION_MAX_TLSv1_3},
	};
	for (size_t i = 0; i < 2; i++) {
		struct tls_files t = trust(NULL);
		t.tls_min = versions[i][0];
		t.tls_max = versions[i][1];
		assert_int_equal(https_do(&g, &t, "GET", "/healthz", NULL, NULL, 0, &r), 0);
		assert_int_equal(r.status, 200);
		resp_free(&r);
	}
	static const long old[][2] = {
		{CURL_SSLVERSION_TLSv1_0, CURL_SSLVERSION_MAX_TLSv1_0},
		{CURL_SSLVERSION_TLSv1_1, CURL_SSLVERSION_MAX_TLSv1_1},
	};
	for (size_t i = 0; i < 2; i++) {
		struct tls_files t = trust(NULL);
		t.tls_min = old[i][0];
		t.tls_max = old[i][1];
		assert_int_equal(https_do(&g, &t, "GET", "/healthz", NULL, NULL, 0, &r), -1);
		resp_free(&r);
	}
	/* plain HTTP to the TLS port gets no HTTP answer */
	assert_int_equal(http_do(&g, "GET", "/healthz", NULL, NULL, 0, &r), -1);
	resp_free(&r);
	/* links name the scheme clients use */
	struct tls_files t = trust(NULL);
	assert_int_equal(https_do(&g, &t, "GET", "/fhir/Patient", NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body, "\"url\":\"https://127.0.0.1:"));
	resp_free(&r);
	/* without auth configured on loopback: no client certificate needed, as before */
	assert_int_equal(gw_stop(&g, 5000), 0);
}

static void tls_files_are_checked_at_start(void **state)
{
	(void)state;
	needs_pki();
	char cfg[1024], out[4096];
	snprintf(cfg, sizeof cfg, "\"tls\":{\"cert_file\":\"%s/server.pem\",\"key_file\":\"%s/missing.key\"}", pki,
		 pki);
	assert_int_equal(gw_run_expect_exit(cfg, NULL, 5000, out, sizeof out), 2);
	assert_non_null(strstr(out, "tls.key_file"));
	assert_non_null(strstr(out, "missing.key"));
	/* a key of another certificate */
	snprintf(cfg, sizeof cfg, "\"tls\":{\"cert_file\":\"%s/server.pem\",\"key_file\":\"%s/client.key\"}", pki, pki);
	assert_int_equal(gw_run_expect_exit(cfg, NULL, 5000, out, sizeof out), 2);
	assert_non_null(strstr(out, "tls.key_file"));
	assert_non_null(strstr(out, "client.key"));
	assert_non_null(strstr(out, "does not match"));
	/* an encrypted key: never asked for a passphrase */
	snprintf(cfg, sizeof cfg, "\"tls\":{\"cert_file\":\"%s/client.pem\",\"key_file\":\"%s/client-encrypted.key\"}",
		 pki, pki);
	assert_int_equal(gw_run_expect_exit(cfg, NULL, 5000, out, sizeof out), 2);
	assert_non_null(strstr(out, "tls.key_file"));
	assert_non_null(strstr(out, "client-encrypted.key"));
	/* a key where the certificate belongs */
	snprintf(cfg, sizeof cfg, "\"tls\":{\"cert_file\":\"%s/server.key\",\"key_file\":\"%s/server.key\"}", pki, pki);
	assert_int_equal(gw_run_expect_exit(cfg, NULL, 5000, out, sizeof out), 2);
	assert_non_null(strstr(out, "tls.cert_file"));
	assert_non_null(strstr(out, "server.key"));
	/* one without the other */
	snprintf(cfg, sizeof cfg, "\"tls\":{\"cert_file\":\"%s/server.pem\"}", pki);
	assert_int_equal(gw_run_expect_exit(cfg, NULL, 5000, out, sizeof out), 2);
	assert_non_null(strstr(out, "tls.key_file"));
	/* the client CA */
	snprintf(cfg, sizeof cfg,
		 "\"tls\":{\"cert_file\":\"%s/server.pem\",\"key_file\":\"%s/server.key\",\"client_ca_file\":\"%s/"
		 "nope.pem\"}",
		 pki, pki, pki);
	assert_int_equal(gw_run_expect_exit(cfg, NULL, 5000, out, sizeof out), 2);
	assert_non_null(strstr(out, "tls.client_ca_file"));
	assert_non_null(strstr(out, "nope.pem"));
}

static void beyond_loopback_needs_auth_and_tls(void **state)
{
	(void)state;
	needs_pki();
	char cfg[2048], tls[512], out[4096];
	const char *clients = "\"auth\":{\"clients\":[{\"client_id\":\"lab\",\"tls_subject\":\"CN=crosswalk-gateway\","
			      "\"scopes\":\"system/*.rs\"}]}";
	assert_int_equal(gw_run_expect_exit("\"listen\":\"0.0.0.0:0\"", NULL, 5000, out, sizeof out), 2);
	assert_non_null(strstr(out, "listen"));
	assert_non_null(strstr(out, "authentication"));
	assert_non_null(strstr(out, "TLS"));
	/* auth without TLS */
	snprintf(cfg, sizeof cfg, "\"listen\":\"0.0.0.0:0\",%s", clients);
	assert_int_equal(gw_run_expect_exit(cfg, NULL, 5000, out, sizeof out), 2);
	assert_non_null(strstr(out, "requires TLS"));
	/* TLS without auth */
	tls_json(tls, sizeof tls, NULL);
	snprintf(cfg, sizeof cfg, "\"listen\":\"0.0.0.0:0\",%s", tls);
	assert_int_equal(gw_run_expect_exit(cfg, NULL, 5000, out, sizeof out), 2);
	assert_non_null(strstr(out, "requires authentication"));
	/* both: it serves, and asks for credentials */
	tls_json(tls, sizeof tls, "client-ca.pem");
	snprintf(cfg, sizeof cfg, "\"listen\":\"0.0.0.0:0\",%s,%s", tls, clients);
	struct gw g;
	assert_int_equal(gw_start(&g, cfg), 0);
	struct tls_files t = trust(NULL);
	struct resp r;
	assert_int_equal(https_do(&g, &t, "GET", "/fhir/Patient", NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 401);
	resp_free(&r);
	t = trust("client");
	assert_int_equal(https_do(&g, &t, "GET", "/fhir/Patient", NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 200);
	resp_free(&r);
	assert_int_equal(gw_stop(&g, 5000), 0);
}

static void mutual_tls_maps_a_certificate_to_a_client(void **state)
{
	(void)state;
	needs_pki();
	char fp[128], server_fp[128], tls[512], cfg[2048];
	fingerprint("client", fp);
	fingerprint("server", server_fp);
	tls_json(tls, sizeof tls, "client-ca.pem");
	/* the server's certificate is configured as a client too: it must
	 * still be refused, as the client CA did not sign it */
	snprintf(cfg, sizeof cfg,
		 "%s,\"auth\":{\"clients\":[{\"client_id\":\"lab\",\"tls_fingerprint\":\"%s\",\"scopes\":\"system/"
		 "*.rs\"},"
		 "{\"client_id\":\"impostor\",\"tls_fingerprint\":\"%s\",\"scopes\":\"system/*.cruds\"}]}",
		 tls, fp, server_fp);
	struct gw g;
	assert_int_equal(gw_start(&g, cfg), 0);
	struct resp r;
	char hdr[256];

	/* public routes need nothing */
	struct tls_files anon = trust(NULL);
	assert_int_equal(https_do(&g, &anon, "GET", "/healthz", NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 200);
	resp_free(&r);
	assert_int_equal(https_do(&g, &anon, "GET", "/fhir/metadata", NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 200);
	resp_free(&r);

	/* no certificate: 401 with the Bearer challenge */
	long before = refused(&g, "no_credentials");
	assert_true(before >= 0);
	static const char *const paths[] = {"/fhir/Patient", "/fhir/Patient/x", "/fhir/_history", "/export/csv",
					    "/plugins"};
	for (size_t i = 0; i < sizeof paths / sizeof *paths; i++) {
		assert_int_equal(https_do(&g, &anon, "GET", paths[i], NULL, NULL, 0, &r), 0);
		assert_int_equal(r.status, 401);
		assert_non_null(strstr(r.body, "OperationOutcome"));
		assert_non_null(resp_header(&r, "WWW-Authenticate", hdr, sizeof hdr));
		assert_non_null(strstr(hdr, "Bearer"));
		assert_null(strstr(hdr, "invalid_token"));
		resp_free(&r);
	}
	assert_int_equal(https_do(&g, &anon, "POST", "/fhir/Patient",
				  (const char *[]){"Content-Type: application/fhir+json", NULL},
				  "{\"resourceType\":\"Patient\"}", 26, &r),
			 0);
	assert_int_equal(r.status, 401);
	resp_free(&r);
	assert_int_equal(refused(&g, "no_credentials"), before + (long)(sizeof paths / sizeof *paths) + 1);

	/* the mapped certificate: in */
	struct tls_files lab = trust("client");
	assert_int_equal(https_do(&g, &lab, "GET", "/fhir/Patient", NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 200);
	resp_free(&r);

	/* a certificate the client CA did not sign, even if its fingerprint is configured */
	long unmapped = refused(&g, "no_credentials");
	struct tls_files impostor = trust("server");
	assert_int_equal(https_do(&g, &impostor, "GET", "/fhir/Patient", NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 401);
	resp_free(&r);
	assert_int_equal(refused(&g, "no_credentials"), unmapped + 1);

	/* a bearer token this gateway cannot verify: invalid_token */
	assert_int_equal(https_do(&g, &anon, "GET", "/fhir/Patient",
				  (const char *[]){"Authorization: Bearer abc.def.ghi", NULL}, NULL, 0, &r),
			 0);
	assert_int_equal(r.status, 401);
	assert_non_null(resp_header(&r, "WWW-Authenticate", hdr, sizeof hdr));
	assert_non_null(strstr(hdr, "error=\"invalid_token\""));
	resp_free(&r);
	/* no credential reaches the log */
	char *log = gw_log(&g);
	assert_null(strstr(log, "abc.def.ghi"));
	free(log);
	assert_int_equal(gw_stop(&g, 5000), 0);
}

static void mutual_tls_maps_by_subject(void **state)
{
	(void)state;
	needs_pki();
	char tls[512], cfg[2048];
	tls_json(tls, sizeof tls, "client-ca.pem");
	snprintf(cfg, sizeof cfg,
		 "%s,\"auth\":{\"clients\":[{\"client_id\":\"lab\",\"tls_subject\":\"CN=crosswalk-gateway\",\"scopes\":"
		 "\"system/*.rs\"}]}",
		 tls);
	struct gw g;
	assert_int_equal(gw_start(&g, cfg), 0);
	struct tls_files lab = trust("client");
	struct resp r;
	assert_int_equal(https_do(&g, &lab, "GET", "/fhir/Patient", NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 200);
	resp_free(&r);
	assert_int_equal(gw_stop(&g, 5000), 0);

	/* a verified certificate of no configured client */
	snprintf(cfg, sizeof cfg,
		 "%s,\"auth\":{\"clients\":[{\"client_id\":\"lab\",\"tls_subject\":\"CN=someone-else\",\"scopes\":"
		 "\"system/*.rs\"}]}",
		 tls);
	assert_int_equal(gw_start(&g, cfg), 0);
	long before = refused(&g, "unknown_client");
	assert_int_equal(https_do(&g, &lab, "GET", "/fhir/Patient", NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 401);
	resp_free(&r);
	assert_int_equal(refused(&g, "unknown_client"), before + 1);
	assert_int_equal(gw_stop(&g, 5000), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(https_serves_tls12_and_tls13_only),
		cmocka_unit_test(tls_files_are_checked_at_start),
		cmocka_unit_test(beyond_loopback_needs_auth_and_tls),
		cmocka_unit_test(mutual_tls_maps_a_certificate_to_a_client),
		cmocka_unit_test(mutual_tls_maps_by_subject),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
