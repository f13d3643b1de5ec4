/* End-to-end tests of what protects the link to the upstream FHIR server,
 * against the real independent one (tests/upstream/server.mjs over HTTPS,
 * started here on 127.0.0.1 and stopped by its PID): TLS verification with
 * and without the right CA file, mutual TLS, TLS files checked at start,
 * bearer and basic credentials on the wire (pass-through and store-and-forward),
 * redirects not followed, and client headers with CR/LF never forwarded.
 * The test PKI is made at start in a temporary directory by
 * tests/upstream/pki.sh (the openssl command). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "e2e/harness.h"

static const char *fj[] = {"Content-Type: application/fhir+json", NULL};

#define TOKEN_ENV "CW_TEST_UPSTREAM_TOKEN"
#define PASSWORD_ENV "CW_TEST_UPSTREAM_PASSWORD"

static char pki[64]; /* the test PKI's directory */

/* pki/name in a buffer of the caller's */
static const char *pem(char *buf, size_t n, const char *name)
{
	snprintf(buf, n, "%s/%s", pki, name);
	return buf;
}

/* The upstream servers, each started on first use and reset (store, faults,
 * stats) each time a test asks for it. */
enum up_kind { UP_TLS, UP_MTLS, UP_BEARER, UP_BASIC, UP_KINDS };
static struct upstream_srv ups[UP_KINDS];

static struct upstream_srv *upstream(enum up_kind kind)
{
	struct upstream_srv *u = &ups[kind];
	if (!u->pid) {
		char cert[128], key[128], cca[128];
		const char *args[16] = {"--tls-cert", pem(cert, sizeof cert, "server.pem"), "--tls-key",
					pem(key, sizeof key, "server.key"), NULL};
		size_t n = 4;
		if (kind == UP_MTLS) {
			args[n++] = "--client-ca";
			args[n++] = pem(cca, sizeof cca, "client-ca.pem");
		} else if (kind == UP_BEARER) {
			args[n++] = "--require-bearer";
			args[n++] = "s3cret";
		} else if (kind == UP_BASIC) {
			args[n++] = "--require-basic";
			args[n++] = "crosswalk:pa55 word";
		}
		args[n] = NULL;
		assert_int_equal(upstream_start_args(u, 0, args), 0);
		assert_non_null(strstr(u->base, "https://127.0.0.1:"));
		pem(u->ca_file, sizeof u->ca_file, "ca.pem");
		if (kind == UP_MTLS) {
			pem(u->client_cert, sizeof u->client_cert, "client.pem");
			pem(u->client_key, sizeof u->client_key, "client.key");
		}
	}
	struct resp r;
	assert_int_equal(upstream_do(u, "POST", "/_admin/reset", NULL, &r), 0);
	assert_int_equal(r.status, 200);
	resp_free(&r);
	return u;
}

static int setup(void **state)
{
	(void)state;
	if (!upstream_missing() && upstream_install() != 0) {
		fprintf(stderr, "# npm install of tests/upstream failed (see build/upstream-install.log)\n");
		return -1;
	}
	return harness_make_pki(pki, sizeof pki); /* no openssl: no PKI, the tests that need it skip */
}

static int teardown(void **state)
{
	(void)state;
	for (size_t i = 0; i < UP_KINDS; i++)
		upstream_stop(&ups[i]);
	return 0;
}

/* At the top of every test: the test PKI (made by the openssl command) and,
 * unless only_pki, the upstream test server must be at hand, else it skips. */
static void needs(bool only_pki)
{
	if (!pki[0])
		skip_because("the openssl command is not installed (tests/upstream/pki.sh makes the test PKI with it)");
	if (!only_pki)
		UPSTREAM_NEEDED();
}

/* A number from the upstream's admin stats: stats[key], or stats[key][sub];
 * 0 when absent. */
static long stat_of(const struct upstream_srv *u, const char *key, const char *sub)
{
	struct resp r;
	assert_int_equal(upstream_do(u, "GET", "/_admin/stats", NULL, &r), 0);
	assert_int_equal(r.status, 200);
	cJSON *j = cJSON_Parse(r.body);
	resp_free(&r);
	assert_non_null(j);
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
	if (sub)
		v = cJSON_GetObjectItemCaseSensitive(v, sub);
	long n = cJSON_IsNumber(v) ? (long)v->valuedouble : 0;
	cJSON_Delete(j);
	return n;
}

/* Starts a gateway on u: routes as in upstream.routes, then extra members of
 * "upstream" (starting with a comma) or NULL. */
