/* st_fhir — a struct st_doc to a FHIR R4 transaction Bundle and back.
 *
 * To FHIR: per person a Patient; per strength an Observation (eLTSS pattern:
 * the person's own words in valueString) or, with "resource": "condition",
 * a Condition carrying the SDOHCC protective-factor category (the words in
 * code.text). Each entry is a PUT under a deterministic id.
 *
 * From FHIR: any Bundle, Observations and Conditions alike whatever the
 * setting. What the format cannot hold is reported as a warning with its
 * location (Bundle.entry[N].resource…), never dropped in silence; a strength
 * that lacks what the format requires is left out with one warning per
 * reason. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strengths.h"

/* ---------------------------------------------------------- to FHIR */

struct out {
	struct cw_ctx *ctx;
	cJSON *entries;
	bool failed;
};

static void put_item(struct out *o, cJSON *into, const char *key, cJSON *item)
{
	if (!item) {
		o->failed = true; /* the host reported why */
		return;
	}
	if (key)
		cJSON_AddItemToObject(into, key, item);
	else
		cJSON_AddItemToArray(into, item);
}

static cJSON *resource(const char *type, const char *id, const char *profile)
{
	cJSON *r = cJSON_CreateObject();
	cJSON_AddStringToObject(r, "resourceType", type);
	cJSON_AddStringToObject(r, "id", id);
	cJSON *meta = cJSON_AddObjectToObject(r, "meta");
	cJSON_AddItemToArray(cJSON_AddArrayToObject(meta, "profile"), cJSON_CreateString(profile));
	return r;
}

static void add_entry(struct out *o, cJSON *res, const char *type, const char *id)
{
	cJSON *e = cJSON_CreateObject(), *rq;
	char u[96];
	snprintf(u, sizeof u, "%s/%s", type, id);
	cJSON_AddItemToObject(e, "resource", res);
	rq = cJSON_AddObjectToObject(e, "request");
	cJSON_AddStringToObject(rq, "method", "PUT");
	cJSON_AddStringToObject(rq, "url", u);
	cJSON_AddItemToArray(o->entries, e);
}

static cJSON *concept(struct out *o, const char *system, const char *code, const char *display)
{
	cJSON *cc = cJSON_CreateObject();
	put_item(o, cJSON_AddArrayToObject(cc, "coding"), NULL, st_host->make_coding(o->ctx, system, code, display));
	return cc;
}

static bool make_id(struct out *o, const char *ns, const char *key, char id[CW_ID_SIZE])
{
	if (st_host->make_id(o->ctx, ns, key, id) == CW_OK)
		return true;
	st_host->issue(o->ctx, CW_SEV_ERROR, "exception", NULL, "no id could be made");
	o->failed = true;
	return false;
}

static void emit_patient(struct out *o, const struct st_person *p, const char *id)
{
	cJSON *r = resource("Patient", id, st_cfg.profile_patient);
	put_item(o, cJSON_AddArrayToObject(r, "identifier"), NULL,
		 st_host->make_identifier(o->ctx, p->id.system, p->id.value));
	if (p->name) {
		cJSON *n = cJSON_CreateObject();
		cJSON_AddStringToObject(n, "text", p->name);
		cJSON_AddItemToArray(cJSON_AddArrayToObject(r, "name"), n);
	}
	add_entry(o, r, "Patient", id);
}

/* Who identified the strength: the Patient itself, or a logical reference
 * (type, identifier, display) to a RelatedPerson or Practitioner that the
 * format does not describe further. */
static cJSON *who(struct out *o, const struct st_strength *s, const char *pid)
{
	if (s->role == ST_SELF) {
		cJSON *ref = st_host->make_reference(o->ctx, "Patient", pid, NULL);
		o->failed |= !ref;
		return ref;
	}
	cJSON *ref = cJSON_CreateObject();
	cJSON_AddStringToObject(ref, "type", s->role == ST_FAMILY ? "RelatedPerson" : "Practitioner");
	if (s->by_id.system && s->by_id.value)
		put_item(o, ref, "identifier", st_host->make_identifier(o->ctx, s->by_id.system, s->by_id.value));
	if (s->by_name)
		cJSON_AddStringToObject(ref, "display", s->by_name);
	return ref;
}

