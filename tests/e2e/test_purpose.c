/* End-to-end tests of per-client policy (docs/security.md, "Purpose"), with
 * clients made by `crosswalk client new` and tokens got by `crosswalk
 * token` against the real gateway:
 *   - zero to an authenticated request in three commands: client new, then
 *     the token and curl lines it prints, run as printed by the shell;
 *   - a billing client gets the minimum-necessary view on every answer (a
 *     read from the stored text, a read in XML, a vread, a search with
 *     _include, history, a batch, an export's input), a treatment client
 *     the whole resource;
 *   - a Part 2 program's writes carry the 42CFRPart2 label, another
 *     client's do not;
 *   - the CapabilityStatement declares the token endpoint (SMART oauth-uris);
 *   - a client's own person_first diagnosis_display applies to its exports;
 *   - client assertions signed with the jose package (ES384, RS384) get
 *     tokens; replays and another key are refused. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "e2e/harness.h"

#define ICD "http://hl7.org/fhir/sid/icd-10-cm"

static char dir[64];  /* keys, the crosswalk link, scratch */
static char tdir[96]; /* plugins: tp_bundle */

static const char *env_or(const char *name, const char *dflt)
{
	const char *v = getenv(name);
	return v && *v ? v : dflt;
}

/* Runs cmd with the shell; its stdout (at most cap - 1 bytes) in out.
 * Returns the exit status. */
static int run(char *out, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int run(char *out, size_t cap, const char *fmt, ...)
{
	char cmd[8192];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof cmd, fmt, ap);
	va_end(ap);
	FILE *p = popen(cmd, "r");
	assert_non_null(p);
	size_t n = fread(out, 1, cap - 1, p);
	out[n] = '\0';
	int st = pclose(p);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof dir, "/tmp/cw-purpose-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	harness_remove_at_exit(dir);
	/* "crosswalk" on PATH is the binary under test, as an operator types it */
	char bin[4096], link[128];
	if (!realpath(env_or("CW_BIN", "bin/crosswalk"), bin))
		return -1;
	snprintf(link, sizeof link, "%s/crosswalk", dir);
	if (symlink(bin, link) != 0)
		return -1;
	char path[8192];
	snprintf(path, sizeof path, "%s:%s", dir, env_or("PATH", "/usr/bin:/bin"));
	setenv("PATH", path, 1);
	/* tp_bundle exports the Bundle it is given, as it is */
	snprintf(tdir, sizeof tdir, "%s/plugins", dir);
	if (mkdir(tdir, 0755) != 0 || chmod(tdir, 0755) != 0)
		return -1;
	char cmd[8400];
	snprintf(cmd, sizeof cmd, "cp '%s/tp_bundle.so' '%s/' && chmod 755 '%s/tp_bundle.so'",
		 env_or("CW_TEST_PLUGIN_DIR", "build/default/test-plugins"), tdir, tdir);
	return system(cmd) == 0 ? 0 : -1;
}

/* `crosswalk client new NAME` with options; the auth.clients entry it
 * prints (one line starting {"client_id"), malloc'd. */
static char *client_new(const char *name, const char *options, char *printed, size_t cap)
{
	assert_int_equal(run(printed, cap, "crosswalk client new %s --dir %s %s", name, dir, options), 0);
	const char *e = strstr(printed, "{\"client_id\":");
	assert_non_null(e);
	const char *end = strchr(e, '\n');
	assert_non_null(end);
	char *entry = strndup(e, (size_t)(end - e));
	cJSON *j = cJSON_Parse(entry);
	assert_non_null(j);
	assert_string_equal(cJSON_GetObjectItem(j, "client_id")->valuestring, name);
	cJSON_Delete(j);
	return entry;
}

/* An access token for name from g by `crosswalk token` (malloc'd). */
static char *token(const struct gw *g, const char *name)
{
	char out[8192];
	assert_int_equal(run(out, sizeof out, "crosswalk token --client %s --key %s/%s.pem --url http://127.0.0.1:%u",
			     name, dir, name, g->port),
			 0);
	char *nl = strchr(out, '\n');
	assert_non_null(nl);
	*nl = '\0';
	assert_int_equal(strchr(out, '.') != NULL, 1);
	return strdup(out);
}

