/* st_fhir — a struct pk_doc to a FHIR R4 transaction Bundle and back.
 *
 * To FHIR: per person a Patient; per strength an Observation (eLTSS pattern:
 * the person's own words in valueString) or, with "resource": "condition",
 * a Condition carrying the SDOHCC protective-factor category (the words in
 * code.text). Each entry is a PUT under a deterministic id (plugkit's rule:
 * a strength's from its Patient and its identifier).
 *
 * From FHIR: any Bundle, Observations and Conditions alike whatever the
 * setting. What the format cannot hold is reported as a warning with its
 * location (Bundle.entry[N].resource…), never dropped in silence; a strength
 * that lacks what the format requires is left out with one warning per
 * reason. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strengths.h"

/* ---------------------------------------------------------- to FHIR */

static void emit_patient(struct pk_out *o, const struct pk_person *p, const char *id)
{
	pk_patient(o, id, st_cfg.profile_patient, &p->id, p->name);
}

/* Who identified the strength: the Patient itself, or a logical reference
 * (type, identifier, display) to a RelatedPerson or Practitioner that the
 * format does not describe further. */
static cJSON *who(struct pk_out *o, const struct st_strength *s, const char *pid)
{
	if (s->role == ST_SELF)
		return pk_reference(o, "Patient", pid);
	cJSON *ref = cJSON_CreateObject();
	cJSON_AddStringToObject(ref, "type", s->role == ST_FAMILY ? "RelatedPerson" : "Practitioner");
	if (s->by_id.system && s->by_id.value)
		pk_put_item(o, ref, "identifier", st_host->make_identifier(o->ctx, s->by_id.system, s->by_id.value));
	if (s->by_name)
		cJSON_AddStringToObject(ref, "display", s->by_name);
	return ref;
}

static void extensions(struct pk_out *o, cJSON *r, const struct st_strength *s, const char *pid)
{
	cJSON *ext = cJSON_AddArrayToObject(r, "extension"), *x = cJSON_CreateObject();
	cJSON_AddItemToArray(ext, x);
	cJSON_AddStringToObject(x, "url", st_cfg.role_url);
	cJSON_AddStringToObject(x, "valueCode", st_roles[s->role].code);
	for (size_t i = 0; i < s->n_goals; i++) {
		char gid[CW_ID_SIZE];
		const struct pk_ident goal = {st_cfg.goal_system, s->goals[i]};
		if (!pk_item_id(o, pid, "Goal", &goal, gid) || !pk_goal_link(o, ext, gid, &goal))
			return;
	}
}

static void emit_strength(struct pk_out *o, const struct st_strength *s, const char *pid)
{
	char id[CW_ID_SIZE];
	const char *type = st_cfg.condition ? "Condition" : "Observation";
	const struct pk_ident ident = {st_cfg.strength_system, s->id};
	if (!pk_item_id(o, pid, type, &ident, id))
		return;
	const struct pk_code *cat = &st_categories[s->category];
	cJSON *r = pk_resource(type, id, st_cfg.condition ? st_cfg.profile_cond : st_cfg.profile_obs);
	extensions(o, r, s, pid);
	pk_put_item(o, cJSON_AddArrayToObject(r, "identifier"), NULL,
		 st_host->make_identifier(o->ctx, st_cfg.strength_system, s->id));
	if (st_cfg.condition) {
		cJSON_AddItemToObject(r, "clinicalStatus", pk_concept(o, ST_CLINICAL_SYSTEM, "active", "Active"));
		cJSON *cats = cJSON_AddArrayToObject(r, "category");
		cJSON_AddItemToArray(cats, pk_concept(o, ST_SDOHCC_SYSTEM, "protective-factor", "Protective Factor"));
		cJSON_AddItemToArray(cats, pk_concept(o, ST_USCORE_CONDCAT_SYSTEM, "health-concern", "Health Concern"));
		cJSON_AddItemToArray(cats, pk_concept(o, st_cfg.category_system, cat->code, cat->display));
		cJSON_AddStringToObject(cJSON_AddObjectToObject(r, "code"), "text", s->description);
		pk_put_item(o, r, "subject", st_host->make_reference(o->ctx, "Patient", pid, NULL));
		cJSON_AddStringToObject(r, "recordedDate", s->date);
		pk_put_item(o, r, "asserter", who(o, s, pid));
	} else {
		cJSON_AddStringToObject(r, "status", "final");
		cJSON *cats = cJSON_AddArrayToObject(r, "category");
		cJSON_AddItemToArray(cats, pk_concept(o, ST_OBS_CATEGORY_SYSTEM, "social-history", "Social History"));
		cJSON_AddItemToArray(cats, pk_concept(o, st_cfg.category_system, cat->code, cat->display));
		cJSON_AddItemToObject(r, "code", pk_concept(o, st_cfg.code_system, "strength", "Strength"));
		pk_put_item(o, r, "subject", st_host->make_reference(o->ctx, "Patient", pid, NULL));
		cJSON_AddStringToObject(r, "effectiveDateTime", s->date);
		pk_put_item(o, cJSON_AddArrayToObject(r, "performer"), NULL, who(o, s, pid));
		cJSON_AddStringToObject(r, "valueString", s->description);
	}
	pk_add_put(o, r, type, id);
}