static void start_gw(struct gw *g, const struct upstream_srv *u, const char *routes, const char *extra)
{
	char conf[2048];
	upstream_gw_config(conf, sizeof conf, u, routes, extra);
	assert_int_equal(gw_start(g, conf), 0);
}

/* Starts a gateway passing Patient through to u, trusting the test CA
 * (ca.pem), with more members of "upstream" (starting with a comma) or NULL. */
static void trusting_gw(struct gw *g, const struct upstream_srv *u, const char *more)
{
	char extra[1024];
	snprintf(extra, sizeof extra, ",\"ca_file\":\"%s/ca.pem\"%s", pki, more ? more : "");
	start_gw(g, u, "\"Patient\":\"pass-through\"", extra);
}

/* The answer is an OperationOutcome with status and every needle in it. */
static void expect_outcome(const struct resp *r, long status, const char *needle, const char *needle2)
{
	if (r->status != status || !strstr(r->body, "\"OperationOutcome\"") || !strstr(r->body, needle) ||
	    (needle2 && !strstr(r->body, needle2)))
		fprintf(stderr, "# expected %ld with '%s'%s%s: got %ld %s\n", status, needle, needle2 ? " and " : "",
			needle2 ? needle2 : "", r->status, r->body);
	assert_int_equal(r->status, status);
	assert_non_null(strstr(r->body, "\"OperationOutcome\""));
	assert_non_null(strstr(r->body, needle));
	if (needle2)
		assert_non_null(strstr(r->body, needle2));
}

static void get_expect(const struct gw *g, const char *path, long status, const char *needle, const char *needle2)
{
	struct resp r;
	assert_int_equal(http_do(g, "GET", path, NULL, NULL, 0, &r), 0);
	expect_outcome(&r, status, needle, needle2);
	resp_free(&r);
}

/* POSTs a Patient with identifier urn:tls|value through g and checks the
 * status; on 201 its id goes to id (when not NULL). */
static void create_patient(const struct gw *g, const char *value, const char *const *headers, long expect, char *id,
			   size_t idlen)
{
	char body[256];
	snprintf(body, sizeof body,
		 "{\"resourceType\":\"Patient\",\"identifier\":[{\"system\":\"urn:tls\",\"value\":\"%s\"}],"
		 "\"name\":[{\"family\":\"Secure\"}]}",
		 value);
	struct resp r;
	assert_int_equal(http_do(g, "POST", "/fhir/Patient", headers ? headers : fj, body, strlen(body), &r), 0);
	if (r.status != expect)
		fprintf(stderr, "# create %s: expected %ld, got %ld %s\n", value, expect, r.status, r.body);
	assert_int_equal(r.status, expect);
	if (id) {
		cJSON *p = cJSON_Parse(r.body);
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(p, "id");
		assert_true(cJSON_IsString(v));
		snprintf(id, idlen, "%s", v->valuestring);
		cJSON_Delete(p);
	}
	resp_free(&r);
}

/* Reads Patient/id back through g: 200 with that id; path gets its path. */
static void read_back(const struct gw *g, const char *id, char *path, size_t n)
{
	snprintf(path, n, "/fhir/Patient/%s", id);
	struct resp r;
	assert_int_equal(http_do(g, "GET", path, NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body, id));
	resp_free(&r);
}

/* ------------------------------------------------------------- TLS trust */

static void server_certificate_from_an_untrusted_ca_is_refused(void **state)
{
	(void)state;
	needs(false);
	struct upstream_srv *u = upstream(UP_TLS);
	char ca[256];
	/* no ca_file: the system's CAs, which never signed the test server's certificate */
	struct gw g;
	start_gw(&g, u, "\"Patient\":\"pass-through\"", NULL);
	get_expect(&g, "/fhir/Patient/x", 502, "did not answer", "certificate");
	create_patient(&g, "untrusted", NULL, 502, NULL, 0);
	assert_int_equal(gw_stop(&g, 10000), 0);
	/* a ca_file with another CA: the same */
	snprintf(ca, sizeof ca, ",\"ca_file\":\"%s/other-ca.pem\"", pki);
	start_gw(&g, u, "\"Patient\":\"pass-through\"", ca);
	get_expect(&g, "/fhir/Patient/x", 502, "did not answer", "certificate");
	create_patient(&g, "wrong-ca", NULL, 502, NULL, 0);
	assert_int_equal(gw_stop(&g, 10000), 0);
	/* the upstream never saw a FHIR request, and it is up and working */
	assert_int_equal(stat_of(u, "total", NULL), 0);
	assert_int_equal(upstream_count(u, "Patient", "urn:tls|"), 0);
	struct resp r;
	assert_int_equal(upstream_do(u, "GET", "/fhir/R4/metadata", NULL, &r), 0);
	assert_int_equal(r.status, 200);
	resp_free(&r);
	assert_int_equal(stat_of(u, "total", NULL), 1);
}