static long call(const struct gw *g, const char *tok, const char *method, const char *path, const char *body,
		 struct resp *r)
{
	char h[9000];
	snprintf(h, sizeof h, "Authorization: Bearer %s", tok);
	const char *hdrs[] = {h, "Content-Type: application/fhir+json", NULL};
	assert_int_equal(http_do(g, method, path, hdrs, body, body ? strlen(body) : 0, r), 0);
	return r->status;
}

static void zero_to_an_authenticated_request_in_three_commands(void **state)
{
	(void)state;
	unsigned port = free_port();
	char printed[16384], url[64];
	snprintf(url, sizeof url, "--url http://127.0.0.1:%u", port);
	/* 1. the key pair and the entry */
	char *entry = client_new("frontdesk", url, printed, sizeof printed);
	char key[160];
	snprintf(key, sizeof key, "%s/frontdesk.pem", dir);
	struct stat st;
	assert_int_equal(stat(key, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	/* a second time the key is not overwritten */
	char again[4096];
	assert_int_not_equal(run(again, sizeof again, "crosswalk client new frontdesk --dir %s 2>&1", dir), 0);
	/* the gateway with that entry */
	char cfg[4096];
	snprintf(cfg, sizeof cfg, "\"listen\":\"127.0.0.1:%u\",\"auth\":{\"clients\":[%s]}", port, entry);
	struct gw g;
	assert_int_equal(gw_start(&g, cfg), 0);
	/* 2. and 3.: the curl line as printed (it runs the token line inside) */
	const char *curl = strstr(printed, "   curl ");
	assert_non_null(curl);
	char line[4096];
	snprintf(line, sizeof line, "%.*s", (int)strcspn(curl, "\n"), curl);
	char out[65536];
	assert_int_equal(run(out, sizeof out, "%s -s -o /dev/null -w '%%{http_code}'", line), 0);
	assert_string_equal(out, "200");
	/* without the token it is refused */
	assert_int_equal(
		run(out, sizeof out, "curl -s -o /dev/null -w '%%{http_code}' http://127.0.0.1:%u/fhir/Patient", port),
		0);
	assert_string_equal(out, "401");
	/* a key that is not the client's gets no token */
	assert_int_not_equal(run(out, sizeof out,
				 "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out %s/other.pem "
				 "2>/dev/null && crosswalk token --client frontdesk --key %s/other.pem --url "
				 "http://127.0.0.1:%u 2>/dev/null",
				 dir, dir, port),
			     0);
	assert_string_equal(out, "");
	/* the CapabilityStatement declares the token endpoint smart-configuration announces */
	struct resp r;
	assert_int_equal(http_do(&g, "GET", "/fhir/.well-known/smart-configuration", NULL, NULL, 0, &r), 0);
	cJSON *sc = cJSON_Parse(r.body);
	resp_free(&r);
	assert_int_equal(http_do(&g, "GET", "/fhir/metadata", NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 200);
	cJSON *cs = cJSON_Parse(r.body);
	resp_free(&r);
	const cJSON *sec = cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(cs, "rest"), 0), "security");
	assert_non_null(sec);
	const cJSON *ext = cJSON_GetArrayItem(cJSON_GetObjectItem(sec, "extension"), 0);
	assert_string_equal(cJSON_GetObjectItem(ext, "url")->valuestring,
			    "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris");
	const cJSON *tok = cJSON_GetArrayItem(cJSON_GetObjectItem(ext, "extension"), 0);
	assert_string_equal(cJSON_GetObjectItem(tok, "url")->valuestring, "token");
	assert_string_equal(cJSON_GetObjectItem(tok, "valueUri")->valuestring,
			    cJSON_GetObjectItem(sc, "token_endpoint")->valuestring);
	const cJSON *svc = cJSON_GetArrayItem(
		cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(sec, "service"), 0), "coding"), 0);
	assert_string_equal(cJSON_GetObjectItem(svc, "code")->valuestring, "SMART-on-FHIR");
	cJSON_Delete(cs);
	cJSON_Delete(sc);
	/* and in XML, in its place */
	assert_int_equal(http_do(&g, "GET", "/fhir/metadata?_format=xml", NULL, NULL, 0, &r), 0);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(
		r.body,
		"<security><extension url=\"http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris\">"));
	resp_free(&r);
	char *log = gw_log(&g);
	assert_null(strstr(log, "BEGIN"));
	free(log);
	free(entry);
	assert_int_equal(gw_stop(&g, 5000), 0);
}

