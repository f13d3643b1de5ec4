/* rp_fhir — a struct rp_set to a FHIR R4 transaction Bundle and back.
 *
 * To FHIR: per person a Patient, per goal a Goal, per plan a CarePlan; each
 * PUT under a deterministic id (uuid5 of the business identifier), so the
 * same document sent twice changes nothing.
 *
 * From FHIR: any Bundle (or one resource, which the core wraps). Each
 * Patient with an identity becomes a document; Goals join the document of
 * their subject, a CarePlan becomes its plan. Whatever the format cannot
 * hold is reported as a warning at its location (Bundle.entry[N].resource…),
 * never dropped in silence. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "recovery_plan.h"

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

/* Adds a host-made tree; a NULL (the host reported why) fails the mapping. */
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
	put_item(o, cJSON_AddArrayToObject(cc, "coding"), NULL, rp_host->make_coding(o->ctx, system, code, display));
	return cc;
}

static void extension(cJSON *r, const char *url, const char *value)
{
	cJSON *arr = cJSON_GetObjectItemCaseSensitive(r, "extension");
	if (!arr)
		arr = cJSON_AddArrayToObject(r, "extension");
	cJSON *x = cJSON_CreateObject();
	cJSON_AddStringToObject(x, "url", url);
	cJSON_AddStringToObject(x, "valueString", value);
	cJSON_AddItemToArray(arr, x);
}

static bool ident_id(struct out *o, const struct rp_ident *id, char out[CW_ID_SIZE])
{
	if (rp_host->make_id(o->ctx, id->system, id->value, out) != CW_OK) {
		o->failed = true;
		return false;
	}
	return true;
}

static cJSON *ref(struct out *o, const char *type, const char *id)
{
	cJSON *r = rp_host->make_reference(o->ctx, type, id, NULL);
	if (!r)
		o->failed = true;
	return r;
}

static void emit_patient(struct out *o, const struct rp_doc *d, const char *pid)
{
	cJSON *r = resource("Patient", pid, rp_cfg.profile_patient);
	if (d->pronouns)
		extension(r, rp_cfg.ext_pronouns, d->pronouns);
	if (d->identity)
		extension(r, rp_cfg.ext_identity, d->identity);
	put_item(o, cJSON_AddArrayToObject(r, "identifier"), NULL,
		 rp_host->make_identifier(o->ctx, d->person.system, d->person.value));
	if (d->name) {
		cJSON *n = cJSON_CreateObject();
		cJSON_AddStringToObject(n, "text", d->name);
		cJSON_AddItemToArray(cJSON_AddArrayToObject(r, "name"), n);
	}
	if (d->language) {
		cJSON *c = cJSON_CreateObject();
		cJSON_AddItemToObject(c, "language", concept(o, RP_BCP47, d->language, NULL));
		cJSON_AddBoolToObject(c, "preferred", true);
		cJSON_AddItemToArray(cJSON_AddArrayToObject(r, "communication"), c);
	}
	add(o, r, "Patient", pid);
}

static void emit_goal(struct out *o, const struct rp_goal *g, const char *gid, const char *pid)
{
	const struct rp_dimension *dim = &rp_dimensions[g->dimension];
	cJSON *r = resource("Goal", gid, rp_cfg.profile_goal);
	if (g->set_with)
		extension(r, rp_cfg.ext_set_with, g->set_with);
	put_item(o, cJSON_AddArrayToObject(r, "identifier"), NULL,
		 rp_host->make_identifier(o->ctx, g->id.system, g->id.value));
	cJSON_AddStringToObject(r, "lifecycleStatus", rp_goal_status[g->status].code);
	if (g->progress != RP_NONE)
		cJSON_AddItemToObject(r, "achievementStatus",
				      concept(o, RP_GOAL_ACHIEVEMENT, rp_progress[g->progress].code,
					      rp_progress[g->progress].display));
	cJSON *cat = cJSON_AddArrayToObject(r, "category");
	cJSON_AddItemToArray(cat, concept(o, rp_cfg.cs_dimension, dim->code, dim->display));
	if (dim->near_system)
		cJSON_AddItemToArray(cat, concept(o, dim->near_system, dim->near_code, dim->near_display));
	cJSON_AddStringToObject(cJSON_AddObjectToObject(r, "description"), "text", g->words);
	put_item(o, r, "subject", ref(o, "Patient", pid));
	if (g->target) {
		cJSON *t = cJSON_CreateObject();
		cJSON_AddStringToObject(t, "dueDate", g->target);
		cJSON_AddItemToArray(cJSON_AddArrayToObject(r, "target"), t);
	}
	put_item(o, r, "expressedBy", ref(o, "Patient", pid));
	if (g->addresses.n) {
		cJSON *a = cJSON_AddArrayToObject(r, "addresses");
		for (size_t i = 0; i < g->addresses.n; i++) {
			cJSON *x = cJSON_CreateObject();
			cJSON_AddStringToObject(x, "display", g->addresses.v[i]);
			cJSON_AddItemToArray(a, x);
		}
	}
	if (g->why) {
		cJSON *n = cJSON_CreateObject();
		cJSON_AddStringToObject(n, "text", g->why);
		cJSON_AddItemToArray(cJSON_AddArrayToObject(r, "note"), n);
	}
	add(o, r, "Goal", gid);
}

