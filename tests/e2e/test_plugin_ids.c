/* The ids plugins derive, through the real gateway over loopback
 * (docs/plugins.md, "Deterministic ids"):
 *   - two people who each have goal G-1, plan RP-1 and encounter E-1 get a
 *     Goal, a CarePlan and an Encounter each, and each person's plan
 *     exports intact;
 *   - the same identifier pushed through outcomes and peer-support is one
 *     Patient;
 *   - a thin Patient (outcomes, peer-support) after a rich one (the
 *     recovery plan's pronouns, identity, language) keeps what the rich
 *     one said: ingest merges Patients by element;
 *   - a goal attainment score points at the person's Goal (focus
 *     Goal/<id>), so a search by the Goal finds it;
 *   - a store written under the older rule (item ids from their identifier
 *     alone; outcomes' Patients in a namespace of their own), written here
 *     through the REST API by a gateway without plugins, is upgraded when a
 *     gateway with the plugins starts on it: ids moved, references
 *     rewritten, the old ids deleted with their history kept, and a second
 *     start changes nothing; in store-and-forward mode the Medplum upstream
 *     of tests/upstream loses the old ids and gets the new ones. */
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

#include "e2e/harness.h"
#include "fhir/fhir_helpers.h"

#define BASE "https://crosswalk.example.org/fhir"
#define PEOPLE "https://recovery.example.org/people"
#define PLANS "https://recovery.example.org/plans"
#define GOALS BASE "/NamingSystem/recovery-goal"
#define ENCOUNTERS BASE "/NamingSystem/peer-support-encounter"
#define ADMINS "https://recovery.example.org/administrations"

static const char *const json_ct[] = {"Content-Type: application/json", NULL};
static const char *const fhir_ct[] = {"Content-Type: application/fhir+json", NULL};

