/* ps_fhir — a struct ps_doc to a FHIR R4 transaction Bundle and back.
 *
 * To FHIR: per person a Patient, per specialist a Practitioner and a
 * PractitionerRole (NUCC 175T00000X), per encounter an Encounter and one
 * Procedure per activity; each PUT under a deterministic id, so sending the
 * same log twice changes nothing.
 *
 * From FHIR: any Bundle. What the format cannot hold is reported as a
 * warning with its location (Bundle.entry[N].resource…), never dropped in
 * silence; an Encounter that lacks what the format requires is left out,
 * with one warning per reason. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "peer_support.h"

#define PS_PARTTYPE_SYSTEM "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
#define PS_ROLE_NS PS_BASE "/peer-support/PractitionerRole"
#define PS_PROCEDURE_NS PS_BASE "/peer-support/Procedure"

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

struct out {
	struct cw_ctx *ctx;
	cJSON *entries;
	bool failed;
};

static cJSON *resource(const char *type, const char *id, const char *profile)
{
	cJSON *r = cJSON_CreateObject();
	cJSON_AddStringToObject(r, "resourceType", type);
	cJSON_AddStringToObject(r, "id", id);
	cJSON *meta = cJSON_AddObjectToObject(r, "meta");
	cJSON_AddItemToArray(cJSON_AddArrayToObject(meta, "profile"), cJSON_CreateString(profile));
	return r;
}

static void add(struct out *o, cJSON *res, const char *type, const char *id)
{
	cJSON *e = cJSON_CreateObject(), *rq;
	char url[128];
	snprintf(url, sizeof url, "%s/%s", type, id);
	cJSON_AddItemToObject(e, "resource", res);
	rq = cJSON_AddObjectToObject(e, "request");
	cJSON_AddStringToObject(rq, "method", "PUT");
	cJSON_AddStringToObject(rq, "url", url);
	cJSON_AddItemToArray(o->entries, e);
}

/* Adds a host-made tree to an array or object; a NULL (an issue was
 * reported) fails the mapping. */
static void put_item(struct out *o, cJSON *into, const char *key, cJSON *item)
{
	if (!item) {
		o->failed = true;
		return;
	}
	if (key)
		cJSON_AddItemToObject(into, key, item);
	else
		cJSON_AddItemToArray(into, item);
}

static cJSON *concept(struct out *o, const char *system, const char *code, const char *display)
{
	cJSON *cc = cJSON_CreateObject();
	put_item(o, cJSON_AddArrayToObject(cc, "coding"), NULL, ps_host->make_coding(o->ctx, system, code, display));
	return cc;
}

static bool make_id(struct out *o, const char *ns, const char *a, const char *b, char id[CW_ID_SIZE])
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

static void emit_patient(struct out *o, const struct ps_person *p, const char *id)
{
	cJSON *r = resource("Patient", id, PS_PROFILE("patient"));
	put_item(o, cJSON_AddArrayToObject(r, "identifier"), NULL,
		 ps_host->make_identifier(o->ctx, p->id.system, p->id.value));
	if (p->name) {
		cJSON *n = cJSON_CreateObject();
		cJSON_AddStringToObject(n, "text", p->name);
		cJSON_AddItemToArray(cJSON_AddArrayToObject(r, "name"), n);
	}
	add(o, r, "Patient", id);
}

static void emit_specialist(struct out *o, const struct ps_specialist *sp, const char *id)
{
	cJSON *r = resource("Practitioner", id, PS_PROFILE("practitioner"));
	cJSON *ids = cJSON_AddArrayToObject(r, "identifier");
	put_item(o, ids, NULL, ps_host->make_identifier(o->ctx, sp->id.system, sp->id.value));
	if (sp->npi)
		put_item(o, ids, NULL, ps_host->make_identifier(o->ctx, PS_NPI_SYSTEM, sp->npi));
	cJSON *n = cJSON_CreateObject();
	cJSON_AddStringToObject(n, "text", sp->name);
	cJSON_AddItemToArray(cJSON_AddArrayToObject(r, "name"), n);
	if (sp->credential) {
		cJSON *q = cJSON_CreateObject();
		cJSON_AddStringToObject(cJSON_AddObjectToObject(q, "code"), "text", sp->credential);
		cJSON_AddItemToArray(cJSON_AddArrayToObject(r, "qualification"), q);
	}
	add(o, r, "Practitioner", id);

	char rid[CW_ID_SIZE];
	if (!make_id(o, PS_ROLE_NS, sp->id.system, sp->id.value, rid))
		return;
	r = resource("PractitionerRole", rid, PS_PROFILE("practitionerrole"));
	cJSON_AddBoolToObject(r, "active", true);
	put_item(o, r, "practitioner", ps_host->make_reference(o->ctx, "Practitioner", id, NULL));
	cJSON_AddItemToArray(cJSON_AddArrayToObject(r, "code"),
			     concept(o, PS_NUCC_SYSTEM, PS_NUCC_PEER, "Peer Specialist"));
	add(o, r, "PractitionerRole", rid);
}