enum cw_status st_to_bundle(struct cw_ctx *ctx, const struct pk_doc *doc, cJSON **out)
{
	struct pk_out o = {.host = st_host, .ctx = ctx};
	char (*pids)[CW_ID_SIZE] = st_host->alloc(ctx, (doc->people.n + 1) * sizeof *pids);
	bool *done = st_host->alloc(ctx, doc->people.n + 1);
	cJSON *b = pk_transaction(&o);
	if (!pids || !done || !b) {
		cJSON_Delete(b);
		st_host->issue(ctx, CW_SEV_ERROR, "exception", NULL, "out of memory");
		return CW_NOMEM;
	}
	for (size_t p = 0; p < doc->people.n && !o.failed; p++)
		pk_patient_id(&o, &doc->people.v[p].id, pids[p]);
	/* A Patient comes before its first strength; people before it without
	 * strengths keep their place. */
	size_t next = 0;
	for (size_t i = 0; i < doc->n && !o.failed; i++) {
		const struct st_strength *s = st_item(doc, i);
		for (; next <= s->it.person; next++)
			if (!done[next]) {
				emit_patient(&o, &doc->people.v[next], pids[next]);
				done[next] = true;
			}
		emit_strength(&o, s, pids[s->it.person]);
	}
	for (size_t p = 0; p < doc->people.n && !o.failed; p++)
		if (!done[p])
			emit_patient(&o, &doc->people.v[p], pids[p]);
	return pk_close(&o, b, out);
}

/* Rule 1 → plugkit's rule: a strength (either resource) moves to its
 * Patient's id, its goal links too. */
enum cw_status st_upgrade(struct cw_ctx *ctx, const cJSON *resource, cJSON **out, cJSON **moved)
{
	static const char *const types[] = {"Observation", "Condition", NULL};
	(void)moved;
	return pk_upgrade_item(st_host, ctx, resource, types, st_cfg.strength_system, out);
}

/* -------------------------------------------------------- from FHIR */

struct res {
	struct pk_entry e;
	long person; /* index into doc->people for a mapped Patient, else -1 */
};

struct in {
	struct pk_in pk;
	struct res *v; /* pk.entries */
};

/* The entry a reference points to (of type, when type is not NULL), or -1:
 * by fullUrl, else by "Type/id" at the end of the reference. */
