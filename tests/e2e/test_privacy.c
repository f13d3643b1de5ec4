/* End-to-end tests of the security labels (docs/privacy.md): the default
 * rule table of profiles/security/labels.tsv applied on every write path
 * through HTTP — REST create, update (an HCPCS alias system), patch;
 * transaction and batch entries; /ingest; a write passed through to the
 * real upstream of tests/upstream — with client labels kept, F17 and H0038
 * left alone, a diagnosis passing its labels to its Encounter both ways
 * (Encounter.diagnosis in one transaction, Condition.encounter written
 * later), and the labels carried to what is derived: Claim/$build and the
 * billing export (X-Security-Labels). Provenance: one per transaction
 * and per /ingest, in the same store transaction, naming every resource
 * written, the writer, and for /ingest the document's SHA-256; none for a
 * batch, a failed transaction or a re-push that changed nothing. Consent
 * stored and searchable. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/crypto.h"
#include "e2e/harness.h"

#define ICD "http://hl7.org/fhir/sid/icd-10-cm"
#define HCPCS "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"
#define ACT "http://terminology.hl7.org/CodeSystem/v3-ActCode"
#define CONF "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
#define EXAMPLE "docs/examples/billing/"

static struct gw g;
static const char *fj[] = {"Content-Type: application/fhir+json", NULL};

static const cJSON *get(const cJSON *o, const char *k) { return cJSON_GetObjectItemCaseSensitive(o, k); }
static const char *sget(const cJSON *o, const char *k)
{
	const cJSON *v = get(o, k);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

/* s with the first what replaced by with (malloc'd); what must be there. */
static char *replace_once(const char *s, const char *what, const char *with)
{
	const char *at = strstr(s, what);
	assert_non_null(at);
	size_t off = (size_t)(at - s), wl = strlen(what), nl = strlen(with), sl = strlen(s);
	char *out = malloc(sl - wl + nl + 1);
	assert_non_null(out);
	memcpy(out, s, off);
	memcpy(out + off, with, nl);
	memcpy(out + off + nl, s + off + wl, sl - off - wl + 1);
	return out;
}

/* The labels of r as "CODE,CODE" in meta.security order ("" for none). */
static void labels(const cJSON *r, char *out, size_t n)
{
	out[0] = '\0';
	const cJSON *c;
	cJSON_ArrayForEach(c, get(get(r, "meta"), "security"))
	{
		const char *sys = sget(c, "system"), *code = sget(c, "code");
		assert_non_null(sys);
		assert_non_null(code);
		snprintf(out + strlen(out), n - strlen(out), "%s%s", out[0] ? "," : "", code);
	}
}

/* Does r carry system|code exactly once? */
static bool has_label(const cJSON *r, const char *system, const char *code)
{
	int seen = 0;
	const cJSON *c;
	cJSON_ArrayForEach(c, get(get(r, "meta"), "security"))
	{
		if (sget(c, "system") && sget(c, "code") && !strcmp(sget(c, "system"), system) &&
		    !strcmp(sget(c, "code"), code))
			seen++;
	}
	assert_true(seen <= 1); /* never twice */
	return seen == 1;
}

static bool sud(const cJSON *r) { return has_label(r, ACT, "ETH") && has_label(r, CONF, "R"); }

static cJSON *call(const char *method, const char *path, const char *body, long want)
{
	struct resp r;
	const char *h[] = {"Content-Type: application/fhir+json", "Prefer: return=representation", NULL};
	assert_int_equal(http_do(&g, method, path, body ? h : NULL, body, body ? strlen(body) : 0, &r), 0);
	if (r.status != want)
		fprintf(stderr, "# %s %s: %ld %s\n", method, path, r.status, r.body ? r.body : "");
	assert_int_equal(r.status, want);
	cJSON *t = r.len ? cJSON_Parse(r.body) : NULL;
	resp_free(&r);
	return t;
}

static cJSON *read_back(const char *type, const char *id)
{
	char path[256];
	snprintf(path, sizeof path, "/fhir/%s/%s", type, id);
	return call("GET", path, NULL, 200);
}

static char *condition(const char *id, const char *code, const char *extra)
{
	char *b = malloc(1024);
	assert_non_null(b);
	snprintf(b, 1024,
		 "{\"resourceType\":\"Condition\"%s%s%s,\"subject\":{\"reference\":\"Patient/p1\"},"
		 "\"code\":{\"coding\":[{\"system\":\"" ICD "\",\"code\":\"%s\"}]}%s}",
		 id ? ",\"id\":\"" : "", id ? id : "", id ? "\"" : "", code, extra ? extra : "");
	return b;
}

static int gw_up(void **state)
{
	(void)state;
	return gw_start(&g, NULL);
}