static void extensions(struct out *o, cJSON *r, const struct st_strength *s)
{
	cJSON *ext = cJSON_AddArrayToObject(r, "extension"), *x = cJSON_CreateObject();
	cJSON_AddItemToArray(ext, x);
	cJSON_AddStringToObject(x, "url", st_cfg.role_url);
	cJSON_AddStringToObject(x, "valueCode", st_roles[s->role].code);
	for (size_t i = 0; i < s->n_goals; i++) {
		char gid[CW_ID_SIZE];
		if (!make_id(o, st_cfg.goal_system, s->goals[i], gid))
			return;
		cJSON *ref = st_host->make_reference(o->ctx, "Goal", gid, NULL);
		if (!ref) {
			o->failed = true;
			return;
		}
		cJSON_AddStringToObject(ref, "type", "Goal");
		put_item(o, ref, "identifier", st_host->make_identifier(o->ctx, st_cfg.goal_system, s->goals[i]));
		x = cJSON_CreateObject();
		cJSON_AddStringToObject(x, "url", ST_PERTAINS_TO_GOAL);
		cJSON_AddItemToObject(x, "valueReference", ref);
		cJSON_AddItemToArray(ext, x);
	}
}

static void emit_strength(struct out *o, const struct st_strength *s, const char *pid)
{
	char id[CW_ID_SIZE];
	if (!make_id(o, st_cfg.strength_system, s->id, id))
		return;
	const struct st_code *cat = &st_categories[s->category];
	const char *type = st_cfg.condition ? "Condition" : "Observation";
	cJSON *r = resource(type, id, st_cfg.condition ? st_cfg.profile_cond : st_cfg.profile_obs);
	extensions(o, r, s);
	put_item(o, cJSON_AddArrayToObject(r, "identifier"), NULL,
		 st_host->make_identifier(o->ctx, st_cfg.strength_system, s->id));
	if (st_cfg.condition) {
		cJSON_AddItemToObject(r, "clinicalStatus", concept(o, ST_CLINICAL_SYSTEM, "active", "Active"));
		cJSON *cats = cJSON_AddArrayToObject(r, "category");
		cJSON_AddItemToArray(cats, concept(o, ST_SDOHCC_SYSTEM, "protective-factor", "Protective Factor"));
		cJSON_AddItemToArray(cats, concept(o, ST_USCORE_CONDCAT_SYSTEM, "health-concern", "Health Concern"));
		cJSON_AddItemToArray(cats, concept(o, st_cfg.category_system, cat->code, cat->display));
		cJSON_AddStringToObject(cJSON_AddObjectToObject(r, "code"), "text", s->description);
		put_item(o, r, "subject", st_host->make_reference(o->ctx, "Patient", pid, NULL));
		cJSON_AddStringToObject(r, "recordedDate", s->date);
		put_item(o, r, "asserter", who(o, s, pid));
	} else {
		cJSON_AddStringToObject(r, "status", "final");
		cJSON *cats = cJSON_AddArrayToObject(r, "category");
		cJSON_AddItemToArray(cats, concept(o, ST_OBS_CATEGORY_SYSTEM, "social-history", "Social History"));
		cJSON_AddItemToArray(cats, concept(o, st_cfg.category_system, cat->code, cat->display));
		cJSON_AddItemToObject(r, "code", concept(o, st_cfg.code_system, "strength", "Strength"));
		put_item(o, r, "subject", st_host->make_reference(o->ctx, "Patient", pid, NULL));
		cJSON_AddStringToObject(r, "effectiveDateTime", s->date);
		put_item(o, cJSON_AddArrayToObject(r, "performer"), NULL, who(o, s, pid));
		cJSON_AddStringToObject(r, "valueString", s->description);
	}
	add_entry(o, r, type, id);
}

