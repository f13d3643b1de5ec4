/* Unit tests: the consent decision (core/fhir/consent.h). Hand-written
 * cases (the Part 2 program's own data, a payer's HPAYMT consent, a nested
 * deny, a period, a wrong scope), then 20,000 random Consent sets and
 * requests decided by consent_decide and by a small reference written here
 * over plain structs, which must agree. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fhir/consent.h"

#define ACT "http://terminology.hl7.org/CodeSystem/v3-ActCode"
#define CONF "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"

/* ---------------------------------------------------------------- model */

static const char *const ORGS[] = {"Organization/payer-1", "Organization/payer-2", "Organization/ehr"};
static const char *const PURPOSES[] = {"TREAT", "HPAYMT", "HOPERAT"};
static const char *const LABELS[][2] = {{ACT, "42CFRPart2"}, {CONF, "R"}, {ACT, "ETH"}};
static const char *const TYPES[] = {"Encounter", "Condition"};

struct prov {
	int type;          /* -1 none, 0 deny, 1 permit */
	unsigned actors;   /* bits of ORGS; 0: no constraint */
	unsigned purposes; /* bits of PURPOSES */
	unsigned labels;   /* bits of LABELS */
	unsigned classes;  /* bits of TYPES */
	int start, end;    /* day of January 2026, 0: none */
	bool data;         /* has provision.data: never matches */
	struct prov *kid[2];
	int nkid;
};

struct consent {
	bool active, privacy;
	struct prov *root;
};

struct req {
	int actor, org;  /* index in ORGS, -1 unknown */
	int purpose;     /* index, -1 none */
	int day;         /* 1..28 */
	unsigned labels; /* of the resource */
	int type;
	int writer, client; /* small ids, -1 unknown */
};

static unsigned rnd(unsigned n) { return (unsigned)rand() % n; }

static struct prov *gen_prov(int depth)
{
	struct prov *p = calloc(1, sizeof *p);
	assert_non_null(p);
	p->type = (int)rnd(3) - 1;
	p->actors = rnd(3) ? 0 : rnd(8);
	p->purposes = rnd(2) ? 0 : rnd(8);
	p->labels = rnd(3) ? 0 : rnd(8);
	p->classes = rnd(4) ? 0 : rnd(4);
	if (!rnd(3)) {
		p->start = (int)rnd(20) + 1;
		p->end = rnd(2) ? p->start + (int)rnd(10) : 0;
		if (!rnd(4))
			p->start = 0;
	}
	p->data = !rnd(15);
	p->nkid = depth < 3 ? (int)rnd(3) : 0;
	for (int i = 0; i < p->nkid; i++)
		p->kid[i] = gen_prov(depth + 1);
	return p;
}

static void free_prov(struct prov *p)
{
	for (int i = 0; p && i < p->nkid; i++)
		free_prov(p->kid[i]);
	free(p);
}

/* ------------------------------------------------------------ reference */

static bool ref_match(const struct prov *p, const struct req *q)
{
	if (p->data)
		return false;
	if (p->start && q->day < p->start)
		return false;
	if (p->end && q->day > p->end)
		return false;
	if (p->actors) {
		bool hit = (q->actor >= 0 && (p->actors >> q->actor & 1)) || (q->org >= 0 && (p->actors >> q->org & 1));
		if (!hit)
			return false;
	}
	if (p->purposes && !(q->purpose >= 0 && (p->purposes >> q->purpose & 1)))
		return false;
	if (p->labels && !(p->labels & q->labels))
		return false;
	if (p->classes && !(p->classes >> q->type & 1))
		return false;
	return true;
}

/* the verdicts of the deepest matching provisions under p */
static void ref_collect(const struct prov *p, int inherited, const struct req *q, int *verdicts, int *n)
{
	int mine = p->type == -1 ? inherited : p->type;
	int before = *n;
	for (int i = 0; i < p->nkid; i++)
		if (ref_match(p->kid[i], q))
			ref_collect(p->kid[i], mine, q, verdicts, n);
	if (*n == before)
		verdicts[(*n)++] = mine;
}

