/* ps_fhir — a struct pk_doc to a FHIR R4 transaction Bundle and back.
 *
 * To FHIR: per person a Patient, per specialist a Practitioner and a
 * PractitionerRole (NUCC 175T00000X), per encounter an Encounter and one
 * Procedure per activity; each PUT under a deterministic id (plugkit's
 * rule: an Encounter's from its Patient and its identifier, a Procedure's
 * from its Encounter's), so sending the same log twice changes nothing.
 *
 * From FHIR: any Bundle. What the format cannot hold is reported as a
 * warning with its location (Bundle.entry[N].resource…), never dropped in
 * silence; an Encounter that lacks what the format requires is left out,
 * with one warning per reason. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "peer_support.h"

#define PS_PARTTYPE_SYSTEM "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
#define PS_ROLE_NS PS_BASE "/peer-support/PractitionerRole"
#define PS_PROCEDURE_NS PS_BASE "/peer-support/Procedure"
#define PS_CONDITION_NS PS_BASE "/peer-support/Condition"
#define PS_COVERAGE_NS PS_BASE "/peer-support/Coverage"
#define PS_DXROLE_SYSTEM "http://terminology.hl7.org/CodeSystem/diagnosis-role"
#define PS_CONDCAT_SYSTEM "http://terminology.hl7.org/CodeSystem/condition-category"

static const char *const hcpcs_aliases[] = {
	"http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets",
	"https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets",
	"http://terminology.hl7.org/CodeSystem/HCPCS-all-codes",
};

static bool is_hcpcs(const char *system)
{
	if (!system)
		return false;
	for (size_t i = 0; i < sizeof hcpcs_aliases / sizeof hcpcs_aliases[0]; i++)
		if (strcmp(system, hcpcs_aliases[i]) == 0)
			return true;
	return strcmp(system, ps_cfg.hcpcs_system) == 0;
}

/* ---------------------------------------------------------- to FHIR */

static bool make_id(struct pk_out *o, const char *ns, const char *a, const char *b, char id[CW_ID_SIZE])
{
	size_t n = strlen(a) + (b ? strlen(b) + 1 : 0) + 1;
	char *key = ps_host->alloc(o->ctx, n);
	if (!key) {
		o->failed = true;
		return false;
	}
	snprintf(key, n, b ? "%s|%s" : "%s", a, b ? b : "");
	if (ps_host->make_id(o->ctx, ns, key, id) != CW_OK) {
		o->failed = true;
		return false;
	}
	return true;
}

static void emit_patient(struct pk_out *o, const struct pk_person *p, const char *id)
{
	pk_patient(o, id, PS_PROFILE("patient"), &p->id, p->name);
}

static void emit_specialist(struct pk_out *o, const struct ps_specialist *sp, const char *id)
{
	cJSON *r = pk_resource("Practitioner", id, PS_PROFILE("practitioner"));
	cJSON *ids = cJSON_AddArrayToObject(r, "identifier");
	pk_put_item(o, ids, NULL, ps_host->make_identifier(o->ctx, sp->id.system, sp->id.value));
	if (sp->npi)
		pk_put_item(o, ids, NULL, ps_host->make_identifier(o->ctx, PS_NPI_SYSTEM, sp->npi));
	pk_add_text(r, "name", sp->name);
	const struct ps_cert *c = &sp->cert;
	if (sp->credential || c->number) {
		cJSON *q = cJSON_CreateObject();
		if (c->number) {
			cJSON *qi = cJSON_CreateObject();
			cJSON_AddStringToObject(qi, "value", c->number);
			cJSON_AddItemToArray(cJSON_AddArrayToObject(q, "identifier"), qi);
		}
		cJSON *code = cJSON_AddObjectToObject(q, "code");
		int area = c->area ? pk_lookup(ps_areas, PS_AREA_COUNT, c->area) : -1;
		if (area >= 0)
			pk_put_item(o, cJSON_AddArrayToObject(code, "coding"), NULL,
				    ps_host->make_coding(o->ctx, PS_AREA_SYSTEM, ps_areas[area].code,
							 ps_areas[area].display));
		if (sp->credential)
			cJSON_AddStringToObject(code, "text", sp->credential);
		else if (area < 0) /* code is required: the peer specialist taxonomy */
			pk_put_item(o, cJSON_AddArrayToObject(code, "coding"), NULL,
				    ps_host->make_coding(o->ctx, PS_NUCC_SYSTEM, PS_NUCC_PEER, "Peer Specialist"));
		if (c->number) {
			cJSON_AddStringToObject(cJSON_AddObjectToObject(q, "period"), "end", c->expiry);
			cJSON_AddStringToObject(cJSON_AddObjectToObject(q, "issuer"), "display", c->issuer);
		}
		cJSON_AddItemToArray(cJSON_AddArrayToObject(r, "qualification"), q);
	}
	pk_add_put(o, r, "Practitioner", id);

	char rid[CW_ID_SIZE];
	if (!make_id(o, PS_ROLE_NS, sp->id.system, sp->id.value, rid))
		return;
	r = pk_resource("PractitionerRole", rid, PS_PROFILE("practitionerrole"));
	cJSON_AddBoolToObject(r, "active", true);
	pk_put_item(o, r, "practitioner", ps_host->make_reference(o->ctx, "Practitioner", id, NULL));
	cJSON_AddItemToArray(cJSON_AddArrayToObject(r, "code"),
			     pk_concept(o, PS_NUCC_SYSTEM, PS_NUCC_PEER, "Peer Specialist"));
	pk_add_put(o, r, "PractitionerRole", rid);
}

/* The id of the Coverage of person pid with a payer and member id. */
static bool coverage_id(struct pk_out *o, const char *pid, const struct ps_encounter *e, char id[CW_ID_SIZE])
{
	size_t n = strlen(pid) + strlen(e->payer) + 1;
	char *a = ps_host->alloc(o->ctx, n + 1);
	if (!a) {
		o->failed = true;
		return false;
	}
	snprintf(a, n + 1, "%s|%s", pid, e->payer);
	return make_id(o, PS_COVERAGE_NS, a, e->member_id, id);
}

/* The plan of care, the coverage and the prior authorization of an
 * encounter (version 2) as extensions in ext. */