static void emit_encounter(struct out *o, const struct ps_encounter *e, const char *pid, const char *spid)
{
	char id[CW_ID_SIZE], end[32];
	if (!make_id(o, ps_cfg.encounter_system, e->id, NULL, id))
		return;
	if (!ps_add_minutes(e->start, e->minutes, end, sizeof end)) {
		ps_host->issue(o->ctx, CW_SEV_ERROR, "value", e->where, "the encounter ends after the year 9999");
		o->failed = true;
		return;
	}
	cJSON *r = resource("Encounter", id, PS_PROFILE("encounter"));
	cJSON *ext = e->notes || e->n_goals ? cJSON_AddArrayToObject(r, "extension") : NULL;
	if (e->notes) {
		cJSON *x = cJSON_CreateObject();
		cJSON_AddStringToObject(x, "url", PS_NOTE_URL);
		cJSON_AddStringToObject(x, "valueString", e->notes);
		cJSON_AddItemToArray(ext, x);
	}
	for (size_t i = 0; i < e->n_goals; i++) {
		char gid[CW_ID_SIZE];
		if (!make_id(o, ps_cfg.goal_system, e->goals[i], NULL, gid))
			return;
		cJSON *ref = ps_host->make_reference(o->ctx, "Goal", gid, NULL);
		if (!ref) {
			o->failed = true;
			return;
		}
		cJSON_AddStringToObject(ref, "type", "Goal");
		put_item(o, ref, "identifier", ps_host->make_identifier(o->ctx, ps_cfg.goal_system, e->goals[i]));
		cJSON *x = cJSON_CreateObject();
		cJSON_AddStringToObject(x, "url", PS_PERTAINS_TO_GOAL);
		cJSON_AddItemToObject(x, "valueReference", ref);
		cJSON_AddItemToArray(ext, x);
	}
	put_item(o, cJSON_AddArrayToObject(r, "identifier"), NULL,
		 ps_host->make_identifier(o->ctx, ps_cfg.encounter_system, e->id));
	cJSON_AddStringToObject(r, "status", "finished");
	const struct ps_code *cls = &ps_class_display[e->setting];
	put_item(o, r, "class", ps_host->make_coding(o->ctx, PS_ACTCODE_SYSTEM, cls->code, cls->display));
	cJSON *types = cJSON_AddArrayToObject(r, "type");
	cJSON_AddItemToArray(types, concept(o, PS_MODE_SYSTEM, ps_modes[e->mode].code, ps_modes[e->mode].display));
	if (e->billable)
		cJSON_AddItemToArray(types, concept(o, ps_cfg.hcpcs_system, PS_H0038, "Self-help/peer services, per 15 minutes"));
	put_item(o, r, "subject", ps_host->make_reference(o->ctx, "Patient", pid, NULL));
	cJSON *part = cJSON_CreateObject();
	cJSON_AddItemToArray(cJSON_AddArrayToObject(r, "participant"), part);
	cJSON_AddItemToArray(cJSON_AddArrayToObject(part, "type"),
			     concept(o, PS_PARTTYPE_SYSTEM, "PPRF", "primary performer"));
	put_item(o, part, "individual", ps_host->make_reference(o->ctx, "Practitioner", spid, NULL));
	cJSON *period = cJSON_AddObjectToObject(r, "period");
	cJSON_AddStringToObject(period, "start", e->start);
	cJSON_AddStringToObject(period, "end", end);
	cJSON *len = cJSON_AddObjectToObject(r, "length");
	cJSON_AddNumberToObject(len, "value", (double)e->minutes);
	cJSON_AddStringToObject(len, "unit", "min");
	cJSON_AddStringToObject(len, "system", PS_UCUM);
	cJSON_AddStringToObject(len, "code", "min");
	add(o, r, "Encounter", id);

	for (size_t i = 0; i < e->n_acts; i++) {
		const struct ps_code *a = &ps_activities[e->acts[i]];
		char aid[CW_ID_SIZE];
		if (!make_id(o, PS_PROCEDURE_NS, id, a->code, aid))
			return;
		cJSON *p = resource("Procedure", aid, PS_PROFILE("procedure"));
		cJSON_AddStringToObject(p, "status", "completed");
		cJSON_AddItemToObject(p, "code", concept(o, PS_ACTIVITY_SYSTEM, a->code, a->display));
		put_item(o, p, "subject", ps_host->make_reference(o->ctx, "Patient", pid, NULL));
		put_item(o, p, "encounter", ps_host->make_reference(o->ctx, "Encounter", id, NULL));
		cJSON *pp = cJSON_AddObjectToObject(p, "performedPeriod");
		cJSON_AddStringToObject(pp, "start", e->start);
		cJSON_AddStringToObject(pp, "end", end);
		cJSON *perf = cJSON_CreateObject();
		cJSON_AddItemToArray(cJSON_AddArrayToObject(p, "performer"), perf);
		cJSON_AddItemToObject(perf, "function", concept(o, PS_NUCC_SYSTEM, PS_NUCC_PEER, "Peer Specialist"));
		put_item(o, perf, "actor", ps_host->make_reference(o->ctx, "Practitioner", spid, NULL));
		add(o, p, "Procedure", aid);
	}
}