static int gw_down(void **state)
{
	(void)state;
	return gw_stop(&g, 5000) == 0 ? 0 : -1;
}

/* REST create, update and patch: the table's labels on SUD codes, none on
 * nicotine or other diagnoses, client labels kept. */
static void rest_writes_are_labelled(void **state)
{
	(void)state;
	char lab[256];
	char *b = condition(NULL, "F11.20", NULL);
	cJSON *r = call("POST", "/fhir/Condition", b, 201);
	free(b);
	assert_true(sud(r));
	assert_false(has_label(r, ACT, "42CFRPart2")); /* the local operator is no Part 2 program */
	cJSON *back = read_back("Condition", sget(r, "id"));
	labels(back, lab, sizeof lab);
	assert_string_equal(lab, "ETH,R"); /* stored so */
	cJSON_Delete(back);
	cJSON_Delete(r);

	/* remission codes of F10-F19 too; F17 nicotine and F33 depression not */
	static const struct {
		const char *code;
		bool labelled;
	} cases[] = {{"F10.21", true},   {"F19.11", true}, {"F12.90", true}, {"F17.210", false},
		     {"F17.211", false}, {"F33.1", false}, {"F09", false},   {"F20.9", false}};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		b = condition(NULL, cases[i].code, NULL);
		r = call("POST", "/fhir/Condition", b, 201);
		free(b);
		labels(r, lab, sizeof lab);
		if (sud(r) != cases[i].labelled)
			fprintf(stderr, "# %s: labels '%s'\n", cases[i].code, lab);
		assert_int_equal(sud(r), cases[i].labelled);
		if (!cases[i].labelled)
			assert_null(get(get(r, "meta"), "security"));
		cJSON_Delete(r);
	}

	/* a client's labels are kept beside the added ones, none twice */
	b = condition("kept", "F13.20",
		      ",\"meta\":{\"security\":[{\"system\":\"" CONF "\",\"code\":\"R\"},{\"system\":\"" ACT
		      "\",\"code\":\"PSY\"}]}");
	r = call("PUT", "/fhir/Condition/kept", b, 201);
	free(b);
	labels(r, lab, sizeof lab);
	assert_string_equal(lab, "R,PSY,ETH");
	cJSON_Delete(r);

	/* a meta that is no Meta is refused as invalid, not labelled: as a
	 * single write, and as a transaction entry (labelled before it is
	 * validated) */
	static const char *const bad_meta[] = {",\"meta\":\"restricted\"", ",\"meta\":{\"security\":{\"code\":\"R\"}}"};
	for (size_t i = 0; i < 2; i++) {
		b = condition(NULL, "F11.20", bad_meta[i]);
		cJSON_Delete(call("POST", "/fhir/Condition", b, 400));
		char tx[1024];
		snprintf(tx, sizeof tx,
			 "{\"resourceType\":\"Bundle\",\"type\":\"transaction\",\"entry\":[{\"resource\":%s,"
			 "\"request\":{\"method\":\"POST\",\"url\":\"Condition\"}}]}",
			 b);
		free(b);
		cJSON_Delete(call("POST", "/fhir", tx, 400));
	}

	/* update through the CARIN spelling of the HCPCS system: the alias matches */
	const char *proc = "{\"resourceType\":\"Procedure\",\"id\":\"methadone\",\"status\":\"completed\","
			   "\"subject\":{\"reference\":\"Patient/p1\"},\"code\":{\"coding\":[{\"system\":"
			   "\"https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets\",\"code\":\"H0020\"}]}}";
	r = call("PUT", "/fhir/Procedure/methadone", proc, 201);
	assert_true(sud(r));
	cJSON_Delete(r);
	/* H0038 peer support is not SUD-specific; H0031 mental health neither */
	const char *peer = "{\"resourceType\":\"Procedure\",\"id\":\"peer\",\"status\":\"completed\","
			   "\"subject\":{\"reference\":\"Patient/p1\"},\"code\":{\"coding\":[{\"system\":\"" HCPCS
			   "\",\"code\":\"H0038\"},{\"system\":\"" HCPCS "\",\"code\":\"H0031\"}]}}";
	r = call("PUT", "/fhir/Procedure/peer", peer, 201);
	assert_null(get(get(r, "meta"), "security"));
	cJSON_Delete(r);

	/* a patch that makes the code a SUD code labels the new version */
	b = condition("patched", "Z59.00", NULL);
	cJSON_Delete(call("PUT", "/fhir/Condition/patched", b, 201));
	free(b);
	const char *patch = "[{\"op\":\"replace\",\"path\":\"/code/coding/0/code\",\"value\":\"F14.20\"}]";
	struct resp rp;
	const char *ph[] = {"Content-Type: application/json-patch+json", "Prefer: return=representation", NULL};
	assert_int_equal(http_do(&g, "PATCH", "/fhir/Condition/patched", ph, patch, strlen(patch), &rp), 0);
	assert_int_equal(rp.status, 200);
	resp_free(&rp);
	back = read_back("Condition", "patched");
	assert_true(sud(back));
	assert_string_equal(sget(get(back, "meta"), "versionId"), "2");
	cJSON_Delete(back);
}