static long resolve(const struct in *in, const cJSON *ref, const char *type)
{
	const char *s = pk_str(ref, "reference");
	if (!s)
		return -1;
	for (size_t i = 0; i < in->pk.n; i++)
		if (pk_eq(in->v[i].e.full, s))
			return !type || strcmp(in->v[i].e.type, type) == 0 ? (long)i : -1;
	for (size_t i = 0; i < in->pk.n; i++) {
		if (!in->v[i].e.id || !*in->v[i].e.type || (type && strcmp(in->v[i].e.type, type) != 0))
			continue;
		size_t tl = strlen(in->v[i].e.type), il = strlen(in->v[i].e.id), sl = strlen(s);
		if (sl < tl + il + 1)
			continue;
		const char *tail = s + sl - (tl + il + 1);
		if (strncmp(tail, in->v[i].e.type, tl) == 0 && tail[tl] == '/' &&
		    strcmp(tail + tl + 1, in->v[i].e.id) == 0 && (tail == s || tail[-1] == '/'))
			return (long)i;
	}
	return -1;
}

/* The resource type a reference names: its "type", else "Type/id". */
static const char *ref_type(struct in *in, const cJSON *ref)
{
	if (pk_str(ref, "type"))
		return pk_str(ref, "type");
	const char *s = pk_str(ref, "reference");
	if (!s)
		return NULL;
	const char *slash = strrchr(s, '/');
	if (!slash || slash == s)
		return NULL;
	const char *start = slash - 1;
	while (start > s && start[-1] != '/')
		start--;
	size_t n = (size_t)(slash - start);
	char *t = st_host->alloc(in->pk.ctx, n + 1);
	if (!t) {
		in->pk.nomem = true;
		return NULL;
	}
	memcpy(t, start, n);
	return t;
}

static void fhir_patient(struct in *in, size_t k, struct pk_doc *doc)
{
	static const char *const known[] = {"identifier", "name", NULL};
	const cJSON *r = in->v[k].e.r, *it;
	struct pk_ident id = {0};
	in->v[k].e.used = true;
	pk_unmapped(&in->pk, k, known);
	size_t i = 0;
	cJSON_ArrayForEach(it, pk_get(r, "identifier")) {
		char w[48];
		snprintf(w, sizeof w, "identifier[%zu]", i++);
		if (!id.value && st_is_uri(pk_str(it, "system")) && st_is_text(pk_str(it, "value"))) {
			id.system = pk_str(it, "system");
			id.value = pk_str(it, "value");
		} else {
			pk_warn(&in->pk, pk_path(&in->pk, k, "%s", w),
				"Patient identifier left out: the format keeps one");
		}
	}
	if (!id.value) {
		pk_warn(&in->pk, pk_path(&in->pk, k, "identifier"),
			"Patient left out: it has no identifier with a system and value");
		return;
	}
	const char *name = NULL;
	const cJSON *names = pk_get(r, "name"), *n = cJSON_GetArrayItem(names, 0);
	if (cJSON_GetArraySize(names) > 1)
		pk_warn(&in->pk, pk_path(&in->pk, k, "name[1]"), "Patient: only the first name is kept");
	if (n && st_is_text(pk_str(n, "text"))) {
		name = pk_str(n, "text");
		const cJSON *m;
		cJSON_ArrayForEach(m, n) if (strcmp(m->string, "text") != 0)
		{
			char w[48];
			snprintf(w, sizeof w, "name[0].%s", m->string);
			pk_warn(&in->pk, pk_path(&in->pk, k, "%s", w),
				"Patient name parts beside the text are left out");
		}
	} else if (n) {
		/* given names then family, joined by spaces; the rest reported */
		char buf[512];
		pk_join_name(n, buf, sizeof buf);
		if (st_is_text(buf)) {
			char *c = st_host->copy_string(in->pk.ctx, buf);
			in->pk.nomem |= !c;
			name = c;
		}
		const cJSON *m;
		cJSON_ArrayForEach(m, n) if (strcmp(m->string, "given") && strcmp(m->string, "family"))
		{
			char w[48];
			snprintf(w, sizeof w, "name[0].%s", m->string);
			pk_warn(&in->pk, pk_path(&in->pk, k, "%s", w),
				"Patient name: only given and family names are kept");
		}
	}
	struct pk_person *p = pk_add_person(st_host, in->pk.ctx, &doc->people);
	if (!p) {
		in->pk.nomem = true;
		return;
	}
	p->id = id;
	p->name = name;
	in->v[k].person = (long)(doc->people.n - 1);
}