enum cw_status ps_to_bundle(struct cw_ctx *ctx, const struct ps_doc *doc, cJSON **out)
{
	struct out o = {.ctx = ctx};
	char (*pids)[CW_ID_SIZE] = ps_host->alloc(ctx, (doc->n_people + 1) * sizeof *pids);
	char (*sids)[CW_ID_SIZE] = ps_host->alloc(ctx, (doc->n_encs + 1) * sizeof *sids);
	bool *person_done = ps_host->alloc(ctx, doc->n_people + 1);
	cJSON *b = cJSON_CreateObject();
	if (!pids || !sids || !person_done || !b) {
		cJSON_Delete(b);
		ps_host->issue(ctx, CW_SEV_ERROR, "exception", NULL, "out of memory");
		return CW_NOMEM;
	}
	cJSON_AddStringToObject(b, "resourceType", "Bundle");
	cJSON_AddStringToObject(b, "type", "transaction");
	o.entries = cJSON_AddArrayToObject(b, "entry");
	for (size_t p = 0; p < doc->n_people; p++)
		make_id(&o, doc->people[p].id.system, doc->people[p].id.value, NULL, pids[p]);
	size_t next_person = 0; /* people without encounters keep their place */
	for (size_t i = 0; i < doc->n_encs && !o.failed; i++) {
		const struct ps_encounter *e = &doc->encs[i];
		for (; next_person <= e->person; next_person++)
			if (!person_done[next_person]) {
				emit_patient(&o, &doc->people[next_person], pids[next_person]);
				person_done[next_person] = true;
			}
		if (!person_done[e->person]) {
			emit_patient(&o, &doc->people[e->person], pids[e->person]);
			person_done[e->person] = true;
		}
		make_id(&o, e->sp.id.system, e->sp.id.value, NULL, sids[i]);
		bool seen = false;
		for (size_t j = 0; j < i && !seen; j++)
			seen = strcmp(sids[j], sids[i]) == 0;
		if (!seen)
			emit_specialist(&o, &e->sp, sids[i]);
		emit_encounter(&o, e, pids[e->person], sids[i]);
	}
	for (size_t p = 0; p < doc->n_people && !o.failed; p++)
		if (!person_done[p])
			emit_patient(&o, &doc->people[p], pids[p]);
	if (o.failed) {
		cJSON_Delete(b);
		return CW_INVALID;
	}
	*out = b;
	return CW_OK;
}

/* -------------------------------------------------------- from FHIR */

struct res {
	const cJSON *r;
	const char *type, *id, *full;
	bool used;     /* mapped, or reported */
	long person;   /* index into doc->people for a Patient, else -1 */
};

struct in {
	struct cw_ctx *ctx;
	struct res *v;
	size_t n;
	bool nomem;
};