static const char PATIENT[] =
	"{\"resourceType\":\"Patient\",\"id\":\"p1\",\"text\":{\"status\":\"generated\",\"div\":\"<div "
	"xmlns=\\\"http://www.w3.org/1999/xhtml\\\">Secret Person</div>\"},"
	"\"identifier\":[{\"system\":\"urn:mrn\",\"value\":\"M-1\"}],\"name\":[{\"family\":\"Secretname\"}],"
	"\"telecom\":[{\"system\":\"phone\",\"value\":\"555-0100\"}],\"birthDate\":\"1980-01-02\"}";
#define CONDITION_JSON                                                                                        \
	"{\"resourceType\":\"Condition\",\"id\":\"c1\",\"code\":{\"coding\":[{\"system\":\"" ICD              \
	"\",\"code\":\"F20.9\"}],\"text\":\"Hidden diagnosis words\"},\"note\":[{\"text\":\"Secret note\"}]," \
	"\"subject\":{\"reference\":\"Patient/p1\"}}"
static const char CONDITION[] = CONDITION_JSON;

/* No text of the minimum-necessary list is in body; the codes are. */
static void minimum_necessary(const char *what, const char *body)
{
	static const char *const never[] = {"Secretname", "Secret Person", "555-0100", "Hidden diagnosis words",
					    "Secret note"};
	for (size_t i = 0; i < sizeof never / sizeof *never; i++)
		if (strstr(body, never[i]))
			fail_msg("%s: \"%s\" reached a billing client: %s", what, never[i], body);
}

static void a_billing_client_gets_the_minimum_necessary_on_every_answer(void **state)
{
	(void)state;
	char printed[16384];
	char *biller = client_new("biller", "--purpose billing --scopes 'system/*.cruds'", printed, sizeof printed);
	char *nurse = client_new("nurse", "--scopes 'system/*.cruds'", printed, sizeof printed);
	char cfg[8192];
	snprintf(cfg, sizeof cfg, "\"auth\":{\"clients\":[%s,%s]}", biller, nurse);
	struct gw g;
	const char *args[] = {"--plugins", tdir, NULL};
	assert_int_equal(gw_start_args(&g, cfg, args), 0);
	char *bt = token(&g, "biller"), *nt = token(&g, "nurse");
	struct resp r;
	assert_int_equal(call(&g, nt, "PUT", "/fhir/Patient/p1", PATIENT, &r), 201);
	resp_free(&r);
	assert_int_equal(call(&g, nt, "PUT", "/fhir/Condition/c1", CONDITION, &r), 201);
	resp_free(&r);

	/* the treatment client sees everything */
	assert_int_equal(call(&g, nt, "GET", "/fhir/Patient/p1", NULL, &r), 200);
	assert_non_null(strstr(r.body, "Secretname"));
	assert_non_null(strstr(r.body, "Secret Person"));
	resp_free(&r);
	assert_int_equal(call(&g, nt, "GET", "/fhir/Condition/c1", NULL, &r), 200);
	assert_non_null(strstr(r.body, "Hidden diagnosis words"));
	resp_free(&r);

	static const struct {
		const char *method, *path, *body, *must; /* must: what billing still needs */
	} answers[] = {
		{"GET", "/fhir/Patient/p1", NULL, "M-1"},
		{"GET", "/fhir/Patient/p1?_format=xml", NULL, "M-1"},
		{"GET", "/fhir/Patient/p1?_pretty=true", NULL, "1980-01-02"},
		{"GET", "/fhir/Patient/p1/_history/1", NULL, "M-1"},
		{"GET", "/fhir/Patient/p1/_history", NULL, "M-1"},
		{"GET", "/fhir/Condition/c1", NULL, "F20.9"},
		{"GET", "/fhir/Condition?_include=Condition:subject", NULL, "M-1"},
		{"GET", "/fhir/Patient?_revinclude=Condition:subject", NULL, "F20.9"},
		{"POST", "/fhir",
		 "{\"resourceType\":\"Bundle\",\"type\":\"batch\",\"entry\":[{\"request\":{\"method\":\"GET\",\"url\":"
		 "\"Patient/p1\"}},{\"request\":{\"method\":\"GET\",\"url\":\"Condition/c1\"}}]}",
		 "F20.9"},
		{"POST", "/export/bundle-raw",
		 "{\"resourceType\":\"Bundle\",\"type\":\"collection\",\"entry\":[{\"resource\":{\"resourceType\":"
		 "\"Patient\",\"id\":\"p9\",\"identifier\":[{\"system\":\"urn:mrn\",\"value\":\"M-1\"}],\"name\":[{"
		 "\"family\":\"Secretname\"}]}},{\"resource\":" CONDITION_JSON "}]}",
		 "F20.9"},
		{"GET", "/export/bundle-raw?patient=p1", NULL, "F20.9"},
	};
	for (size_t i = 0; i < sizeof answers / sizeof *answers; i++) {
		long s = call(&g, bt, answers[i].method, answers[i].path, answers[i].body, &r);
		if (s != 200 || !strstr(r.body, answers[i].must))
			fail_msg("%s %s: %ld %s", answers[i].method, answers[i].path, s, r.body);
		minimum_necessary(answers[i].path, r.body);
		/* the same answers to the treatment client carry it all */
		resp_free(&r);
		assert_int_equal(call(&g, nt, answers[i].method, answers[i].path, answers[i].body, &r), 200);
		if (!strstr(r.body, "Secretname") && !strstr(r.body, "Hidden diagnosis words"))
			fail_msg("treatment %s: %s", answers[i].path, r.body);
		resp_free(&r);
	}
	/* its writes are answered in its view too */
	assert_int_equal(call(&g, bt, "PUT", "/fhir/Patient/p1", PATIENT, &r), 200);
	minimum_necessary("PUT", r.body);
	resp_free(&r);
	free(bt);
	free(nt);
	free(biller);
	free(nurse);
	assert_int_equal(gw_stop(&g, 5000), 0);
}