static bool encounter_v2_links(struct pk_out *o, const struct ps_encounter *e, const char *pid, cJSON *ext)
{
	char id[CW_ID_SIZE];
	if (e->plan) {
		const struct pk_ident plan = {ps_cfg.plan_system, e->plan};
		if (!pk_item_id(o, pid, "CarePlan", &plan, id))
			return false;
		cJSON *x = cJSON_CreateObject(), *ref = ps_host->make_reference(o->ctx, "CarePlan", id, NULL);
		cJSON_AddItemToArray(ext, x);
		cJSON_AddStringToObject(x, "url", PS_PLAN_URL);
		pk_put_item(o, x, "valueReference", ref);
		if (ref)
			pk_put_item(o, ref, "identifier", ps_host->make_identifier(o->ctx, plan.system, plan.value));
	}
	if (e->payer) {
		if (!coverage_id(o, pid, e, id))
			return false;
		cJSON *x = cJSON_CreateObject();
		cJSON_AddItemToArray(ext, x);
		cJSON_AddStringToObject(x, "url", PS_COVERAGE_URL);
		pk_put_item(o, x, "valueReference", ps_host->make_reference(o->ctx, "Coverage", id, NULL));
	}
	if (e->prior_auth) {
		cJSON *x = cJSON_CreateObject();
		cJSON_AddItemToArray(ext, x);
		cJSON_AddStringToObject(x, "url", PS_PRIOR_AUTH_URL);
		cJSON_AddStringToObject(x, "valueString", e->prior_auth);
	}
	return !o->failed;
}

/* Encounter.diagnosis: one Condition per code, use billing, ranked in
 * order; their ids in *cids (arena). */
static bool encounter_diagnoses(struct pk_out *o, cJSON *r, const struct ps_encounter *e, const char *eid,
				char (**cids)[CW_ID_SIZE])
{
	*cids = ps_host->alloc(o->ctx, e->n_diagnoses * sizeof **cids);
	if (!*cids) {
		o->failed = true;
		return false;
	}
	cJSON *dx = cJSON_AddArrayToObject(r, "diagnosis");
	for (size_t i = 0; i < e->n_diagnoses; i++) {
		if (!make_id(o, PS_CONDITION_NS, eid, e->diagnoses[i], (*cids)[i]))
			return false;
		cJSON *d = cJSON_CreateObject();
		cJSON_AddItemToArray(dx, d);
		pk_put_item(o, d, "condition", ps_host->make_reference(o->ctx, "Condition", (*cids)[i], NULL));
		cJSON_AddItemToObject(d, "use", pk_concept(o, PS_DXROLE_SYSTEM, "billing", "Billing"));
		cJSON_AddNumberToObject(d, "rank", (double)(i + 1));
	}
	return !o->failed;
}

static void emit_condition(struct pk_out *o, const char *code, const char *cid, const char *pid, const char *eid)
{
	cJSON *c = pk_resource("Condition", cid, NULL);
	cJSON_AddItemToArray(cJSON_AddArrayToObject(c, "category"),
			     pk_concept(o, PS_CONDCAT_SYSTEM, "encounter-diagnosis", "Encounter Diagnosis"));
	cJSON_AddItemToObject(c, "code",
			      pk_concept(o, PS_ICD10CM, code, ps_host->code_display(o->ctx, PS_ICD10CM, code)));
	pk_put_item(o, c, "subject", ps_host->make_reference(o->ctx, "Patient", pid, NULL));
	pk_put_item(o, c, "encounter", ps_host->make_reference(o->ctx, "Encounter", eid, NULL));
	pk_add_put(o, c, "Condition", cid);
}

static void emit_coverage(struct pk_out *o, const struct ps_encounter *e, const char *pid)
{
	char id[CW_ID_SIZE];
	if (!coverage_id(o, pid, e, id))
		return;
	cJSON *c = pk_resource("Coverage", id, NULL);
	cJSON_AddStringToObject(c, "status", "active");
	cJSON_AddStringToObject(c, "subscriberId", e->member_id);
	pk_put_item(o, c, "beneficiary", ps_host->make_reference(o->ctx, "Patient", pid, NULL));
	cJSON *payor = cJSON_CreateObject();
	cJSON_AddItemToArray(cJSON_AddArrayToObject(c, "payor"), payor);
	pk_put_item(o, payor, "identifier", ps_host->make_identifier(o->ctx, ps_cfg.payer_system, e->payer));
	cJSON_AddStringToObject(payor, "display", e->payer);
	pk_add_put(o, c, "Coverage", id);
}

/* A supervisor who is no specialist of the document, as a Practitioner. */
static void emit_supervisor(struct pk_out *o, const struct ps_encounter *e)
{
	char id[CW_ID_SIZE];
	if (!make_id(o, e->supervisor.system, e->supervisor.value, NULL, id))
		return;
	cJSON *r = pk_resource("Practitioner", id, PS_PROFILE("practitioner"));
	pk_put_item(o, cJSON_AddArrayToObject(r, "identifier"), NULL,
		    ps_host->make_identifier(o->ctx, e->supervisor.system, e->supervisor.value));
	pk_add_text(r, "name", e->supervisor_name);
	pk_add_put(o, r, "Practitioner", id);
}