enum cw_status st_to_bundle(struct cw_ctx *ctx, const struct st_doc *doc, cJSON **out)
{
	struct out o = {.ctx = ctx};
	char (*pids)[CW_ID_SIZE] = st_host->alloc(ctx, (doc->n_people + 1) * sizeof *pids);
	bool *done = st_host->alloc(ctx, doc->n_people + 1);
	cJSON *b = cJSON_CreateObject();
	if (!pids || !done || !b) {
		cJSON_Delete(b);
		st_host->issue(ctx, CW_SEV_ERROR, "exception", NULL, "out of memory");
		return CW_NOMEM;
	}
	cJSON_AddStringToObject(b, "resourceType", "Bundle");
	cJSON_AddStringToObject(b, "type", "transaction");
	o.entries = cJSON_AddArrayToObject(b, "entry");
	for (size_t p = 0; p < doc->n_people && !o.failed; p++)
		make_id(&o, doc->people[p].id.system, doc->people[p].id.value, pids[p]);
	/* A Patient comes before its first strength; people before it without
	 * strengths keep their place. */
	size_t next = 0;
	for (size_t i = 0; i < doc->n_items && !o.failed; i++) {
		const struct st_strength *s = &doc->items[i];
		for (; next <= s->person; next++)
			if (!done[next]) {
				emit_patient(&o, &doc->people[next], pids[next]);
				done[next] = true;
			}
		emit_strength(&o, s, pids[s->person]);
	}
	for (size_t p = 0; p < doc->n_people && !o.failed; p++)
		if (!done[p])
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
	bool used;   /* mapped, or reported */
	long person; /* index into doc->people for a mapped Patient, else -1 */
};

struct in {
	struct cw_ctx *ctx;
	struct res *v;
	size_t n;
	bool nomem;
};

static const cJSON *get(const cJSON *o, const char *key) { return cJSON_GetObjectItemCaseSensitive(o, key); }

static const char *str(const cJSON *o, const char *key)
{
	const cJSON *v = get(o, key);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static bool eq(const char *a, const char *b) { return a && b && strcmp(a, b) == 0; }

static void warn(struct in *in, const char *where, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void warn(struct in *in, const char *where, const char *fmt, ...)
{
	char msg[600];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	st_host->issue(in->ctx, CW_SEV_WARNING, "not-supported", where, "%s", msg);
}

/* "Bundle.entry[k].resource" + "." + suffix, in the arena. */
static const char *path(struct in *in, size_t k, const char *suffix)
{
	char buf[300];
	snprintf(buf, sizeof buf, "Bundle.entry[%zu].resource%s%s", k, suffix && *suffix ? "." : "",
		 suffix ? suffix : "");
	char *c = st_host->copy_string(in->ctx, buf);
	in->nomem |= !c;
	return c ? c : "Bundle";
}

/* The entry a reference points to (of type, when type is not NULL), or -1:
 * by fullUrl, else by "Type/id" at the end of the reference. */
static long resolve(const struct in *in, const cJSON *ref, const char *type)
{
	const char *s = str(ref, "reference");
	if (!s)
		return -1;
	for (size_t i = 0; i < in->n; i++)
		if (eq(in->v[i].full, s))
			return !type || strcmp(in->v[i].type, type) == 0 ? (long)i : -1;
	for (size_t i = 0; i < in->n; i++) {
		if (!in->v[i].id || !*in->v[i].type || (type && strcmp(in->v[i].type, type) != 0))
			continue;
		size_t tl = strlen(in->v[i].type), il = strlen(in->v[i].id), sl = strlen(s);
		if (sl < tl + il + 1)
			continue;
		const char *tail = s + sl - (tl + il + 1);
		if (strncmp(tail, in->v[i].type, tl) == 0 && tail[tl] == '/' && strcmp(tail + tl + 1, in->v[i].id) == 0 &&
		    (tail == s || tail[-1] == '/'))
			return (long)i;
	}
	return -1;
}

/* The resource type a reference names: its "type", else "Type/id". */
static const char *ref_type(struct in *in, const cJSON *ref)
{
	if (str(ref, "type"))
		return str(ref, "type");
	const char *s = str(ref, "reference");
	if (!s)
		return NULL;
	const char *slash = strrchr(s, '/');
	if (!slash || slash == s)
		return NULL;
	const char *start = slash - 1;
	while (start > s && start[-1] != '/')
		start--;
	size_t n = (size_t)(slash - start);
	char *t = st_host->alloc(in->ctx, n + 1);
	if (!t) {
		in->nomem = true;
		return NULL;
	}
	memcpy(t, start, n);
	return t;
}

/* Warns about every member of entry k outside known (NULL-terminated). */
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
					char w[80];
					snprintf(w, sizeof w, "meta.%s", mm->string);
					warn(in, path(in, k, w), "%s.meta.%s is not carried by the strengths format",
					     in->v[k].type, mm->string);
				}
			}
			ok = true;
		}
		if (!ok)
			warn(in, path(in, k, m->string), "%s.%s has no place in the strengths format; left out",
			     in->v[k].type, m->string);
	}
}