static const cJSON *get(const cJSON *o, const char *k) { return cJSON_GetObjectItemCaseSensitive(o, k); }
static const char *sget(const cJSON *o, const char *k)
{
	const cJSON *v = get(o, k);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* uuid5(ns, formatted key), in a rotating static buffer. */
static const char *uuid5(const char *ns, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static const char *uuid5(const char *ns, const char *fmt, ...)
{
	static char ids[16][FHIR_ID_SIZE];
	static int next;
	char key[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(key, sizeof key, fmt, ap);
	va_end(ap);
	char *out = ids[next++ % 16];
	assert_int_equal(fhir_make_id(ns, key, out), 0);
	return out;
}

static long call(const struct gw *gw, const char *method, const char *path, const char *const *hdr, const char *body,
		 cJSON **out)
{
	struct resp r;
	assert_int_equal(http_do(gw, method, path, hdr, body, body ? strlen(body) : 0, &r), 0);
	long status = r.status;
	if (out)
		*out = r.body ? cJSON_Parse(r.body) : NULL;
	if (status >= 400 && status != 404 && status != 410)
		fprintf(stderr, "# %s %s: %ld %s\n", method, path, status, r.body ? r.body : "");
	resp_free(&r);
	return status;
}

static void plan_doc(char *buf, size_t n, const char *person, const char *words)
{
	snprintf(buf, n,
		 "{\"version\":1,\"person\":{\"identifier\":{\"system\":\"" PEOPLE "\",\"value\":\"%s\"}},"
		 "\"plan\":{\"identifier\":{\"system\":\"" PLANS "\",\"value\":\"RP-1\"},\"status\":\"active\"},"
		 "\"goals\":[{\"identifier\":{\"system\":\"" GOALS "\",\"value\":\"G-1\"},\"dimension\":\"health\","
		 "\"words\":\"%s\",\"status\":\"active\",\"steps\":[{\"text\":\"First step of %s\","
		 "\"status\":\"not-started\"}]}]}",
		 person, words, person);
}

static void log_doc(char *buf, size_t n, const char *person)
{
	snprintf(buf, n,
		 "{\"version\":1,\"person\":{\"identifier\":{\"system\":\"" PEOPLE "\",\"value\":\"%s\"}},"
		 "\"encounters\":[{\"id\":\"E-1\",\"specialist\":{\"identifier\":{\"system\":"
		 "\"https://recovery.example.org/staff\",\"value\":\"S-17\"},\"name\":\"Specialist\"},"
		 "\"start\":\"2024-03-05T14:30:00-05:00\",\"duration_minutes\":45,\"mode\":\"individual\","
		 "\"setting\":\"community\",\"activities\":[\"goal-planning\"],\"goals\":[\"G-1\"],\"billable\":false}]}",
		 person);
}

/* ------------------------------------------------ two people, one G-1 */

static void two_people_each_keep_goal_g1(void **state)
{
	(void)state;
	struct gw g;
	assert_int_equal(gw_start(&g, NULL), 0);
	char a[2048], b[2048];
	plan_doc(a, sizeof a, "P-A", "I want to sleep through the night.");
	plan_doc(b, sizeof b, "P-B", "I want to find a job I like.");
	assert_int_equal(call(&g, "POST", "/ingest/recovery-plan", json_ct, a, NULL), 201);
	assert_int_equal(call(&g, "POST", "/ingest/recovery-plan", json_ct, b, NULL), 201);

	cJSON *res = NULL;
	assert_int_equal(call(&g, "GET", "/fhir/Goal?identifier=" GOALS "%7CG-1", NULL, NULL, &res), 200);
	assert_int_equal(cJSON_GetObjectItem(res, "total")->valueint, 2);
	cJSON_Delete(res);
	assert_int_equal(call(&g, "GET", "/fhir/CarePlan?identifier=" PLANS "%7CRP-1", NULL, NULL, &res), 200);
	assert_int_equal(cJSON_GetObjectItem(res, "total")->valueint, 2);
	cJSON_Delete(res);

	/* each person's plan comes back as it went in */
	const char *docs[] = {a, b}, *who[] = {"P-A", "P-B"};
	for (int i = 0; i < 2; i++) {
		char path[200];
		snprintf(path, sizeof path, "/export/recovery-plan?patient=%s", uuid5(PEOPLE, "%s", who[i]));
		assert_int_equal(call(&g, "GET", path, NULL, NULL, &res), 200);
		cJSON *want = cJSON_Parse(docs[i]);
		if (!cJSON_Compare(want, res, true)) {
			char *t = cJSON_PrintUnformatted(res);
			fprintf(stderr, "# exported %s\n", t);
			free(t);
		}
		assert_true(cJSON_Compare(want, res, true));
		cJSON_Delete(want);
		cJSON_Delete(res);
	}

	/* the same encounter id in two people's logs: two Encounters, each
	 * pointing at its own person's goal */
	log_doc(a, sizeof a, "P-A");
	log_doc(b, sizeof b, "P-B");
	assert_int_equal(call(&g, "POST", "/ingest/peer-support", json_ct, a, NULL), 201);
	assert_int_equal(call(&g, "POST", "/ingest/peer-support", json_ct, b, NULL), 201);
	assert_int_equal(call(&g, "GET", "/fhir/Encounter?identifier=" ENCOUNTERS "%7CE-1", NULL, NULL, &res), 200);
	assert_int_equal(cJSON_GetObjectItem(res, "total")->valueint, 2);
	const cJSON *e;
	cJSON_ArrayForEach(e, get(res, "entry")) {
		const cJSON *enc = get(e, "resource");
		const char *subject = sget(get(enc, "subject"), "reference");
		const char *goal = sget(get(cJSON_GetArrayItem(get(enc, "extension"), 0), "valueReference"), "reference");
		assert_non_null(subject);
		assert_non_null(goal);
		char path[200];
		snprintf(path, sizeof path, "/fhir/%s", goal);
		cJSON *gl = NULL;
		assert_int_equal(call(&g, "GET", path, NULL, NULL, &gl), 200); /* the person's own Goal */
		assert_string_equal(sget(get(gl, "subject"), "reference"), subject);
		cJSON_Delete(gl);
	}
	cJSON_Delete(res);
	assert_int_equal(gw_stop(&g, 15000), 0);
}

/* ----------------------------------------- one person, one Patient */

static void one_identifier_is_one_patient_in_every_plugin(void **state)
{
	(void)state;
	struct gw g;
	assert_int_equal(gw_start(&g, NULL), 0);
	char doc[2048];
	log_doc(doc, sizeof doc, "P-C");
	assert_int_equal(call(&g, "POST", "/ingest/peer-support", json_ct, doc, NULL), 201);
	snprintf(doc, sizeof doc,
		 "{\"format\":\"outcomes\",\"version\":1,\"people\":[{\"identifier\":{\"system\":\"" PEOPLE
		 "\",\"value\":\"P-C\"},\"administrations\":[{\"identifier\":{\"system\":\"" ADMINS
		 "\",\"value\":\"A-1\"},\"instrument\":\"phq-9\",\"date\":\"2024-03-01\","
		 "\"items\":[1,2,1,0,3,1,2,0,0]}]}]}");
	assert_int_equal(call(&g, "POST", "/ingest/outcomes", json_ct, doc, NULL), 201);
	cJSON *res = NULL;
	assert_int_equal(call(&g, "GET", "/fhir/Patient?identifier=" PEOPLE "%7CP-C", NULL, NULL, &res), 200);
	assert_int_equal(cJSON_GetObjectItem(res, "total")->valueint, 1);
	cJSON_Delete(res);
	char path[200];
	snprintf(path, sizeof path, "/fhir/QuestionnaireResponse?subject=Patient/%s", uuid5(PEOPLE, "P-C"));
	assert_int_equal(call(&g, "GET", path, NULL, NULL, &res), 200);
	assert_int_equal(cJSON_GetObjectItem(res, "total")->valueint, 1);
	cJSON_Delete(res);
	assert_int_equal(gw_stop(&g, 15000), 0);
}

/* ------------------------------- one person, merged by element */

static const char *ext_value(const cJSON *pat, const char *url_end)
{
	const cJSON *x;
	cJSON_ArrayForEach(x, get(pat, "extension"))
	{
		const char *url = sget(x, "url");
		size_t n = url ? strlen(url) : 0, m = strlen(url_end);
		if (n >= m && !strcmp(url + n - m, url_end))
			return sget(x, "valueString");
	}
	return NULL;
}

/* A recovery plan gives pronouns, identity, language and a name; a thin
 * outcomes record and a peer-support log of the same person afterwards
 * give only the identifier. The Patient keeps everything, the plan
 * exports as it went in, and a thin push of what is there already makes
 * no new version. */
static void thin_patient_keeps_richer_demographics(void **state)
{
	(void)state;
	struct gw g;
	assert_int_equal(gw_start(&g, NULL), 0);
	const char *plan =
		"{\"version\":1,\"person\":{\"identifier\":{\"system\":\"" PEOPLE "\",\"value\":\"P-M\"},"
		"\"name\":\"Sam Rivera\",\"pronouns\":\"they/them\",\"language\":\"es-MX\","
		"\"identity\":\"Queer, Latinx\"},"
		"\"plan\":{\"identifier\":{\"system\":\"" PLANS "\",\"value\":\"RP-M\"},\"status\":\"active\"},"
		"\"goals\":[{\"identifier\":{\"system\":\"" GOALS "\",\"value\":\"G-M\"},"
		"\"dimension\":\"community\",\"words\":\"Join the choir.\",\"status\":\"active\"}]}";
	assert_int_equal(call(&g, "POST", "/ingest/recovery-plan", json_ct, plan, NULL), 201);
	char doc[2048];
	snprintf(doc, sizeof doc,
		 "{\"format\":\"outcomes\",\"version\":1,\"people\":[{\"identifier\":{\"system\":\"" PEOPLE
		 "\",\"value\":\"P-M\"},\"administrations\":[{\"identifier\":{\"system\":\"" ADMINS
		 "\",\"value\":\"A-M\"},\"instrument\":\"phq-9\",\"date\":\"2024-03-01\","
		 "\"items\":[1,2,1,0,3,1,2,0,0]}]}]}");
	assert_int_equal(call(&g, "POST", "/ingest/outcomes", json_ct, doc, NULL), 201);
	log_doc(doc, sizeof doc, "P-M");
	assert_int_equal(call(&g, "POST", "/ingest/peer-support", json_ct, doc, NULL), 201);

	char path[200];
	snprintf(path, sizeof path, "/fhir/Patient/%s", uuid5(PEOPLE, "P-M"));
	cJSON *pat = NULL;
	assert_int_equal(call(&g, "GET", path, NULL, NULL, &pat), 200);
	assert_non_null(ext_value(pat, "pronouns"));
	assert_string_equal(ext_value(pat, "pronouns"), "they/them");
	assert_string_equal(ext_value(pat, "identity"), "Queer, Latinx");
	assert_string_equal(sget(cJSON_GetArrayItem(get(pat, "name"), 0), "text"), "Sam Rivera");
	assert_int_equal(cJSON_GetArraySize(get(pat, "identifier")), 1);
	const cJSON *lang = get(cJSON_GetArrayItem(get(pat, "communication"), 0), "language");
	assert_string_equal(sget(cJSON_GetArrayItem(get(lang, "coding"), 0), "code"), "es-MX");
	char version[32];
	snprintf(version, sizeof version, "%s", sget(get(pat, "meta"), "versionId"));
	cJSON_Delete(pat);

	/* the plan still exports as it went in */
	cJSON *res = NULL;
	snprintf(path, sizeof path, "/export/recovery-plan?patient=%s", uuid5(PEOPLE, "P-M"));
	assert_int_equal(call(&g, "GET", path, NULL, NULL, &res), 200);
	cJSON *want = cJSON_Parse(plan);
	if (!cJSON_Compare(want, res, true)) {
		char *t = cJSON_PrintUnformatted(res);
		fprintf(stderr, "# exported %s\n", t);
		free(t);
	}
	assert_true(cJSON_Compare(want, res, true));
	cJSON_Delete(want);
	cJSON_Delete(res);

	/* the same thin log again: nothing new to store */
	assert_int_equal(call(&g, "POST", "/ingest/peer-support", json_ct, doc, NULL), 201);
	snprintf(path, sizeof path, "/fhir/Patient/%s", uuid5(PEOPLE, "P-M"));
	assert_int_equal(call(&g, "GET", path, NULL, NULL, &pat), 200);
	assert_string_equal(sget(get(pat, "meta"), "versionId"), version);
	cJSON_Delete(pat);

	/* a REST update is FHIR's replace: it may drop what ingest keeps */
	char body[1024];
	snprintf(body, sizeof body,
		 "{\"resourceType\":\"Patient\",\"id\":\"%s\",\"identifier\":[{\"system\":\"" PEOPLE
		 "\",\"value\":\"P-M\"}]}",
		 uuid5(PEOPLE, "P-M"));
	assert_int_equal(call(&g, "PUT", path, fhir_ct, body, NULL), 200);
	assert_int_equal(call(&g, "GET", path, NULL, NULL, &pat), 200);
	assert_null(get(pat, "extension"));
	cJSON_Delete(pat);
	assert_int_equal(gw_stop(&g, 15000), 0);
}

/* ----------------------------------- outcomes about the person's Goal */

/* A goal attainment score about goal G-1 points at the Goal the recovery
 * plan wrote (Goal/<id>, not only its identifier): a search by the Goal
 * finds the score. */
static void attainment_scores_point_at_the_goal(void **state)
{
	(void)state;
	struct gw g;
	assert_int_equal(gw_start(&g, NULL), 0);
	char doc[2048];
	plan_doc(doc, sizeof doc, "P-G", "I want to cook for friends.");
	assert_int_equal(call(&g, "POST", "/ingest/recovery-plan", json_ct, doc, NULL), 201);
	snprintf(doc, sizeof doc,
		 "{\"format\":\"outcomes\",\"version\":1,\"people\":[{\"identifier\":{\"system\":\"" PEOPLE
		 "\",\"value\":\"P-G\"},\"administrations\":[{\"identifier\":{\"system\":\"" ADMINS
		 "\",\"value\":\"GAS-1\"},\"instrument\":\"goal-attainment\",\"date\":\"2024-04-01\","
		 "\"rater\":\"person\",\"goals\":[{\"goal\":{\"system\":\"" GOALS
		 "\",\"value\":\"G-1\"},\"score\":1}]}]}]}");
	assert_int_equal(call(&g, "POST", "/ingest/outcomes", json_ct, doc, NULL), 201);
	const char *pid = uuid5(PEOPLE, "P-G");
	const char *gid = uuid5(pid, "Goal|%s|G-1", GOALS);
	char path[300];
	snprintf(path, sizeof path, "/fhir/Goal/%s", gid);
	assert_int_equal(call(&g, "GET", path, NULL, NULL, NULL), 200); /* the plan's Goal */
	cJSON *res = NULL;
	snprintf(path, sizeof path, "/fhir/Observation?focus=Goal/%s", gid);
	assert_int_equal(call(&g, "GET", path, NULL, NULL, &res), 200);
	assert_int_equal(cJSON_GetObjectItem(res, "total")->valueint, 1);
	const cJSON *obs = get(cJSON_GetArrayItem(get(res, "entry"), 0), "resource");
	assert_string_equal(sget(cJSON_GetArrayItem(get(obs, "focus"), 0), "type"), "Goal");
	cJSON_Delete(res);
	assert_int_equal(gw_stop(&g, 15000), 0);
}

/* ------------------------------------------------- the older rule */

/* PUT type/id of a resource given as JSON text (its id added). */
static void put(const struct gw *g, const char *type, const char *id, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void put(const struct gw *g, const char *type, const char *id, const char *fmt, ...)
{
	char body[4096], path[200];
	va_list ap;
	va_start(ap, fmt);
	int n = snprintf(body, sizeof body, "{\"resourceType\":\"%s\",\"id\":\"%s\",", type, id);
	vsnprintf(body + n, sizeof body - (size_t)n, fmt, ap);
	va_end(ap);
	snprintf(path, sizeof path, "/fhir/%s/%s", type, id);
	long st = call(g, "PUT", path, fhir_ct, body, NULL);
	assert_true(st == 200 || st == 201);
}

static cJSON *read_res(const struct gw *g, const char *type, const char *id, long want)
{
	char path[200];
	snprintf(path, sizeof path, "/fhir/%s/%s", type, id);
	cJSON *r = NULL;
	assert_int_equal(call(g, "GET", path, NULL, NULL, &r), want);
	return r;
}

static int versions(const struct gw *g, const char *type, const char *id)
{
	char path[200];
	snprintf(path, sizeof path, "/fhir/%s/%s/_history", type, id);
	cJSON *r = NULL;
	assert_int_equal(call(g, "GET", path, NULL, NULL, &r), 200);
	int n = cJSON_GetObjectItem(r, "total")->valueint;
	cJSON_Delete(r);
	return n;
}

static const char *ref(const cJSON *r, const char *key) { return sget(get(r, key), "reference"); }

static void expect_ref(const char *got, const char *type, const char *id)
{
	char want[200];
	snprintf(want, sizeof want, "%s/%s", type, id);
	assert_non_null(got);
	assert_string_equal(got, want);
}

/* The ids of rule 1 and of the current rule, for person P-1. */
struct ids {
	char pid[FHIR_ID_SIZE], goal[FHIR_ID_SIZE], plan[FHIR_ID_SIZE], enc[FHIR_ID_SIZE], proc[FHIR_ID_SIZE];
	char opid[FHIR_ID_SIZE], qr[FHIR_ID_SIZE], obs[FHIR_ID_SIZE], flag[FHIR_ID_SIZE];
	char ngoal[FHIR_ID_SIZE], nplan[FHIR_ID_SIZE], nenc[FHIR_ID_SIZE], nproc[FHIR_ID_SIZE];
	char nqr[FHIR_ID_SIZE], nobs[FHIR_ID_SIZE];
};

static void make_ids(struct ids *d)
{
	snprintf(d->pid, sizeof d->pid, "%s", uuid5(PEOPLE, "P-1")); /* the Patient every plugin derives */
	snprintf(d->goal, sizeof d->goal, "%s", uuid5(GOALS, "G-1"));
	snprintf(d->plan, sizeof d->plan, "%s", uuid5(PLANS, "RP-1"));
	snprintf(d->enc, sizeof d->enc, "%s", uuid5(ENCOUNTERS, "E-1"));
	snprintf(d->proc, sizeof d->proc, "%s", uuid5(BASE "/peer-support/Procedure", "%s|goal-planning", d->enc));
	snprintf(d->opid, sizeof d->opid, "%s", uuid5(BASE "/outcomes", "Patient|" PEOPLE "|P-1"));
	snprintf(d->qr, sizeof d->qr, "%s", uuid5(BASE "/outcomes", "QuestionnaireResponse|" ADMINS "|A-1"));
	snprintf(d->obs, sizeof d->obs, "%s", uuid5(BASE "/outcomes", "Observation|" ADMINS "|A-1|total"));
	snprintf(d->flag, sizeof d->flag, "%s", uuid5("urn:test:flag", "1"));
	snprintf(d->ngoal, sizeof d->ngoal, "%s", uuid5(d->pid, "Goal|" GOALS "|G-1"));
	snprintf(d->nplan, sizeof d->nplan, "%s", uuid5(d->pid, "CarePlan|" PLANS "|RP-1"));
	snprintf(d->nenc, sizeof d->nenc, "%s", uuid5(d->pid, "Encounter|" ENCOUNTERS "|E-1"));
	snprintf(d->nproc, sizeof d->nproc, "%s", uuid5(BASE "/peer-support/Procedure", "%s|goal-planning", d->nenc));
	snprintf(d->nqr, sizeof d->nqr, "%s", uuid5(d->pid, "QuestionnaireResponse|" ADMINS "|A-1"));
	snprintf(d->nobs, sizeof d->nobs, "%s", uuid5(d->pid, "Observation|" ADMINS "|A-1|total"));
}

/* Starts a gateway on data_dir: without plugins (what rule 1 wrote is
 * written through REST) or with them; upstream is the "upstream" member of
 * the configuration, or "". */
static void start_on(struct gw *g, const char *dir, bool plugins, const char *upstream)
{
	char extra[2048], none[300];
	snprintf(none, sizeof none, "%s/no-plugins", dir);
	mkdir(none, 0755);
	if (plugins)
		snprintf(extra, sizeof extra, "\"data_dir\":\"%s/data\"%s%s", dir, *upstream ? "," : "", upstream);
	else
		snprintf(extra, sizeof extra, "\"data_dir\":\"%s/data\",\"plugin_dir\":\"%s\"%s%s", dir, none,
			 *upstream ? "," : "", upstream);
	assert_int_equal(gw_start(g, extra), 0);
}

/* What the plugins of rule 1 wrote for P-1, and a Flag no plugin made that
 * refers to what moves. */
static void write_rule_1(const struct gw *g, const struct ids *d)
{
	put(g, "Patient", d->pid, "\"identifier\":[{\"system\":\"" PEOPLE "\",\"value\":\"P-1\"}]}");
	put(g, "Goal", d->goal,
	    "\"identifier\":[{\"system\":\"" GOALS "\",\"value\":\"G-1\"}],\"lifecycleStatus\":\"active\","
	    "\"description\":{\"text\":\"words\"},\"subject\":{\"reference\":\"Patient/%s\"},"
	    "\"expressedBy\":{\"reference\":\"Patient/%s\"}}",
	    d->pid, d->pid);
	put(g, "CarePlan", d->plan,
	    "\"identifier\":[{\"system\":\"" PLANS "\",\"value\":\"RP-1\"}],\"status\":\"active\",\"intent\":\"plan\","
	    "\"subject\":{\"reference\":\"Patient/%s\"},\"goal\":[{\"reference\":\"Goal/%s\"}]}",
	    d->pid, d->goal);
	put(g, "Encounter", d->enc,
	    "\"extension\":[{\"url\":\"http://hl7.org/fhir/StructureDefinition/resource-pertainsToGoal\","
	    "\"valueReference\":{\"reference\":\"Goal/%s\",\"type\":\"Goal\",\"identifier\":{\"system\":\"" GOALS
	    "\",\"value\":\"G-1\"}}}],\"identifier\":[{\"system\":\"" ENCOUNTERS "\",\"value\":\"E-1\"}],"
	    "\"status\":\"finished\",\"class\":{\"system\":\"http://terminology.hl7.org/CodeSystem/v3-ActCode\","
	    "\"code\":\"FLD\"},\"subject\":{\"reference\":\"Patient/%s\"}}",
	    d->goal, d->pid);
	put(g, "Procedure", d->proc,
	    "\"status\":\"completed\",\"subject\":{\"reference\":\"Patient/%s\"},"
	    "\"encounter\":{\"reference\":\"Encounter/%s\"}}",
	    d->pid, d->enc);
	put(g, "Patient", d->opid, "\"identifier\":[{\"system\":\"" PEOPLE "\",\"value\":\"P-1\"}]}");
	put(g, "QuestionnaireResponse", d->qr,
	    "\"identifier\":{\"system\":\"" ADMINS "\",\"value\":\"A-1\"},\"status\":\"completed\","
	    "\"subject\":{\"reference\":\"Patient/%s\"}}",
	    d->opid);
	put(g, "Observation", d->obs,
	    "\"status\":\"final\",\"code\":{\"text\":\"total\"},\"subject\":{\"reference\":\"Patient/%s\"},"
	    "\"derivedFrom\":[{\"reference\":\"QuestionnaireResponse/%s\"}],\"valueInteger\":10}",
	    d->opid, d->qr);
	put(g, "Flag", d->flag,
	    "\"status\":\"active\",\"code\":{\"text\":\"see the goal\"},\"subject\":{\"reference\":\"Patient/%s\"},"
	    "\"encounter\":{\"reference\":\"Encounter/%s\"}}",
	    d->opid, d->enc);
}

static char *tmp_dir(void)
{
	static char dir[64];
	snprintf(dir, sizeof dir, "/tmp/cw-ids-XXXXXX");
	assert_non_null(mkdtemp(dir));
	harness_remove_at_exit(dir);
	return dir;
}

static void old_rule_store_is_upgraded(void **state)
{
	(void)state;
	struct ids d;
	make_ids(&d);
	const char *dir = tmp_dir();
	struct gw g;
	start_on(&g, dir, false, "");
	write_rule_1(&g, &d);
	assert_int_equal(gw_stop(&g, 15000), 0);

	/* the gateway with its plugins upgrades the store as it starts */
	start_on(&g, dir, true, "");
	/* old ids: deleted, history kept (the write and the deletion) */
	const char *types[] = {"Goal", "CarePlan", "Encounter", "Procedure", "Patient", "QuestionnaireResponse",
			       "Observation"};
	const char *olds[] = {d.goal, d.plan, d.enc, d.proc, d.opid, d.qr, d.obs};
	for (size_t i = 0; i < sizeof olds / sizeof olds[0]; i++) {
		cJSON_Delete(read_res(&g, types[i], olds[i], 410));
		assert_int_equal(versions(&g, types[i], olds[i]), 2);
	}
	/* new ids, references rewritten */
	cJSON *r = read_res(&g, "Goal", d.ngoal, 200);
	expect_ref(ref(r, "subject"), "Patient", d.pid);
	assert_string_equal(sget(get(r, "description"), "text"), "words");
	cJSON_Delete(r);
	r = read_res(&g, "CarePlan", d.nplan, 200);
	expect_ref(sget(cJSON_GetArrayItem(get(r, "goal"), 0), "reference"), "Goal", d.ngoal);
	cJSON_Delete(r);
	r = read_res(&g, "Encounter", d.nenc, 200);
	expect_ref(sget(get(cJSON_GetArrayItem(get(r, "extension"), 0), "valueReference"), "reference"), "Goal", d.ngoal);
	cJSON_Delete(r);
	r = read_res(&g, "Procedure", d.nproc, 200);
	expect_ref(ref(r, "encounter"), "Encounter", d.nenc);
	cJSON_Delete(r);
	r = read_res(&g, "QuestionnaireResponse", d.nqr, 200);
	expect_ref(ref(r, "subject"), "Patient", d.pid);
	cJSON_Delete(r);
	r = read_res(&g, "Observation", d.nobs, 200);
	expect_ref(ref(r, "subject"), "Patient", d.pid);
	expect_ref(sget(cJSON_GetArrayItem(get(r, "derivedFrom"), 0), "reference"), "QuestionnaireResponse", d.nqr);
	cJSON_Delete(r);
	r = read_res(&g, "Flag", d.flag, 200);
	expect_ref(ref(r, "subject"), "Patient", d.pid);
	expect_ref(ref(r, "encounter"), "Encounter", d.nenc);
	cJSON_Delete(r);
	assert_int_equal(versions(&g, "Flag", d.flag), 2);
	assert_int_equal(versions(&g, "Patient", d.pid), 1); /* the Patient already there is kept */
	cJSON *res = NULL;
	assert_int_equal(call(&g, "GET", "/fhir/Patient?identifier=" PEOPLE "%7CP-1", NULL, NULL, &res), 200);
	assert_int_equal(cJSON_GetObjectItem(res, "total")->valueint, 1);
	cJSON_Delete(res);
	assert_int_equal(gw_stop(&g, 15000), 0);

	/* a second start changes nothing */
	start_on(&g, dir, true, "");
	assert_int_equal(versions(&g, "Flag", d.flag), 2);
	assert_int_equal(versions(&g, "Goal", d.ngoal), 1);
	assert_int_equal(versions(&g, "Goal", d.goal), 2);
	assert_int_equal(gw_stop(&g, 15000), 0);
}

static bool drained(const struct gw *g, long timeout_ms)
{
	long until = now_ms() + timeout_ms;
	while (now_ms() < until) {
		cJSON *o = NULL;
		if (call(g, "GET", "/outbox?_count=0", NULL, NULL, &o) == 200) {
			const cJSON *p = get(o, "pending"), *dead = get(o, "dead");
			bool done = cJSON_IsNumber(p) && p->valuedouble == 0;
			assert_true(!cJSON_IsNumber(dead) || dead->valuedouble == 0);
			cJSON_Delete(o);
			if (done)
				return true;
		}
		sleep_ms(100);
	}
	return false;
}

static long upstream_status(const struct upstream_srv *u, const char *type, const char *id, cJSON **out)
{
	char path[200];
	snprintf(path, sizeof path, "/fhir/R4/%s/%s", type, id);
	struct resp r;
	assert_int_equal(upstream_do(u, "GET", path, NULL, &r), 0);
	long st = r.status;
	if (out)
		*out = cJSON_Parse(r.body ? r.body : "");
	resp_free(&r);
	return st;
}

/* In store-and-forward mode the upgrade is delivered like any write: the
 * upstream loses the old ids and gets the new ones, references rewritten. */
static void old_rule_upgrade_reaches_the_upstream(void **state)
{
	(void)state;
	if (upstream_install() != 0) {
		fprintf(stderr, "# npm install of tests/upstream failed (see build/upstream-install.log)\n");
		fail();
	}
	struct upstream_srv u;
	assert_int_equal(upstream_start(&u, 0), 0);
	char up[2048];
	upstream_gw_config(up, sizeof up, &u,
			   "\"Patient\":\"store-and-forward\",\"Goal\":\"store-and-forward\",\"CarePlan\":\"store-and-forward\","
			   "\"Encounter\":\"store-and-forward\",\"Procedure\":\"store-and-forward\","
			   "\"QuestionnaireResponse\":\"store-and-forward\",\"Observation\":\"store-and-forward\","
			   "\"Flag\":\"store-and-forward\"",
			   NULL);
	struct ids d;
	make_ids(&d);
	const char *dir = tmp_dir();
	struct gw g;
	start_on(&g, dir, false, up);
	write_rule_1(&g, &d);
	assert_true(drained(&g, 20000));
	assert_int_equal(upstream_status(&u, "Goal", d.goal, NULL), 200);
	assert_int_equal(gw_stop(&g, 15000), 0);

	start_on(&g, dir, true, up);
	assert_true(drained(&g, 20000));
	const char *types[] = {"Goal", "CarePlan", "Encounter", "Procedure", "Patient", "QuestionnaireResponse",
			       "Observation"};
	const char *olds[] = {d.goal, d.plan, d.enc, d.proc, d.opid, d.qr, d.obs};
	const char *news[] = {d.ngoal, d.nplan, d.nenc, d.nproc, d.pid, d.nqr, d.nobs};
	for (size_t i = 0; i < sizeof olds / sizeof olds[0]; i++) {
		long st = upstream_status(&u, types[i], olds[i], NULL);
		assert_true(st == 404 || st == 410);
		assert_int_equal(upstream_status(&u, types[i], news[i], NULL), 200);
	}
	cJSON *r = NULL;
	assert_int_equal(upstream_status(&u, "CarePlan", d.nplan, &r), 200);
	expect_ref(sget(cJSON_GetArrayItem(get(r, "goal"), 0), "reference"), "Goal", d.ngoal);
	cJSON_Delete(r);
	assert_int_equal(upstream_status(&u, "Flag", d.flag, &r), 200);
	expect_ref(ref(r, "encounter"), "Encounter", d.nenc);
	cJSON_Delete(r);
	assert_int_equal(gw_stop(&g, 15000), 0);
	upstream_stop(&u);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(two_people_each_keep_goal_g1),
		cmocka_unit_test(one_identifier_is_one_patient_in_every_plugin),
		cmocka_unit_test(thin_patient_keeps_richer_demographics),
		cmocka_unit_test(attainment_scores_point_at_the_goal),
		cmocka_unit_test(old_rule_store_is_upgraded),
		cmocka_unit_test(old_rule_upgrade_reaches_the_upstream),
	};
	return cmocka_run_group_tests_name("plugin ids", tests, NULL, NULL);
}