static bool has_coding(const cJSON *cc, const char *system, const char *code)
{
	const cJSON *c;
	cJSON_ArrayForEach(c, pk_get(cc, "coding"))
		if (pk_eq(pk_str(c, "system"), system) && pk_eq(pk_str(c, "code"), code))
			return true;
	return false;
}

/* A code system a strength's Observation code may come in: the one written,
 * the one earlier versions wrote, and both eLTSS forms. */
static bool strength_system(const char *sys)
{
	return pk_eq(sys, st_cfg.code_system) || pk_eq(sys, st_cfg.old_code_system) || pk_eq(sys, ST_ELTSS_SYSTEM) ||
	       pk_eq(sys, ST_ELTSS_SYSTEM_TEMP);
}

static bool strength_coded(const cJSON *code)
{
	const cJSON *c;
	cJSON_ArrayForEach(c, pk_get(code, "coding"))
	{
		if (strength_system(pk_str(c, "system")) && pk_eq(pk_str(c, "code"), "strength"))
			return true;
	}
	return false;
}

static bool any_has_coding(const cJSON *list, const char *system, const char *code)
{
	const cJSON *cc;
	cJSON_ArrayForEach(cc, list) if (has_coding(cc, system, code)) return true;
	return false;
}

static bool has_local_category(const cJSON *list)
{
	const cJSON *cc, *c;
	cJSON_ArrayForEach(cc, list)
		cJSON_ArrayForEach(c, pk_get(cc, "coding"))
			if (pk_eq(pk_str(c, "system"), st_cfg.category_system))
				return true;
	return false;
}

/* Is entry k a strength: an Observation coded as one (local or eLTSS code)
 * or a Condition with the protective-factor category; either with a local
 * strength category. */
static bool is_strength(const struct res *v)
{
	const cJSON *r = v->e.r;
	if (has_local_category(pk_get(r, "category")))
		return true;
	if (strcmp(v->e.type, "Observation") == 0)
		return strength_coded(pk_get(r, "code"));
	return any_has_coding(pk_get(r, "category"), ST_SDOHCC_SYSTEM, "protective-factor");
}

/* The category codings: ours gives the category; the ones this plugin
 * writes itself are expected; the rest are reported. */
static void read_categories(struct in *in, size_t k, bool condition, struct st_strength *s)
{
	const cJSON *cc;
	size_t i = 0;
	cJSON_ArrayForEach(cc, pk_get(in->v[k].e.r, "category")) {
		const cJSON *c, *m;
		size_t j = 0;
		cJSON_ArrayForEach(c, pk_get(cc, "coding")) {
			char w[64];
			snprintf(w, sizeof w, "category[%zu].coding[%zu]", i, j++);
			const char *sys = pk_str(c, "system"), *code = pk_str(c, "code");
			int cat = pk_eq(sys, st_cfg.category_system) ? pk_lookup(st_categories, st_category_count, code)
								     : -1;
			if (cat >= 0 && s->category == ST_NO_CATEGORY)
				s->category = cat;
			else if (!condition && pk_eq(sys, ST_OBS_CATEGORY_SYSTEM) && pk_eq(code, "social-history"))
				;
			else if (condition && ((pk_eq(sys, ST_SDOHCC_SYSTEM) && pk_eq(code, "protective-factor")) ||
					       (pk_eq(sys, ST_USCORE_CONDCAT_SYSTEM) && pk_eq(code, "health-concern"))))
				;
			else
				pk_warn(&in->pk, pk_path(&in->pk, k, "%s", w),
					"category %s|%s left out: the format keeps one strength category",
					sys ? sys : "", code ? code : "");
		}
		cJSON_ArrayForEach(m, cc) if (strcmp(m->string, "coding") != 0)
		{
			char w[64];
			snprintf(w, sizeof w, "category[%zu].%s", i, m->string);
			pk_warn(&in->pk, pk_path(&in->pk, k, "%s", w), "category %s is left out", m->string);
		}
		i++;
	}
	if (s->category == ST_NO_CATEGORY)
		pk_warn(&in->pk, pk_path(&in->pk, k, "category"), "strength not exported: no category from %s",
			st_cfg.category_system);
}