static void fhir_patient(struct in *in, size_t k, struct st_doc *doc)
{
	static const char *const known[] = {"identifier", "name", NULL};
	const cJSON *r = in->v[k].r, *it;
	struct st_ident id = {0};
	in->v[k].used = true;
	unmapped(in, k, known);
	size_t i = 0;
	cJSON_ArrayForEach(it, get(r, "identifier")) {
		char w[48];
		snprintf(w, sizeof w, "identifier[%zu]", i++);
		if (!id.value && st_is_uri(str(it, "system")) && st_is_text(str(it, "value"))) {
			id.system = str(it, "system");
			id.value = str(it, "value");
		} else {
			warn(in, path(in, k, w), "Patient identifier left out: the format keeps one");
		}
	}
	if (!id.value) {
		warn(in, path(in, k, "identifier"), "Patient left out: it has no identifier with a system and value");
		return;
	}
	const char *name = NULL;
	const cJSON *names = get(r, "name"), *n = cJSON_GetArrayItem(names, 0);
	if (cJSON_GetArraySize(names) > 1)
		warn(in, path(in, k, "name[1]"), "Patient: only the first name is kept");
	if (n && st_is_text(str(n, "text"))) {
		name = str(n, "text");
		const cJSON *m;
		cJSON_ArrayForEach(m, n) if (strcmp(m->string, "text") != 0)
		{
			char w[48];
			snprintf(w, sizeof w, "name[0].%s", m->string);
			warn(in, path(in, k, w), "Patient name parts beside the text are left out");
		}
	} else if (n) {
		/* given names then family, joined by spaces; the rest reported */
		char buf[512] = "";
		size_t used = 0;
		const cJSON *g;
		cJSON_ArrayForEach(g, get(n, "given")) if (cJSON_IsString(g) && used < sizeof buf) used +=
			(size_t)snprintf(buf + used, sizeof buf - used, "%s%s", used ? " " : "", g->valuestring);
		if (str(n, "family") && used < sizeof buf)
			used += (size_t)snprintf(buf + used, sizeof buf - used, "%s%s", used ? " " : "", str(n, "family"));
		if (st_is_text(buf)) {
			char *c = st_host->copy_string(in->ctx, buf);
			in->nomem |= !c;
			name = c;
		}
		const cJSON *m;
		cJSON_ArrayForEach(m, n) if (strcmp(m->string, "given") && strcmp(m->string, "family"))
		{
			char w[48];
			snprintf(w, sizeof w, "name[0].%s", m->string);
			warn(in, path(in, k, w), "Patient name: only given and family names are kept");
		}
	}
	struct st_person *p = st_add_person(in->ctx, doc);
	if (!p) {
		in->nomem = true;
		return;
	}
	p->id = id;
	p->name = name;
	in->v[k].person = (long)(doc->n_people - 1);
}

static bool has_coding(const cJSON *cc, const char *system, const char *code)
{
	const cJSON *c;
	cJSON_ArrayForEach(c, get(cc, "coding")) if (eq(str(c, "system"), system) && eq(str(c, "code"), code)) return true;
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
	cJSON_ArrayForEach(cc, list) cJSON_ArrayForEach(c, get(cc, "coding")) if (eq(str(c, "system"), st_cfg.category_system)) return true;
	return false;
}