/* A transaction: the Encounter whose diagnosis is a SUD Condition written
 * beside it takes the Condition's labels; the H0038 Encounter without one
 * does not. A batch entry is labelled as a single write is. */
static void bundles_pass_diagnosis_labels_on(void **state)
{
	(void)state;
	const char *tx =
		"{\"resourceType\":\"Bundle\",\"type\":\"transaction\",\"entry\":["
		"{\"fullUrl\":\"urn:uuid:0b5c6e4c-1111-4a5e-9a1e-000000000001\",\"resource\":{\"resourceType\":"
		"\"Encounter\",\"status\":\"finished\",\"class\":{\"system\":\"http://terminology.hl7.org/CodeSystem/"
		"v3-ActCode\",\"code\":\"AMB\"},\"type\":[{\"coding\":[{\"system\":\"" HCPCS
		"\",\"code\":\"H0038\"}]}],"
		"\"diagnosis\":[{\"condition\":{\"reference\":\"urn:uuid:0b5c6e4c-1111-4a5e-9a1e-000000000002\"}}]},"
		"\"request\":{\"method\":\"POST\",\"url\":\"Encounter\"}},"
		"{\"fullUrl\":\"urn:uuid:0b5c6e4c-1111-4a5e-9a1e-000000000002\",\"resource\":{\"resourceType\":"
		"\"Condition\",\"subject\":{\"reference\":\"Patient/p1\"},\"code\":{\"coding\":[{\"system\":\"" ICD
		"\",\"code\":\"F11.20\"}]}},\"request\":{\"method\":\"POST\",\"url\":\"Condition\"}},"
		"{\"resource\":{\"resourceType\":\"Encounter\",\"id\":\"plain-peer\",\"status\":\"finished\","
		"\"class\":{\"system\":\"http://terminology.hl7.org/CodeSystem/v3-ActCode\",\"code\":\"AMB\"},"
		"\"type\":[{\"coding\":[{\"system\":\"" HCPCS "\",\"code\":\"H0038\"}]}]},"
		"\"request\":{\"method\":\"PUT\",\"url\":\"Encounter/plain-peer\"}}]}";
	cJSON *resp = call("POST", "/fhir", tx, 200);
	const cJSON *es = get(resp, "entry");
	assert_int_equal(cJSON_GetArraySize(es), 3);
	char type[32], id[80];
	const char *loc = sget(get(cJSON_GetArrayItem(es, 0), "response"), "location");
	assert_non_null(loc);
	const char *p = strstr(loc, "/fhir/");
	assert_non_null(p);
	assert_int_equal(sscanf(p, "/fhir/%31[^/]/%79[^/]", type, id), 2);
	assert_string_equal(type, "Encounter");
	cJSON *enc = read_back("Encounter", id);
	assert_true(sud(enc));
	assert_string_equal(sget(get(enc, "meta"), "versionId"), "1"); /* labelled as it was written */
	cJSON_Delete(enc);
	enc = read_back("Encounter", "plain-peer");
	assert_null(get(get(enc, "meta"), "security"));
	cJSON_Delete(enc);
	cJSON_Delete(resp);

	/* a Condition written later with Condition.encounter labels the
	 * Encounter again, as a new version */
	char *b = condition("later-dx", "F10.20", ",\"encounter\":{\"reference\":\"Encounter/plain-peer\"}");
	char bundle[2048];
	snprintf(bundle, sizeof bundle,
		 "{\"resourceType\":\"Bundle\",\"type\":\"batch\",\"entry\":[{\"resource\":%s,"
		 "\"request\":{\"method\":\"PUT\",\"url\":\"Condition/later-dx\"}}]}",
		 b);
	free(b);
	cJSON_Delete(call("POST", "/fhir", bundle, 200));
	cJSON *dx = read_back("Condition", "later-dx");
	assert_true(sud(dx));
	cJSON_Delete(dx);
	enc = read_back("Encounter", "plain-peer");
	assert_true(sud(enc));
	assert_string_equal(sget(get(enc, "meta"), "versionId"), "2");
	cJSON_Delete(enc);

	/* and by a single REST create, too */
	const char *e3 =
		"{\"resourceType\":\"Encounter\",\"id\":\"peer-3\",\"status\":\"finished\","
		"\"class\":{\"system\":\"http://terminology.hl7.org/CodeSystem/v3-ActCode\",\"code\":\"AMB\"}}";
	cJSON_Delete(call("PUT", "/fhir/Encounter/peer-3", e3, 201));
	b = condition(NULL, "F15.10", ",\"encounter\":{\"reference\":\"Encounter/peer-3\"}");
	cJSON_Delete(call("POST", "/fhir/Condition", b, 201));
	free(b);
	enc = read_back("Encounter", "peer-3");
	assert_true(sud(enc));
	cJSON_Delete(enc);
	/* a diagnosis that brings no label changes nothing */
	const char *e4 =
		"{\"resourceType\":\"Encounter\",\"id\":\"peer-4\",\"status\":\"finished\","
		"\"class\":{\"system\":\"http://terminology.hl7.org/CodeSystem/v3-ActCode\",\"code\":\"AMB\"}}";
	cJSON_Delete(call("PUT", "/fhir/Encounter/peer-4", e4, 201));
	b = condition(NULL, "F33.1", ",\"encounter\":{\"reference\":\"Encounter/peer-4\"}");
	cJSON_Delete(call("POST", "/fhir/Condition", b, 201));
	free(b);
	enc = read_back("Encounter", "peer-4");
	assert_null(get(get(enc, "meta"), "security"));
	assert_string_equal(sget(get(enc, "meta"), "versionId"), "1");
	cJSON_Delete(enc);
}