static const char *str(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void warn(struct in *in, const char *where, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void warn(struct in *in, const char *where, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	ps_host->issue(in->ctx, CW_SEV_WARNING, "not-supported", where, "%s", msg);
}

static const char *path(struct in *in, size_t k, const char *suffix)
{
	char buf[256];
	snprintf(buf, sizeof buf, "Bundle.entry[%zu].resource%s%s", k, suffix && *suffix ? "." : "",
		 suffix ? suffix : "");
	char *c = ps_host->copy_string(in->ctx, buf);
	in->nomem |= !c;
	return c ? c : "Bundle";
}

/* The entry a reference points to (same type), or -1. */
static long resolve(const struct in *in, const cJSON *ref, const char *type)
{
	const char *s = str(ref, "reference");
	if (!s)
		return -1;
	for (size_t i = 0; i < in->n; i++)
		if (in->v[i].full && strcmp(in->v[i].full, s) == 0)
			return strcmp(in->v[i].type, type) == 0 ? (long)i : -1;
	const char *slash = strrchr(s, '/');
	if (!slash)
		return -1;
	size_t tl = strlen(type);
	if ((size_t)(slash - s) < tl || strncmp(slash - tl, type, tl) != 0 ||
	    (slash - tl != s && slash[-(long)tl - 1] != '/'))
		return -1;
	for (size_t i = 0; i < in->n; i++)
		if (in->v[i].id && strcmp(in->v[i].type, type) == 0 && strcmp(in->v[i].id, slash + 1) == 0)
			return (long)i;
	return -1;
}

/* Warns about every member of r outside known (a NULL-terminated list). */
static void unmapped(struct in *in, size_t k, const char *const *known)
{
	const cJSON *m;
	cJSON_ArrayForEach(m, in->v[k].r) {
		bool ok = strcmp(m->string, "resourceType") == 0 || strcmp(m->string, "id") == 0;
		for (const char *const *s = known; *s && !ok; s++)
			ok = strcmp(*s, m->string) == 0;
		if (!ok && strcmp(m->string, "meta") == 0) {
			const cJSON *mm;
			cJSON_ArrayForEach(mm, m) {
				if (strcmp(mm->string, "profile") && strcmp(mm->string, "versionId") &&
				    strcmp(mm->string, "lastUpdated") && strcmp(mm->string, "source")) {
					char w[64];
					snprintf(w, sizeof w, "meta.%s", mm->string);
					warn(in, path(in, k, w), "%s.meta.%s is not carried by the peer-support format",
					     in->v[k].type, mm->string);
				}
			}
			ok = true;
		}
		if (!ok)
			warn(in, path(in, k, m->string), "%s.%s has no place in the peer-support format; left out",
			     in->v[k].type, m->string);
	}
}

static bool usable(const char *s) { return ps_is_token(s); }

/* The first identifier with a usable system and value (other than skip);
 * warns about the others. */
static bool first_ident(struct in *in, size_t k, const char *skip, struct ps_ident *id, bool report)
{
	const cJSON *it;
	size_t i = 0;
	bool found = false;
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(in->v[k].r, "identifier")) {
		const char *sys = str(it, "system"), *val = str(it, "value");
		char w[48];
		snprintf(w, sizeof w, "identifier[%zu]", i++);
		if (skip && sys && strcmp(sys, skip) == 0)
			continue;
		if (!found && ps_is_uri(sys) && strcmp(sys, PS_NPI_SYSTEM) != 0 && usable(val)) {
			id->system = sys;
			id->value = val;
			found = true;
		} else if (report) {
			warn(in, path(in, k, w), "%s identifier left out: the format keeps one", in->v[k].type);
		}
	}
	return found;
}

/* name[0].text, else given and family joined; warns about what else. */
static const char *human_name(struct in *in, size_t k, bool report)
{
	const cJSON *names = cJSON_GetObjectItemCaseSensitive(in->v[k].r, "name"), *n = cJSON_GetArrayItem(names, 0);
	if (report && cJSON_GetArraySize(names) > 1)
		warn(in, path(in, k, "name[1]"), "%s: only the first name is kept", in->v[k].type);
	if (!n)
		return NULL;
	if (usable(str(n, "text")))
		return str(n, "text");
	char buf[512] = "";
	size_t used = 0;
	const cJSON *g;
	cJSON_ArrayForEach(g, cJSON_GetObjectItemCaseSensitive(n, "given"))
		if (cJSON_IsString(g) && used < sizeof buf)
			used += (size_t)snprintf(buf + used, sizeof buf - used, "%s%s", used ? " " : "", g->valuestring);
	if (str(n, "family") && used < sizeof buf)
		used += (size_t)snprintf(buf + used, sizeof buf - used, "%s%s", used ? " " : "", str(n, "family"));
	if (!usable(buf))
		return NULL;
	if (report && (cJSON_GetObjectItemCaseSensitive(n, "prefix") || cJSON_GetObjectItemCaseSensitive(n, "suffix")))
		warn(in, path(in, k, "name[0]"), "%s: name prefix and suffix are left out", in->v[k].type);
	char *c = ps_host->copy_string(in->ctx, buf);
	in->nomem |= !c;
	return c;
}

static void fhir_patient(struct in *in, size_t k, struct ps_doc *doc)
{
	static const char *const known[] = {"identifier", "name", NULL};
	struct ps_ident id = {0};
	in->v[k].used = true;
	unmapped(in, k, known);
	if (!first_ident(in, k, NULL, &id, true)) {
		warn(in, path(in, k, "identifier"), "Patient left out: it has no identifier with a system and value");
		return;
	}
	struct ps_person *p = ps_add_person(in->ctx, doc);
	if (!p) {
		in->nomem = true;
		return;
	}
	p->id = id;
	p->name = human_name(in, k, true);
	in->v[k].person = (long)(doc->n_people - 1);
}

/* The specialist behind Practitioner entry k; false (with warnings) when it
 * lacks what the format needs. Reports its unmapped parts once. */
static bool fhir_practitioner(struct in *in, size_t k, struct ps_specialist *sp)
{
	static const char *const known[] = {"identifier", "name", "qualification", "active", NULL};
	bool report = !in->v[k].used;
	in->v[k].used = true;
	if (report)
		unmapped(in, k, known);
	bool ok = true;
	if (!first_ident(in, k, PS_NPI_SYSTEM, &sp->id, report)) {
		warn(in, path(in, k, "identifier"), "Practitioner has no identifier with a system and value");
		ok = false;
	}
	if (!(sp->name = human_name(in, k, report))) {
		warn(in, path(in, k, "name"), "Practitioner has no name");
		ok = false;
	}
	const cJSON *it;
	size_t i = 0;
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(in->v[k].r, "identifier")) {
		char w[48];
		snprintf(w, sizeof w, "identifier[%zu]", i++);
		if (!str(it, "system") || strcmp(str(it, "system"), PS_NPI_SYSTEM) != 0)
			continue;
		if (!sp->npi && ps_npi_valid(str(it, "value")))
			sp->npi = str(it, "value");
		else if (report)
			warn(in, path(in, k, w), "NPI left out: %s", sp->npi ? "the format keeps one" : "it fails the NPI check");
	}
	const cJSON *quals = cJSON_GetObjectItemCaseSensitive(in->v[k].r, "qualification");
	const cJSON *code = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(quals, 0), "code");
	const char *cred = str(code, "text");
	if (!cred)
		cred = str(cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(code, "coding"), 0), "code");
	sp->credential = usable(cred) ? cred : NULL;
	if (report && cJSON_GetArraySize(quals) > 1)
		warn(in, path(in, k, "qualification[1]"), "only the first qualification is kept as the credential");
	return ok;
}