/* The 42CFRPart2 label of a resource read back by the client of tok. */
static bool labelled_part2(const struct gw *g, const char *tok, const char *path)
{
	struct resp r;
	assert_int_equal(call(g, tok, "GET", path, NULL, &r), 200);
	bool yes = strstr(r.body, "\"42CFRPart2\"") != NULL;
	resp_free(&r);
	return yes;
}

static void a_part2_programs_writes_carry_the_part2_label(void **state)
{
	(void)state;
	char printed[16384];
	char *program = client_new("program", "--scopes 'system/*.cruds'", printed, sizeof printed);
	char *clinic = client_new("clinic", "--scopes 'system/*.cruds'", printed, sizeof printed);
	/* the entry as printed, marked a Part 2 program */
	cJSON *e = cJSON_Parse(program);
	cJSON_AddBoolToObject(e, "part2_program", true);
	char *marked = cJSON_PrintUnformatted(e);
	cJSON_Delete(e);
	char cfg[8192];
	snprintf(cfg, sizeof cfg, "\"auth\":{\"clients\":[%s,%s]}", marked, clinic);
	struct gw g;
	assert_int_equal(gw_start(&g, cfg), 0);
	char *pt = token(&g, "program"), *ct = token(&g, "clinic");
	struct resp r;
	static const char obs[] = "{\"resourceType\":\"Observation\",\"status\":\"final\",\"code\":{\"text\":\"x\"}}";
	assert_int_equal(call(&g, pt, "POST", "/fhir/Observation", obs, &r), 201);
	char loc[256];
	assert_non_null(resp_header(&r, "Location", loc, sizeof loc));
	char o1[128];
	snprintf(o1, sizeof o1, "/fhir/Observation/%.60s", strstr(loc, "Observation/") + 12);
	*strstr(o1, "/_history") = '\0';
	resp_free(&r);
	assert_int_equal(call(&g, ct, "PUT", "/fhir/Observation/o2",
			      "{\"resourceType\":\"Observation\",\"id\":\"o2\",\"status\":\"final\",\"code\":{\"text\":"
			      "\"x\"}}",
			      &r),
			 201);
	resp_free(&r);
	assert_int_equal(call(&g, pt, "POST", "/fhir",
			      "{\"resourceType\":\"Bundle\",\"type\":\"transaction\",\"entry\":[{\"resource\":"
			      "{\"resourceType\":\"Observation\",\"id\":\"o3\",\"status\":\"final\",\"code\":{\"text\":"
			      "\"x\"}},\"request\":{\"method\":\"PUT\",\"url\":\"Observation/o3\"}}]}",
			      &r),
			 200);
	resp_free(&r);
	/* the program reads its own records back, labelled; the clinic has no
	 * consent to see them (docs/privacy.md), so they are not found for it */
	assert_true(labelled_part2(&g, pt, o1));
	assert_true(labelled_part2(&g, pt, "/fhir/Observation/o3"));
	assert_false(labelled_part2(&g, ct, "/fhir/Observation/o2"));
	assert_int_equal(call(&g, ct, "GET", o1, NULL, &r), 404);
	resp_free(&r);
	/* part2_program must be a boolean */
	char out[4096];
	snprintf(cfg, sizeof cfg, "\"auth\":{\"clients\":[%.*s,\"part2_program\":\"yes\"}]}", (int)strlen(clinic) - 1,
		 clinic);
	assert_int_equal(gw_run_expect_exit(cfg, NULL, 10000, out, sizeof out), 2);
	assert_non_null(strstr(out, "auth.clients[0].part2_program"));
	free(pt);
	free(ct);
	free(marked);
	free(program);
	free(clinic);
	assert_int_equal(gw_stop(&g, 5000), 0);
}