static cJSON *activity(struct out *o, const char *code, const char *display, const char *status, const char *text)
{
	cJSON *a = cJSON_CreateObject(), *d = cJSON_AddObjectToObject(a, "detail");
	cJSON_AddItemToObject(d, "code", concept(o, rp_cfg.cs_activity, code, display));
	cJSON_AddStringToObject(d, "status", status);
	cJSON_AddStringToObject(d, "description", text);
	return a;
}

static void emit_plan(struct out *o, const struct rp_doc *d, const char *pid, char (*gids)[CW_ID_SIZE])
{
	char id[CW_ID_SIZE];
	if (!ident_id(o, &d->plan.id, id))
		return;
	cJSON *r = resource("CarePlan", id, rp_cfg.profile_plan);
	put_item(o, cJSON_AddArrayToObject(r, "identifier"), NULL,
		 rp_host->make_identifier(o->ctx, d->plan.id.system, d->plan.id.value));
	cJSON_AddStringToObject(r, "status", rp_plan_status[d->plan.status].code);
	cJSON_AddStringToObject(r, "intent", "plan");
	if (d->plan.title)
		cJSON_AddStringToObject(r, "title", d->plan.title);
	put_item(o, r, "subject", ref(o, "Patient", pid));
	if (d->plan.created)
		cJSON_AddStringToObject(r, "created", d->plan.created);
	put_item(o, r, "author", ref(o, "Patient", pid));
	cJSON *info = NULL;
	for (size_t i = 0; i < d->n_goals; i++)
		for (size_t k = 0; k < d->goals[i].n_supports; k++) {
			const struct rp_support *s = &d->goals[i].supports[k];
			if (!info)
				info = cJSON_AddArrayToObject(r, "supportingInfo");
			cJSON *x = cJSON_CreateObject(), *ext = cJSON_CreateObject();
			cJSON_AddItemToArray(cJSON_AddArrayToObject(x, "extension"), ext);
			cJSON_AddStringToObject(ext, "url", rp_cfg.ext_support_for);
			put_item(o, ext, "valueReference", ref(o, "Goal", gids[i]));
			cJSON_AddStringToObject(x, "type", rp_support_kind[s->kind].display);
			cJSON_AddStringToObject(x, "display", s->name);
			cJSON_AddItemToArray(info, x);
		}
	if (d->n_goals) {
		cJSON *goals = cJSON_AddArrayToObject(r, "goal");
		for (size_t i = 0; i < d->n_goals; i++)
			put_item(o, goals, NULL, ref(o, "Goal", gids[i]));
	}
	cJSON *acts = NULL;
	for (size_t i = 0; i < d->n_goals; i++)
		for (size_t k = 0; k < d->goals[i].n_steps; k++) {
			const struct rp_step *s = &d->goals[i].steps[k];
			if (!acts)
				acts = cJSON_AddArrayToObject(r, "activity");
			cJSON *a = activity(o, RP_STEP_CODE, RP_STEP_DISPLAY, rp_step_status[s->status].code, s->text);
			cJSON *links = cJSON_AddArrayToObject(cJSON_GetObjectItemCaseSensitive(a, "detail"), "goal");
			put_item(o, links, NULL, ref(o, "Goal", gids[i]));
			cJSON_AddItemToArray(acts, a);
		}
	for (int s = 0; s < RP_SECTION_COUNT; s++)
		for (size_t k = 0; k < d->plan.items[s].n; k++) {
			if (!acts)
				acts = cJSON_AddArrayToObject(r, "activity");
			const struct rp_section_def *sd = &rp_sections[s];
			cJSON_AddItemToArray(acts, activity(o, sd->code, sd->display, sd->status, d->plan.items[s].v[k]));
		}
	add(o, r, "CarePlan", id);
}