/* Marks the PractitionerRoles of Practitioner p as used, reporting roles
 * that are not peer specialist roles. */
static void fhir_roles(struct in *in, size_t p)
{
	static const char *const known[] = {"practitioner", "code", "active", NULL};
	for (size_t k = 0; k < in->n; k++) {
		if (in->v[k].used || strcmp(in->v[k].type, "PractitionerRole") != 0 ||
		    resolve(in, cJSON_GetObjectItemCaseSensitive(in->v[k].r, "practitioner"), "Practitioner") != (long)p)
			continue;
		in->v[k].used = true;
		unmapped(in, k, known);
		bool peer = false;
		const cJSON *cc, *c;
		cJSON_ArrayForEach(cc, cJSON_GetObjectItemCaseSensitive(in->v[k].r, "code"))
			cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(cc, "coding"))
				peer |= str(c, "system") && str(c, "code") && !strcmp(str(c, "system"), PS_NUCC_SYSTEM) &&
					!strcmp(str(c, "code"), PS_NUCC_PEER);
		if (!peer)
			warn(in, path(in, k, "code"), "PractitionerRole is not a peer specialist role (NUCC %s); "
				 "its codes are left out", PS_NUCC_PEER);
	}
}

/* A reference to a goal of Encounter entry k (at where): kept when it
 * names a goal identified in the goal system, once; else a warning. */