/* A date from a dateTime: the day, with a warning when a time is dropped. */
static const char *day_of(struct in *in, size_t k, const char *element, const char *v)
{
	if (!v || strlen(v) < 10) {
		pk_warn(&in->pk, pk_path(&in->pk, k, "%s", element), "strength not exported: no %s with a date",
			element);
		return NULL;
	}
	char d[11];
	memcpy(d, v, 10);
	d[10] = '\0';
	if (!st_is_date(in->pk.ctx, d)) {
		pk_warn(&in->pk, pk_path(&in->pk, k, "%s", element),
			"strength not exported: %s is not a date from 1000 to 9999", element);
		return NULL;
	}
	if (v[10])
		pk_warn(&in->pk, pk_path(&in->pk, k, "%s", element),
			"the time of day in %s is left out; the format keeps the date", element);
	char *c = st_host->copy_string(in->pk.ctx, d);
	in->pk.nomem |= !c;
	return c;
}

static int role_of_type(const char *type)
{
	if (pk_eq(type, "RelatedPerson"))
		return ST_FAMILY;
	if (pk_eq(type, "Practitioner") || pk_eq(type, "PractitionerRole"))
		return ST_PROVIDER;
	return -1;
}

/* Who identified the strength, from performer[0] or asserter (ref, may be
 * NULL) and the role extension (ext_role, or -1). False when it cannot be
 * told. */
static bool read_who(struct in *in, size_t k, const char *element, const cJSON *ref, long subject, int ext_role,
		     struct st_strength *s)
{
	if (!ref) {
		if (ext_role < 0) {
			pk_warn(&in->pk, pk_path(&in->pk, k, "%s", element),
				"strength not exported: nothing says who identified it");
			return false;
		}
		s->role = (enum st_role)ext_role;
		return true;
	}
	const char *type = ref_type(in, ref);
	long target = resolve(in, ref, NULL);
	int role;
	if (pk_eq(type, "Patient")) {
		if (subject < 0 || target != subject) {
			pk_warn(&in->pk, pk_path(&in->pk, k, "%s", element),
				"strength not exported: identified by a Patient other than its subject");
			return false;
		}
		role = ST_SELF;
	} else {
		role = role_of_type(type);
		if (role == ST_PROVIDER && ext_role == ST_PEER)
			role = ST_PEER;
	}
	if (ext_role >= 0 && role >= 0 && role != ext_role) {
		pk_warn(&in->pk, pk_path(&in->pk, k, "%s", element),
			"%s says %s, the extension %s; the extension is kept", element, type ? type : "nobody",
			st_roles[ext_role].code);
		role = ext_role;
	} else if (role < 0 && ext_role >= 0) {
		role = ext_role;
	}
	if (role < 0) {
		pk_warn(&in->pk, pk_path(&in->pk, k, "%s", element),
			"strength not exported: a %s cannot have identified a strength",
			type ? type : "reference without a type");
		return false;
	}
	s->role = (enum st_role)role;
	const cJSON *m;
	cJSON_ArrayForEach(m, ref) {
		char w[64];
		snprintf(w, sizeof w, "%s.%s", element, m->string);
		bool self = role == ST_SELF;
		if (strcmp(m->string, "reference") == 0 && self)
			continue;
		if (strcmp(m->string, "type") == 0)
			continue;
		if (!self && strcmp(m->string, "display") == 0 && st_is_text(pk_str(ref, "display"))) {
			s->by_name = pk_str(ref, "display");
			continue;
		}
		const cJSON *idf = pk_get(ref, "identifier");
		if (!self && strcmp(m->string, "identifier") == 0 && st_is_uri(pk_str(idf, "system")) &&
		    st_is_text(pk_str(idf, "value"))) {
			s->by_id.system = pk_str(idf, "system");
			s->by_id.value = pk_str(idf, "value");
			continue;
		}
		if (!self && strcmp(m->string, "reference") == 0 && target >= 0) {
			in->v[target].e.used = true;
			pk_warn(&in->pk, pk_path(&in->pk, target, "%s", ""),
				"%s/%s is not part of the format; who identified the strength "
				"keeps a name and an identifier only",
				in->v[target].e.type, in->v[target].e.id ? in->v[target].e.id : "");
		}
		pk_warn(&in->pk, pk_path(&in->pk, k, "%s", w), "%s is left out", w);
	}
	return true;
}