static void emit_encounter(struct pk_out *o, const struct ps_encounter *e, const char *pid, const char *spid)
{
	char id[CW_ID_SIZE], end[32];
	const struct pk_ident enc = {ps_cfg.encounter_system, e->id};
	if (!pk_item_id(o, pid, "Encounter", &enc, id))
		return;
	if (!ps_add_minutes(e->start, e->minutes, end, sizeof end)) {
		ps_host->issue(o->ctx, CW_SEV_ERROR, "value", e->it.where, "the encounter ends after the year 9999");
		o->failed = true;
		return;
	}
	cJSON *r = pk_resource("Encounter", id, PS_PROFILE("encounter"));
	cJSON *ext = e->notes || e->n_goals || e->plan || e->payer ? cJSON_AddArrayToObject(r, "extension") : NULL;
	if (e->notes) {
		cJSON *x = cJSON_CreateObject();
		cJSON_AddStringToObject(x, "url", PS_NOTE_URL);
		cJSON_AddStringToObject(x, "valueString", e->notes);
		cJSON_AddItemToArray(ext, x);
	}
	for (size_t i = 0; i < e->n_goals; i++) {
		char gid[CW_ID_SIZE];
		const struct pk_ident goal = {ps_cfg.goal_system, e->goals[i]};
		if (!pk_item_id(o, pid, "Goal", &goal, gid) || !pk_goal_link(o, ext, gid, &goal))
			return;
	}
	if (!encounter_v2_links(o, e, pid, ext))
		return;
	pk_put_item(o, cJSON_AddArrayToObject(r, "identifier"), NULL,
		 ps_host->make_identifier(o->ctx, ps_cfg.encounter_system, e->id));
	cJSON_AddStringToObject(r, "status", "finished");
	const struct pk_code *cls = &ps_class_display[e->setting];
	pk_put_item(o, r, "class", ps_host->make_coding(o->ctx, PS_ACTCODE_SYSTEM, cls->code, cls->display));
	cJSON *types = cJSON_AddArrayToObject(r, "type");
	cJSON_AddItemToArray(types, pk_concept(o, PS_MODE_SYSTEM, ps_modes[e->mode].code, ps_modes[e->mode].display));
	if (e->billable)
		cJSON_AddItemToArray(
			types, pk_concept(o, ps_cfg.hcpcs_system, PS_H0038, "Self-help/peer services, per 15 minutes"));
	pk_put_item(o, r, "subject", ps_host->make_reference(o->ctx, "Patient", pid, NULL));
	cJSON *part = cJSON_CreateObject();
	cJSON_AddItemToArray(cJSON_AddArrayToObject(r, "participant"), part);
	cJSON_AddItemToArray(cJSON_AddArrayToObject(part, "type"),
			     pk_concept(o, PS_PARTTYPE_SYSTEM, "PPRF", "primary performer"));
	pk_put_item(o, part, "individual", ps_host->make_reference(o->ctx, "Practitioner", spid, NULL));
	char supid[CW_ID_SIZE];
	if (e->supervisor.value) {
		if (!make_id(o, e->supervisor.system, e->supervisor.value, NULL, supid))
			return;
		part = cJSON_CreateObject();
		cJSON_AddItemToArray(cJSON_GetObjectItemCaseSensitive(r, "participant"), part);
		cJSON_AddItemToArray(cJSON_AddArrayToObject(part, "type"),
				     pk_concept(o, PS_CARETEAM_SYSTEM, "supervisor", "Supervising practitioner"));
		pk_put_item(o, part, "individual", ps_host->make_reference(o->ctx, "Practitioner", supid, NULL));
	}
	char(*cids)[CW_ID_SIZE] = NULL;
	if (e->n_diagnoses && !encounter_diagnoses(o, r, e, id, &cids))
		return;
	cJSON *period = cJSON_AddObjectToObject(r, "period");
	cJSON_AddStringToObject(period, "start", e->start);
	cJSON_AddStringToObject(period, "end", end);
	cJSON *len = cJSON_AddObjectToObject(r, "length");
	cJSON_AddNumberToObject(len, "value", (double)e->minutes);
	cJSON_AddStringToObject(len, "unit", "min");
	cJSON_AddStringToObject(len, "system", PS_UCUM);
	cJSON_AddStringToObject(len, "code", "min");
	pk_add_put(o, r, "Encounter", id);

	for (size_t i = 0; i < e->n_acts; i++) {
		const struct pk_code *a = &ps_activities[e->acts[i]];
		char aid[CW_ID_SIZE];
		if (!make_id(o, PS_PROCEDURE_NS, id, a->code, aid))
			return;
		cJSON *p = pk_resource("Procedure", aid, PS_PROFILE("procedure"));
		cJSON_AddStringToObject(p, "status", "completed");
		cJSON_AddItemToObject(p, "code", pk_concept(o, PS_ACTIVITY_SYSTEM, a->code, a->display));
		pk_put_item(o, p, "subject", ps_host->make_reference(o->ctx, "Patient", pid, NULL));
		pk_put_item(o, p, "encounter", ps_host->make_reference(o->ctx, "Encounter", id, NULL));
		cJSON *pp = cJSON_AddObjectToObject(p, "performedPeriod");
		cJSON_AddStringToObject(pp, "start", e->start);
		cJSON_AddStringToObject(pp, "end", end);
		cJSON *perf = cJSON_CreateObject();
		cJSON_AddItemToArray(cJSON_AddArrayToObject(p, "performer"), perf);
		cJSON_AddItemToObject(perf, "function", pk_concept(o, PS_NUCC_SYSTEM, PS_NUCC_PEER, "Peer Specialist"));
		pk_put_item(o, perf, "actor", ps_host->make_reference(o->ctx, "Practitioner", spid, NULL));
		pk_add_put(o, p, "Procedure", aid);
	}
	for (size_t i = 0; i < e->n_diagnoses; i++)
		emit_condition(o, e->diagnoses[i], cids[i], pid, id);
}

enum cw_status ps_to_bundle(struct cw_ctx *ctx, const struct pk_doc *doc, cJSON **out)
{
	struct pk_out o = {.host = ps_host, .ctx = ctx};
	char (*pids)[CW_ID_SIZE] = ps_host->alloc(ctx, (doc->people.n + 1) * sizeof *pids);
	char (*sids)[CW_ID_SIZE] = ps_host->alloc(ctx, (doc->n + 1) * sizeof *sids);
	bool *person_done = ps_host->alloc(ctx, doc->people.n + 1);
	cJSON *b = pk_transaction(&o);
	if (!pids || !sids || !person_done || !b) {
		cJSON_Delete(b);
		ps_host->issue(ctx, CW_SEV_ERROR, "exception", NULL, "out of memory");
		return CW_NOMEM;
	}
	for (size_t p = 0; p < doc->people.n; p++)
		pk_patient_id(&o, &doc->people.v[p].id, pids[p]);
	size_t next_person = 0; /* people without encounters keep their place */
	for (size_t i = 0; i < doc->n && !o.failed; i++) {
		const struct ps_encounter *e = ps_enc(doc, i);
		for (; next_person <= e->it.person; next_person++)
			if (!person_done[next_person]) {
				emit_patient(&o, &doc->people.v[next_person], pids[next_person]);
				person_done[next_person] = true;
			}
		if (!person_done[e->it.person]) {
			emit_patient(&o, &doc->people.v[e->it.person], pids[e->it.person]);
			person_done[e->it.person] = true;
		}
		make_id(&o, e->sp.id.system, e->sp.id.value, NULL, sids[i]);
		bool seen = false;
		for (size_t j = 0; j < i && !seen; j++)
			seen = strcmp(sids[j], sids[i]) == 0;
		if (!seen)
			emit_specialist(&o, &e->sp, sids[i]);
		/* a supervisor once, unless a specialist of the document */
		seen = !e->supervisor.value;
		for (size_t j = 0; j < doc->n && !seen; j++) {
			const struct ps_encounter *x = ps_enc(doc, j);
			seen = pk_same_ident(&x->sp.id, &e->supervisor) ||
			       (j < i && x->supervisor.value && pk_same_ident(&x->supervisor, &e->supervisor));
		}
		if (!seen)
			emit_supervisor(&o, e);
		/* a Coverage once per person, payer and member id */
		seen = !e->payer;
		for (size_t j = 0; j < i && !seen; j++) {
			const struct ps_encounter *x = ps_enc(doc, j);
			seen = x->payer && x->it.person == e->it.person && !strcmp(x->payer, e->payer) &&
			       !strcmp(x->member_id, e->member_id);
		}
		if (!seen)
			emit_coverage(&o, e, pids[e->it.person]);
		emit_encounter(&o, e, pids[e->it.person], sids[i]);
	}
	for (size_t p = 0; p < doc->people.n && !o.failed; p++)
		if (!person_done[p])
			emit_patient(&o, &doc->people.v[p], pids[p]);
	return pk_close(&o, b, out);
}