static void take_goal(struct in *in, size_t k, struct ps_encounter *e, const cJSON *ref, const char *where)
{
	const cJSON *ident = cJSON_GetObjectItemCaseSensitive(ref, "identifier");
	long g = resolve(in, ref, "Goal");
	if (!ident && g >= 0) {
		in->v[g].used = true;
		ident = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(in->v[g].r, "identifier"), 0);
		warn(in, path(in, g, ""), "Goal resources are not part of the format; only the identifier is kept");
	}
	const char *gv = str(ident, "value");
	bool dup = false;
	for (size_t x = 0; e->goals && gv && x < e->n_goals; x++)
		dup |= strcmp(e->goals[x], gv) == 0;
	if (e->goals && str(ident, "system") && !strcmp(str(ident, "system"), ps_cfg.goal_system) && usable(gv) &&
	    !strchr(gv, ';') && !dup)
		e->goals[e->n_goals++] = gv;
	else if (!dup)
		warn(in, path(in, k, where), "goal left out: only goals identified in %s are kept", ps_cfg.goal_system);
}

/* Encounter entry k; *e filled, false when it cannot be exported (each
 * reason a warning). */
static bool fhir_encounter(struct in *in, size_t k, struct ps_doc *doc, struct ps_encounter *e)
{
	static const char *const known[] = {"identifier", "status", "class", "type", "subject", "participant",
					    "period", "length", "reasonReference", "extension", NULL};
	const cJSON *r = in->v[k].r, *it;
	bool ok = true;
	in->v[k].used = true;
	unmapped(in, k, known);
	size_t i = 0;
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(r, "identifier")) {
		char w[48];
		snprintf(w, sizeof w, "identifier[%zu]", i++);
		const char *sys = str(it, "system");
		if (!e->id && sys && strcmp(sys, ps_cfg.encounter_system) == 0 && usable(str(it, "value")))
			e->id = str(it, "value");
		else
			warn(in, path(in, k, w), "Encounter identifier left out: the format keeps the one in %s",
			     ps_cfg.encounter_system);
	}
	if (!e->id) {
		warn(in, path(in, k, "identifier"), "Encounter not exported: no identifier in %s", ps_cfg.encounter_system);
		ok = false;
	}
	const char *status = str(r, "status");
	if (!status || strcmp(status, "finished") != 0) {
		warn(in, path(in, k, "status"), "Encounter not exported: status '%s' is not finished",
		     status ? status : "");
		ok = false;
	}
	const cJSON *cls = cJSON_GetObjectItemCaseSensitive(r, "class");
	int s = -1;
	if (str(cls, "system") && strcmp(str(cls, "system"), PS_ACTCODE_SYSTEM) == 0)
		s = ps_lookup(ps_class_display, PS_SETTING_COUNT, str(cls, "code"));
	if (s < 0) {
		warn(in, path(in, k, "class"), "Encounter not exported: class '%s' is none of AMB, FLD, HH, VR",
		     str(cls, "code") ? str(cls, "code") : "");
		ok = false;
	}
	e->setting = s < 0 ? PS_CLINIC : (enum ps_setting)s;

	bool mode = false;
	i = 0;
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(r, "type")) {
		const cJSON *c;
		size_t j = 0;
		cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(it, "coding")) {
			char w[64];
			snprintf(w, sizeof w, "type[%zu].coding[%zu]", i, j++);
			const char *sys = str(c, "system"), *code = str(c, "code");
			int m = sys && !strcmp(sys, PS_MODE_SYSTEM) ? ps_lookup(ps_modes, PS_MODE_COUNT, code) : -1;
			if (m >= 0 && !mode) {
				e->mode = (enum ps_mode)m;
				mode = true;
			} else if (is_hcpcs(sys) && code && !strcmp(code, PS_H0038)) {
				e->billable = true;
			} else {
				warn(in, path(in, k, w), "Encounter type %s|%s has no place in the format; left out",
				     sys ? sys : "", code ? code : "");
			}
		}
		if (str(it, "text")) {
			char w[48];
			snprintf(w, sizeof w, "type[%zu].text", i);
			warn(in, path(in, k, w), "Encounter type text is left out");
		}
		i++;
	}
	if (!mode)
		warn(in, path(in, k, "type"), "Encounter does not say individual or group; individual assumed");

	long pk = resolve(in, cJSON_GetObjectItemCaseSensitive(r, "subject"), "Patient");
	if (pk < 0 || in->v[pk].person < 0) {
		warn(in, path(in, k, "subject"), "Encounter not exported: its subject is not a Patient in the Bundle "
			 "with an identifier");
		ok = false;
	} else {
		e->person = (size_t)in->v[pk].person;
	}

	long sk = -1;
	i = 0;
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(r, "participant")) {
		char w[48];
		snprintf(w, sizeof w, "participant[%zu]", i++);
		const cJSON *ind = cJSON_GetObjectItemCaseSensitive(it, "individual");
		long p = resolve(in, ind, "Practitioner");
		if (p < 0) {
			long role = resolve(in, ind, "PractitionerRole");
			if (role >= 0)
				p = resolve(in, cJSON_GetObjectItemCaseSensitive(in->v[role].r, "practitioner"), "Practitioner");
		}
		if (p >= 0 && sk < 0) {
			sk = p;
			if (cJSON_GetObjectItemCaseSensitive(it, "period"))
				warn(in, path(in, k, w), "the participant's own period is left out");
		} else {
			warn(in, path(in, k, w), "Encounter participant left out: the format keeps one peer specialist%s",
			     p < 0 ? " (this one is not a Practitioner in the Bundle)" : "");
		}
	}
	if (sk < 0) {
		warn(in, path(in, k, "participant"), "Encounter not exported: no Practitioner in the Bundle takes part");
		ok = false;
	} else {
		ok &= fhir_practitioner(in, (size_t)sk, &e->sp);
		fhir_roles(in, (size_t)sk);
	}

	const cJSON *period = cJSON_GetObjectItemCaseSensitive(r, "period");
	const char *start = str(period, "start"), *end = str(period, "end");
	long long a = 0, b = 0;
	if (!ps_datetime(start, &a, NULL, NULL)) {
		warn(in, path(in, k, "period.start"), "Encounter not exported: period.start is not a date-time with "
			 "seconds and a time zone");
		ok = false;
	}
	e->start = start;
	const cJSON *len = cJSON_GetObjectItemCaseSensitive(r, "length");
	const cJSON *lv = cJSON_GetObjectItemCaseSensitive(len, "value");
	const char *unit = str(len, "code") ? str(len, "code") : str(len, "unit");
	long minutes = -1;
	if (cJSON_IsNumber(lv) && unit && lv->valuedouble >= 1 && lv->valuedouble <= PS_MAX_MINUTES * 1.0 &&
	    lv->valuedouble == (double)(long)lv->valuedouble) {
		if (!strcmp(unit, "min"))
			minutes = (long)lv->valuedouble;
		else if (!strcmp(unit, "h") && lv->valuedouble * 60 <= PS_MAX_MINUTES)
			minutes = (long)lv->valuedouble * 60;
	}
	if (len && minutes < 0)
		warn(in, path(in, k, "length"), "Encounter length is not 1 to %d whole minutes; left out",
		     PS_MAX_MINUTES);
	bool have_end = end && ps_datetime(start, &a, NULL, NULL) && ps_datetime(end, &b, NULL, NULL);
	if (minutes < 0 && have_end && b - a >= 1 && b - a <= PS_MAX_MINUTES)
		minutes = (long)(b - a);
	else if (minutes >= 0 && end && (!have_end || b - a != minutes))
		warn(in, path(in, k, "period.end"), "period.end does not match the length; the length is kept");
	if (minutes < 0) {
		warn(in, path(in, k, "length"), "Encounter not exported: no duration (length or period) of 1 to %d "
			 "minutes", PS_MAX_MINUTES);
		ok = false;
	}
	e->minutes = minutes;

	/* goals: resource-pertainsToGoal extensions (and, as earlier versions
	 * of this plugin wrote them, Goal references in reasonReference) */
	size_t n_links = (size_t)cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(r, "reasonReference")) +
			 (size_t)cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(r, "extension"));
	e->goals = ps_host->alloc(in->ctx, (n_links + 1) * sizeof *e->goals);
	in->nomem |= !e->goals;
	i = 0;
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(r, "extension")) {
		char w[48];
		snprintf(w, sizeof w, "extension[%zu]", i++);
		const char *url = str(it, "url");
		if (url && !strcmp(url, PS_PERTAINS_TO_GOAL))
			take_goal(in, k, e, cJSON_GetObjectItemCaseSensitive(it, "valueReference"), w);
		else if (!e->notes && url && !strcmp(url, PS_NOTE_URL) && usable(str(it, "valueString")))
			e->notes = str(it, "valueString");
		else
			warn(in, path(in, k, w), "extension %s is left out", url ? url : "");
	}
	i = 0;
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(r, "reasonReference")) {
		char w[48];
		snprintf(w, sizeof w, "reasonReference[%zu]", i++);
		take_goal(in, k, e, it, w);
	}

	/* Activities: the Procedures of this encounter, in Bundle order. */
	static const char *const proc_known[] = {"status", "code", "subject", "encounter", "performer",
						 "performedPeriod", NULL};
	e->acts = ps_host->alloc(in->ctx, (ps_activity_count + 1) * sizeof *e->acts);
	in->nomem |= !e->acts;
	for (size_t q = 0; q < in->n && e->acts; q++) {
		if (strcmp(in->v[q].type, "Procedure") != 0 ||
		    resolve(in, cJSON_GetObjectItemCaseSensitive(in->v[q].r, "encounter"), "Encounter") != (long)k)
			continue;
		in->v[q].used = true;
		unmapped(in, q, proc_known);
		const cJSON *c = cJSON_GetArrayItem(
			cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(in->v[q].r, "code"), "coding"), 0);
		int act = str(c, "system") && !strcmp(str(c, "system"), PS_ACTIVITY_SYSTEM)
				  ? ps_lookup(ps_activities, ps_activity_count, str(c, "code"))
				  : -1;
		bool dup = false;
		for (size_t x = 0; act >= 0 && x < e->n_acts; x++)
			dup |= e->acts[x] == (size_t)act;
		const char *pst = str(in->v[q].r, "status");
		if (act < 0 || dup)
			warn(in, path(in, q, "code"), "Procedure left out: its code is not a%s peer-support activity",
			     dup ? "nother" : "");
		else if (!pst || strcmp(pst, "completed") != 0)
			warn(in, path(in, q, "status"), "Procedure left out: status '%s' is not completed", pst ? pst : "");
		else
			e->acts[e->n_acts++] = (size_t)act;
	}
	if (!e->n_acts) {
		warn(in, path(in, k, ""), "Encounter not exported: no completed Procedure with a peer-support activity "
			 "refers to it");
		ok = false;
	}
	(void)doc;
	return ok;
}