/* The person_first diagnosis display chosen per client: a recovery client
 * with its own diagnosis_display gets it on /export, another client the
 * global setting; a client's plugin settings name a loaded plugin. */
static void diagnosis_display_is_chosen_per_client(void **state)
{
	(void)state;
	char printed[16384];
	char *peer = client_new("peer", "--purpose recovery --scopes 'system/*.cruds'", printed, sizeof printed);
	char *coder = client_new("coder", "--scopes 'system/*.cruds'", printed, sizeof printed);
	cJSON *e = cJSON_Parse(peer);
	cJSON *pl = cJSON_AddObjectToObject(cJSON_AddObjectToObject(e, "plugins"), "person_first");
	cJSON_AddStringToObject(pl, "diagnosis_display", "person-first");
	char *with = cJSON_PrintUnformatted(e);
	cJSON_Delete(e);
	char cfg[8192];
	snprintf(cfg, sizeof cfg,
		 "\"plugins\":{\"person_first\":{\"diagnosis_display\":\"codes\"}},\"auth\":{\"clients\":[%s,%s]}",
		 with, coder);
	struct gw g;
	const char *args[] = {"--plugins", tdir, NULL};
	assert_int_equal(gw_start_args(&g, cfg, args), 0);
	char *pt = token(&g, "peer"), *ct = token(&g, "coder");
	static const char doc[] = "{\"resourceType\":\"Bundle\",\"type\":\"collection\",\"entry\":[{\"resource\":"
				  "{\"resourceType\":\"Condition\",\"id\":\"c7\",\"code\":{\"coding\":[{\"system\":"
				  "\"" ICD "\",\"code\":\"F20.9\",\"display\":\"Schizophrenia, unspecified\"}]}}}]}";
	struct resp r;
	assert_int_equal(call(&g, pt, "POST", "/export/bundle-raw", doc, &r), 200);
	assert_non_null(strstr(r.body, "Person living with schizophrenia"));
	resp_free(&r);
	assert_int_equal(call(&g, ct, "POST", "/export/bundle-raw", doc, &r), 200);
	assert_null(strstr(r.body, "Person living with"));
	resp_free(&r);
	assert_int_equal(gw_stop(&g, 5000), 0);
	/* settings of a plugin that is not there stop the start */
	snprintf(cfg, sizeof cfg, "\"auth\":{\"clients\":[%.*s,\"plugins\":{\"nosuch\":{}}}]}", (int)strlen(coder) - 1,
		 coder);
	char out[4096];
	assert_int_equal(gw_run_expect_exit(cfg, NULL, 10000, out, sizeof out), 2);
	assert_non_null(strstr(out, "auth.clients[0].plugins.nosuch"));
	free(pt);
	free(ct);
	free(with);
	free(peer);
	free(coder);
}