/* Is entry k a strength: an Observation coded as one (local or eLTSS code)
 * or a Condition with the protective-factor category; either with a local
 * strength category. */
static bool is_strength(const struct res *v)
{
	const cJSON *r = v->r;
	if (has_local_category(get(r, "category")))
		return true;
	if (strcmp(v->type, "Observation") == 0)
		return has_coding(get(r, "code"), st_cfg.code_system, "strength") ||
		       has_coding(get(r, "code"), ST_ELTSS_SYSTEM, "strength") ||
		       has_coding(get(r, "code"), ST_ELTSS_SYSTEM_TEMP, "strength");
	return any_has_coding(get(r, "category"), ST_SDOHCC_SYSTEM, "protective-factor");
}

/* The category codings: ours gives the category; the ones this plugin
 * writes itself are expected; the rest are reported. */
static void read_categories(struct in *in, size_t k, bool condition, struct st_strength *s)
{
	const cJSON *cc;
	size_t i = 0;
	cJSON_ArrayForEach(cc, get(in->v[k].r, "category")) {
		const cJSON *c, *m;
		size_t j = 0;
		cJSON_ArrayForEach(c, get(cc, "coding")) {
			char w[64];
			snprintf(w, sizeof w, "category[%zu].coding[%zu]", i, j++);
			const char *sys = str(c, "system"), *code = str(c, "code");
			int cat = eq(sys, st_cfg.category_system) ? st_lookup(st_categories, st_category_count, code) : -1;
			if (cat >= 0 && s->category == ST_NO_CATEGORY)
				s->category = cat;
			else if (!condition && eq(sys, ST_OBS_CATEGORY_SYSTEM) && eq(code, "social-history"))
				;
			else if (condition && ((eq(sys, ST_SDOHCC_SYSTEM) && eq(code, "protective-factor")) ||
					       (eq(sys, ST_USCORE_CONDCAT_SYSTEM) && eq(code, "health-concern"))))
				;
			else
				warn(in, path(in, k, w), "category %s|%s left out: the format keeps one strength category",
				     sys ? sys : "", code ? code : "");
		}
		cJSON_ArrayForEach(m, cc) if (strcmp(m->string, "coding") != 0)
		{
			char w[64];
			snprintf(w, sizeof w, "category[%zu].%s", i, m->string);
			warn(in, path(in, k, w), "category %s is left out", m->string);
		}
		i++;
	}
	if (s->category == ST_NO_CATEGORY)
		warn(in, path(in, k, "category"), "strength not exported: no category from %s", st_cfg.category_system);
}

/* A date from a dateTime: the day, with a warning when a time is dropped. */
static const char *day_of(struct in *in, size_t k, const char *element, const char *v)
{
	if (!v || strlen(v) < 10) {
		warn(in, path(in, k, element), "strength not exported: no %s with a date", element);
		return NULL;
	}
	char d[11];
	memcpy(d, v, 10);
	d[10] = '\0';
	if (!st_is_date(in->ctx, d)) {
		warn(in, path(in, k, element), "strength not exported: %s is not a date from 1000 to 9999", element);
		return NULL;
	}
	if (v[10])
		warn(in, path(in, k, element), "the time of day in %s is left out; the format keeps the date", element);
	char *c = st_host->copy_string(in->ctx, d);
	in->nomem |= !c;
	return c;
}