enum cw_status ps_from_bundle(struct cw_ctx *ctx, const cJSON *bundle, struct ps_doc *doc)
{
	struct in in = {.ctx = ctx};
	const cJSON *entries = cJSON_GetObjectItemCaseSensitive(bundle, "entry"), *e;
	size_t n = (size_t)cJSON_GetArraySize(entries);
	in.v = ps_host->alloc(ctx, (n + 1) * sizeof *in.v);
	if (!in.v) {
		ps_host->issue(ctx, CW_SEV_ERROR, "exception", NULL, "out of memory");
		return CW_NOMEM;
	}
	cJSON_ArrayForEach(e, entries) {
		struct res *r = &in.v[in.n++];
		r->r = cJSON_GetObjectItemCaseSensitive(e, "resource");
		r->type = str(r->r, "resourceType") ? str(r->r, "resourceType") : "";
		r->id = str(r->r, "id");
		r->full = str(e, "fullUrl");
		r->person = -1;
	}
	for (size_t k = 0; k < in.n; k++)
		if (!strcmp(in.v[k].type, "Patient"))
			fhir_patient(&in, k, doc);
	for (size_t k = 0; k < in.n && !in.nomem; k++) {
		if (strcmp(in.v[k].type, "Encounter") != 0)
			continue;
		struct ps_encounter enc;
		memset(&enc, 0, sizeof enc);
		if (!fhir_encounter(&in, k, doc, &enc))
			continue;
		struct ps_encounter *slot = ps_add_encounter(ctx, doc);
		if (!slot) {
			in.nomem = true;
			break;
		}
		*slot = enc;
	}
	for (size_t k = 0; k < in.n; k++)
		if (!in.v[k].used)
			warn(&in, path(&in, k, ""), "%s%s%s is not part of any peer-support encounter; left out",
			     *in.v[k].type ? in.v[k].type : "an entry without a resource",
			     in.v[k].id ? "/" : "", in.v[k].id ? in.v[k].id : "");
	if (in.nomem) {
		ps_host->issue(ctx, CW_SEV_ERROR, "exception", NULL, "out of memory");
		return CW_NOMEM;
	}
	doc->array = doc->n_people != 1;
	return CW_OK;
}