static void read_extensions(struct in *in, size_t k, struct st_strength *s, int *ext_role)
{
	const cJSON *it;
	size_t i = 0, n = (size_t)cJSON_GetArraySize(pk_get(in->v[k].e.r, "extension"));
	s->goals = st_host->alloc(in->pk.ctx, (n + 1) * sizeof *s->goals);
	in->pk.nomem |= !s->goals;
	cJSON_ArrayForEach(it, pk_get(in->v[k].e.r, "extension")) {
		char w[48];
		snprintf(w, sizeof w, "extension[%zu]", i++);
		const char *u = pk_str(it, "url");
		if (pk_eq(u, st_cfg.role_url)) {
			int role = pk_lookup(st_roles, ST_ROLE_COUNT, pk_str(it, "valueCode"));
			if (role >= 0 && *ext_role < 0)
				*ext_role = role;
			else
				pk_warn(&in->pk, pk_path(&in->pk, k, "%s", w), "identified-by extension left out: %s",
					role < 0 ? "not one of self, peer, family, provider" : "the format keeps one");
			continue;
		}
		if (!pk_eq(u, PK_PERTAINS_TO_GOAL) || !s->goals) {
			pk_warn(&in->pk, pk_path(&in->pk, k, "%s", w), "extension %s is left out", u ? u : "(no url)");
			continue;
		}
		const cJSON *ref = pk_get(it, "valueReference"), *idf = pk_get(ref, "identifier");
		long g = resolve(in, ref, "Goal");
		if (!idf && g >= 0) {
			const cJSON *gi;
			cJSON_ArrayForEach(gi, pk_get(in->v[g].e.r, "identifier"))
				if (pk_eq(pk_str(gi, "system"), st_cfg.goal_system)) {
					idf = gi;
					break;
				}
			if (!in->v[g].e.used)
				pk_warn(&in->pk, pk_path(&in->pk, g, "%s", ""),
					"Goal resources are not part of the format; only the identifier of "
					"a linked goal is kept");
			in->v[g].e.used = true;
		}
		const char *gv = pk_str(idf, "value");
		bool dup = false;
		for (size_t x = 0; x < s->n_goals && gv; x++)
			dup |= strcmp(s->goals[x], gv) == 0;
		if (pk_eq(pk_str(idf, "system"), st_cfg.goal_system) && st_is_text(gv) && !strchr(gv, ';') && !dup)
			s->goals[s->n_goals++] = gv;
		else
			pk_warn(&in->pk, pk_path(&in->pk, k, "%s", w), "linked goal left out: %s",
				dup ? "it is listed twice" : "only goals identified in the goal system are kept");
	}
}