/* /ingest: the peer-support encounters (H0038) come in unlabelled; a SUD
 * diagnosis recorded for one of them labels it. */
static void ingested_encounters_follow_their_diagnosis(void **state)
{
	(void)state;
	char *doc = slurp("tests/fixtures/billing/peer-support-november.json");
	struct resp r;
	assert_int_equal(http_do(&g, "POST", "/ingest/peer-support", fj, doc, strlen(doc), &r), 0);
	free(doc);
	assert_int_equal(r.status, 201);
	cJSON *t = cJSON_Parse(r.body);
	resp_free(&r);
	char type[32] = "", id[80] = "";
	const cJSON *e;
	cJSON_ArrayForEach(e, get(t, "entry"))
	{
		const char *loc = sget(get(e, "response"), "location");
		const char *p = loc ? strstr(loc, "/fhir/Encounter/") : NULL;
		if (p && sscanf(p, "/fhir/%31[^/]/%79[^/]", type, id) == 2)
			break;
	}
	cJSON_Delete(t);
	assert_string_equal(type, "Encounter");
	cJSON *enc = read_back("Encounter", id);
	assert_null(get(get(enc, "meta"), "security"));
	cJSON_Delete(enc);
	char extra[200];
	snprintf(extra, sizeof extra, ",\"encounter\":{\"reference\":\"Encounter/%s\"}", id);
	char *b = condition(NULL, "F11.21", extra);
	cJSON_Delete(call("POST", "/fhir/Condition", b, 201));
	free(b);
	enc = read_back("Encounter", id);
	assert_true(sud(enc));
	cJSON_Delete(enc);
}

/* Claim/$build and the billing export carry the labels of the encounters
 * and diagnoses they come from: by the Claim's own codes, and by its
 * Encounter (a label the client put on the Encounter only). */