enum cw_status rp_to_bundle(struct cw_ctx *ctx, const struct rp_set *set, cJSON **out)
{
	struct out o = {.ctx = ctx};
	cJSON *b = cJSON_CreateObject();
	if (!b) {
		rp_host->issue(ctx, CW_SEV_ERROR, "exception", NULL, "out of memory");
		return CW_NOMEM;
	}
	cJSON_AddStringToObject(b, "resourceType", "Bundle");
	cJSON_AddStringToObject(b, "type", "transaction");
	o.entries = cJSON_AddArrayToObject(b, "entry");
	for (size_t i = 0; i < set->n && !o.failed; i++) {
		const struct rp_doc *d = &set->docs[i];
		char pid[CW_ID_SIZE];
		char (*gids)[CW_ID_SIZE] = rp_host->alloc(ctx, (d->n_goals + 1) * sizeof *gids);
		if (!gids) {
			cJSON_Delete(b);
			rp_host->issue(ctx, CW_SEV_ERROR, "exception", NULL, "out of memory");
			return CW_NOMEM;
		}
		if (!ident_id(&o, &d->person, pid))
			break;
		emit_patient(&o, d, pid);
		for (size_t k = 0; k < d->n_goals && !o.failed; k++)
			if (ident_id(&o, &d->goals[k].id, gids[k]))
				emit_goal(&o, &d->goals[k], gids[k], pid);
		if (d->has_plan && !o.failed)
			emit_plan(&o, d, pid, gids);
	}
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
	bool used;  /* mapped, or reported */
	long doc;   /* the document of a Patient, or of a Goal's subject; -1 */
	long goal;  /* index of a Goal in its document's goals; -1 */
};

struct in {
	struct cw_ctx *ctx;
	struct res *v;
	size_t n;
	struct rp_set *set;
	bool nomem;
};

static const cJSON *get(const cJSON *o, const char *key) { return cJSON_GetObjectItemCaseSensitive(o, key); }