/* Entry k (a strength) into *s; false when it cannot be exported. */
static bool fhir_strength(struct in *in, size_t k, struct st_strength *s)
{
	static const char *const obs_known[] = {"extension", "identifier", "status", "category", "code", "subject",
						"effectiveDateTime", "performer", "valueString", NULL};
	static const char *const cond_known[] = {"extension", "identifier", "clinicalStatus", "verificationStatus",
						 "category", "code", "subject", "recordedDate", "asserter", NULL};
	const cJSON *r = in->v[k].e.r, *it;
	bool cond = strcmp(in->v[k].e.type, "Condition") == 0, ok = true;
	in->v[k].e.used = true;
	pk_unmapped(&in->pk, k, cond ? cond_known : obs_known);

	size_t i = 0;
	cJSON_ArrayForEach(it, pk_get(r, "identifier")) {
		char w[48];
		snprintf(w, sizeof w, "identifier[%zu]", i++);
		if (!s->id && pk_eq(pk_str(it, "system"), st_cfg.strength_system) && st_is_text(pk_str(it, "value")))
			s->id = pk_str(it, "value");
		else
			pk_warn(&in->pk, pk_path(&in->pk, k, "%s", w),
				"identifier left out: the format keeps the one in %s", st_cfg.strength_system);
	}
	if (!s->id) {
		pk_warn(&in->pk, pk_path(&in->pk, k, "identifier"), "strength not exported: no identifier in %s",
			st_cfg.strength_system);
		ok = false;
	}

	if (cond) {
		const cJSON *cs = pk_get(r, "clinicalStatus");
		if (cs && !has_coding(cs, ST_CLINICAL_SYSTEM, "active")) {
			pk_warn(&in->pk, pk_path(&in->pk, k, "clinicalStatus"),
				"strength not exported: its clinicalStatus is not active");
			ok = false;
		}
		const cJSON *vs = pk_get(r, "verificationStatus");
		if (has_coding(vs, ST_VERIFICATION_SYSTEM, "refuted") ||
		    has_coding(vs, ST_VERIFICATION_SYSTEM, "entered-in-error")) {
			pk_warn(&in->pk, pk_path(&in->pk, k, "verificationStatus"),
				"strength not exported: refuted or entered in error");
			ok = false;
		} else if (vs) {
			pk_warn(&in->pk, pk_path(&in->pk, k, "verificationStatus"),
				"verificationStatus is not carried by the format");
		}
	} else {
		const char *st = pk_str(r, "status");
		if (!pk_eq(st, "final") && !pk_eq(st, "amended") && !pk_eq(st, "corrected")) {
			pk_warn(&in->pk, pk_path(&in->pk, k, "status"),
				"strength not exported: status '%s' is not final", st ? st : "");
			ok = false;
		} else if (!pk_eq(st, "final")) {
			pk_warn(&in->pk, pk_path(&in->pk, k, "status"), "status '%s' is not carried by the format", st);
		}
	}

	read_categories(in, k, cond, s);
	ok &= s->category != ST_NO_CATEGORY;

	/* The person's own words: Observation.valueString or Condition.code.text. */
	const cJSON *code = pk_get(r, "code"), *c;
	size_t j = 0;
	cJSON_ArrayForEach(c, pk_get(code, "coding")) {
		char w[48];
		snprintf(w, sizeof w, "code.coding[%zu]", j++);
		const char *sys = pk_str(c, "system");
		bool ours = !cond && pk_eq(pk_str(c, "code"), "strength") && strength_system(sys);
		if (!ours)
			pk_warn(&in->pk, pk_path(&in->pk, k, "%s", w),
				"code %s|%s left out: the format keeps the person's own words", sys ? sys : "",
				pk_str(c, "code") ? pk_str(c, "code") : "");
	}
	const cJSON *m;
	cJSON_ArrayForEach(m, code) if (strcmp(m->string, "coding") && (!cond || strcmp(m->string, "text")))
	{
		char w[48];
		snprintf(w, sizeof w, "code.%s", m->string);
		pk_warn(&in->pk, pk_path(&in->pk, k, "%s", w), "code.%s is left out", m->string);
	}
	s->description = cond ? pk_str(code, "text") : pk_str(r, "valueString");
	if (!st_is_text(s->description)) {
		pk_warn(&in->pk, pk_path(&in->pk, k, "%s", cond ? "code.text" : "valueString"),
			"strength not exported: no description in the person's words (text without white space at "
			"either end)");
		ok = false;
	}

	long pk = resolve(in, pk_get(r, "subject"), "Patient");
	if (pk < 0 || in->v[pk].person < 0) {
		pk_warn(&in->pk, pk_path(&in->pk, k, "subject"),
			"strength not exported: its subject is not a Patient in the Bundle with an identifier");
		ok = false;
	} else {
		s->it.person = (size_t)in->v[pk].person;
	}

	const char *date_el = cond ? "recordedDate" : "effectiveDateTime";
	if (!(s->date = day_of(in, k, date_el, pk_str(r, date_el))))
		ok = false;

	int ext_role = -1;
	read_extensions(in, k, s, &ext_role);
	const cJSON *ref = cond ? pk_get(r, "asserter") : cJSON_GetArrayItem(pk_get(r, "performer"), 0);
	if (!cond && cJSON_GetArraySize(pk_get(r, "performer")) > 1)
		for (int x = 1; x < cJSON_GetArraySize(pk_get(r, "performer")); x++) {
			char w[48];
			snprintf(w, sizeof w, "performer[%d]", x);
			pk_warn(&in->pk, pk_path(&in->pk, k, "%s", w),
				"performer left out: the format keeps who identified the strength");
		}
	ok &= read_who(in, k, cond ? "asserter" : "performer[0]", ref, pk, ext_role, s);
	return ok;
}