static void pass_through_over_tls_with_the_right_ca(void **state)
{
	(void)state;
	needs(false);
	struct upstream_srv *u = upstream(UP_TLS);
	char id[80], path[200], loc[512], gwbase[64];
	struct gw g;
	trusting_gw(&g, u, NULL);
	snprintf(gwbase, sizeof gwbase, "http://127.0.0.1:%u/fhir/", g.port);

	const char *body = "{\"resourceType\":\"Patient\",\"identifier\":[{\"system\":\"urn:tls\",\"value\":\"ok\"}]}";
	struct resp r;
	assert_int_equal(http_do(&g, "POST", "/fhir/Patient", fj, body, strlen(body), &r), 0);
	assert_int_equal(r.status, 201);
	assert_non_null(resp_header(&r, "Location", loc, sizeof loc));
	assert_true(strncmp(loc, gwbase, strlen(gwbase)) == 0); /* the gateway's URL, not https://… upstream */
	cJSON *p = cJSON_Parse(r.body);
	snprintf(id, sizeof id, "%s", cJSON_GetObjectItemCaseSensitive(p, "id")->valuestring);
	cJSON_Delete(p);
	resp_free(&r);
	assert_int_equal(upstream_count(u, "Patient", "urn:tls|ok"), 1);

	read_back(&g, id, path, sizeof path);

	assert_int_equal(http_do(&g, "GET", "/fhir/Patient?identifier=urn:tls|ok", NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 200);
	cJSON *b = cJSON_Parse(r.body);
	assert_int_equal(cJSON_GetObjectItemCaseSensitive(b, "total")->valueint, 1);
	const cJSON *e = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(b, "entry"), 0);
	const cJSON *full = cJSON_GetObjectItemCaseSensitive(e, "fullUrl");
	assert_true(cJSON_IsString(full) && strncmp(full->valuestring, gwbase, strlen(gwbase)) == 0);
	cJSON_Delete(b);
	assert_null(strstr(r.body, u->base)); /* no upstream URL leaks (links, fullUrl) */
	assert_null(strstr(r.body, "https://"));
	resp_free(&r);
	assert_int_equal(stat_of(u, "total", NULL), 3);
	assert_int_equal(gw_stop(&g, 10000), 0);
}

/* ------------------------------------------------------------ mutual TLS */

static void mutual_tls(void **state)
{
	(void)state;
	needs(false);
	struct upstream_srv *u = upstream(UP_MTLS);
	char extra[1024], id[80];
	/* no client certificate: the server ends the handshake; nothing arrives */
	struct gw g;
	trusting_gw(&g, u, NULL);
	get_expect(&g, "/fhir/Patient/x", 502, "did not answer", NULL);
	create_patient(&g, "no-cert", NULL, 502, NULL, 0);
	assert_int_equal(gw_stop(&g, 10000), 0);
	assert_int_equal(stat_of(u, "total", NULL), 0);
	assert_true(stat_of(u, "tlsClientErrors", NULL) >= 2); /* the server refused those handshakes */

	/* with the client certificate and key: works */
	snprintf(extra, sizeof extra, ",\"client_cert\":\"%s/client.pem\",\"client_key\":\"%s/client.key\"", pki, pki);
	trusting_gw(&g, u, extra);
	create_patient(&g, "mtls", NULL, 201, id, sizeof id);
	char path[200];
	read_back(&g, id, path, sizeof path);
	assert_int_equal(gw_stop(&g, 10000), 0);
	assert_int_equal(upstream_count(u, "Patient", "urn:tls|mtls"), 1);
	assert_int_equal(upstream_count(u, "Patient", "urn:tls|no-cert"), 0);
}

/* An "upstream" configuration member naming the given PKI files (NULL: left out). */
static void tls_conf(char *buf, size_t n, const char *ca, const char *cert, const char *key)
{
	size_t pos = (size_t)snprintf(buf, n, "\"upstream\":{\"base_url\":\"https://127.0.0.1:9/fhir\"");
	const char *names[] = {"ca_file", "client_cert", "client_key"}, *files[] = {ca, cert, key};
	for (size_t i = 0; i < 3 && pos < n; i++)
		if (files[i])
			pos += (size_t)snprintf(buf + pos, n - pos, ",\"%s\":\"%s/%s\"", names[i], pki, files[i]);
	if (pos < n)
		snprintf(buf + pos, n - pos, "}");
}