/* 1 permit, 0 deny */
static int reference(const struct consent *cs, int n, const struct req *q, int part2_default, int r_default)
{
	bool part2 = q->labels & 1, restricted = q->labels >> 1 & 1;
	if (!part2 && !restricted)
		return 1;
	if (part2 && q->writer >= 0 && q->writer == q->client)
		return 1;
	int permits = 0, denies = 0;
	for (int i = 0; i < n; i++) {
		if (!cs[i].active || !cs[i].privacy || !ref_match(cs[i].root, q))
			continue;
		int v[64], k = 0;
		ref_collect(cs[i].root, -1, q, v, &k);
		bool d = false, p = false;
		for (int j = 0; j < k; j++) {
			d |= v[j] == 0;
			p |= v[j] == 1;
		}
		denies += d;
		permits += !d && p;
	}
	if (denies)
		return 0;
	if (permits)
		return 1;
	return part2 ? part2_default : r_default;
}

/* ------------------------------------------------------------ rendering */

static void day(char *out, int d) { snprintf(out, 16, "2026-01-%02d", d); }

static cJSON *render_prov(const struct prov *p)
{
	cJSON *o = cJSON_CreateObject();
	if (p->type >= 0)
		cJSON_AddStringToObject(o, "type", p->type ? "permit" : "deny");
	if (p->start || p->end) {
		cJSON *per = cJSON_AddObjectToObject(o, "period");
		char d[16];
		if (p->start) {
			day(d, p->start);
			cJSON_AddStringToObject(per, "start", d);
		}
		if (p->end) {
			day(d, p->end);
			cJSON_AddStringToObject(per, "end", d);
		}
	}
	if (p->actors) {
		cJSON *a = cJSON_AddArrayToObject(o, "actor");
		for (int i = 0; i < 3; i++)
			if (p->actors >> i & 1) {
				cJSON *x = cJSON_CreateObject();
				cJSON_AddObjectToObject(x, "role");
				cJSON_AddStringToObject(cJSON_AddObjectToObject(x, "reference"), "reference", ORGS[i]);
				cJSON_AddItemToArray(a, x);
			}
	}
	if (p->purposes) {
		cJSON *a = cJSON_AddArrayToObject(o, "purpose");
		for (int i = 0; i < 3; i++)
			if (p->purposes >> i & 1) {
				cJSON *x = cJSON_CreateObject();
				cJSON_AddStringToObject(x, "system",
							"http://terminology.hl7.org/CodeSystem/v3-ActReason");
				cJSON_AddStringToObject(x, "code", PURPOSES[i]);
				cJSON_AddItemToArray(a, x);
			}
	}
	if (p->labels) {
		cJSON *a = cJSON_AddArrayToObject(o, "securityLabel");
		for (int i = 0; i < 3; i++)
			if (p->labels >> i & 1) {
				cJSON *x = cJSON_CreateObject();
				cJSON_AddStringToObject(x, "system", LABELS[i][0]);
				cJSON_AddStringToObject(x, "code", LABELS[i][1]);
				cJSON_AddItemToArray(a, x);
			}
	}
	if (p->classes) {
		cJSON *a = cJSON_AddArrayToObject(o, "class");
		for (int i = 0; i < 2; i++)
			if (p->classes >> i & 1) {
				cJSON *x = cJSON_CreateObject();
				cJSON_AddStringToObject(x, "system", "http://hl7.org/fhir/resource-types");
				cJSON_AddStringToObject(x, "code", TYPES[i]);
				cJSON_AddItemToArray(a, x);
			}
	}
	if (p->data) {
		cJSON *a = cJSON_AddArrayToObject(o, "data");
		cJSON *x = cJSON_CreateObject();
		cJSON_AddStringToObject(x, "meaning", "instance");
		cJSON_AddStringToObject(cJSON_AddObjectToObject(x, "reference"), "reference", "Encounter/e1");
		cJSON_AddItemToArray(a, x);
	}
	if (p->nkid) {
		cJSON *a = cJSON_AddArrayToObject(o, "provision");
		for (int i = 0; i < p->nkid; i++)
			cJSON_AddItemToArray(a, render_prov(p->kid[i]));
	}
	return o;
}