/* Rule 1 → plugkit's rule: an Encounter moves to its Patient's id (its goal
 * links too), and the Procedures of its activities move with it. */
enum cw_status ps_upgrade(struct cw_ctx *ctx, const cJSON *resource, cJSON **out, cJSON **moved)
{
	static const char *const types[] = {"Encounter", NULL};
	enum cw_status st = pk_upgrade_item(ps_host, ctx, resource, types, ps_cfg.encounter_system, out);
	if (st != CW_OK || !*out)
		return st;
	const char *old = pk_str(resource, "id"), *now = pk_str(*out, "id");
	for (size_t i = 0; i < ps_activity_count; i++) {
		char a[CW_ID_SIZE], b[CW_ID_SIZE], key[CW_ID_SIZE + 80];
		snprintf(key, sizeof key, "%s|%s", old, ps_activities[i].code);
		bool ok = ps_host->make_id(ctx, PS_PROCEDURE_NS, key, a) == CW_OK;
		snprintf(key, sizeof key, "%s|%s", now, ps_activities[i].code);
		ok = ok && ps_host->make_id(ctx, PS_PROCEDURE_NS, key, b) == CW_OK && pk_add_move(moved, "Procedure", a, b);
		if (!ok) {
			ps_host->issue(ctx, CW_SEV_ERROR, "exception", NULL, "out of memory");
			return CW_NOMEM;
		}
	}
	return CW_OK;
}

/* -------------------------------------------------------- from FHIR */

struct res {
	struct pk_entry e;
	long person; /* index into doc->people for a Patient, else -1 */
};

struct in {
	struct pk_in pk;
	struct res *v; /* pk.entries */
};

/* The first identifier with a usable system and value (other than skip);
 * warns about the others. */
static bool first_ident(struct in *in, size_t k, const char *skip, struct pk_ident *id, bool report)
{
	const cJSON *it;
	size_t i = 0;
	bool found = false;
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(in->v[k].e.r, "identifier")) {
		const char *sys = pk_str(it, "system"), *val = pk_str(it, "value");
		char w[48];
		snprintf(w, sizeof w, "identifier[%zu]", i++);
		if (skip && sys && strcmp(sys, skip) == 0)
			continue;
		if (!found && ps_is_uri(sys) && strcmp(sys, PS_NPI_SYSTEM) != 0 && pk_is_text(val)) {
			id->system = sys;
			id->value = val;
			found = true;
		} else if (report) {
			pk_warn(&in->pk, pk_path(&in->pk, k, "%s", w), "%s identifier left out: the format keeps one",
				in->v[k].e.type);
		}
	}
	return found;
}

/* name[0].text, else given and family joined; warns about what else. */
static const char *human_name(struct in *in, size_t k, bool report)
{
	const cJSON *names = cJSON_GetObjectItemCaseSensitive(in->v[k].e.r, "name"), *n = cJSON_GetArrayItem(names, 0);
	if (report && cJSON_GetArraySize(names) > 1)
		pk_warn(&in->pk, pk_path(&in->pk, k, "name[1]"), "%s: only the first name is kept", in->v[k].e.type);
	if (!n)
		return NULL;
	if (pk_is_text(pk_str(n, "text")))
		return pk_str(n, "text");
	char buf[512];
	pk_join_name(n, buf, sizeof buf);
	if (!pk_is_text(buf))
		return NULL;
	if (report && (cJSON_GetObjectItemCaseSensitive(n, "prefix") || cJSON_GetObjectItemCaseSensitive(n, "suffix")))
		pk_warn(&in->pk, pk_path(&in->pk, k, "name[0]"), "%s: name prefix and suffix are left out",
			in->v[k].e.type);
	char *c = ps_host->copy_string(in->pk.ctx, buf);
	in->pk.nomem |= !c;
	return c;
}

static void fhir_patient(struct in *in, size_t k, struct pk_doc *doc)
{
	static const char *const known[] = {"identifier", "name", NULL};
	struct pk_ident id = {0};
	in->v[k].e.used = true;
	pk_unmapped(&in->pk, k, known);
	if (!first_ident(in, k, NULL, &id, true)) {
		pk_warn(&in->pk, pk_path(&in->pk, k, "identifier"),
			"Patient left out: it has no identifier with a system and value");
		return;
	}
	struct pk_person *p = pk_add_person(ps_host, in->pk.ctx, &doc->people);
	if (!p) {
		in->pk.nomem = true;
		return;
	}
	p->id = id;
	p->name = human_name(in, k, true);
	in->v[k].person = (long)(doc->people.n - 1);
}

/* The certification in qualification q of Practitioner entry k: its
 * identifier, issuer and period.end (a date), all three or none. */