enum cw_status st_from_bundle(struct cw_ctx *ctx, const cJSON *bundle, struct pk_doc *doc)
{
	struct in in = {.pk = {.host = st_host, .ctx = ctx, .format = "strengths", .message = 600, .path = 300,
			       .sub = 300, .meta = 80}};
	static const struct res blank = {.person = -1};
	if (pk_in_open(&in.pk, bundle, &blank, sizeof blank) != CW_OK)
		return CW_NOMEM;
	in.v = in.pk.entries;
	for (size_t k = 0; k < in.pk.n && !in.pk.nomem; k++)
		if (strcmp(in.v[k].e.type, "Patient") == 0)
			fhir_patient(&in, k, doc);
	for (size_t k = 0; k < in.pk.n && !in.pk.nomem; k++) {
		bool obs = strcmp(in.v[k].e.type, "Observation") == 0, cond = strcmp(in.v[k].e.type, "Condition") == 0;
		if (!obs && !cond)
			continue;
		if (!is_strength(&in.v[k])) {
			in.v[k].e.used = true;
			pk_warn(&in.pk, pk_path(&in.pk, k, "%s", ""), "%s%s%s is not a strength (%s); left out",
				in.v[k].e.type, in.v[k].e.id ? "/" : "", in.v[k].e.id ? in.v[k].e.id : "",
				obs ? "no strength code or strength category"
				    : "no protective-factor or strength category");
			continue;
		}
		struct st_strength s;
		memset(&s, 0, sizeof s);
		s.category = ST_NO_CATEGORY;
		if (!fhir_strength(&in, k, &s))
			continue;
		bool dup = false;
		for (size_t x = 0; x < doc->n && !dup; x++)
			dup = strcmp(st_item(doc, x)->id, s.id) == 0;
		if (dup) {
			pk_warn(&in.pk, pk_path(&in.pk, k, "identifier"),
				"strength not exported: strength '%s' was already exported", s.id);
			continue;
		}
		struct st_strength *slot = pk_doc_add(st_host, ctx, doc, sizeof *slot);
		if (!slot) {
			in.pk.nomem = true;
			break;
		}
		*slot = s;
	}
	doc->array = doc->people.n != 1;
	return pk_in_close(&in.pk, "the strengths format", false);
}