static cJSON *render_consent(const struct consent *c)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "resourceType", "Consent");
	cJSON_AddStringToObject(o, "status", c->active ? "active" : "inactive");
	cJSON *cc = cJSON_AddObjectToObject(o, "scope");
	cJSON *cd = cJSON_CreateObject();
	cJSON_AddStringToObject(cd, "system", "http://terminology.hl7.org/CodeSystem/consentscope");
	cJSON_AddStringToObject(cd, "code", c->privacy ? "patient-privacy" : "treatment");
	cJSON_AddItemToArray(cJSON_AddArrayToObject(cc, "coding"), cd);
	cJSON_AddItemToObject(o, "provision", render_prov(c->root));
	return o;
}

static cJSON *render_resource(const struct req *q)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "resourceType", TYPES[q->type]);
	if (q->labels) {
		cJSON *sec = cJSON_AddArrayToObject(cJSON_AddObjectToObject(o, "meta"), "security");
		for (int i = 0; i < 3; i++)
			if (q->labels >> i & 1) {
				cJSON *x = cJSON_CreateObject();
				cJSON_AddStringToObject(x, "system", LABELS[i][0]);
				cJSON_AddStringToObject(x, "code", LABELS[i][1]);
				cJSON_AddItemToArray(sec, x);
			}
	}
	return o;
}

static const char *CLIENTS[] = {"program-a", "program-b", "payer-app"};

static void random_agreement(void **state)
{
	(void)state;
	srand(20260207);
	size_t permits = 0, denies = 0, by_consent = 0;
	for (int round = 0; round < 20000; round++) {
		struct consent cs[4];
		int n = (int)rnd(5);
		const cJSON *rendered[4];
		for (int i = 0; i < n; i++) {
			cs[i] = (struct consent){.active = rnd(6) != 0, .privacy = rnd(8) != 0, .root = gen_prov(0)};
			rendered[i] = render_consent(&cs[i]);
		}
		struct req q = {.actor = (int)rnd(4) - 1,
				.org = (int)rnd(4) - 1,
				.purpose = (int)rnd(4) - 1,
				.day = (int)rnd(28) + 1,
				.labels = rnd(8),
				.type = (int)rnd(2),
				.writer = (int)rnd(4) - 1,
				.client = (int)rnd(4) - 1};
		struct consent_policy pol = {.part2 = rnd(4) ? CONSENT_DEFAULT_DENY : CONSENT_DEFAULT_PERMIT,
					     .restricted = rnd(2) ? CONSENT_DEFAULT_DENY : CONSENT_DEFAULT_PERMIT};
		char when[16];
		day(when, q.day);
		struct consent_recipient r = {.actor = q.actor >= 0 ? ORGS[q.actor] : NULL,
					      .organization = q.org >= 0 ? ORGS[q.org] : NULL,
					      .purpose = q.purpose >= 0 ? PURPOSES[q.purpose] : NULL,
					      .client = q.client >= 0 ? CLIENTS[q.client] : NULL};
		cJSON *res = render_resource(&q);
		struct consent_decision d = consent_decide(
			&pol, &r, when, res, q.writer >= 0 ? CLIENTS[q.writer] : NULL, rendered, (size_t)n);
		int want = reference(cs, n, &q, pol.part2 == CONSENT_DEFAULT_PERMIT,
				     pol.restricted == CONSENT_DEFAULT_PERMIT);
		if ((int)d.permit != want) {
			fprintf(stderr, "# round %d: decide %d, reference %d\n", round, d.permit, want);
			for (int i = 0; i < n; i++) {
				char *t = cJSON_PrintUnformatted(rendered[i]);
				fprintf(stderr, "#   %s\n", t);
				free(t);
			}
		}
		assert_int_equal((int)d.permit, want);
		assert_int_equal(d.part2, (bool)(q.labels & 1));
		permits += d.permit;
		denies += !d.permit;
		by_consent += d.reason == CONSENT_PERMITTED || d.reason == CONSENT_DENIED;
		cJSON_Delete(res);
		for (int i = 0; i < n; i++) {
			cJSON_Delete((cJSON *)rendered[i]);
			free_prov(cs[i].root);
		}
	}
	/* the generator reaches every outcome often */
	assert_true(permits > 2000 && denies > 2000 && by_consent > 1000);
}

static cJSON *parse(const char *t)
{
	cJSON *c = cJSON_Parse(t);
	assert_non_null(c);
	return c;
}