static int role_of_type(const char *type)
{
	if (eq(type, "RelatedPerson"))
		return ST_FAMILY;
	if (eq(type, "Practitioner") || eq(type, "PractitionerRole"))
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
			warn(in, path(in, k, element), "strength not exported: nothing says who identified it");
			return false;
		}
		s->role = (enum st_role)ext_role;
		return true;
	}
	const char *type = ref_type(in, ref);
	long target = resolve(in, ref, NULL);
	int role;
	if (eq(type, "Patient")) {
		if (subject < 0 || target != subject) {
			warn(in, path(in, k, element), "strength not exported: identified by a Patient other than its subject");
			return false;
		}
		role = ST_SELF;
	} else {
		role = role_of_type(type);
		if (role == ST_PROVIDER && ext_role == ST_PEER)
			role = ST_PEER;
	}
	if (ext_role >= 0 && role >= 0 && role != ext_role) {
		warn(in, path(in, k, element), "%s says %s, the extension %s; the extension is kept", element,
		     type ? type : "nobody", st_roles[ext_role].code);
		role = ext_role;
	} else if (role < 0 && ext_role >= 0) {
		role = ext_role;
	}
	if (role < 0) {
		warn(in, path(in, k, element), "strength not exported: a %s cannot have identified a strength",
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
		if (!self && strcmp(m->string, "display") == 0 && st_is_text(str(ref, "display"))) {
			s->by_name = str(ref, "display");
			continue;
		}
		const cJSON *idf = get(ref, "identifier");
		if (!self && strcmp(m->string, "identifier") == 0 && st_is_uri(str(idf, "system")) &&
		    st_is_text(str(idf, "value"))) {
			s->by_id.system = str(idf, "system");
			s->by_id.value = str(idf, "value");
			continue;
		}
		if (!self && strcmp(m->string, "reference") == 0 && target >= 0) {
			in->v[target].used = true;
			warn(in, path(in, target, ""), "%s/%s is not part of the format; who identified the strength "
				 "keeps a name and an identifier only", in->v[target].type,
				 in->v[target].id ? in->v[target].id : "");
		}
		warn(in, path(in, k, w), "%s is left out", w);
	}
	return true;
}

static void read_extensions(struct in *in, size_t k, struct st_strength *s, int *ext_role)
{
	const cJSON *it;
	size_t i = 0, n = (size_t)cJSON_GetArraySize(get(in->v[k].r, "extension"));
	s->goals = st_host->alloc(in->ctx, (n + 1) * sizeof *s->goals);
	in->nomem |= !s->goals;
	cJSON_ArrayForEach(it, get(in->v[k].r, "extension")) {
		char w[48];
		snprintf(w, sizeof w, "extension[%zu]", i++);
		const char *u = str(it, "url");
		if (eq(u, st_cfg.role_url)) {
			int role = st_lookup(st_roles, ST_ROLE_COUNT, str(it, "valueCode"));
			if (role >= 0 && *ext_role < 0)
				*ext_role = role;
			else
				warn(in, path(in, k, w), "identified-by extension left out: %s",
				     role < 0 ? "not one of self, peer, family, provider" : "the format keeps one");
			continue;
		}
		if (!eq(u, ST_PERTAINS_TO_GOAL) || !s->goals) {
			warn(in, path(in, k, w), "extension %s is left out", u ? u : "(no url)");
			continue;
		}
		const cJSON *ref = get(it, "valueReference"), *idf = get(ref, "identifier");
		long g = resolve(in, ref, "Goal");
		if (!idf && g >= 0) {
			const cJSON *gi;
			cJSON_ArrayForEach(gi, get(in->v[g].r, "identifier")) if (eq(str(gi, "system"), st_cfg.goal_system))
			{
				idf = gi;
				break;
			}
			if (!in->v[g].used)
				warn(in, path(in, g, ""), "Goal resources are not part of the format; only the identifier of "
					 "a linked goal is kept");
			in->v[g].used = true;
		}
		const char *gv = str(idf, "value");
		bool dup = false;
		for (size_t x = 0; x < s->n_goals && gv; x++)
			dup |= strcmp(s->goals[x], gv) == 0;
		if (eq(str(idf, "system"), st_cfg.goal_system) && st_is_text(gv) && !strchr(gv, ';') && !dup)
			s->goals[s->n_goals++] = gv;
		else
			warn(in, path(in, k, w), "linked goal left out: %s", dup ? "it is listed twice"
				 : "only goals identified in the goal system are kept");
	}
}