static const char *str(const cJSON *o, const char *key)
{
	const cJSON *v = get(o, key);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void warn(struct in *in, const char *where, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void warn(struct in *in, const char *where, const char *fmt, ...)
{
	char msg[600];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	rp_host->issue(in->ctx, CW_SEV_WARNING, "not-supported", where, "%s", msg);
}

/* "Bundle.entry[k].resource.<fmt…>", in the arena. */
static const char *path(struct in *in, size_t k, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static const char *path(struct in *in, size_t k, const char *fmt, ...)
{
	char sub[200], buf[300];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(sub, sizeof sub, fmt, ap);
	va_end(ap);
	snprintf(buf, sizeof buf, "Bundle.entry[%zu].resource%s%s", k, *sub ? "." : "", sub);
	char *c = rp_host->copy_string(in->ctx, buf);
	in->nomem |= !c;
	return c ? c : "Bundle";
}

/* The entry a reference points to when it has the given type, or -1. */
static long resolve(const struct in *in, const cJSON *reference, const char *type)
{
	const char *s = str(reference, "reference");
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

/* Warns about every member of entry k outside known (NULL-terminated). */
static void unmapped(struct in *in, size_t k, const char *const *known)
{
	const cJSON *m;
	cJSON_ArrayForEach(m, in->v[k].r) {
		bool ok = strcmp(m->string, "resourceType") == 0 || strcmp(m->string, "id") == 0;
		for (const char *const *s = known; *s && !ok; s++)
			ok = strcmp(*s, m->string) == 0;
		if (!ok && strcmp(m->string, "meta") == 0 && cJSON_IsObject(m)) {
			const cJSON *mm;
			cJSON_ArrayForEach(mm, m) {
				if (strcmp(mm->string, "profile") && strcmp(mm->string, "versionId") &&
				    strcmp(mm->string, "lastUpdated") && strcmp(mm->string, "source"))
					warn(in, path(in, k, "meta.%s", mm->string),
					     "%s.meta.%s is not carried by the recovery-plan format; left out", in->v[k].type,
					     mm->string);
			}
			ok = true;
		}
		if (!ok)
			warn(in, path(in, k, "%s", m->string), "%s.%s has no place in the recovery-plan format; left out",
			     in->v[k].type, m->string);
	}
}

/* Warns about every member of an element outside known. */
static void unmapped_in(struct in *in, size_t k, const cJSON *o, const char *at, const char *const *known)
{
	const cJSON *m;
	if (!cJSON_IsObject(o)) {
		warn(in, path(in, k, "%s", at), "%s is not a JSON object; left out", at);
		return;
	}
	cJSON_ArrayForEach(m, o) {
		bool ok = false;
		for (const char *const *s = known; *s && !ok; s++)
			ok = strcmp(*s, m->string) == 0;
		if (!ok)
			warn(in, path(in, k, "%s.%s", at, m->string), "%s.%s has no place in the recovery-plan format; "
			     "left out", at, m->string);
	}
}

/* The business identifier: the first with a usable system and value (the
 * others reported), else "Type/id" in the fallback system, with a warning.
 * False when there is neither. */
static bool identity(struct in *in, size_t k, struct rp_ident *id)
{
	const cJSON *it;
	size_t i = 0;
	bool found = false;
	cJSON_ArrayForEach(it, get(in->v[k].r, "identifier")) {
		const char *sys = str(it, "system"), *val = str(it, "value");
		if (!found && rp_is_uri(sys) && rp_is_text(val)) {
			static const char *const known[] = {"system", "value", NULL};
			char at[48];
			snprintf(at, sizeof at, "identifier[%zu]", i);
			unmapped_in(in, k, it, at, known);
			id->system = sys;
			id->value = val;
			found = true;
		} else {
			warn(in, path(in, k, "identifier[%zu]", i), "%s identifier left out: %s", in->v[k].type,
			     found ? "the format keeps one" : "it lacks an absolute system URI or a value");
		}
		i++;
	}
	if (found)
		return true;
	if (!in->v[k].id)
		return false;
	char buf[200];
	snprintf(buf, sizeof buf, "%s/%s", in->v[k].type, in->v[k].id);
	id->system = RP_FALLBACK_SYSTEM;
	id->value = rp_host->copy_string(in->ctx, buf);
	in->nomem |= !id->value;
	warn(in, path(in, k, "identifier"), "%s has no usable business identifier; '%s' in %s stands in for it",
	     in->v[k].type, buf, RP_FALLBACK_SYSTEM);
	return true;
}

/* An extension list: known URLs fill their slot with valueString; the rest
 * is reported. */
static void extensions(struct in *in, size_t k, const cJSON *list, const char *at, const char *const *urls,
		       const char **slots, size_t n)
{
	const cJSON *x;
	size_t i = 0;
	cJSON_ArrayForEach(x, list) {
		const char *u = str(x, "url"), *v = str(x, "valueString");
		bool taken = false;
		for (size_t j = 0; j < n && !taken; j++)
			if (rp_eq(u, urls[j]) && !slots[j] && rp_is_text(v)) {
				slots[j] = v;
				taken = true;
			}
		if (!taken)
			warn(in, path(in, k, "%s[%zu]", at, i), "extension %s is left out", u ? u : "(no url)");
		i++;
	}
}

static void fhir_patient(struct in *in, size_t k)
{
	static const char *const known[] = {"identifier", "name", "extension", "communication", NULL};
	const cJSON *r = in->v[k].r;
	in->v[k].used = true;
	struct rp_ident id = {0};
	if (!identity(in, k, &id)) {
		warn(in, path(in, k, "identifier"), "Patient left out: it has neither an identifier nor an id");
		return;
	}
	unmapped(in, k, known);
	struct rp_doc *d = rp_add_doc(in->ctx, in->set);
	if (!d) {
		in->nomem = true;
		return;
	}
	in->v[k].doc = (long)(in->set->n - 1);
	d->person = id;
	const char *urls[] = {rp_cfg.ext_pronouns, rp_cfg.ext_identity}, *slots[2] = {NULL, NULL};
	extensions(in, k, get(r, "extension"), "extension", urls, slots, 2);
	d->pronouns = slots[0];
	d->identity = slots[1];

	const cJSON *names = get(r, "name"), *n = cJSON_GetArrayItem(names, 0);
	if (cJSON_GetArraySize(names) > 1)
		warn(in, path(in, k, "name[1]"), "Patient: only the first name is kept");
	if (n) {
		static const char *const name_known[] = {"text", "given", "family", NULL};
		unmapped_in(in, k, n, "name[0]", name_known);
		if (rp_is_text(str(n, "text"))) {
			d->name = str(n, "text");
			if (get(n, "given") || get(n, "family"))
				warn(in, path(in, k, "name[0]"), "the name's parts are left out; its text is kept");
		} else {
			char buf[512] = "";
			size_t used = 0;
			const cJSON *g;
			cJSON_ArrayForEach(g, get(n, "given")) if (cJSON_IsString(g) && used < sizeof buf) used +=
				(size_t)snprintf(buf + used, sizeof buf - used, "%s%s", used ? " " : "", g->valuestring);
			if (str(n, "family") && used < sizeof buf)
				snprintf(buf + used, sizeof buf - used, "%s%s", used ? " " : "", str(n, "family"));
			if (rp_is_text(buf)) {
				d->name = rp_host->copy_string(in->ctx, buf);
				in->nomem |= !d->name;
			} else {
				warn(in, path(in, k, "name[0]"), "the name has no text; left out");
			}
		}
	}

	const cJSON *comms = get(r, "communication"), *c;
	size_t i = 0;
	cJSON_ArrayForEach(c, comms) {
		const cJSON *coding = cJSON_GetArrayItem(get(get(c, "language"), "coding"), 0);
		const char *code = rp_eq(str(coding, "system"), RP_BCP47) ? str(coding, "code") : NULL;
		bool first = !d->language && (cJSON_GetArraySize(comms) == 1 || cJSON_IsTrue(get(c, "preferred")));
		if (first && rp_is_language(code))
			d->language = code;
		else
			warn(in, path(in, k, "communication[%zu]", i), "language left out: the format keeps the one "
			     "preferred language, as a BCP 47 code");
		i++;
	}
}

static int section_of(const char *code)
{
	for (int s = 0; s < RP_SECTION_COUNT; s++)
		if (rp_eq(code, rp_sections[s].code))
			return s;
	return RP_NONE;
}

/* The dimension a category coding stands for: the local code, or the
 * nearest SDOH/PCO category (*near set). */
static int category_dimension(const cJSON *coding, bool *near)
{
	const char *sys = str(coding, "system"), *code = str(coding, "code");
	*near = false;
	if (rp_eq(sys, rp_cfg.cs_dimension))
		return rp_dimension(code);
	for (int i = 0; i < RP_DIMENSION_COUNT; i++)
		if (rp_dimensions[i].near_system && rp_eq(sys, rp_dimensions[i].near_system) &&
		    rp_eq(code, rp_dimensions[i].near_code)) {
			*near = true;
			return i;
		}
	return RP_NONE;
}

static void fhir_goal(struct in *in, size_t k)
{
	static const char *const known[] = {"identifier", "lifecycleStatus", "achievementStatus", "category",
					    "description", "subject", "target", "expressedBy", "addresses",
					    "note", "extension", NULL};
	const cJSON *r = in->v[k].r, *it;
	in->v[k].used = true;
	long pk = resolve(in, get(r, "subject"), "Patient");
	if (pk < 0 || in->v[pk].doc < 0) {
		warn(in, path(in, k, "subject"), "Goal left out: its subject is not a Patient in the Bundle");
		return;
	}
	struct rp_goal g;
	memset(&g, 0, sizeof g);
	g.dimension = g.status = g.progress = RP_NONE;
	bool ok = true;
	if (!identity(in, k, &g.id)) {
		warn(in, path(in, k, "identifier"), "Goal left out: it has neither an identifier nor an id");
		return;
	}
	unmapped(in, k, known);

	const char *ls = str(r, "lifecycleStatus");
	if ((g.status = rp_lookup(rp_goal_status, rp_goal_status_count, ls)) == RP_NONE) {
		warn(in, path(in, k, "lifecycleStatus"), "Goal left out: lifecycleStatus '%s' is not one the format "
		     "keeps", ls ? ls : "");
		ok = false;
	}

	const cJSON *ach = get(r, "achievementStatus");
	if (ach) {
		size_t i = 0;
		cJSON_ArrayForEach(it, get(ach, "coding")) {
			int p = rp_eq(str(it, "system"), RP_GOAL_ACHIEVEMENT)
					? rp_lookup(rp_progress, rp_progress_count, str(it, "code"))
					: RP_NONE;
			if (p != RP_NONE && g.progress == RP_NONE)
				g.progress = p;
			else
				warn(in, path(in, k, "achievementStatus.coding[%zu]", i), "achievement coding left out: the "
				     "format keeps one code of %s", RP_GOAL_ACHIEVEMENT);
			i++;
		}
		const char *t = str(ach, "text");
		if (t && !(g.progress != RP_NONE && strcmp(t, rp_progress[g.progress].display) == 0))
			warn(in, path(in, k, "achievementStatus.text"), "achievement text '%s' is left out", t);
	}

	size_t i = 0;
	bool inferred = false;
	const char *inferred_from = NULL;
	cJSON_ArrayForEach(it, get(r, "category")) {
		const cJSON *c;
		size_t j = 0;
		cJSON_ArrayForEach(c, get(it, "coding")) {
			bool near;
			int dim = category_dimension(c, &near);
			if (dim != RP_NONE && !near && (g.dimension == RP_NONE || inferred)) {
				g.dimension = dim;
				inferred = false;
			} else if (dim != RP_NONE && near && g.dimension == RP_NONE) {
				g.dimension = dim;
				inferred = true;
				inferred_from = path(in, k, "category[%zu].coding[%zu]", i, j);
			} else if (dim == RP_NONE || dim != g.dimension) {
				warn(in, path(in, k, "category[%zu].coding[%zu]", i, j),
				     "category %s|%s has no place in the format; left out",
				     str(c, "system") ? str(c, "system") : "", str(c, "code") ? str(c, "code") : "");
			}
			j++;
		}
		if (str(it, "text"))
			warn(in, path(in, k, "category[%zu].text", i), "category text is left out");
		i++;
	}
	if (g.dimension == RP_NONE) {
		warn(in, path(in, k, "category"), "Goal left out: no recovery dimension (%s) among its categories",
		     rp_cfg.cs_dimension);
		ok = false;
	} else if (inferred) {
		warn(in, inferred_from, "the recovery dimension '%s' is taken from this category",
		     rp_dimensions[g.dimension].code);
	}

	const cJSON *desc = get(r, "description");
	g.words = str(desc, "text");
	if (!rp_is_text(g.words)) {
		warn(in, path(in, k, "description"), "Goal left out: description.text (the person's own words) is "
		     "missing; a code never stands in for them");
		g.words = NULL;
		ok = false;
	}
	if (get(desc, "coding"))
		warn(in, path(in, k, "description.coding"), "the coded description is left out; the words are kept");

	if (resolve(in, get(r, "expressedBy"), "Patient") != pk)
		warn(in, path(in, k, "expressedBy"), "the format keeps goals as the person's own; %s",
		     get(r, "expressedBy") ? "who else expressed it is left out" : "no expressedBy was given");

	const cJSON *targets = get(r, "target"), *t = cJSON_GetArrayItem(targets, 0);
	if (cJSON_GetArraySize(targets) > 1)
		warn(in, path(in, k, "target[1]"), "only the first target is kept");
	if (t) {
		static const char *const target_known[] = {"dueDate", NULL};
		unmapped_in(in, k, t, "target[0]", target_known);
		const char *due = str(t, "dueDate");
		if (rp_is_date(due))
			g.target = due;
		else if (due)
			warn(in, path(in, k, "target[0].dueDate"), "dueDate '%s' is not a full date; left out", due);
	}

	const cJSON *addr = get(r, "addresses");
	size_t n_addr = (size_t)cJSON_GetArraySize(addr);
	g.addresses.v = rp_host->alloc(in->ctx, (n_addr + 1) * sizeof *g.addresses.v);
	in->nomem |= !g.addresses.v;
	i = 0;
	cJSON_ArrayForEach(it, addr) {
		const char *disp = str(it, "display");
		if (rp_is_text(disp) && g.addresses.v) {
			g.addresses.v[g.addresses.n++] = disp;
			if (get(it, "reference") || get(it, "identifier"))
				warn(in, path(in, k, "addresses[%zu]", i), "only the display of what the goal addresses is "
				     "kept");
		} else {
			warn(in, path(in, k, "addresses[%zu]", i), "addresses entry without a display; left out");
		}
		i++;
	}

	const cJSON *notes = get(r, "note"), *n0 = cJSON_GetArrayItem(notes, 0);
	if (cJSON_GetArraySize(notes) > 1)
		warn(in, path(in, k, "note[1]"), "only the first note is kept, as why the goal matters");
	if (n0) {
		static const char *const note_known[] = {"text", NULL};
		unmapped_in(in, k, n0, "note[0]", note_known);
		if (rp_is_text(str(n0, "text")))
			g.why = str(n0, "text");
	}

	const char *urls[] = {rp_cfg.ext_set_with}, *slots[1] = {NULL};
	extensions(in, k, get(r, "extension"), "extension", urls, slots, 1);
	g.set_with = slots[0];

	if (!ok)
		return;
	struct rp_doc *d = &in->set->docs[in->v[pk].doc];
	for (size_t m = 0; m < d->n_goals; m++)
		if (rp_eq(d->goals[m].id.system, g.id.system) && rp_eq(d->goals[m].id.value, g.id.value)) {
			warn(in, path(in, k, "identifier"), "Goal left out: another Goal of this person has the same "
			     "identifier");
			return;
		}
	struct rp_goal *slot = rp_add_goal(in->ctx, d);
	if (!slot) {
		in->nomem = true;
		return;
	}
	*slot = g;
	in->v[k].doc = in->v[pk].doc;
	in->v[k].goal = (long)(d->n_goals - 1);
}

/* The goal of document doc that reference points to, or NULL. */
static struct rp_goal *goal_of(struct in *in, const cJSON *reference, long doc)
{
	long gk = resolve(in, reference, "Goal");
	if (gk < 0 || in->v[gk].doc != doc || in->v[gk].goal < 0)
		return NULL;
	return &in->set->docs[doc].goals[in->v[gk].goal];
}

static bool push(struct in *in, void **arr, size_t *n, size_t *cap, size_t size, const void *item)
{
	void *p = rp_grow(in->ctx, *arr, *n, cap, size);
	if (!p) {
		in->nomem = true;
		return false;
	}
	*arr = p;
	memcpy((char *)p + *n * size, item, size);
	(*n)++;
	return true;
}

struct caps {
	size_t *steps, *supports; /* per goal */
	size_t items[RP_SECTION_COUNT];
};

static void fhir_activity(struct in *in, size_t k, long doc, size_t i, const cJSON *a, struct caps *caps)
{
	static const char *const act_known[] = {"detail", NULL};
	static const char *const detail_known[] = {"code", "status", "description", "goal", NULL};
	struct rp_doc *d = &in->set->docs[doc];
	char at[64];
	snprintf(at, sizeof at, "activity[%zu]", i);
	unmapped_in(in, k, a, at, act_known);
	const cJSON *det = get(a, "detail");
	if (!det) {
		warn(in, path(in, k, "%s", at), "activity left out: only activities with a detail are kept");
		return;
	}
	snprintf(at, sizeof at, "activity[%zu].detail", i);
	unmapped_in(in, k, det, at, detail_known);
	const char *text = str(det, "description");
	if (!rp_is_text(text)) {
		warn(in, path(in, k, "%s", at), "activity left out: it has no description");
		return;
	}
	const cJSON *codings = get(get(det, "code"), "coding"), *c;
	int section = RP_NONE;
	bool step = !codings;
	size_t j = 0;
	cJSON_ArrayForEach(c, codings) {
		bool local = rp_eq(str(c, "system"), rp_cfg.cs_activity);
		if (local && rp_eq(str(c, "code"), RP_STEP_CODE) && section == RP_NONE && !step)
			step = true;
		else if (local && section_of(str(c, "code")) != RP_NONE && section == RP_NONE && !step)
			section = section_of(str(c, "code"));
		else
			warn(in, path(in, k, "%s.code.coding[%zu]", at, j), "activity code %s|%s is left out",
			     str(c, "system") ? str(c, "system") : "", str(c, "code") ? str(c, "code") : "");
		j++;
	}
	if (get(get(det, "code"), "text"))
		warn(in, path(in, k, "%s.code.text", at), "activity code text is left out");
	if (section != RP_NONE) {
		if (get(det, "goal"))
			warn(in, path(in, k, "%s.goal", at), "a %s is not tied to a goal; the link is left out",
			     rp_sections[section].display);
		struct rp_strings *s = &d->plan.items[section];
		push(in, (void **)&s->v, &s->n, &caps->items[section], sizeof *s->v, &text);
		return;
	}
	if (!step)
		warn(in, path(in, k, "%s.code", at), "the activity is not one of the format's kinds; kept as a step");
	const char *st = str(det, "status");
	int status = rp_lookup(rp_step_status, rp_step_status_count, st);
	if (status == RP_NONE) {
		warn(in, path(in, k, "%s.status", at), "step left out: status '%s' is not one the format keeps",
		     st ? st : "");
		return;
	}
	struct rp_goal *g = NULL;
	const cJSON *gl;
	j = 0;
	cJSON_ArrayForEach(gl, get(det, "goal")) {
		struct rp_goal *x = goal_of(in, gl, doc);
		if (x && !g)
			g = x;
		else
			warn(in, path(in, k, "%s.goal[%zu]", at, j), "goal link left out: %s",
			     x ? "a step belongs to one goal" : "not a Goal of this person in the Bundle");
		j++;
	}
	if (!g) {
		warn(in, path(in, k, "%s", at), "step left out: it is not tied to a goal of this person");
		return;
	}
	size_t gi = (size_t)(g - d->goals);
	struct rp_step s = {.text = text, .status = status};
	push(in, (void **)&g->steps, &g->n_steps, &caps->steps[gi], sizeof s, &s);
}

static void fhir_support(struct in *in, size_t k, long doc, size_t i, const cJSON *info, struct caps *caps)
{
	static const char *const known[] = {"extension", "type", "display", "reference", NULL};
	struct rp_doc *d = &in->set->docs[doc];
	char at[64];
	snprintf(at, sizeof at, "supportingInfo[%zu]", i);
	unmapped_in(in, k, info, at, known);
	const char *type = str(info, "type");
	const char *reference = str(info, "reference");
	if (!type && reference) {
		for (size_t t = 0; t < rp_support_kind_count && !type; t++) {
			size_t n = strlen(rp_support_kind[t].display);
			if (strncmp(reference, rp_support_kind[t].display, n) == 0 && reference[n] == '/')
				type = rp_support_kind[t].display;
		}
	}
	if (reference)
		warn(in, path(in, k, "%s.reference", at), "the support's reference is left out; its display is kept");
	int kind = RP_NONE;
	for (size_t t = 0; t < rp_support_kind_count && type; t++)
		if (strcmp(type, rp_support_kind[t].display) == 0)
			kind = (int)t;
	const char *name = str(info, "display");
	struct rp_goal *g = NULL;
	const cJSON *x;

	size_t j = 0;
	cJSON_ArrayForEach(x, get(info, "extension")) {
		struct rp_goal *gx = rp_eq(str(x, "url"), rp_cfg.ext_support_for)
					     ? goal_of(in, get(x, "valueReference"), doc)
					     : NULL;
		if (gx && !g)
			g = gx;
		else
			warn(in, path(in, k, "%s.extension[%zu]", at, j), "extension left out: %s",
			     gx ? "a support is listed under one goal" : "not a link to a Goal of this person");
		j++;
	}
	if (kind == RP_NONE || !rp_is_text(name) || !g) {
		warn(in, path(in, k, "%s", at), "support left out: %s", kind == RP_NONE ? "it is not a RelatedPerson, "
		     "PractitionerRole or HealthcareService" : !rp_is_text(name) ? "it has no display"
		     : "it is not tied to a goal of this person");
		return;
	}
	size_t gi = (size_t)(g - d->goals);
	struct rp_support s = {.kind = kind, .name = name};
	push(in, (void **)&g->supports, &g->n_supports, &caps->supports[gi], sizeof s, &s);
}

static void fhir_plan(struct in *in, size_t k)
{
	static const char *const known[] = {"identifier", "status", "intent", "title", "subject", "created",
					    "author", "supportingInfo", "goal", "activity", NULL};
	const cJSON *r = in->v[k].r, *it;
	in->v[k].used = true;
	long pk = resolve(in, get(r, "subject"), "Patient");
	if (pk < 0 || in->v[pk].doc < 0) {
		warn(in, path(in, k, "subject"), "CarePlan left out: its subject is not a Patient in the Bundle");
		return;
	}
	long doc = in->v[pk].doc;
	struct rp_doc *d = &in->set->docs[doc];
	if (d->has_plan) {
		warn(in, path(in, k, "%s", ""), "CarePlan left out: the format keeps one plan per person");
		return;
	}
	struct rp_plan p;
	memset(&p, 0, sizeof p);
	if (!identity(in, k, &p.id)) {
		warn(in, path(in, k, "identifier"), "CarePlan left out: it has neither an identifier nor an id");
		return;
	}
	const char *st = str(r, "status");
	if ((p.status = rp_lookup(rp_plan_status, rp_plan_status_count, st)) == RP_NONE) {
		warn(in, path(in, k, "status"), "CarePlan left out: status '%s' is not one the format keeps",
		     st ? st : "");
		return;
	}
	unmapped(in, k, known);
	if (!rp_eq(str(r, "intent"), "plan"))
		warn(in, path(in, k, "intent"), "intent '%s' is left out: the format holds plans",
		     str(r, "intent") ? str(r, "intent") : "");
	p.title = rp_is_text(str(r, "title")) ? str(r, "title") : NULL;
	const char *created = str(r, "created");
	if (rp_is_date(created))
		p.created = created;
	else if (created)
		warn(in, path(in, k, "created"), "created '%s' is not a date YYYY-MM-DD; left out", created);
	if (get(r, "author") && resolve(in, get(r, "author"), "Patient") != pk)
		warn(in, path(in, k, "author"), "the format keeps plans written by the person; the author is left out");
	d->has_plan = true;
	d->plan = p;

	size_t i = 0;
	cJSON_ArrayForEach(it, get(r, "goal")) {
		if (!goal_of(in, it, doc))
			warn(in, path(in, k, "goal[%zu]", i), "goal reference left out: not a Goal of this person in the "
			     "Bundle that the format keeps");
		i++;
	}
	struct caps caps;
	memset(&caps, 0, sizeof caps);
	caps.steps = rp_host->alloc(in->ctx, (d->n_goals + 1) * sizeof *caps.steps);
	caps.supports = rp_host->alloc(in->ctx, (d->n_goals + 1) * sizeof *caps.supports);
	if (!caps.steps || !caps.supports) {
		in->nomem = true;
		return;
	}
	i = 0;
	cJSON_ArrayForEach(it, get(r, "activity")) fhir_activity(in, k, doc, i++, it, &caps);
	i = 0;
	cJSON_ArrayForEach(it, get(r, "supportingInfo")) fhir_support(in, k, doc, i++, it, &caps);
}

enum cw_status rp_from_bundle(struct cw_ctx *ctx, const cJSON *bundle, struct rp_set *set)
{
	struct in in = {.ctx = ctx, .set = set};
	const cJSON *entries = get(bundle, "entry"), *e;
	size_t n = (size_t)cJSON_GetArraySize(entries);
	in.v = rp_host->alloc(ctx, (n + 1) * sizeof *in.v);
	if (!in.v) {
		rp_host->issue(ctx, CW_SEV_ERROR, "exception", NULL, "out of memory");
		return CW_NOMEM;
	}
	cJSON_ArrayForEach(e, entries) {
		struct res *r = &in.v[in.n++];
		r->r = get(e, "resource");
		r->type = str(r->r, "resourceType") ? str(r->r, "resourceType") : "";
		r->id = str(r->r, "id");
		r->full = str(e, "fullUrl");
		r->doc = r->goal = -1;
	}
	static const char *const order[] = {"Patient", "Goal", "CarePlan"};
	for (size_t t = 0; t < 3 && !in.nomem; t++)
		for (size_t k = 0; k < in.n && !in.nomem; k++) {
			if (strcmp(in.v[k].type, order[t]) != 0)
				continue;
			if (t == 0)
				fhir_patient(&in, k);
			else if (t == 1)
				fhir_goal(&in, k);
			else
				fhir_plan(&in, k);
		}
	for (size_t k = 0; k < in.n && !in.nomem; k++)
		if (!in.v[k].used)
			warn(&in, path(&in, k, "%s", ""), "%s%s%s is not part of a recovery plan; left out",
			     *in.v[k].type ? in.v[k].type : "an entry without a resource", in.v[k].id ? "/" : "",
			     in.v[k].id ? in.v[k].id : "");
	if (in.nomem) {
		rp_host->issue(ctx, CW_SEV_ERROR, "exception", NULL, "out of memory");
		return CW_NOMEM;
	}
	set->array = set->n != 1;
	return CW_OK;
}