static void derived_claims_and_exports_are_labelled(void **state)
{
	(void)state;
	char *load = slurp(EXAMPLE "load.json");
	/* dx-1 (visit-1 and visit-2) becomes an opioid use disorder */
	char *with_dx = replace_once(load, "\"F33.1\"", "\"F11.20\"");
	free(load);
	/* visit-3 (dx-2, anxiety) carries a Part 2 label its writer put on it */
	char *full = replace_once(with_dx, "\"id\": \"visit-3\"",
				  "\"meta\": {\"security\": [{\"system\": \"" ACT "\", \"code\": \"42CFRPart2\"}]}, "
				  "\"id\": \"visit-3\"");
	free(with_dx);
	cJSON_Delete(call("POST", "/fhir", full, 200));
	free(full);
	cJSON *v = read_back("Encounter", "visit-1");
	assert_true(sud(v)); /* by its diagnosis, in the same transaction */
	cJSON_Delete(v);
	v = read_back("Encounter", "visit-3");
	assert_false(sud(v));
	assert_true(has_label(v, ACT, "42CFRPart2"));
	cJSON_Delete(v);

	char *body = slurp(EXAMPLE "build-encounters.json");
	cJSON *b = call("POST", "/fhir/Claim/$build", body, 200);
	free(body);
	int claims = 0;
	const cJSON *e;
	cJSON_ArrayForEach(e, get(b, "entry"))
	{
		const cJSON *c = get(e, "resource");
		if (strcmp(sget(c, "resourceType"), "Claim") != 0)
			continue;
		claims++;
		const char *pat = sget(get(c, "patient"), "reference");
		assert_non_null(pat);
		if (!strcmp(pat, "Patient/person-1")) {
			assert_true(sud(c)); /* its diagnosis F11.20 */
			assert_false(has_label(c, ACT, "42CFRPart2"));
		} else {
			assert_string_equal(pat, "Patient/person-2");
			assert_false(sud(c));                         /* F41.1 and H0038 bring none, */
			assert_true(has_label(c, ACT, "42CFRPart2")); /* its Encounter does */
		}
	}
	assert_int_equal(claims, 2);
	/* the Bundle holds the labels of all it holds */
	assert_true(sud(b));
	assert_true(has_label(b, ACT, "42CFRPart2"));
	cJSON_Delete(b);

	struct resp r;
	const char *csv[] = {"Accept: text/csv", NULL};
	assert_int_equal(http_do(&g, "GET", "/export/billing?from=2025-11-01&to=2025-11-30", csv, NULL, 0, &r), 0);
	assert_int_equal(r.status, 200);
	char h[1024];
	assert_non_null(resp_header(&r, "X-Security-Labels", h, sizeof h));
	assert_non_null(strstr(h, ACT "|ETH"));
	assert_non_null(strstr(h, CONF "|R"));
	assert_non_null(strstr(h, ACT "|42CFRPart2"));
	resp_free(&r);
	/* an export of one person without labelled data says none */
	assert_int_equal(http_do(&g, "GET", "/export/billing?patient=p-unknown-none", csv, NULL, 0, &r), 0);
	assert_null(resp_header(&r, "X-Security-Labels", h, sizeof h));
	resp_free(&r);
}

/* The Provenances whose target includes ref, as a searchset Bundle. */
static cJSON *provenances_of(const char *ref)
{
	char path[300];
	snprintf(path, sizeof path, "/fhir/Provenance?target=%s", ref);
	return call("GET", path, NULL, 200);
}

static int entries(const cJSON *b) { return cJSON_GetArraySize(get(b, "entry")); }

/* The one Provenance naming ref (asserted to be exactly one). */
static cJSON *the_provenance(const char *ref)
{
	cJSON *b = provenances_of(ref);
	assert_int_equal(entries(b), 1);
	cJSON *p = cJSON_Duplicate(get(cJSON_GetArrayItem(get(b, "entry"), 0), "resource"), 1);
	cJSON_Delete(b);
	return p;
}

static bool targets(const cJSON *prov, const char *ref)
{
	const cJSON *t;
	cJSON_ArrayForEach(t, get(prov, "target"))
	{
		if (sget(t, "reference") && !strcmp(sget(t, "reference"), ref))
			return true;
	}
	return false;
}

static void valid_r4(const cJSON *res)
{
	char *t = cJSON_PrintUnformatted(res);
	struct resp v;
	assert_int_equal(http_do(&g, "POST", "/fhir/$validate", fj, t, strlen(t), &v), 0);
	free(t);
	assert_int_equal(v.status, 200);
	cJSON *vo = cJSON_Parse(v.body);
	const cJSON *vi;
	cJSON_ArrayForEach(vi, get(vo, "issue"))
	{
		const char *sev = sget(vi, "severity");
		if (!strcmp(sev, "error") || !strcmp(sev, "fatal"))
			fprintf(stderr, "# invalid: %s\n", v.body);
		assert_string_not_equal(sev, "error");
		assert_string_not_equal(sev, "fatal");
	}
	cJSON_Delete(vo);
	resp_free(&v);
}

static void author_is_local_operator(const cJSON *prov)
{
	const cJSON *a;
	int authors = 0;
	cJSON_ArrayForEach(a, get(prov, "agent"))
	{
		const char *code = sget(cJSON_GetArrayItem(get(get(a, "type"), "coding"), 0), "code");
		if (code && !strcmp(code, "author")) {
			authors++;
			assert_string_equal(sget(get(get(a, "who"), "identifier"), "value"), "local-operator");
		}
	}
	assert_int_equal(authors, 1);
}

/* A transaction: one Provenance whose target lists every entry written
 * (deletion included), by version; labelled with what it names. */