/* Entry k (a strength) into *s; false when it cannot be exported. */
static bool fhir_strength(struct in *in, size_t k, struct st_strength *s)
{
	static const char *const obs_known[] = {"extension", "identifier", "status", "category", "code", "subject",
						"effectiveDateTime", "performer", "valueString", NULL};
	static const char *const cond_known[] = {"extension", "identifier", "clinicalStatus", "verificationStatus",
						 "category", "code", "subject", "recordedDate", "asserter", NULL};
	const cJSON *r = in->v[k].r, *it;
	bool cond = strcmp(in->v[k].type, "Condition") == 0, ok = true;
	in->v[k].used = true;
	unmapped(in, k, cond ? cond_known : obs_known);

	size_t i = 0;
	cJSON_ArrayForEach(it, get(r, "identifier")) {
		char w[48];
		snprintf(w, sizeof w, "identifier[%zu]", i++);
		if (!s->id && eq(str(it, "system"), st_cfg.strength_system) && st_is_text(str(it, "value")))
			s->id = str(it, "value");
		else
			warn(in, path(in, k, w), "identifier left out: the format keeps the one in %s",
			     st_cfg.strength_system);
	}
	if (!s->id) {
		warn(in, path(in, k, "identifier"), "strength not exported: no identifier in %s", st_cfg.strength_system);
		ok = false;
	}

	if (cond) {
		const cJSON *cs = get(r, "clinicalStatus");
		if (cs && !has_coding(cs, ST_CLINICAL_SYSTEM, "active")) {
			warn(in, path(in, k, "clinicalStatus"), "strength not exported: its clinicalStatus is not active");
			ok = false;
		}
		const cJSON *vs = get(r, "verificationStatus");
		if (has_coding(vs, ST_VERIFICATION_SYSTEM, "refuted") ||
		    has_coding(vs, ST_VERIFICATION_SYSTEM, "entered-in-error")) {
			warn(in, path(in, k, "verificationStatus"), "strength not exported: refuted or entered in error");
			ok = false;
		} else if (vs) {
			warn(in, path(in, k, "verificationStatus"), "verificationStatus is not carried by the format");
		}
	} else {
		const char *st = str(r, "status");
		if (!eq(st, "final") && !eq(st, "amended") && !eq(st, "corrected")) {
			warn(in, path(in, k, "status"), "strength not exported: status '%s' is not final", st ? st : "");
			ok = false;
		} else if (!eq(st, "final")) {
			warn(in, path(in, k, "status"), "status '%s' is not carried by the format", st);
		}
	}

	read_categories(in, k, cond, s);
	ok &= s->category != ST_NO_CATEGORY;

	/* The person's own words: Observation.valueString or Condition.code.text. */
	const cJSON *code = get(r, "code"), *c;
	size_t j = 0;
	cJSON_ArrayForEach(c, get(code, "coding")) {
		char w[48];
		snprintf(w, sizeof w, "code.coding[%zu]", j++);
		const char *sys = str(c, "system");
		bool ours = !cond && eq(str(c, "code"), "strength") &&
			    (eq(sys, st_cfg.code_system) || eq(sys, ST_ELTSS_SYSTEM) || eq(sys, ST_ELTSS_SYSTEM_TEMP));
		if (!ours)
			warn(in, path(in, k, w), "code %s|%s left out: the format keeps the person's own words",
			     sys ? sys : "", str(c, "code") ? str(c, "code") : "");
	}
	const cJSON *m;
	cJSON_ArrayForEach(m, code) if (strcmp(m->string, "coding") && (!cond || strcmp(m->string, "text")))
	{
		char w[48];
		snprintf(w, sizeof w, "code.%s", m->string);
		warn(in, path(in, k, w), "code.%s is left out", m->string);
	}
	s->description = cond ? str(code, "text") : str(r, "valueString");
	if (!st_is_text(s->description)) {
		warn(in, path(in, k, cond ? "code.text" : "valueString"),
		     "strength not exported: no description in the person's words (text without white space at "
		     "either end)");
		ok = false;
	}

	long pk = resolve(in, get(r, "subject"), "Patient");
	if (pk < 0 || in->v[pk].person < 0) {
		warn(in, path(in, k, "subject"), "strength not exported: its subject is not a Patient in the Bundle with "
			 "an identifier");
		ok = false;
	} else {
		s->person = (size_t)in->v[pk].person;
	}

	const char *date_el = cond ? "recordedDate" : "effectiveDateTime";
	if (!(s->date = day_of(in, k, date_el, str(r, date_el))))
		ok = false;

	int ext_role = -1;
	read_extensions(in, k, s, &ext_role);
	const cJSON *ref = cond ? get(r, "asserter") : cJSON_GetArrayItem(get(r, "performer"), 0);
	if (!cond && cJSON_GetArraySize(get(r, "performer")) > 1)
		for (int x = 1; x < cJSON_GetArraySize(get(r, "performer")); x++) {
			char w[48];
			snprintf(w, sizeof w, "performer[%d]", x);
			warn(in, path(in, k, w), "performer left out: the format keeps who identified the strength");
		}
	ok &= read_who(in, k, cond ? "asserter" : "performer[0]", ref, pk, ext_role, s);
	return ok;
}