static void fhir_cert(struct in *in, size_t k, const cJSON *q, struct ps_cert *c, bool report)
{
	const char *number = pk_str(cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(q, "identifier"), 0), "value");
	const char *issuer = pk_str(cJSON_GetObjectItemCaseSensitive(q, "issuer"), "display");
	const char *expiry = pk_str(cJSON_GetObjectItemCaseSensitive(q, "period"), "end");
	char dt[32];
	bool date = expiry && strlen(expiry) == 10 && snprintf(dt, sizeof dt, "%sT00:00:00Z", expiry) == 20 &&
		    ps_datetime(dt, NULL, NULL, NULL);
	if (pk_is_text(number) && pk_is_text(issuer) && date) {
		c->number = number;
		c->issuer = issuer;
		c->expiry = expiry;
	} else {
		if (report && (number || issuer || expiry))
			pk_warn(&in->pk, pk_path(&in->pk, k, "qualification[0]"),
				"certification left out: it needs an identifier, an issuer display and a "
				"period.end date");
		c->area = NULL;
	}
}

/* The specialist behind Practitioner entry k; false (with warnings) when it
 * lacks what the format needs. Reports its unmapped parts once. */
static bool fhir_practitioner(struct in *in, size_t k, struct ps_specialist *sp)
{
	static const char *const known[] = {"identifier", "name", "qualification", "active", NULL};
	bool report = !in->v[k].e.used;
	in->v[k].e.used = true;
	if (report)
		pk_unmapped(&in->pk, k, known);
	bool ok = true;
	if (!first_ident(in, k, PS_NPI_SYSTEM, &sp->id, report)) {
		pk_warn(&in->pk, pk_path(&in->pk, k, "identifier"),
			"Practitioner has no identifier with a system and value");
		ok = false;
	}
	if (!(sp->name = human_name(in, k, report))) {
		pk_warn(&in->pk, pk_path(&in->pk, k, "name"), "Practitioner has no name");
		ok = false;
	}
	const cJSON *it;
	size_t i = 0;
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(in->v[k].e.r, "identifier")) {
		char w[48];
		snprintf(w, sizeof w, "identifier[%zu]", i++);
		if (!pk_str(it, "system") || strcmp(pk_str(it, "system"), PS_NPI_SYSTEM) != 0)
			continue;
		if (!sp->npi && pk_npi_valid(pk_str(it, "value")))
			sp->npi = pk_str(it, "value");
		else if (report)
			pk_warn(&in->pk, pk_path(&in->pk, k, "%s", w), "NPI left out: %s",
				sp->npi ? "the format keeps one" : "it fails the NPI check");
	}
	const cJSON *quals = cJSON_GetObjectItemCaseSensitive(in->v[k].e.r, "qualification");
	const cJSON *code = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(quals, 0), "code");
	const char *cred = pk_str(code, "text");
	const cJSON *c;
	cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(code, "coding"))
	{
		const char *sys = pk_str(c, "system");
		if (sys && !strcmp(sys, PS_AREA_SYSTEM) && pk_lookup(ps_areas, PS_AREA_COUNT, pk_str(c, "code")) >= 0)
			sp->cert.area = pk_str(c, "code");
		else if (!cred && !(sys && !strcmp(sys, PS_NUCC_SYSTEM) && pk_eq(pk_str(c, "code"), PS_NUCC_PEER)))
			cred = pk_str(c, "code");
	}
	sp->credential = pk_is_text(cred) ? cred : NULL;
	fhir_cert(in, k, cJSON_GetArrayItem(quals, 0), &sp->cert, report);
	if (report && cJSON_GetArraySize(quals) > 1)
		pk_warn(&in->pk, pk_path(&in->pk, k, "qualification[1]"),
			"only the first qualification is kept as the credential");
	return ok;
}

/* Marks the PractitionerRoles of Practitioner p as used, reporting roles
 * that are not peer specialist roles. */
static void fhir_roles(struct in *in, size_t p)
{
	static const char *const known[] = {"practitioner", "code", "active", NULL};
	for (size_t k = 0; k < in->pk.n; k++) {
		if (in->v[k].e.used || strcmp(in->v[k].e.type, "PractitionerRole") != 0 ||
		    pk_resolve(&in->pk, cJSON_GetObjectItemCaseSensitive(in->v[k].e.r, "practitioner"),
			       "Practitioner") != (long)p)
			continue;
		in->v[k].e.used = true;
		pk_unmapped(&in->pk, k, known);
		bool peer = false;
		const cJSON *cc, *c;
		cJSON_ArrayForEach(cc, cJSON_GetObjectItemCaseSensitive(in->v[k].e.r, "code"))
			cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(cc, "coding"))
				peer |= pk_str(c, "system") && pk_str(c, "code") &&
					!strcmp(pk_str(c, "system"), PS_NUCC_SYSTEM) &&
					!strcmp(pk_str(c, "code"), PS_NUCC_PEER);
		if (!peer)
			pk_warn(&in->pk, pk_path(&in->pk, k, "code"),
				"PractitionerRole is not a peer specialist role (NUCC %s); its codes are left out",
				PS_NUCC_PEER);
	}
}

/* A reference to a goal of Encounter entry k (at where): kept when it
 * names a goal identified in the goal system, once; else a warning. */
static void take_goal(struct in *in, size_t k, struct ps_encounter *e, const cJSON *ref, const char *where)
{
	const cJSON *ident = cJSON_GetObjectItemCaseSensitive(ref, "identifier");
	long g = pk_resolve(&in->pk, ref, "Goal");
	if (!ident && g >= 0) {
		in->v[g].e.used = true;
		ident = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(in->v[g].e.r, "identifier"), 0);
		pk_warn(&in->pk, pk_path(&in->pk, g, "%s", ""),
			"Goal resources are not part of the format; only the identifier is kept");
	}
	const char *gv = pk_str(ident, "value");
	bool dup = false;
	for (size_t x = 0; e->goals && gv && x < e->n_goals; x++)
		dup |= strcmp(e->goals[x], gv) == 0;
	if (e->goals && pk_str(ident, "system") && !strcmp(pk_str(ident, "system"), ps_cfg.goal_system) &&
	    pk_is_text(gv) && !strchr(gv, ';') && !dup)
		e->goals[e->n_goals++] = gv;
	else if (!dup)
		pk_warn(&in->pk, pk_path(&in->pk, k, "%s", where),
			"goal left out: only goals identified in %s are kept", ps_cfg.goal_system);
}

/* Encounter.type: the mode (individual or group) and whether it is billable
 * (HCPCS H0038); every other coding a warning. */