static void transaction_writes_one_provenance(void **state)
{
	(void)state;
	cJSON_Delete(
		call("PUT", "/fhir/Patient/prov-gone", "{\"resourceType\":\"Patient\",\"id\":\"prov-gone\"}", 201));
	const char *tx =
		"{\"resourceType\":\"Bundle\",\"type\":\"transaction\",\"entry\":["
		"{\"fullUrl\":\"urn:uuid:0b5c6e4c-2222-4a5e-9a1e-000000000001\",\"resource\":{\"resourceType\":"
		"\"Condition\",\"subject\":{\"reference\":\"Patient/prov-p\"},\"code\":{\"coding\":[{\"system\":\"" ICD
		"\",\"code\":\"F11.20\"}]}},\"request\":{\"method\":\"POST\",\"url\":\"Condition\"}},"
		"{\"resource\":{\"resourceType\":\"Patient\",\"id\":\"prov-p\"},"
		"\"request\":{\"method\":\"PUT\",\"url\":\"Patient/prov-p\"}},"
		"{\"request\":{\"method\":\"DELETE\",\"url\":\"Patient/prov-gone\"}},"
		"{\"request\":{\"method\":\"GET\",\"url\":\"Patient/prov-p\"}}]}";
	cJSON *resp = call("POST", "/fhir", tx, 200);
	char cond[120] = "";
	const char *loc = sget(get(cJSON_GetArrayItem(get(resp, "entry"), 0), "response"), "location");
	assert_non_null(loc);
	const char *p = strstr(loc, "Condition/");
	assert_non_null(p);
	snprintf(cond, sizeof cond, "%s", p); /* Condition/id/_history/1 */
	cJSON_Delete(resp);

	cJSON *prov = the_provenance("Patient/prov-p");
	assert_int_equal(cJSON_GetArraySize(get(prov, "target")), 3); /* not the GET */
	assert_true(targets(prov, cond));
	assert_true(targets(prov, "Patient/prov-p/_history/1"));
	assert_true(targets(prov, "Patient/prov-gone/_history/2"));
	assert_non_null(sget(prov, "recorded"));
	assert_null(get(prov, "entity"));
	author_is_local_operator(prov);
	assert_true(sud(prov)); /* it names an F11.20 diagnosis */
	valid_r4(prov);
	cJSON_Delete(prov);
	/* found by each of its targets */
	char ctype_id[120];
	snprintf(ctype_id, sizeof ctype_id, "%.*s", (int)(strstr(cond, "/_history") - cond), cond);
	cJSON *b = provenances_of(ctype_id);
	assert_int_equal(entries(b), 1);
	cJSON_Delete(b);

	/* a batch writes none; a transaction that fails neither */
	const char *batch = "{\"resourceType\":\"Bundle\",\"type\":\"batch\",\"entry\":[{\"resource\":"
			    "{\"resourceType\":\"Patient\",\"id\":\"prov-batch\"},\"request\":{\"method\":\"PUT\","
			    "\"url\":\"Patient/prov-batch\"}}]}";
	cJSON_Delete(call("POST", "/fhir", batch, 200));
	b = provenances_of("Patient/prov-batch");
	assert_int_equal(entries(b), 0);
	cJSON_Delete(b);
	const char *failing = "{\"resourceType\":\"Bundle\",\"type\":\"transaction\",\"entry\":["
			      "{\"resource\":{\"resourceType\":\"Patient\",\"id\":\"prov-fail\"},"
			      "\"request\":{\"method\":\"PUT\",\"url\":\"Patient/prov-fail\"}},"
			      "{\"resource\":{\"resourceType\":\"Patient\",\"id\":\"prov-fail2\",\"active\":\"yes\"},"
			      "\"request\":{\"method\":\"PUT\",\"url\":\"Patient/prov-fail2\"}}]}";
	cJSON_Delete(call("POST", "/fhir", failing, 400));
	b = provenances_of("Patient/prov-fail");
	assert_int_equal(entries(b), 0);
	cJSON_Delete(b);
	b = call("GET", "/fhir/Provenance?_summary=count", NULL, 200);
	double total = get(b, "total")->valuedouble;
	cJSON_Delete(b);
	/* the Provenance is only read: a transaction that writes nothing has none */
	const char *reads = "{\"resourceType\":\"Bundle\",\"type\":\"transaction\",\"entry\":["
			    "{\"request\":{\"method\":\"GET\",\"url\":\"Patient/prov-p\"}}]}";
	cJSON_Delete(call("POST", "/fhir", reads, 200));
	b = call("GET", "/fhir/Provenance?_summary=count", NULL, 200);
	assert_true(get(b, "total")->valuedouble == total);
	cJSON_Delete(b);
}

/* /ingest: one Provenance naming every resource written and the document's
 * SHA-256; pushing the same document again writes nothing and no
 * Provenance. */