static void hand_written_cases(void **state)
{
	(void)state;
	struct consent_policy safe = {0};
	cJSON *enc = parse("{\"resourceType\":\"Encounter\",\"meta\":{\"security\":[{\"system\":\"" ACT
			   "\",\"code\":\"42CFRPart2\"},{\"system\":\"" CONF "\",\"code\":\"R\"}]}}");
	cJSON *plain = parse("{\"resourceType\":\"Encounter\"}");
	struct consent_recipient payer = {.actor = "Organization/payer-1", .purpose = "HPAYMT", .client = "billing"};
	/* unlabelled: always */
	assert_true(consent_decide(&safe, &payer, "2026-05-01", plain, NULL, NULL, 0).permit);
	/* Part 2 data, no consent: only its writer */
	struct consent_decision d = consent_decide(&safe, &payer, "2026-05-01", enc, "program", NULL, 0);
	assert_false(d.permit);
	assert_int_equal(d.reason, CONSENT_DEFAULT);
	assert_true(d.part2);
	struct consent_recipient program = {.client = "program", .purpose = "TREAT"};
	assert_int_equal(consent_decide(&safe, &program, "2026-05-01", enc, "program", NULL, 0).reason, CONSENT_WRITER);
	/* a consent for HPAYMT to that payer, with a nested deny for 2026-06 */
	cJSON *c = parse(
		"{\"resourceType\":\"Consent\",\"status\":\"active\",\"scope\":{\"coding\":[{\"system\":"
		"\"http://terminology.hl7.org/CodeSystem/consentscope\",\"code\":\"patient-privacy\"}]},"
		"\"provision\":{\"type\":\"permit\",\"actor\":[{\"reference\":{\"reference\":"
		"\"Organization/payer-1\"}}],\"purpose\":[{\"code\":\"HPAYMT\"}],"
		"\"provision\":[{\"type\":\"deny\",\"period\":{\"start\":\"2026-06-01\",\"end\":\"2026-06-30\"}}]}}");
	const cJSON *cs[] = {c};
	d = consent_decide(&safe, &payer, "2026-05-01T10:00:00Z", enc, "program", cs, 1);
	assert_true(d.permit);
	assert_int_equal(d.reason, CONSENT_PERMITTED);
	d = consent_decide(&safe, &payer, "2026-06-30T23:59:00Z", enc, "program", cs, 1);
	assert_false(d.permit); /* the whole last day of the period */
	assert_int_equal(d.reason, CONSENT_DENIED);
	struct consent_recipient other = {.actor = "Organization/payer-2", .purpose = "HPAYMT"};
	assert_false(consent_decide(&safe, &other, "2026-05-01", enc, NULL, cs, 1).permit);
	struct consent_recipient treat = {.actor = "Organization/payer-1", .purpose = "TREAT"};
	assert_false(consent_decide(&safe, &treat, "2026-05-01", enc, NULL, cs, 1).permit);
	/* an organization's member is its organization's recipient */
	struct consent_recipient member = {
		.actor = "Device/app", .organization = "Organization/payer-1", .purpose = "HPAYMT"};
	assert_true(consent_decide(&safe, &member, "2026-05-01", enc, NULL, cs, 1).permit);
	/* R without 42CFRPart2 follows the site's default */
	cJSON *r_only = parse("{\"resourceType\":\"Condition\",\"meta\":{\"security\":[{\"system\":\"" CONF
			      "\",\"code\":\"R\"}]}}");
	struct consent_policy open_r = {.restricted = CONSENT_DEFAULT_PERMIT};
	assert_true(consent_decide(&open_r, &other, "2026-05-01", r_only, NULL, NULL, 0).permit);
	assert_false(consent_decide(&safe, &other, "2026-05-01", r_only, NULL, NULL, 0).permit);
	cJSON_Delete(r_only);
	cJSON_Delete(c);
	cJSON_Delete(plain);
	cJSON_Delete(enc);
}

/* The explanation of a Consent's scope (42 CFR 2.32(b)): what the root
 * provision limits, the any- words for what it does not; cut with "..."
 * when the buffer is short; the permitting Consents are cited. */