static void encounter_type(struct in *in, size_t k, const cJSON *r, struct ps_encounter *e)
{
	const cJSON *it;
	size_t i = 0;
	bool mode = false;
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(r, "type")) {
		const cJSON *c;
		size_t j = 0;
		cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(it, "coding")) {
			char w[64];
			snprintf(w, sizeof w, "type[%zu].coding[%zu]", i, j++);
			const char *sys = pk_str(c, "system"), *code = pk_str(c, "code");
			int m = sys && !strcmp(sys, PS_MODE_SYSTEM) ? pk_lookup(ps_modes, PS_MODE_COUNT, code) : -1;
			if (m >= 0 && !mode) {
				e->mode = (enum ps_mode)m;
				mode = true;
			} else if (is_hcpcs(sys) && code && !strcmp(code, PS_H0038)) {
				e->billable = true;
			} else {
				pk_warn(&in->pk, pk_path(&in->pk, k, "%s", w),
					"Encounter type %s|%s has no place in the format; left out", sys ? sys : "",
					code ? code : "");
			}
		}
		if (pk_str(it, "text")) {
			char w[48];
			snprintf(w, sizeof w, "type[%zu].text", i);
			pk_warn(&in->pk, pk_path(&in->pk, k, "%s", w), "Encounter type text is left out");
		}
		i++;
	}
	if (!mode)
		pk_warn(&in->pk, pk_path(&in->pk, k, "type"),
			"Encounter does not say individual or group; individual assumed");

}

/* A participant whose type is the claim care team role supervisor. */
static bool is_supervisor(const cJSON *participant)
{
	const cJSON *t, *c;
	cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(participant, "type")) cJSON_ArrayForEach(
		c,
		cJSON_GetObjectItemCaseSensitive(t, "coding")) if (pk_eq(pk_str(c, "system"), PS_CARETEAM_SYSTEM) &&
								   pk_eq(pk_str(c, "code"), "supervisor")) return true;
	return false;
}

/* Encounter.participant: the one peer specialist (a Practitioner, or a
 * PractitionerRole's); false when none takes part. */
static bool encounter_specialist(struct in *in, size_t k, const cJSON *r, struct ps_encounter *e)
{
	const cJSON *it;
	size_t i = 0;
	bool ok = true;
	long sk = -1;
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(r, "participant")) {
		char w[48];
		snprintf(w, sizeof w, "participant[%zu]", i++);
		const cJSON *ind = cJSON_GetObjectItemCaseSensitive(it, "individual");
		long p = pk_resolve(&in->pk, ind, "Practitioner");
		if (p >= 0 && is_supervisor(it) && !e->supervisor.value) {
			struct ps_specialist sup = {0};
			if (fhir_practitioner(in, (size_t)p, &sup)) {
				e->supervisor = sup.id;
				e->supervisor_name = sup.name;
				continue;
			}
		}
		if (p < 0) {
			long role = pk_resolve(&in->pk, ind, "PractitionerRole");
			if (role >= 0)
				p = pk_resolve(&in->pk,
					       cJSON_GetObjectItemCaseSensitive(in->v[role].e.r, "practitioner"),
					       "Practitioner");
		}
		if (p >= 0 && sk < 0) {
			sk = p;
			if (cJSON_GetObjectItemCaseSensitive(it, "period"))
				pk_warn(&in->pk, pk_path(&in->pk, k, "%s", w),
					"the participant's own period is left out");
		} else {
			pk_warn(&in->pk, pk_path(&in->pk, k, "%s", w),
				"Encounter participant left out: the format keeps one peer specialist%s",
				p < 0 ? " (this one is not a Practitioner in the Bundle)" : "");
		}
	}
	if (sk < 0) {
		pk_warn(&in->pk, pk_path(&in->pk, k, "participant"),
			"Encounter not exported: no Practitioner in the Bundle takes part");
		ok = false;
	} else {
		ok &= fhir_practitioner(in, (size_t)sk, &e->sp);
		fhir_roles(in, (size_t)sk);
	}

	return ok;
}

/* The start and the duration in minutes, from length or from period;
 * false when either is missing or out of range. */
static bool encounter_duration(struct in *in, size_t k, const cJSON *r, struct ps_encounter *e)
{
	bool ok = true;
	const cJSON *period = cJSON_GetObjectItemCaseSensitive(r, "period");
	const char *start = pk_str(period, "start"), *end = pk_str(period, "end");
	long long a = 0, b = 0;
	if (!ps_datetime(start, &a, NULL, NULL)) {
		pk_warn(&in->pk, pk_path(&in->pk, k, "period.start"),
			"Encounter not exported: period.start is not a date-time with seconds and a time zone");
		ok = false;
	}
	e->start = start;
	const cJSON *len = cJSON_GetObjectItemCaseSensitive(r, "length");
	const cJSON *lv = cJSON_GetObjectItemCaseSensitive(len, "value");
	const char *unit = pk_str(len, "code") ? pk_str(len, "code") : pk_str(len, "unit");
	long minutes = -1;
	if (cJSON_IsNumber(lv) && unit && lv->valuedouble >= 1 && lv->valuedouble <= PS_MAX_MINUTES * 1.0 &&
	    lv->valuedouble == (double)(long)lv->valuedouble) {
		if (!strcmp(unit, "min"))
			minutes = (long)lv->valuedouble;
		else if (!strcmp(unit, "h") && lv->valuedouble * 60 <= PS_MAX_MINUTES)
			minutes = (long)lv->valuedouble * 60;
	}
	if (len && minutes < 0)
		pk_warn(&in->pk, pk_path(&in->pk, k, "length"),
			"Encounter length is not 1 to %d whole minutes; left out", PS_MAX_MINUTES);
	bool have_end = end && ps_datetime(start, &a, NULL, NULL) && ps_datetime(end, &b, NULL, NULL);
	if (minutes < 0 && have_end && b - a >= 1 && b - a <= PS_MAX_MINUTES)
		minutes = (long)(b - a);
	else if (minutes >= 0 && end && (!have_end || b - a != minutes))
		pk_warn(&in->pk, pk_path(&in->pk, k, "period.end"),
			"period.end does not match the length; the length is kept");
	if (minutes < 0) {
		pk_warn(&in->pk, pk_path(&in->pk, k, "length"),
			"Encounter not exported: no duration (length or period) of 1 to %d minutes", PS_MAX_MINUTES);
		ok = false;
	}
	e->minutes = minutes;

	return ok;
}