static void ingest_writes_one_provenance_with_the_document_hash(void **state)
{
	(void)state;
	char *doc = slurp("docs/formats/examples/peer-support-individual.json");
	struct resp r;
	assert_int_equal(http_do(&g, "POST", "/ingest/peer-support", fj, doc, strlen(doc), &r), 0);
	assert_int_equal(r.status, 201);
	cJSON *t = cJSON_Parse(r.body);
	resp_free(&r);
	char refs[32][160];
	int n = 0;
	const cJSON *e;
	cJSON_ArrayForEach(e, get(t, "entry"))
	{
		const char *loc = sget(get(e, "response"), "location");
		const char *p = loc ? strstr(loc, "/fhir/") : NULL;
		assert_non_null(p);
		assert_true(n < 32);
		snprintf(refs[n++], sizeof refs[0], "%s", p + 6);
	}
	cJSON_Delete(t);
	assert_true(n >= 3);
	char first[160];
	snprintf(first, sizeof first, "%.*s", (int)(strstr(refs[0], "/_history") - refs[0]), refs[0]);
	cJSON *prov = the_provenance(first);
	assert_int_equal(cJSON_GetArraySize(get(prov, "target")), n);
	for (int i = 0; i < n; i++)
		assert_true(targets(prov, refs[i]));
	author_is_local_operator(prov);
	/* the document's digest, RFC 6920 form, computed here */
	uint8_t h[CRYPTO_SHA256_LEN];
	assert_int_equal(crypto_sha256(doc, strlen(doc), h), 0);
	static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	char want[80] = "ni:///sha-256;";
	size_t o = strlen(want);
	unsigned long bits = 0;
	int nbits = 0;
	for (size_t i = 0; i < sizeof h; i++) {
		bits = (bits << 8) | h[i];
		nbits += 8;
		while (nbits >= 6) {
			want[o++] = b64[(bits >> (nbits - 6)) & 63];
			nbits -= 6;
		}
	}
	if (nbits)
		want[o++] = b64[(bits << (6 - nbits)) & 63];
	want[o] = '\0';
	const cJSON *ent = cJSON_GetArrayItem(get(prov, "entity"), 0);
	assert_string_equal(sget(ent, "role"), "source");
	assert_string_equal(sget(get(get(ent, "what"), "identifier"), "value"), want);
	assert_string_equal(sget(get(get(ent, "what"), "identifier"), "system"), "urn:ietf:rfc:3986");
	valid_r4(prov);
	cJSON_Delete(prov);

	/* the same document again: nothing written, no second Provenance */
	assert_int_equal(http_do(&g, "POST", "/ingest/peer-support", fj, doc, strlen(doc), &r), 0);
	assert_int_equal(r.status, 201);
	resp_free(&r);
	free(doc);
	cJSON *b = provenances_of(first);
	assert_int_equal(entries(b), 1);
	cJSON_Delete(b);
}