static void tls_files_are_checked_at_start(void **state)
{
	(void)state;
	needs(true);
	static char out[65536];
	struct {
		const char *ca, *cert, *key; /* files in the PKI directory, or NULL */
		const char *why, *why2;
	} bad[] = {
		{NULL, "missing.pem", "client.key", "upstream.client_cert", "missing.pem"},
		{NULL, "client.pem", "missing.key", "upstream.client_key", "missing.key"},
		{NULL, "client.pem", "other-ca.key", "upstream.client_key", "does not match"},
		{NULL, "client.key", "client.key", "upstream.client_cert", "no PEM certificate"},
		{NULL, "client.pem", "client.pem", "upstream.client_key", "no unencrypted PEM private key"},
		{NULL, "client.pem", "client-encrypted.key", "upstream.client_key", "no unencrypted PEM private key"},
		{NULL, "client.pem", NULL, "upstream.client_cert", "no unencrypted PEM private key"},
		{NULL, NULL, "client.key", "upstream.client_key", "needs upstream.client_cert"},
		{"missing-ca.pem", NULL, NULL, "upstream.ca_file", "missing-ca.pem"},
		{"ca.key", NULL, NULL, "upstream.ca_file", "no PEM certificate"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		char conf[1024];
		tls_conf(conf, sizeof conf, bad[i].ca, bad[i].cert, bad[i].key);
		int rc = gw_run_expect_exit(conf, NULL, 15000, out, sizeof out);
		if (rc != 2 || !strstr(out, bad[i].why) || !strstr(out, bad[i].why2))
			fprintf(stderr, "# %s -> %d: %s\n", conf, rc, out);
		assert_int_equal(rc, 2);
		assert_non_null(strstr(out, bad[i].why));
		assert_non_null(strstr(out, bad[i].why2));
	}
	/* the good files: it starts */
	char conf[1024];
	tls_conf(conf, sizeof conf, "ca.pem", "client.pem", "client.key");
	struct gw g;
	assert_int_equal(gw_start(&g, conf), 0);
	assert_int_equal(gw_stop(&g, 10000), 0);
}

/* ----------------------------------------------------------- credentials */

/* u requires credentials; extra has the gateway send them from the
 * environment variable env. Holding good: writes and reads work and nothing
 * is refused. Holding bad: the upstream's 401 (with its OperationOutcome)
 * comes back to the client, and nothing is stored. */
static void credentials_on_the_wire(const struct upstream_srv *u, const char *extra, const char *env, const char *good,
				    const char *bad)
{
	char id[80], path[200];
	struct gw g;
	assert_int_equal(setenv(env, good, 1), 0); /* the gateway inherits it */
	trusting_gw(&g, u, extra);
	create_patient(&g, "good-credentials", NULL, 201, id, sizeof id);
	read_back(&g, id, path, sizeof path);
	assert_int_equal(gw_stop(&g, 10000), 0);
	assert_int_equal(stat_of(u, "unauthorized", NULL), 0);
	assert_int_equal(upstream_count(u, "Patient", "urn:tls|good-credentials"), 1);

	assert_int_equal(setenv(env, bad, 1), 0);
	trusting_gw(&g, u, extra);
	create_patient(&g, "bad-credentials", NULL, 401, NULL, 0);
	get_expect(&g, path, 401, "authentication required", "wrong credentials");
	assert_int_equal(gw_stop(&g, 10000), 0);
	assert_int_equal(stat_of(u, "unauthorized", NULL), 2);
	assert_int_equal(upstream_count(u, "Patient", "urn:tls|bad-credentials"), 0);
	unsetenv(env);
}

static void bearer_token(void **state)
{
	(void)state;
	needs(false);
	struct upstream_srv *u = upstream(UP_BEARER);
	credentials_on_the_wire(u, ",\"bearer_token_env\":\"" TOKEN_ENV "\"", TOKEN_ENV, "s3cret", "s3cret2");
	assert_int_equal(stat_of(u, "headers", "authorization"), 4);

	/* no credentials configured: a client's own Authorization is not passed on */
	struct gw g;
	trusting_gw(&g, u, NULL);
	const char *ha[] = {"Content-Type: application/fhir+json", "Authorization: Bearer s3cret", NULL};
	create_patient(&g, "client-token", ha, 401, NULL, 0);
	assert_int_equal(gw_stop(&g, 10000), 0);
	assert_int_equal(stat_of(u, "unauthorized", NULL), 3);
	assert_int_equal(stat_of(u, "headers", "authorization"), 4); /* none sent */
	assert_int_equal(upstream_count(u, "Patient", "urn:tls|client-token"), 0);
}

static void basic_credentials(void **state)
{
	(void)state;
	needs(false);
	struct upstream_srv *u = upstream(UP_BASIC);
	credentials_on_the_wire(u, ",\"basic_user\":\"crosswalk\",\"basic_password_env\":\"" PASSWORD_ENV "\"",
				PASSWORD_ENV, "pa55 word", "pa55 w0rd");
}

/* Polls GET /outbox?state=dead until its body holds needle; false on timeout. */
static bool dead_letter_with(const struct gw *g, const char *needle, long timeout_ms)
{
	long until = now_ms() + timeout_ms;
	while (now_ms() < until) {
		struct resp r;
		bool found = http_do(g, "GET", "/outbox?state=dead", NULL, NULL, 0, &r) == 0 && r.status == 200 &&
			     strstr(r.body, needle);
		resp_free(&r);
		if (found)
			return true;
		sleep_ms(50);
	}
	return false;
}

/* POSTs an Observation with identifier urn:sf|value to g: committed locally (201). */
static void store_observation(const struct gw *g, const char *value)
{
	char body[256];
	snprintf(body, sizeof body,
		 "{\"resourceType\":\"Observation\",\"status\":\"final\",\"code\":{\"text\":\"tls\"},"
		 "\"identifier\":[{\"system\":\"urn:sf\",\"value\":\"%s\"}]}",
		 value);
	struct resp r;
	assert_int_equal(http_do(g, "POST", "/fhir/Observation", fj, body, strlen(body), &r), 0);
	assert_int_equal(r.status, 201);
	resp_free(&r);
}

static void store_and_forward_over_tls_with_a_bearer_token(void **state)
{
	(void)state;
	needs(false);
	struct upstream_srv *u = upstream(UP_BEARER);
	char extra[1024];
	snprintf(extra, sizeof extra,
		 ",\"ca_file\":\"%s/ca.pem\",\"bearer_token_env\":\"" TOKEN_ENV "\",\"max_attempts\":3", pki);
	struct gw g;
	assert_int_equal(setenv(TOKEN_ENV, "s3cret", 1), 0);
	start_gw(&g, u, "\"*\":\"store-and-forward\"", extra);
	store_observation(&g, "1");
	long until = now_ms() + 15000;
	while (upstream_count(u, "Observation", "urn:sf|1") != 1 && now_ms() < until)
		sleep_ms(50);
	assert_int_equal(upstream_count(u, "Observation", "urn:sf|1"), 1);
	assert_true(stat_of(u, "received", "PUT") >= 1);
	assert_int_equal(stat_of(u, "unauthorized", NULL), 0);
	assert_int_equal(gw_stop(&g, 10000), 0);

	/* a wrong token: the delivery is refused (401) and becomes a dead letter saying so */
	assert_int_equal(setenv(TOKEN_ENV, "wrong", 1), 0);
	start_gw(&g, u, "\"*\":\"store-and-forward\"", extra);
	store_observation(&g, "2");
	assert_true(dead_letter_with(&g, "401", 15000));
	assert_int_equal(upstream_count(u, "Observation", "urn:sf|2"), 0);
	assert_true(stat_of(u, "unauthorized", NULL) >= 1);
	assert_int_equal(gw_stop(&g, 10000), 0);
	unsetenv(TOKEN_ENV);
}

/* ------------------------------------------------- redirects and headers */

static void redirects_are_not_followed(void **state)
{
	(void)state;
	needs(false);
	struct upstream_srv *u = upstream(UP_TLS);
	char loc[512];
	struct gw g;
	trusting_gw(&g, u, NULL);
	assert_int_equal(upstream_fault(u, "{\"fault\":\"redirect\",\"status\":302,\"method\":\"GET\"}"), 0);
	struct resp r;
	assert_int_equal(http_do(&g, "GET", "/fhir/Patient/x", NULL, NULL, 0, &r), 0);
	expect_outcome(&r, 502, "redirect", "not followed");
	assert_null(resp_header(&r, "Location", loc, sizeof loc)); /* the upstream's Location is not passed on */
	assert_null(strstr(r.headers, "_redirected"));
	resp_free(&r);
	/* a 307 on a create: the same, and nothing is stored */
	assert_int_equal(upstream_fault(u, "{\"fault\":\"redirect\",\"status\":307,\"method\":\"POST\"}"), 0);
	create_patient(&g, "redirected", NULL, 502, NULL, 0);
	assert_int_equal(stat_of(u, "faultsInjected", "302"), 1); /* the upstream did answer with redirects, */
	assert_int_equal(stat_of(u, "faultsInjected", "307"), 1);
	assert_int_equal(stat_of(u, "redirectTargets", NULL), 0); /* never followed */
	assert_int_equal(upstream_count(u, "Patient", "urn:tls|redirected"), 0);
	assert_int_equal(gw_stop(&g, 10000), 0);
}

/* Sends a raw request to the gateway and reads its answer (any). */
static void raw_request(const struct gw *g, const char *req)
{
	int fd = raw_connect(g, NULL);
	assert_true(fd >= 0);
	assert_int_equal(raw_send(fd, req, strlen(req)), 0);
	char buf[8192];
	assert_true(raw_recv_all(fd, buf, sizeof buf, 5000) >= 0);
	close(fd);
}

static void client_headers_with_cr_or_lf_are_never_forwarded(void **state)
{
	(void)state;
	needs(false);
	struct upstream_srv *u = upstream(UP_TLS);
	struct gw g;
	trusting_gw(&g, u, NULL);
	/* a clean If-Match is passed on (the server records header names) */
	const char *clean[] = {"If-Match: W/\"1\"", NULL};
	struct resp r;
	assert_int_equal(http_do(&g, "GET", "/fhir/Patient/x", clean, NULL, 0, &r), 0);
	assert_int_equal(r.status, 404);
	resp_free(&r);
	assert_int_equal(stat_of(u, "headers", "if-match"), 1);

	const char *evil[] = {
		/* a bare CR inside the value */
		"GET /fhir/Patient/x HTTP/1.1\r\nHost: 127.0.0.1\r\nIf-Match: W/\"1\"\rX-Evil: 1\r\nConnection: close\r\n\r\n",
		/* a bare LF inside the value */
		"GET /fhir/Patient/x HTTP/1.1\r\nHost: 127.0.0.1\r\nIf-Match: W/\"1\"\nX-Evil: 1\r\nConnection: close\r\n\r\n",
		/* a folded continuation line */
		"GET /fhir/Patient/x HTTP/1.1\r\nHost: 127.0.0.1\r\nIf-Match: W/\"1\"\r\n X-Evil: 1\r\nConnection: close\r\n\r\n",
		/* CR/LF in another passed header */
		"POST /fhir/Patient HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/fhir+json\r\n"
		"Prefer: return=minimal\rX-Evil: 1\r\nContent-Length: 27\r\nConnection: close\r\n\r\n"
		"{\"resourceType\":\"Patient\"}\n",
		/* a header the gateway does not pass on at all */
		"GET /fhir/Patient/x HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Evil: 1\r\nConnection: close\r\n\r\n",
		/* CR/LF percent-encoded in the query */
		"GET /fhir/Patient?name=a%0D%0AX-Evil:%201 HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
	};
	for (size_t i = 0; i < sizeof evil / sizeof *evil; i++)
		raw_request(&g, evil[i]);
	assert_int_equal(stat_of(u, "headers", "x-evil"), 0);
	assert_int_equal(stat_of(u, "badRequests", NULL), 0); /* nothing malformed was sent on either */
	assert_true(stat_of(u, "total", NULL) >= 2); /* at least the clean ones arrived */
	/* the gateway is still well */
	assert_int_equal(http_do(&g, "GET", "/fhir/Patient/x", NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 404);
	resp_free(&r);
	assert_int_equal(gw_stop(&g, 10000), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(tls_files_are_checked_at_start),
		cmocka_unit_test(server_certificate_from_an_untrusted_ca_is_refused),
		cmocka_unit_test(pass_through_over_tls_with_the_right_ca),
		cmocka_unit_test(mutual_tls),
		cmocka_unit_test(bearer_token),
		cmocka_unit_test(basic_credentials),
		cmocka_unit_test(store_and_forward_over_tls_with_a_bearer_token),
		cmocka_unit_test(redirects_are_not_followed),
		cmocka_unit_test(client_headers_with_cr_or_lf_are_never_forwarded),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