/* The recovery plan's identifier in the plan-of-care extension x, when it
 * is in plan_system. */
static const char *take_plan(const cJSON *x)
{
	const cJSON *id =
		cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(x, "valueReference"), "identifier");
	const char *v = pk_str(id, "value");
	return pk_eq(pk_str(id, "system"), ps_cfg.plan_system) && pk_is_text(v) ? v : NULL;
}

/* The Coverage the coverage extension x names, when it is in the Bundle
 * with a payer identifier in payer_system and a subscriberId. */
static bool take_coverage(struct in *in, const cJSON *x, struct ps_encounter *e)
{
	static const char *const known[] = {"status", "subscriberId", "beneficiary", "payor", NULL};
	long c = pk_resolve(&in->pk, cJSON_GetObjectItemCaseSensitive(x, "valueReference"), "Coverage");
	if (c < 0)
		return false;
	const cJSON *r = in->v[c].e.r;
	const cJSON *id = cJSON_GetObjectItemCaseSensitive(
		cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(r, "payor"), 0), "identifier");
	const char *payer = pk_str(id, "value"), *member = pk_str(r, "subscriberId");
	if (!pk_eq(pk_str(id, "system"), ps_cfg.payer_system) || !pk_is_text(payer) || !pk_is_text(member))
		return false;
	if (!in->v[c].e.used)
		pk_unmapped(&in->pk, (size_t)c, known);
	in->v[c].e.used = true;
	e->payer = payer;
	e->member_id = member;
	return true;
}

/* The goals the encounter served: resource-pertainsToGoal extensions (and,
 * as earlier versions of this plugin wrote them, Goal references in
 * reasonReference); the notes extension. */
static void encounter_goals(struct in *in, size_t k, const cJSON *r, struct ps_encounter *e)
{
	const cJSON *it;
	size_t i;
	size_t n_links = (size_t)cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(r, "reasonReference")) +
			 (size_t)cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(r, "extension"));
	e->goals = ps_host->alloc(in->pk.ctx, (n_links + 1) * sizeof *e->goals);
	in->pk.nomem |= !e->goals;
	i = 0;
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(r, "extension")) {
		char w[48];
		snprintf(w, sizeof w, "extension[%zu]", i++);
		const char *url = pk_str(it, "url");
		if (url && !strcmp(url, PK_PERTAINS_TO_GOAL))
			take_goal(in, k, e, cJSON_GetObjectItemCaseSensitive(it, "valueReference"), w);
		else if (!e->notes && url && !strcmp(url, PS_NOTE_URL) && pk_is_text(pk_str(it, "valueString")))
			e->notes = pk_str(it, "valueString");
		else if (!e->plan && pk_eq(url, PS_PLAN_URL) && take_plan(it))
			e->plan = take_plan(it);
		else if (!e->payer && pk_eq(url, PS_COVERAGE_URL) && take_coverage(in, it, e))
			;
		else if (!e->prior_auth && pk_eq(url, PS_PRIOR_AUTH_URL) && pk_is_text(pk_str(it, "valueString")))
			e->prior_auth = pk_str(it, "valueString");
		else
			pk_warn(&in->pk, pk_path(&in->pk, k, "%s", w), "extension %s is left out", url ? url : "");
	}
	i = 0;
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(r, "reasonReference")) {
		char w[48];
		snprintf(w, sizeof w, "reasonReference[%zu]", i++);
		take_goal(in, k, e, it, w);
	}
	if (e->prior_auth && !e->payer) {
		pk_warn(&in->pk, pk_path(&in->pk, k, "extension"),
			"prior authorization left out: the format keeps one only with the coverage");
		e->prior_auth = NULL;
	}
}

/* Encounter.diagnosis: the ICD-10-CM code of each Condition in the Bundle,
 * in order, each once, at most PS_MAX_DIAGNOSES; the rest warnings. */
static void encounter_diagnoses_in(struct in *in, size_t k, const cJSON *r, struct ps_encounter *e)
{
	static const char *const known[] = {"category",           "code", "subject", "encounter", "clinicalStatus",
					    "verificationStatus", NULL};
	const cJSON *dx = cJSON_GetObjectItemCaseSensitive(r, "diagnosis"), *it;
	if (!cJSON_GetArraySize(dx))
		return;
	e->diagnoses = ps_host->alloc(in->pk.ctx, (size_t)cJSON_GetArraySize(dx) * sizeof *e->diagnoses);
	in->pk.nomem |= !e->diagnoses;
	size_t i = 0;
	cJSON_ArrayForEach(it, dx)
	{
		char w[48];
		snprintf(w, sizeof w, "diagnosis[%zu]", i++);
		long c = pk_resolve(&in->pk, cJSON_GetObjectItemCaseSensitive(it, "condition"), "Condition");
		const char *code = NULL;
		const cJSON *cd;
		if (c >= 0)
			cJSON_ArrayForEach(
				cd, cJSON_GetObjectItemCaseSensitive(
					    cJSON_GetObjectItemCaseSensitive(in->v[c].e.r, "code"),
					    "coding")) if (!code && pk_eq(pk_str(cd, "system"), PS_ICD10CM) &&
							   pk_is_text(pk_str(cd, "code")) &&
							   !strchr(pk_str(cd, "code"), ';')) code = pk_str(cd, "code");
		bool dup = false;
		for (size_t j = 0; code && j < e->n_diagnoses; j++)
			dup |= !strcmp(e->diagnoses[j], code);
		if (!code || dup || e->n_diagnoses == PS_MAX_DIAGNOSES || !e->diagnoses) {
			pk_warn(&in->pk, pk_path(&in->pk, k, "%s", w),
				"diagnosis left out: the format keeps up to %d ICD-10-CM codes of Conditions in the "
				"Bundle, each once",
				PS_MAX_DIAGNOSES);
			continue;
		}
		if (!in->v[c].e.used)
			pk_unmapped(&in->pk, (size_t)c, known);
		in->v[c].e.used = true;
		e->diagnoses[e->n_diagnoses++] = code;
	}
}

/* Activities: the completed Procedures of this encounter with a
 * peer-support activity code, in Bundle order; false when there is none. */