static void scope_is_explained(void **state)
{
	(void)state;
	cJSON *c = cJSON_Parse(
		"{\"resourceType\":\"Consent\",\"id\":\"c7\",\"status\":\"active\",\"provision\":{\"type\":\"permit\","
		"\"actor\":[{\"reference\":{\"reference\":\"Organization/payer-1\",\"display\":\"State Medicaid\"}},"
		"{\"reference\":{\"reference\":\"Practitioner/pr-2\"}}],"
		"\"purpose\":[{\"code\":\"HPAYMT\"},{\"code\":\"TREAT\",\"display\":\"treatment\"}],"
		"\"period\":{\"start\":\"2025-01-01\",\"end\":\"2026-12-31\"},"
		"\"class\":[{\"code\":\"Encounter\"},{\"code\":\"Claim\"}],"
		"\"securityLabel\":[{\"system\":\"http://terminology.hl7.org/CodeSystem/"
		"v3-ActCode\",\"code\":\"ETH\"}]}}");
	assert_non_null(c);
	char out[512];
	size_t n = consent_explain(c, &consent_wording_default, out, sizeof out);
	assert_string_equal(out,
			    "Disclosed with the patient's consent (Consent/c7), which permits disclosure to State "
			    "Medicaid; Practitioner/pr-2, for HPAYMT; treatment, from 2025-01-01 until 2026-12-31, "
			    "of Encounter; Claim records (ETH).");
	assert_int_equal(n, strlen(out));
	/* a site's wording, an open-ended period, and an unknown placeholder kept */
	struct consent_wording w = consent_wording_default;
	w.scope = "{consent}: {period} {other}";
	cJSON_DeleteItemFromObject(cJSON_GetObjectItem(cJSON_GetObjectItem(c, "provision"), "period"), "start");
	consent_explain(c, &w, out, sizeof out);
	assert_string_equal(out, "Consent/c7: until 2026-12-31 {other}");
	cJSON_DeleteItemFromObject(cJSON_GetObjectItem(c, "provision"), "period");
	consent_explain(c, &w, out, sizeof out);
	assert_string_equal(out, "Consent/c7: with no time limit {other}");
	/* too long for the buffer: cut, marked, terminated */
	char small[24];
	n = consent_explain(c, &consent_wording_default, small, sizeof small);
	assert_int_equal(n, sizeof small - 1);
	assert_string_equal(small, "Disclosed with the p...");
	cJSON_Delete(c);

	/* the decision cites the Consents that permitted, not one that does not speak */
	cJSON *permit = cJSON_Parse(
		"{\"resourceType\":\"Consent\",\"id\":\"a\",\"status\":\"active\",\"scope\":{\"coding\":[{\"system\":"
		"\"http://terminology.hl7.org/CodeSystem/consentscope\",\"code\":\"patient-privacy\"}]},"
		"\"provision\":{\"type\":\"permit\",\"purpose\":[{\"code\":\"HPAYMT\"}]}}");
	cJSON *other = cJSON_Parse(
		"{\"resourceType\":\"Consent\",\"id\":\"b\",\"status\":\"active\",\"scope\":{\"coding\":[{\"system\":"
		"\"http://terminology.hl7.org/CodeSystem/consentscope\",\"code\":\"patient-privacy\"}]},"
		"\"provision\":{\"type\":\"permit\",\"purpose\":[{\"code\":\"TREAT\"}]}}");
	cJSON *res = cJSON_Parse("{\"resourceType\":\"Encounter\",\"meta\":{\"security\":[{\"system\":"
				 "\"http://terminology.hl7.org/CodeSystem/v3-ActCode\",\"code\":\"42CFRPart2\"}]}}");
	const cJSON *cs[] = {other, permit, permit};
	struct consent_policy pol = {.part2 = CONSENT_DEFAULT_DENY, .restricted = CONSENT_DEFAULT_PERMIT};
	struct consent_recipient r = {.purpose = "HPAYMT", .client = "biller"};
	struct consent_decision d = consent_decide(&pol, &r, "2025-11-13", res, NULL, cs, 3);
	assert_true(d.permit);
	assert_int_equal(d.reason, CONSENT_PERMITTED);
	assert_int_equal(d.ncited, 2);
	assert_int_equal(d.cited[0], 1);
	assert_int_equal(d.cited[1], 2);
	cJSON_Delete(permit);
	cJSON_Delete(other);
	cJSON_Delete(res);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(hand_written_cases),
		cmocka_unit_test(random_agreement),
		cmocka_unit_test(scope_is_explained),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