enum cw_status st_from_bundle(struct cw_ctx *ctx, const cJSON *bundle, struct st_doc *doc)
{
	struct in in = {.ctx = ctx};
	const cJSON *entries = get(bundle, "entry"), *e;
	size_t n = (size_t)cJSON_GetArraySize(entries);
	in.v = st_host->alloc(ctx, (n + 1) * sizeof *in.v);
	if (!in.v) {
		st_host->issue(ctx, CW_SEV_ERROR, "exception", NULL, "out of memory");
		return CW_NOMEM;
	}
	cJSON_ArrayForEach(e, entries) {
		struct res *r = &in.v[in.n++];
		r->r = get(e, "resource");
		r->type = str(r->r, "resourceType") ? str(r->r, "resourceType") : "";
		r->id = str(r->r, "id");
		r->full = str(e, "fullUrl");
		r->person = -1;
	}
	for (size_t k = 0; k < in.n && !in.nomem; k++)
		if (strcmp(in.v[k].type, "Patient") == 0)
			fhir_patient(&in, k, doc);
	for (size_t k = 0; k < in.n && !in.nomem; k++) {
		bool obs = strcmp(in.v[k].type, "Observation") == 0, cond = strcmp(in.v[k].type, "Condition") == 0;
		if (!obs && !cond)
			continue;
		if (!is_strength(&in.v[k])) {
			in.v[k].used = true;
			warn(&in, path(&in, k, ""), "%s%s%s is not a strength (%s); left out", in.v[k].type,
			     in.v[k].id ? "/" : "", in.v[k].id ? in.v[k].id : "",
			     obs ? "no strength code or strength category" : "no protective-factor or strength category");
			continue;
		}
		struct st_strength s;
		memset(&s, 0, sizeof s);
		s.category = ST_NO_CATEGORY;
		if (!fhir_strength(&in, k, &s))
			continue;
		bool dup = false;
		for (size_t x = 0; x < doc->n_items && !dup; x++)
			dup = strcmp(doc->items[x].id, s.id) == 0;
		if (dup) {
			warn(&in, path(&in, k, "identifier"), "strength not exported: strength '%s' was already exported", s.id);
			continue;
		}
		struct st_strength *slot = st_add_strength(ctx, doc);
		if (!slot) {
			in.nomem = true;
			break;
		}
		*slot = s;
	}
	for (size_t k = 0; k < in.n && !in.nomem; k++)
		if (!in.v[k].used)
			warn(&in, path(&in, k, ""), "%s%s%s is not part of the strengths format; left out",
			     *in.v[k].type ? in.v[k].type : "an entry without a resource", in.v[k].id ? "/" : "",
			     in.v[k].id ? in.v[k].id : "");
	if (in.nomem) {
		st_host->issue(ctx, CW_SEV_ERROR, "exception", NULL, "out of memory");
		return CW_NOMEM;
	}
	doc->array = doc->n_people != 1;
	return CW_OK;
}