static bool encounter_activities(struct in *in, size_t k, struct ps_encounter *e)
{
	bool ok = true;
	static const char *const proc_known[] = {"status", "code", "subject", "encounter", "performer",
						 "performedPeriod", NULL};
	e->acts = ps_host->alloc(in->pk.ctx, (ps_activity_count + 1) * sizeof *e->acts);
	in->pk.nomem |= !e->acts;
	for (size_t q = 0; q < in->pk.n && e->acts; q++) {
		if (strcmp(in->v[q].e.type, "Procedure") != 0 ||
		    pk_resolve(&in->pk, cJSON_GetObjectItemCaseSensitive(in->v[q].e.r, "encounter"), "Encounter") !=
			    (long)k)
			continue;
		in->v[q].e.used = true;
		pk_unmapped(&in->pk, q, proc_known);
		const cJSON *c =
			cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(
						   cJSON_GetObjectItemCaseSensitive(in->v[q].e.r, "code"), "coding"),
					   0);
		int act = pk_str(c, "system") && !strcmp(pk_str(c, "system"), PS_ACTIVITY_SYSTEM)
				  ? pk_lookup(ps_activities, ps_activity_count, pk_str(c, "code"))
				  : -1;
		bool dup = false;
		for (size_t x = 0; act >= 0 && x < e->n_acts; x++)
			dup |= e->acts[x] == (size_t)act;
		const char *pst = pk_str(in->v[q].e.r, "status");
		if (act < 0 || dup)
			pk_warn(&in->pk, pk_path(&in->pk, q, "code"),
				"Procedure left out: its code is not a%s peer-support activity", dup ? "nother" : "");
		else if (!pst || strcmp(pst, "completed") != 0)
			pk_warn(&in->pk, pk_path(&in->pk, q, "status"),
				"Procedure left out: status '%s' is not completed", pst ? pst : "");
		else
			e->acts[e->n_acts++] = (size_t)act;
	}
	if (!e->n_acts) {
		pk_warn(&in->pk, pk_path(&in->pk, k, "%s", ""),
			"Encounter not exported: no completed Procedure with a peer-support activity refers to it");
		ok = false;
	}
	return ok;
}

/* Encounter entry k; *e filled, false when it cannot be exported (each
 * reason a warning). */
static bool fhir_encounter(struct in *in, size_t k, struct pk_doc *doc, struct ps_encounter *e)
{
	static const char *const known[] = {"identifier",      "status",      "class",     "type",
					    "subject",         "participant", "period",    "length",
					    "reasonReference", "extension",   "diagnosis", NULL};
	const cJSON *r = in->v[k].e.r, *it;
	bool ok = true;
	in->v[k].e.used = true;
	pk_unmapped(&in->pk, k, known);
	size_t i = 0;
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(r, "identifier")) {
		char w[48];
		snprintf(w, sizeof w, "identifier[%zu]", i++);
		const char *sys = pk_str(it, "system");
		if (!e->id && sys && strcmp(sys, ps_cfg.encounter_system) == 0 && pk_is_text(pk_str(it, "value")))
			e->id = pk_str(it, "value");
		else
			pk_warn(&in->pk, pk_path(&in->pk, k, "%s", w),
				"Encounter identifier left out: the format keeps the one in %s",
				ps_cfg.encounter_system);
	}
	if (!e->id) {
		pk_warn(&in->pk, pk_path(&in->pk, k, "identifier"), "Encounter not exported: no identifier in %s",
			ps_cfg.encounter_system);
		ok = false;
	}
	const char *status = pk_str(r, "status");
	if (!status || strcmp(status, "finished") != 0) {
		pk_warn(&in->pk, pk_path(&in->pk, k, "status"), "Encounter not exported: status '%s' is not finished",
			status ? status : "");
		ok = false;
	}
	const cJSON *cls = cJSON_GetObjectItemCaseSensitive(r, "class");
	int s = -1;
	if (pk_str(cls, "system") && strcmp(pk_str(cls, "system"), PS_ACTCODE_SYSTEM) == 0)
		s = pk_lookup(ps_class_display, PS_SETTING_COUNT, pk_str(cls, "code"));
	if (s < 0) {
		pk_warn(&in->pk, pk_path(&in->pk, k, "class"),
			"Encounter not exported: class '%s' is none of AMB, FLD, HH, VR",
			pk_str(cls, "code") ? pk_str(cls, "code") : "");
		ok = false;
	}
	e->setting = s < 0 ? PS_CLINIC : (enum ps_setting)s;

	encounter_type(in, k, r, e);

	long pk = pk_resolve(&in->pk, cJSON_GetObjectItemCaseSensitive(r, "subject"), "Patient");
	if (pk < 0 || in->v[pk].person < 0) {
		pk_warn(&in->pk, pk_path(&in->pk, k, "subject"),
			"Encounter not exported: its subject is not a Patient in the Bundle with an identifier");
		ok = false;
	} else {
		e->it.person = (size_t)in->v[pk].person;
	}

	ok &= encounter_specialist(in, k, r, e);
	ok &= encounter_duration(in, k, r, e);
	encounter_goals(in, k, r, e);
	encounter_diagnoses_in(in, k, r, e);
	ok &= encounter_activities(in, k, e);
	(void)doc;
	return ok;
}

enum cw_status ps_from_bundle(struct cw_ctx *ctx, const cJSON *bundle, struct pk_doc *doc)
{
	struct in in = {.pk = {.host = ps_host, .ctx = ctx, .format = "peer-support", .message = 512, .path = 256,
			       .sub = 256, .meta = 64}};
	static const struct res blank = {.person = -1};
	if (pk_in_open(&in.pk, bundle, &blank, sizeof blank) != CW_OK)
		return CW_NOMEM;
	in.v = in.pk.entries;
	for (size_t k = 0; k < in.pk.n; k++)
		if (!strcmp(in.v[k].e.type, "Patient"))
			fhir_patient(&in, k, doc);
	for (size_t k = 0; k < in.pk.n && !in.pk.nomem; k++) {
		if (strcmp(in.v[k].e.type, "Encounter") != 0)
			continue;
		struct ps_encounter enc;
		memset(&enc, 0, sizeof enc);
		if (!fhir_encounter(&in, k, doc, &enc))
			continue;
		struct ps_encounter *slot = pk_doc_add(ps_host, ctx, doc, sizeof *slot);
		if (!slot) {
			in.pk.nomem = true;
			break;
		}
		*slot = enc;
	}
	doc->array = doc->people.n != 1;
	return pk_in_close(&in.pk, "any peer-support encounter", true);
}