/* POST /auth/token with a client assertion; the status, the body in r. */
static long token_with(const struct gw *g, const char *assertion, struct resp *r)
{
	char body[8192];
	snprintf(body, sizeof body,
		 "grant_type=client_credentials&client_assertion_type=urn%%3Aietf%%3Aparams%%3Aoauth%%3Aclient-"
		 "assertion-type%%3Ajwt-bearer&client_assertion=%s",
		 assertion);
	const char *h[] = {"Content-Type: application/x-www-form-urlencoded", NULL};
	assert_int_equal(http_do(g, "POST", "/auth/token", h, body, strlen(body), r), 0);
	return r->status;
}

/* Client assertions signed by another implementation, the jose package
 * (tests/idp/assertion.mjs), ES384 and RS384: exchanged for tokens that
 * open /fhir; one signed by jose with a key the client does not have is
 * refused. */
static void client_assertions_signed_with_jose(void **state)
{
	(void)state;
	UPSTREAM_NEEDED();
	assert_int_equal(idp_install(), 0);
	static const char *const algs[] = {"ES384", "RS384"};
	for (size_t i = 0; i < 2; i++) {
		char kd[128], other[128], jwks[4096], none[8];
		snprintf(kd, sizeof kd, "%s/jose-%s", dir, algs[i]);
		snprintf(other, sizeof other, "%s/other-%s", dir, algs[i]);
		assert_int_equal(run(none, sizeof none, "mkdir -p %s %s", kd, other), 0);
		assert_int_equal(run(jwks, sizeof jwks, "node tests/idp/assertion.mjs keygen %s %s", algs[i], kd), 0);
		assert_int_equal(
			run(none, sizeof none, "node tests/idp/assertion.mjs keygen %s %s >/dev/null", algs[i], other),
			0);
		jwks[strcspn(jwks, "\n")] = '\0';
		char cfg[8192];
		snprintf(cfg, sizeof cfg,
			 "\"auth\":{\"clients\":[{\"client_id\":\"jose-app\",\"jwks\":%s,\"scopes\":\"system/"
			 "Patient.rs\"}]}",
			 jwks);
		struct gw g;
		assert_int_equal(gw_start(&g, cfg), 0);
		char a[4096];
		assert_int_equal(run(a, sizeof a,
				     "node tests/idp/assertion.mjs sign %s jose-app http://127.0.0.1:%u/auth/token", kd,
				     g.port),
				 0);
		a[strcspn(a, "\n")] = '\0';
		struct resp r;
		if (token_with(&g, a, &r) != 200)
			fail_msg("%s: %ld %s", algs[i], r.status, r.body);
		cJSON *j = cJSON_Parse(r.body);
		char *tok = strdup(cJSON_GetObjectItem(j, "access_token")->valuestring);
		cJSON_Delete(j);
		resp_free(&r);
		assert_int_equal(call(&g, tok, "GET", "/fhir/Patient", NULL, &r), 200);
		resp_free(&r);
		/* the same assertion again: a replay */
		assert_int_equal(token_with(&g, a, &r), 401);
		resp_free(&r);
		/* signed by jose with a key that is not the client's */
		assert_int_equal(run(a, sizeof a,
				     "node tests/idp/assertion.mjs sign %s jose-app http://127.0.0.1:%u/auth/token",
				     other, g.port),
				 0);
		a[strcspn(a, "\n")] = '\0';
		assert_int_equal(token_with(&g, a, &r), 401);
		assert_non_null(strstr(r.body, "invalid_client"));
		resp_free(&r);
		free(tok);
		assert_int_equal(gw_stop(&g, 5000), 0);
	}
}

/* An access token of issuer iss for aud signed from C (OpenSSL, through
 * the core's JWS code) with the key in key_file, carrying purpose claim p
 * (NULL: none). */