/* Consent: stored and found by the parameters a consent decision needs. */
static void consents_are_searchable(void **state)
{
	(void)state;
	static const char *const consents[] = {
		"{\"resourceType\":\"Consent\",\"id\":\"c-permit\",\"status\":\"active\",\"scope\":{\"coding\":[{"
		"\"system\":\"http://terminology.hl7.org/CodeSystem/consentscope\",\"code\":\"patient-privacy\"}]},"
		"\"category\":[{\"coding\":[{\"system\":\"http://loinc.org\",\"code\":\"59284-0\"}]}],"
		"\"patient\":{\"reference\":\"Patient/c-person\"},\"dateTime\":\"2026-03-01\","
		"\"policyRule\":{\"coding\":[{\"system\":\"http://terminology.hl7.org/CodeSystem/consentpolicycodes\","
		"\"code\":\"hipaa-auth\"}]},\"provision\":{\"type\":\"permit\",\"period\":{\"start\":\"2026-03-01\","
		"\"end\":\"2027-03-01\"},\"actor\":[{\"role\":{\"coding\":[{\"system\":"
		"\"http://terminology.hl7.org/CodeSystem/v3-ParticipationType\",\"code\":\"IRCP\"}]},"
		"\"reference\":{\"reference\":\"Organization/payer-1\"}}],"
		"\"purpose\":[{\"system\":\"http://terminology.hl7.org/CodeSystem/v3-ActReason\",\"code\":\"HPAYMT\"}],"
		"\"securityLabel\":[{\"system\":\"" ACT "\",\"code\":\"42CFRPart2\"}]}}",
		"{\"resourceType\":\"Consent\",\"id\":\"c-deny\",\"status\":\"inactive\",\"scope\":{\"coding\":[{"
		"\"system\":\"http://terminology.hl7.org/CodeSystem/consentscope\",\"code\":\"patient-privacy\"}]},"
		"\"category\":[{\"coding\":[{\"system\":\"http://loinc.org\",\"code\":\"59284-0\"}]}],"
		"\"patient\":{\"reference\":\"Patient/c-other\"},\"policyRule\":{\"coding\":[{\"system\":"
		"\"http://terminology.hl7.org/CodeSystem/consentpolicycodes\",\"code\":\"hipaa-auth\"}]},"
		"\"provision\":{\"type\":\"deny\",\"purpose\":[{\"system\":"
		"\"http://terminology.hl7.org/CodeSystem/v3-ActReason\",\"code\":\"TREAT\"}]}}"};
	cJSON_Delete(call("PUT", "/fhir/Consent/c-permit", consents[0], 201));
	cJSON_Delete(call("PUT", "/fhir/Consent/c-deny", consents[1], 201));
	static const struct {
		const char *query, *only; /* the one id found, or NULL for both */
	} q[] = {
		{"patient=Patient/c-person", "c-permit"},
		{"patient=c-other", "c-deny"},
		{"scope=patient-privacy", NULL},
		{"category=http://loinc.org|59284-0", NULL},
		{"status=active", "c-permit"},
		{"purpose=HPAYMT", "c-permit"},
		{"purpose=http://terminology.hl7.org/CodeSystem/v3-ActReason|TREAT", "c-deny"},
		{"actor=Organization/payer-1", "c-permit"},
		{"security-label=" ACT "|42CFRPart2", "c-permit"},
		{"period=ge2026-06-01&period=le2026-07-01", "c-permit"},
		{"action=nothing", ""},
		{"patient=Patient/c-person&purpose=TREAT", ""},
	};
	for (size_t i = 0; i < sizeof q / sizeof q[0]; i++) {
		char path[400];
		snprintf(path, sizeof path, "/fhir/Consent?%s&_id=c-permit,c-deny", q[i].query);
		cJSON *b = call("GET", path, NULL, 200);
		int want = !q[i].only ? 2 : q[i].only[0] ? 1 : 0;
		if (entries(b) != want)
			fprintf(stderr, "# %s: %d found\n", q[i].query, entries(b));
		assert_int_equal(entries(b), want);
		if (want == 1)
			assert_string_equal(sget(get(cJSON_GetArrayItem(get(b, "entry"), 0), "resource"), "id"),
					    q[i].only);
		cJSON_Delete(b);
	}
}

/* A write passed through to the upstream is labelled before it leaves. */
static void pass_through_writes_are_labelled(void **state)
{
	(void)state;
	UPSTREAM_NEEDED();
	assert_int_equal(upstream_install(), 0);
	struct upstream_srv u;
	assert_int_equal(upstream_start(&u, 0), 0);
	char extra[1024];
	upstream_gw_config(extra, sizeof extra, &u, "\"Condition\":\"pass-through\"", NULL);
	struct gw up;
	assert_int_equal(gw_start(&up, extra), 0);
	char *b = condition(NULL, "F16.20", ",\"identifier\":[{\"system\":\"urn:dx\",\"value\":\"pt-1\"}]");
	struct resp r;
	assert_int_equal(http_do(&up, "POST", "/fhir/Condition", fj, b, strlen(b), &r), 0);
	free(b);
	assert_int_equal(r.status, 201);
	cJSON *t = cJSON_Parse(r.body);
	resp_free(&r);
	char path[200];
	snprintf(path, sizeof path, "/fhir/R4/Condition/%s", sget(t, "id"));
	cJSON_Delete(t);
	/* what the upstream itself holds */
	assert_int_equal(upstream_do(&u, "GET", path, NULL, &r), 0);
	assert_int_equal(r.status, 200);
	t = cJSON_Parse(r.body);
	resp_free(&r);
	assert_true(sud(t));
	cJSON_Delete(t);
	assert_int_equal(gw_stop(&up, 5000), 0);
	upstream_stop(&u);
}

int main(void)
{
	const struct CMUnitTest served[] = {
		cmocka_unit_test(rest_writes_are_labelled),
		cmocka_unit_test(bundles_pass_diagnosis_labels_on),
		cmocka_unit_test(ingested_encounters_follow_their_diagnosis),
		cmocka_unit_test(derived_claims_and_exports_are_labelled),
		cmocka_unit_test(transaction_writes_one_provenance),
		cmocka_unit_test(ingest_writes_one_provenance_with_the_document_hash),
		cmocka_unit_test(consents_are_searchable),
	};
	const struct CMUnitTest upstream[] = {
		cmocka_unit_test(pass_through_writes_are_labelled),
	};
	int rc = cmocka_run_group_tests_name("labels and provenance on writes", served, gw_up, gw_down);
	rc += cmocka_run_group_tests_name("labels on pass-through writes", upstream, NULL, NULL);
	return rc;
}