static char *issuer_token(const char *key_file, const char *iss, const char *aud, const char *scope, const char *p)
{
	cJSON *c = cJSON_CreateObject();
	cJSON_AddStringToObject(c, "iss", iss);
	cJSON_AddStringToObject(c, "aud", aud);
	cJSON_AddStringToObject(c, "sub", "ext-app");
	cJSON_AddStringToObject(c, "scope", scope);
	cJSON_AddNumberToObject(c, "exp", (double)(time(NULL) + 120));
	if (p)
		cJSON_AddStringToObject(c, "crosswalk_purpose", p);
	char *t = harness_sign_token(key_file, c);
	cJSON_Delete(c);
	return t;
}

/* An external issuer's purpose by its claim mapping (purpose_claim): a token
 * whose claim says billing gets the billing view, one saying treatment
 * everything, one without the claim the issuer's purpose, one naming no
 * purpose is refused. */
static void an_issuers_purpose_comes_from_its_claim(void **state)
{
	(void)state;
	char printed[16384];
	char *any = client_new("idp-client", "", printed, sizeof printed);
	char data[128], cfg[8192];
	snprintf(data, sizeof data, "%s/idp-data", dir);
	snprintf(cfg, sizeof cfg, "\"data_dir\":\"%s\",\"auth\":{\"clients\":[%s]}", data, any);
	struct gw idp;
	assert_int_equal(gw_start(&idp, cfg), 0); /* serves its key at /auth/jwks */
	char key[200], iss[128], aud[128];
	snprintf(key, sizeof key, "%s/auth-signing-key.pem", data);
	snprintf(iss, sizeof iss, "http://127.0.0.1:%u/auth", idp.port);
	snprintf(aud, sizeof aud, "https://fhir.example.org/fhir");
	snprintf(
		cfg, sizeof cfg,
		"\"auth\":{\"issuers\":[{\"issuer\":\"%s\",\"jwks_url\":\"http://127.0.0.1:%u/auth/jwks\",\"audience\":"
		"\"%s\",\"purpose\":\"billing\",\"purpose_claim\":\"crosswalk_purpose\"}]}",
		iss, idp.port, aud);
	struct gw g;
	assert_int_equal(gw_start(&g, cfg), 0);
	char *treat = issuer_token(key, iss, aud, "system/*.cruds", "treatment");
	char *bill = issuer_token(key, iss, aud, "system/*.rs", "billing");
	char *plain = issuer_token(key, iss, aud, "system/*.rs", NULL);
	char *odd = issuer_token(key, iss, aud, "system/*.rs", "marketing");
	struct resp r;
	assert_int_equal(call(&g, treat, "PUT", "/fhir/Patient/p1", PATIENT, &r), 201);
	resp_free(&r);
	assert_int_equal(call(&g, treat, "GET", "/fhir/Patient/p1", NULL, &r), 200);
	assert_non_null(strstr(r.body, "Secretname"));
	resp_free(&r);
	assert_int_equal(call(&g, bill, "GET", "/fhir/Patient/p1", NULL, &r), 200);
	minimum_necessary("billing claim", r.body);
	assert_non_null(strstr(r.body, "M-1"));
	resp_free(&r);
	/* no claim: the issuer's purpose (billing) */
	assert_int_equal(call(&g, plain, "GET", "/fhir/Patient/p1", NULL, &r), 200);
	minimum_necessary("issuer's purpose", r.body);
	resp_free(&r);
	assert_int_equal(call(&g, odd, "GET", "/fhir/Patient/p1", NULL, &r), 401);
	resp_free(&r);
	free(treat);
	free(bill);
	free(plain);
	free(odd);
	free(any);
	assert_int_equal(gw_stop(&g, 5000), 0);
	assert_int_equal(gw_stop(&idp, 5000), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(zero_to_an_authenticated_request_in_three_commands),
		cmocka_unit_test(a_billing_client_gets_the_minimum_necessary_on_every_answer),
		cmocka_unit_test(a_part2_programs_writes_carry_the_part2_label),
		cmocka_unit_test(diagnosis_display_is_chosen_per_client),
		cmocka_unit_test(client_assertions_signed_with_jose),
		cmocka_unit_test(an_issuers_purpose_comes_from_its_claim),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
