/* rp_fhir — a struct rp_set to a FHIR R4 transaction Bundle and back.
 *
 * To FHIR: per person a Patient, per goal a Goal, per plan a CarePlan; each
 * PUT under a deterministic id (plugkit's rule: the Patient's from the
 * person's identifier, the others' from that Patient and their business
 * identifier), so the same document sent twice changes nothing and two
 * people's goal G-1 stay two Goals.
 *
 * From FHIR: any Bundle (or one resource, which the core wraps). Each
 * Patient with an identity becomes a document; Goals join the document of
 * their subject, a CarePlan becomes its plan. Whatever the format cannot
 * hold is reported as a warning at its location (Bundle.entry[N].resource…),
 * never dropped in silence. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "recovery_plan.h"

/* ---------------------------------------------------------- to FHIR */

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

/* {url, value[type]: v} appended to list. */
static void sub_ext(cJSON *list, const char *url, const char *type, const char *v)
{
	cJSON *x = cJSON_CreateObject();
	cJSON_AddStringToObject(x, "url", url);
	cJSON_AddStringToObject(x, type, v);
	cJSON_AddItemToArray(list, x);
}

/* The person's diagnosis language as the diagnosis-language extension:
 * style (valueCode), then words {code (valueCode), text (valueString)}. */
static void lang_extension(cJSON *r, const struct rp_doc *d)
{
	cJSON *arr = cJSON_GetObjectItemCaseSensitive(r, "extension");
	if (!arr)
		arr = cJSON_AddArrayToObject(r, "extension");
	cJSON *x = cJSON_CreateObject();
	cJSON_AddStringToObject(x, "url", rp_cfg.ext_diagnosis_language);
	cJSON *subs = cJSON_AddArrayToObject(x, "extension");
	if (d->lang_style != RP_NONE)
		sub_ext(subs, "style", "valueCode", rp_lang_style[d->lang_style].code);
	for (size_t i = 0; i < d->n_words; i++) {
		cJSON *w = cJSON_CreateObject();
		cJSON_AddStringToObject(w, "url", "words");
		cJSON *ws = cJSON_AddArrayToObject(w, "extension");
		sub_ext(ws, "code", "valueCode", d->words[i].code);
		sub_ext(ws, "text", "valueString", d->words[i].text);
		cJSON_AddItemToArray(subs, w);
	}
	cJSON_AddItemToArray(arr, x);
}

static void emit_patient(struct pk_out *o, const struct rp_doc *d, const char *pid)
{
	cJSON *r = pk_resource("Patient", pid, rp_cfg.profile_patient);
	if (d->pronouns)
		extension(r, rp_cfg.ext_pronouns, d->pronouns);
	if (d->identity)
		extension(r, rp_cfg.ext_identity, d->identity);
	if (d->has_lang)
		lang_extension(r, d);
	pk_put_item(o, cJSON_AddArrayToObject(r, "identifier"), NULL,
		 rp_host->make_identifier(o->ctx, d->person.system, d->person.value));
	if (d->name)
		pk_add_text(r, "name", d->name);
	if (d->language) {
		cJSON *c = cJSON_CreateObject();
		cJSON_AddItemToObject(c, "language", pk_concept(o, RP_BCP47, d->language, NULL));
		cJSON_AddBoolToObject(c, "preferred", true);
		cJSON_AddItemToArray(cJSON_AddArrayToObject(r, "communication"), c);
	}
	pk_add_put(o, r, "Patient", pid);
}

/* The person's acceptance (R4 goal-acceptance: individual, status) and the
 * goal attainment levels (PCO: level from LL6900-6, progressText). */
static void goal_extensions(struct pk_out *o, cJSON *r, const struct rp_goal *g, const char *pid)
{
	if (g->acceptance == RP_NONE && !g->n_levels)
		return;
	cJSON *arr = cJSON_GetObjectItemCaseSensitive(r, "extension");
	if (!arr)
		arr = cJSON_AddArrayToObject(r, "extension");
	if (g->acceptance != RP_NONE) {
		cJSON *x = cJSON_CreateObject(), *subs;
		cJSON_AddStringToObject(x, "url", RP_GOAL_ACCEPTANCE);
		subs = cJSON_AddArrayToObject(x, "extension");
		cJSON *ind = cJSON_CreateObject();
		cJSON_AddStringToObject(ind, "url", "individual");
		pk_put_item(o, ind, "valueReference", pk_reference(o, "Patient", pid));
		cJSON_AddItemToArray(subs, ind);
		sub_ext(subs, "status", "valueCode", rp_acceptance[g->acceptance].code);
		cJSON_AddItemToArray(arr, x);
	}
	for (size_t i = 0; i < g->n_levels; i++) {
		const struct rp_gas_level *lv = &rp_gas_levels[g->levels[i].level + 2];
		cJSON *x = cJSON_CreateObject(), *subs;
		cJSON_AddStringToObject(x, "url", RP_PCO_GAS);
		subs = cJSON_AddArrayToObject(x, "extension");
		cJSON *l = cJSON_CreateObject();
		cJSON_AddStringToObject(l, "url", "level");
		pk_put_item(o, l, "valueCoding", o->host->make_coding(o->ctx, RP_LOINC, lv->code, lv->display));
		cJSON_AddItemToArray(subs, l);
		sub_ext(subs, "progressText", "valueString", g->levels[i].text);
		cJSON_AddItemToArray(arr, x);
	}
}

static void emit_goal(struct pk_out *o, const struct rp_goal *g, const char *gid, const char *pid)
{
	const struct rp_dimension *dim = g->dimension == RP_UNASSIGNED ? NULL : &rp_dimensions[g->dimension];
	/* a goal without a dimension does not meet the recovery-goal profile */
	cJSON *r = pk_resource("Goal", gid, dim ? rp_cfg.profile_goal : NULL);
	if (g->set_with)
		extension(r, rp_cfg.ext_set_with, g->set_with);
	pk_put_item(o, cJSON_AddArrayToObject(r, "identifier"), NULL,
		 rp_host->make_identifier(o->ctx, g->id.system, g->id.value));
	cJSON_AddStringToObject(r, "lifecycleStatus", rp_goal_status[g->status].code);
	if (g->progress != RP_NONE)
		cJSON_AddItemToObject(r, "achievementStatus",
				      pk_concept(o, RP_GOAL_ACHIEVEMENT, rp_progress[g->progress].code,
						 rp_progress[g->progress].display));
	if (dim) {
		cJSON *cat = cJSON_AddArrayToObject(r, "category");
		cJSON_AddItemToArray(cat, pk_concept(o, rp_cfg.cs_dimension, dim->code, dim->display));
		if (dim->near_system)
			cJSON_AddItemToArray(cat, pk_concept(o, dim->near_system, dim->near_code, dim->near_display));
	}
	cJSON_AddStringToObject(cJSON_AddObjectToObject(r, "description"), "text", g->words);
	pk_put_item(o, r, "subject", pk_reference(o, "Patient", pid));
	if (g->start)
		cJSON_AddStringToObject(r, "startDate", g->start);
	if (g->target) {
		cJSON *t = cJSON_CreateObject();
		cJSON_AddStringToObject(t, "dueDate", g->target);
		cJSON_AddItemToArray(cJSON_AddArrayToObject(r, "target"), t);
	}
	if (g->expressed_by == RP_BY_SELF) {
		pk_put_item(o, r, "expressedBy", pk_reference(o, "Patient", pid));
	} else if (g->expressed_by != RP_BY_UNKNOWN) {
		/* who, by role: the format names no one */
		cJSON *by = cJSON_AddObjectToObject(r, "expressedBy");
		cJSON_AddStringToObject(by, "type", rp_expressed_by[g->expressed_by].display);
		cJSON_AddStringToObject(by, "display", rp_expressed_by_display[g->expressed_by]);
	}
	goal_extensions(o, r, g, pid);
	if (g->addresses.n) {
		cJSON *a = cJSON_AddArrayToObject(r, "addresses");
		for (size_t i = 0; i < g->addresses.n; i++) {
			cJSON *x = cJSON_CreateObject();
			cJSON_AddStringToObject(x, "display", g->addresses.v[i]);
			cJSON_AddItemToArray(a, x);
		}
	}
	if (g->why)
		pk_add_text(r, "note", g->why);
	pk_add_put(o, r, "Goal", gid);
}

static cJSON *activity(struct pk_out *o, const char *code, const char *display, const char *status, const char *text)
{
	cJSON *a = cJSON_CreateObject(), *d = cJSON_AddObjectToObject(a, "detail");
	cJSON_AddItemToObject(d, "code", pk_concept(o, rp_cfg.cs_activity, code, display));
	cJSON_AddStringToObject(d, "status", status);
	cJSON_AddStringToObject(d, "description", text);
	return a;
}

/* The contained resource of crisis contact i: a RelatedPerson (who needs
 * the Patient) or a HealthcareService, with the phone as telecom. */
static cJSON *contact_resource(struct pk_out *o, const char *pid, const char *role, const struct rp_contact *ct,
			       const char *cid)
{
	cJSON *r = pk_resource(rp_contact_kind[ct->kind].display, cid, NULL);
	if (ct->kind == 0) {
		pk_put_item(o, r, "patient", pk_reference(o, "Patient", pid));
		pk_add_text(r, "relationship", role);
	} else {
		cJSON_AddStringToObject(r, "name", role);
	}
	if (ct->phone) {
		cJSON *t = cJSON_CreateObject();
		cJSON_AddStringToObject(t, "system", "phone");
		cJSON_AddStringToObject(t, "value", ct->phone);
		cJSON_AddItemToArray(cJSON_AddArrayToObject(r, "telecom"), t);
	}
	return r;
}

/* The advance directive as a contained DocumentReference (LOINC 42348-3
 * "Advance directives", as US Core's ADI DocumentReference types it). */
static cJSON *directive_resource(struct pk_out *o, const char *pid, const struct rp_directive *ad)
{
	cJSON *r = pk_resource("DocumentReference", RP_CONTAINED_DIRECTIVE, NULL);
	cJSON_AddStringToObject(r, "status", "current");
	cJSON_AddItemToObject(r, "type", pk_concept(o, RP_LOINC, RP_LOINC_ADVANCE_DIRECTIVE, "Advance directives"));
	pk_put_item(o, r, "subject", pk_reference(o, "Patient", pid));
	cJSON *att = cJSON_CreateObject();
	cJSON_AddStringToObject(att, "url", ad->url);
	cJSON_AddStringToObject(att, "title", ad->title);
	if (ad->date)
		cJSON_AddStringToObject(att, "creation", ad->date);
	cJSON *c = cJSON_CreateObject();
	cJSON_AddItemToObject(c, "attachment", att);
	cJSON_AddItemToArray(cJSON_AddArrayToObject(r, "content"), c);
	return r;
}

static cJSON *local_ref(const char *id, const char *display)
{
	char buf[80];
	snprintf(buf, sizeof buf, "#%s", id);
	cJSON *x = cJSON_CreateObject();
	cJSON_AddStringToObject(x, "reference", buf);
	cJSON_AddStringToObject(x, "display", display);
	return x;
}

static void emit_plan(struct pk_out *o, const struct rp_doc *d, const char *pid, char (*gids)[CW_ID_SIZE])
{
	char id[CW_ID_SIZE];
	if (!pk_item_id(o, pid, "CarePlan", &d->plan.id, id))
		return;
	const struct rp_plan *pl = &d->plan;
	cJSON *r = pk_resource("CarePlan", id, rp_cfg.profile_plan);
	cJSON *contained = NULL;
	for (size_t k = 0; pl->contacts && k < pl->items[RP_CONTACTS].n; k++)
		if (pl->contacts[k].kind != RP_NONE) {
			char cid[32];
			snprintf(cid, sizeof cid, "contact-%zu", k + 1);
			if (!contained)
				contained = cJSON_AddArrayToObject(r, "contained");
			cJSON_AddItemToArray(contained, contact_resource(o, pid, pl->items[RP_CONTACTS].v[k],
									 &pl->contacts[k], cid));
		}
	if (pl->has_directive) {
		if (!contained)
			contained = cJSON_AddArrayToObject(r, "contained");
		cJSON_AddItemToArray(contained, directive_resource(o, pid, &pl->directive));
	}
	pk_put_item(o, cJSON_AddArrayToObject(r, "identifier"), NULL,
		 rp_host->make_identifier(o->ctx, d->plan.id.system, d->plan.id.value));
	cJSON_AddStringToObject(r, "status", rp_plan_status[d->plan.status].code);
	cJSON_AddStringToObject(r, "intent", "plan");
	if (d->plan.title)
		cJSON_AddStringToObject(r, "title", d->plan.title);
	pk_put_item(o, r, "subject", pk_reference(o, "Patient", pid));
	if (d->plan.created)
		cJSON_AddStringToObject(r, "created", d->plan.created);
	pk_put_item(o, r, "author", pk_reference(o, "Patient", pid));
	cJSON *info = NULL;
	for (size_t i = 0; i < d->n_goals; i++)
		for (size_t k = 0; k < d->goals[i].n_supports; k++) {
			const struct rp_support *s = &d->goals[i].supports[k];
			if (!info)
				info = cJSON_AddArrayToObject(r, "supportingInfo");
			cJSON *x = cJSON_CreateObject(), *ext = cJSON_CreateObject();
			cJSON_AddItemToArray(cJSON_AddArrayToObject(x, "extension"), ext);
			cJSON_AddStringToObject(ext, "url", rp_cfg.ext_support_for);
			pk_put_item(o, ext, "valueReference", pk_reference(o, "Goal", gids[i]));
			cJSON_AddStringToObject(x, "type", rp_support_kind[s->kind].display);
			cJSON_AddStringToObject(x, "display", s->name);
			cJSON_AddItemToArray(info, x);
		}
	if (pl->has_directive) {
		if (!info)
			info = cJSON_AddArrayToObject(r, "supportingInfo");
		cJSON *x = local_ref(RP_CONTAINED_DIRECTIVE, pl->directive.title);
		cJSON_AddStringToObject(x, "type", "DocumentReference");
		cJSON_AddItemToArray(info, x);
	}
	if (d->n_goals) {
		cJSON *goals = cJSON_AddArrayToObject(r, "goal");
		for (size_t i = 0; i < d->n_goals; i++)
			pk_put_item(o, goals, NULL, pk_reference(o, "Goal", gids[i]));
	}
	cJSON *acts = NULL;
	for (size_t i = 0; i < d->n_goals; i++)
		for (size_t k = 0; k < d->goals[i].n_steps; k++) {
			const struct rp_step *s = &d->goals[i].steps[k];
			if (!acts)
				acts = cJSON_AddArrayToObject(r, "activity");
			cJSON *a = activity(o, RP_STEP_CODE, RP_STEP_DISPLAY, rp_step_status[s->status].code, s->text);
			cJSON *links = cJSON_AddArrayToObject(cJSON_GetObjectItemCaseSensitive(a, "detail"), "goal");
			pk_put_item(o, links, NULL, pk_reference(o, "Goal", gids[i]));
			cJSON_AddItemToArray(acts, a);
		}
	for (int s = 0; s < RP_SECTION_COUNT; s++)
		for (size_t k = 0; k < pl->items[s].n; k++) {
			if (!acts)
				acts = cJSON_AddArrayToObject(r, "activity");
			const struct rp_section_def *sd = &rp_sections[s];
			cJSON *a = activity(o, sd->code, sd->display, sd->status, pl->items[s].v[k]);
			if (s == RP_CONTACTS && pl->contacts && pl->contacts[k].kind != RP_NONE) {
				char cid[32];
				snprintf(cid, sizeof cid, "contact-%zu", k + 1);
				cJSON_AddItemToArray(
					cJSON_AddArrayToObject(cJSON_GetObjectItemCaseSensitive(a, "detail"),
							       "performer"),
					local_ref(cid, pl->items[s].v[k]));
			}
			cJSON_AddItemToArray(acts, a);
		}
	pk_add_put(o, r, "CarePlan", id);
}

/* A flag as the Observation it stands for: PHQ-9 item 9 (LOINC 44260-8),
 * category survey, the answer as valueInteger on the date. */
static void emit_flag(struct pk_out *o, const struct rp_flag *f, const char *pid)
{
	char id[CW_ID_SIZE], key[80];
	snprintf(key, sizeof key, "Observation|%s|%s", rp_flag_source[f->source].code, f->date);
	if (!pk_owned_id(o, pid, key, id))
		return;
	cJSON *r = pk_resource("Observation", id, NULL);
	/* its business identifier: the Patient's and the flag's (one a day) */
	char value[CW_ID_SIZE + 80];
	snprintf(value, sizeof value, "%s|%s|%s", pid, rp_flag_source[f->source].code, f->date);
	pk_put_item(o, cJSON_AddArrayToObject(r, "identifier"), NULL,
		    rp_host->make_identifier(o->ctx, rp_cfg.ns_flag, value));
	cJSON_AddStringToObject(r, "status", "final");
	cJSON_AddItemToArray(
		cJSON_AddArrayToObject(r, "category"),
		pk_concept(o, "http://terminology.hl7.org/CodeSystem/observation-category", "survey", "Survey"));
	cJSON_AddItemToObject(r, "code", pk_concept(o, RP_LOINC, RP_LOINC_PHQ9_ITEM9, NULL));
	pk_put_item(o, r, "subject", pk_reference(o, "Patient", pid));
	cJSON_AddStringToObject(r, "effectiveDateTime", f->date);
	cJSON_AddNumberToObject(r, "valueInteger", f->answer);
	pk_add_put(o, r, "Observation", id);
}

enum cw_status rp_to_bundle(struct cw_ctx *ctx, const struct rp_set *set, cJSON **out)
{
	struct pk_out o = {.host = rp_host, .ctx = ctx};
	cJSON *b = pk_transaction(&o);
	if (!b) {
		rp_host->issue(ctx, CW_SEV_ERROR, "exception", NULL, "out of memory");
		return CW_NOMEM;
	}
	for (size_t i = 0; i < set->n && !o.failed; i++) {
		const struct rp_doc *d = &set->docs[i];
		char pid[CW_ID_SIZE];
		char (*gids)[CW_ID_SIZE] = rp_host->alloc(ctx, (d->n_goals + 1) * sizeof *gids);
		if (!gids) {
			cJSON_Delete(b);
			rp_host->issue(ctx, CW_SEV_ERROR, "exception", NULL, "out of memory");
			return CW_NOMEM;
		}
		if (!pk_patient_id(&o, &d->person, pid))
			break;
		emit_patient(&o, d, pid);
		for (size_t k = 0; k < d->n_goals && !o.failed; k++)
			if (pk_item_id(&o, pid, "Goal", &d->goals[k].id, gids[k]))
				emit_goal(&o, &d->goals[k], gids[k], pid);
		if (d->has_plan && !o.failed)
			emit_plan(&o, d, pid, gids);
		for (size_t k = 0; k < d->n_flags && !o.failed; k++)
			emit_flag(&o, &d->flags[k], pid);
	}
	return pk_close(&o, b, out);
}

/* -------------------------------------------------------- from FHIR */

struct res {
	struct pk_entry e;
	long doc;  /* the document of a Patient, or of a Goal's subject; -1 */
	long goal; /* index of a Goal in its document's goals; -1 */
};

struct in {
	struct pk_in pk;
	struct res *v; /* pk.entries */
	struct rp_set *set;
};

/* Warns about every member of an element outside known. */
static void unmapped_in(struct in *in, size_t k, const cJSON *o, const char *at, const char *const *known)
{
	const cJSON *m;
	if (!cJSON_IsObject(o)) {
		pk_warn(&in->pk, pk_path(&in->pk, k, "%s", at), "%s is not a JSON object; left out", at);
		return;
	}
	cJSON_ArrayForEach(m, o) {
		bool ok = false;
		for (const char *const *s = known; *s && !ok; s++)
			ok = strcmp(*s, m->string) == 0;
		if (!ok)
			pk_warn(&in->pk, pk_path(&in->pk, k, "%s.%s", at, m->string),
				"%s.%s has no place in the recovery-plan format; left out", at, m->string);
	}
}

/* The business identifier: the first with a usable system and value (the
 * others reported), else "Type/id" in the fallback system, with a warning.
 * False when there is neither. */
static bool identity(struct in *in, size_t k, struct pk_ident *id)
{
	const cJSON *it;
	size_t i = 0;
	bool found = false;
	cJSON_ArrayForEach(it, pk_get(in->v[k].e.r, "identifier")) {
		const char *sys = pk_str(it, "system"), *val = pk_str(it, "value");
		if (!found && pk_is_uri(sys, false) && pk_is_text(val)) {
			static const char *const known[] = {"system", "value", NULL};
			char at[48];
			snprintf(at, sizeof at, "identifier[%zu]", i);
			unmapped_in(in, k, it, at, known);
			id->system = sys;
			id->value = val;
			found = true;
		} else {
			pk_warn(&in->pk, pk_path(&in->pk, k, "identifier[%zu]", i), "%s identifier left out: %s",
				in->v[k].e.type,
				found ? "the format keeps one" : "it lacks an absolute system URI or a value");
		}
		i++;
	}
	if (found)
		return true;
	if (!in->v[k].e.id)
		return false;
	char buf[200];
	snprintf(buf, sizeof buf, "%s/%s", in->v[k].e.type, in->v[k].e.id);
	id->system = RP_FALLBACK_SYSTEM;
	id->value = rp_host->copy_string(in->pk.ctx, buf);
	in->pk.nomem |= !id->value;
	pk_warn(&in->pk, pk_path(&in->pk, k, "identifier"),
		"%s has no usable business identifier; '%s' in %s stands in for it", in->v[k].e.type, buf,
		RP_FALLBACK_SYSTEM);
	return true;
}

/* An extension list: known URLs fill their slot with valueString; the rest
 * is reported. */
/* The diagnosis-language extension x of entry k (at "extension[i]") into d:
 * what the format cannot carry is reported, the rest kept. */
static void fhir_lang(struct in *in, size_t k, const cJSON *x, size_t i, struct rp_doc *d)
{
	if (d->has_lang) {
		pk_warn(&in->pk, pk_path(&in->pk, k, "extension[%zu]", i), "a second diagnosis-language is left out");
		return;
	}
	d->has_lang = true;
	const cJSON *subs = pk_get(x, "extension"), *y;
	size_t words = 0, j = 0;
	cJSON_ArrayForEach(y, subs) words += pk_eq(pk_str(y, "url"), "words");
	d->words = words ? rp_host->alloc(in->pk.ctx, words * sizeof *d->words) : NULL;
	in->pk.nomem |= words && !d->words;
	cJSON_ArrayForEach(y, subs)
	{
		const char *u = pk_str(y, "url");
		int style = pk_lookup(rp_lang_style, rp_lang_style_count, pk_str(y, "valueCode"));
		if (pk_eq(u, "style") && style >= 0 && d->lang_style == RP_NONE) {
			d->lang_style = style;
		} else if (pk_eq(u, "words") && d->words) {
			const char *code = NULL, *text = NULL;
			const cJSON *z;
			cJSON_ArrayForEach(z, pk_get(y, "extension"))
			{
				if (pk_eq(pk_str(z, "url"), "code"))
					code = pk_str(z, "valueCode");
				else if (pk_eq(pk_str(z, "url"), "text"))
					text = pk_str(z, "valueString");
			}
			bool dup = false;
			for (size_t w = 0; code && w < d->n_words; w++)
				dup |= !strcmp(d->words[w].code, code);
			if (rp_is_code(code) && pk_is_text(text) && strlen(text) <= 200 && !dup)
				d->words[d->n_words++] = (struct rp_word){code, text};
			else
				pk_warn(&in->pk, pk_path(&in->pk, k, "extension[%zu].extension[%zu]", i, j),
					"diagnosis-language words left out: a code (1 to 32 letters, digits, '.' or "
					"'-') "
					"once, and text of 1 to 200 bytes, are needed");
		} else {
			pk_warn(&in->pk, pk_path(&in->pk, k, "extension[%zu].extension[%zu]", i, j),
				"diagnosis-language part %s is left out", u ? u : "(no url)");
		}
		j++;
	}
}

/* A Goal being read, for the extensions that belong to it. */
struct goal_ctx {
	struct rp_goal *g;
	long pk; /* its person's entry */
};

static void goal_acceptance(struct in *in, size_t k, const cJSON *x, size_t i, long pk, struct rp_goal *g);
static void goal_level(struct in *in, size_t k, const cJSON *x, size_t i, struct rp_goal *g);

static void extensions(struct in *in, size_t k, const cJSON *list, const char *at, const char *const *urls,
		       const char **slots, size_t n, struct rp_doc *d, const struct goal_ctx *gc)
{
	const cJSON *x;
	size_t i = 0;
	cJSON_ArrayForEach(x, list) {
		const char *u = pk_str(x, "url"), *v = pk_str(x, "valueString");
		bool taken = false;
		if (d && pk_eq(u, rp_cfg.ext_diagnosis_language)) {
			fhir_lang(in, k, x, i++, d);
			continue;
		}
		if (gc && pk_eq(u, RP_GOAL_ACCEPTANCE)) {
			goal_acceptance(in, k, x, i++, gc->pk, gc->g);
			continue;
		}
		if (gc && pk_eq(u, RP_PCO_GAS)) {
			goal_level(in, k, x, i++, gc->g);
			continue;
		}
		for (size_t j = 0; j < n && !taken; j++)
			if (pk_eq(u, urls[j]) && !slots[j] && pk_is_text(v)) {
				slots[j] = v;
				taken = true;
			}
		if (!taken)
			pk_warn(&in->pk, pk_path(&in->pk, k, "%s[%zu]", at, i), "extension %s is left out",
				u ? u : "(no url)");
		i++;
	}
}

static void fhir_patient(struct in *in, size_t k)
{
	static const char *const known[] = {"identifier", "name", "extension", "communication", NULL};
	const cJSON *r = in->v[k].e.r;
	in->v[k].e.used = true;
	struct pk_ident id = {0};
	if (!identity(in, k, &id)) {
		pk_warn(&in->pk, pk_path(&in->pk, k, "identifier"),
			"Patient left out: it has neither an identifier nor an id");
		return;
	}
	pk_unmapped(&in->pk, k, known);
	struct rp_doc *d = rp_add_doc(in->pk.ctx, in->set);
	if (!d) {
		in->pk.nomem = true;
		return;
	}
	in->v[k].doc = (long)(in->set->n - 1);
	d->person = id;
	const char *urls[] = {rp_cfg.ext_pronouns, rp_cfg.ext_identity}, *slots[2] = {NULL, NULL};
	d->lang_style = RP_NONE;
	extensions(in, k, pk_get(r, "extension"), "extension", urls, slots, 2, d, NULL);
	d->pronouns = slots[0];
	d->identity = slots[1];

	const cJSON *names = pk_get(r, "name"), *n = cJSON_GetArrayItem(names, 0);
	if (cJSON_GetArraySize(names) > 1)
		pk_warn(&in->pk, pk_path(&in->pk, k, "name[1]"), "Patient: only the first name is kept");
	if (n) {
		static const char *const name_known[] = {"text", "given", "family", NULL};
		unmapped_in(in, k, n, "name[0]", name_known);
		if (pk_is_text(pk_str(n, "text"))) {
			d->name = pk_str(n, "text");
			if (pk_get(n, "given") || pk_get(n, "family"))
				pk_warn(&in->pk, pk_path(&in->pk, k, "name[0]"),
					"the name's parts are left out; its text is kept");
		} else {
			char buf[512];
			pk_join_name(n, buf, sizeof buf);
			if (pk_is_text(buf)) {
				d->name = rp_host->copy_string(in->pk.ctx, buf);
				in->pk.nomem |= !d->name;
			} else {
				pk_warn(&in->pk, pk_path(&in->pk, k, "name[0]"), "the name has no text; left out");
			}
		}
	}

	const cJSON *comms = pk_get(r, "communication"), *c;
	size_t i = 0;
	cJSON_ArrayForEach(c, comms) {
		const cJSON *coding = cJSON_GetArrayItem(pk_get(pk_get(c, "language"), "coding"), 0);
		const char *code = pk_eq(pk_str(coding, "system"), RP_BCP47) ? pk_str(coding, "code") : NULL;
		bool first = !d->language && (cJSON_GetArraySize(comms) == 1 || cJSON_IsTrue(pk_get(c, "preferred")));
		if (first && rp_is_language(code))
			d->language = code;
		else
			pk_warn(&in->pk, pk_path(&in->pk, k, "communication[%zu]", i),
				"language left out: the format keeps the one preferred language, as a BCP 47 code");
		i++;
	}
}

static int section_of(const char *code)
{
	for (int s = 0; s < RP_SECTION_COUNT; s++)
		if (pk_eq(code, rp_sections[s].code))
			return s;
	return RP_NONE;
}

/* The dimension a category coding stands for: the local code, or the
 * nearest SDOH/PCO category (*near set). */
static int category_dimension(const cJSON *coding, bool *near)
{
	const char *sys = pk_str(coding, "system"), *code = pk_str(coding, "code");
	*near = false;
	if (pk_eq(sys, rp_cfg.cs_dimension))
		return rp_dimension(code);
	for (int i = 0; i < RP_DIMENSION_COUNT; i++)
		if (rp_dimensions[i].near_system && pk_eq(sys, rp_dimensions[i].near_system) &&
		    pk_eq(code, rp_dimensions[i].near_code)) {
			*near = true;
			return i;
		}
	return RP_NONE;
}

/* achievementStatus: one code of the format's achievement system. */
static void goal_progress(struct in *in, size_t k, const cJSON *r, struct rp_goal *g)
{
	const cJSON *it;
	const cJSON *ach = pk_get(r, "achievementStatus");
	if (ach) {
		size_t i = 0;
		cJSON_ArrayForEach(it, pk_get(ach, "coding")) {
			int p = pk_eq(pk_str(it, "system"), RP_GOAL_ACHIEVEMENT)
					? pk_lookup(rp_progress, rp_progress_count, pk_str(it, "code"))
					: RP_NONE;
			if (p != RP_NONE && g->progress == RP_NONE)
				g->progress = p;
			else
				pk_warn(&in->pk, pk_path(&in->pk, k, "achievementStatus.coding[%zu]", i),
					"achievement coding left out: the format keeps one code of %s",
					RP_GOAL_ACHIEVEMENT);
			i++;
		}
		const char *t = pk_str(ach, "text");
		if (t && !(g->progress != RP_NONE && strcmp(t, rp_progress[g->progress].display) == 0))
			pk_warn(&in->pk, pk_path(&in->pk, k, "achievementStatus.text"),
				"achievement text '%s' is left out", t);
	}
}

/* The recovery dimension, from the categories (a near match is taken, and
 * said, only when no exact one is there); RP_UNASSIGNED when there is none. */
static bool goal_dimension(struct in *in, size_t k, const cJSON *r, struct rp_goal *g)
{
	const cJSON *it;
	bool ok = true;
	size_t i = 0;
	bool inferred = false;
	const char *inferred_from = NULL;
	cJSON_ArrayForEach(it, pk_get(r, "category")) {
		const cJSON *c;
		size_t j = 0;
		cJSON_ArrayForEach(c, pk_get(it, "coding")) {
			bool near;
			int dim = category_dimension(c, &near);
			if (dim != RP_NONE && !near && (g->dimension == RP_NONE || inferred)) {
				g->dimension = dim;
				inferred = false;
			} else if (dim != RP_NONE && near && g->dimension == RP_NONE) {
				g->dimension = dim;
				inferred = true;
				inferred_from = pk_path(&in->pk, k, "category[%zu].coding[%zu]", i, j);
			} else if (dim == RP_NONE || dim != g->dimension) {
				pk_warn(&in->pk, pk_path(&in->pk, k, "category[%zu].coding[%zu]", i, j),
					"category %s|%s has no place in the format; left out",
					pk_str(c, "system") ? pk_str(c, "system") : "",
					pk_str(c, "code") ? pk_str(c, "code") : "");
			}
			j++;
		}
		if (pk_str(it, "text"))
			pk_warn(&in->pk, pk_path(&in->pk, k, "category[%zu].text", i), "category text is left out");
		i++;
	}
	if (g->dimension == RP_NONE) {
		/* kept for the recovery tool to sort; categories that had no place
		 * were reported above */
		g->dimension = RP_UNASSIGNED;
	} else if (inferred) {
		pk_warn(&in->pk, inferred_from, "the recovery dimension '%s' is taken from this category",
			rp_dimensions[g->dimension].code);
	}
	return ok;
}

/* addresses: the displays of what the goal addresses. */
static void goal_addresses(struct in *in, size_t k, const cJSON *r, struct rp_goal *g)
{
	const cJSON *it;
	size_t i = 0;
	const cJSON *addr = pk_get(r, "addresses");
	size_t n_addr = (size_t)cJSON_GetArraySize(addr);
	g->addresses.v = rp_host->alloc(in->pk.ctx, (n_addr + 1) * sizeof *g->addresses.v);
	in->pk.nomem |= !g->addresses.v;
	cJSON_ArrayForEach(it, addr) {
		const char *disp = pk_str(it, "display");
		if (pk_is_text(disp) && g->addresses.v) {
			g->addresses.v[g->addresses.n++] = disp;
			if (pk_get(it, "reference") || pk_get(it, "identifier"))
				pk_warn(&in->pk, pk_path(&in->pk, k, "addresses[%zu]", i),
					"only the display of what the goal addresses is kept");
		} else {
			pk_warn(&in->pk, pk_path(&in->pk, k, "addresses[%zu]", i),
				"addresses entry without a display; left out");
		}
		i++;
	}
}

/* Who expressed the goal: the person (their Patient), by role from the
 * reference's type (or the type its reference names), or unknown when
 * there is no expressedBy. A clinician's goal never becomes the person's. */
static void goal_expressed_by(struct in *in, size_t k, const cJSON *r, long pk, struct rp_goal *g)
{
	const cJSON *eb = pk_get(r, "expressedBy");
	g->expressed_by = RP_BY_UNKNOWN;
	if (!eb)
		return;
	long at = pk_resolve(&in->pk, eb, "Patient");
	if (at >= 0 && at == pk) {
		g->expressed_by = RP_BY_SELF;
		return;
	}
	const char *type = pk_str(eb, "type"), *ref = pk_str(eb, "reference");
	char from_ref[40] = "";
	if (!type && ref) {
		const char *slash = strchr(ref, '/');
		size_t n = slash ? (size_t)(slash - ref) : 0;
		if (n && n < sizeof from_ref && !strchr(slash + 1, '/')) {
			memcpy(from_ref, ref, n);
			from_ref[n] = '\0';
			type = from_ref;
		}
	}
	if (pk_eq(type, "Patient")) {
		g->expressed_by = RP_BY_FAMILY;
		pk_warn(&in->pk, pk_path(&in->pk, k, "expressedBy"),
			"expressed by another Patient than the goal's subject: kept as 'family'");
		return;
	}
	for (int i = RP_BY_PEER; i <= RP_BY_FAMILY; i++)
		if (pk_eq(type, rp_expressed_by[i].display))
			g->expressed_by = i;
	if (g->expressed_by == RP_BY_UNKNOWN)
		pk_warn(&in->pk, pk_path(&in->pk, k, "expressedBy"),
			"who expressed the goal is not known to the format: kept as 'unknown', never as the person's "
			"own");
	else if (ref || pk_get(eb, "identifier"))
		pk_warn(&in->pk, pk_path(&in->pk, k, "expressedBy"),
			"the format keeps who expressed the goal by role ('%s'); the reference is left out",
			rp_expressed_by[g->expressed_by].code);
}

/* The goal-acceptance extension x (at extension[i]): the person's status. */
static void goal_acceptance(struct in *in, size_t k, const cJSON *x, size_t i, long pk, struct rp_goal *g)
{
	const cJSON *y;
	const char *status = NULL;
	bool person = false;
	size_t j = 0;
	cJSON_ArrayForEach(y, pk_get(x, "extension"))
	{
		const char *u = pk_str(y, "url");
		if (pk_eq(u, "individual"))
			person = pk_resolve(&in->pk, pk_get(y, "valueReference"), "Patient") == pk;
		else if (pk_eq(u, "status"))
			status = pk_str(y, "valueCode");
		else
			pk_warn(&in->pk, pk_path(&in->pk, k, "extension[%zu].extension[%zu]", i, j),
				"goal-acceptance %s is left out", u ? u : "(no url)");
		j++;
	}
	int st = pk_lookup(rp_acceptance, rp_acceptance_count, status);
	if (person && st >= 0 && g->acceptance == RP_NONE)
		g->acceptance = st;
	else
		pk_warn(&in->pk, pk_path(&in->pk, k, "extension[%zu]", i),
			"goal-acceptance left out: the format keeps the person's own (agree, disagree or pending), "
			"once");
}

/* A PCO goal-attainment-scaling extension x (at extension[i]): one level. */
static void goal_level(struct in *in, size_t k, const cJSON *x, size_t i, struct rp_goal *g)
{
	const cJSON *y;
	const char *text = NULL;
	int level = RP_NONE;
	cJSON_ArrayForEach(y, pk_get(x, "extension"))
	{
		const char *u = pk_str(y, "url");
		const cJSON *c = pk_get(y, "valueCoding");
		if (pk_eq(u, "level") && pk_eq(pk_str(c, "system"), RP_LOINC)) {
			for (int l = 0; l < 5; l++)
				if (pk_eq(pk_str(c, "code"), rp_gas_levels[l].code))
					level = rp_gas_levels[l].level;
		} else if (pk_eq(u, "progressText")) {
			text = pk_str(y, "valueString");
		}
	}
	bool dup = false;
	for (size_t l = 0; l < g->n_levels; l++)
		dup |= g->levels[l].level == level;
	if (level != RP_NONE && level >= -2 && pk_is_text(text) && !dup && g->n_levels < 5)
		g->levels[g->n_levels++] = (struct rp_level){level, text};
	else
		pk_warn(&in->pk, pk_path(&in->pk, k, "extension[%zu]", i),
			"goal attainment level left out: a level from LL6900-6 and its progressText, each level once");
}

static void fhir_goal(struct in *in, size_t k)
{
	static const char *const known[] = {
		"identifier", "lifecycleStatus", "achievementStatus",    "category",  "description",
		"subject",    "target",          "expressedBy",          "addresses", "note",
		"extension",  "startDate",       "startCodeableConcept", NULL};
	const cJSON *r = in->v[k].e.r;
	in->v[k].e.used = true;
	long pk = pk_resolve(&in->pk, pk_get(r, "subject"), "Patient");
	if (pk < 0 || in->v[pk].doc < 0) {
		pk_warn(&in->pk, pk_path(&in->pk, k, "subject"),
			"Goal left out: its subject is not a Patient in the Bundle");
		return;
	}
	struct rp_goal g;
	memset(&g, 0, sizeof g);
	g.dimension = g.status = g.progress = g.acceptance = RP_NONE;
	bool ok = true;
	if (!identity(in, k, &g.id)) {
		pk_warn(&in->pk, pk_path(&in->pk, k, "identifier"),
			"Goal left out: it has neither an identifier nor an id");
		return;
	}
	pk_unmapped(&in->pk, k, known);

	const char *ls = pk_str(r, "lifecycleStatus");
	if ((g.status = pk_lookup(rp_goal_status, rp_goal_status_count, ls)) == RP_NONE) {
		pk_warn(&in->pk, pk_path(&in->pk, k, "lifecycleStatus"),
			"Goal left out: lifecycleStatus '%s' is not one the format keeps", ls ? ls : "");
		ok = false;
	}

	goal_progress(in, k, r, &g);

	ok &= goal_dimension(in, k, r, &g);

	const cJSON *desc = pk_get(r, "description");
	g.words = pk_str(desc, "text");
	if (!pk_is_text(g.words)) {
		pk_warn(&in->pk, pk_path(&in->pk, k, "description"),
			"Goal left out: description.text (the person's own words) is "
			"missing; a code never stands in for them");
		g.words = NULL;
		ok = false;
	}
	if (pk_get(desc, "coding"))
		pk_warn(&in->pk, pk_path(&in->pk, k, "description.coding"),
			"the coded description is left out; the words are kept");

	goal_expressed_by(in, k, r, pk, &g);
	g.start = pk_str(r, "startDate");
	if (g.start && !rp_is_date(g.start)) {
		pk_warn(&in->pk, pk_path(&in->pk, k, "startDate"), "startDate '%s' is not a full date; left out",
			g.start);
		g.start = NULL;
	}
	if (pk_get(r, "startCodeableConcept"))
		pk_warn(&in->pk, pk_path(&in->pk, k, "startCodeableConcept"), "a start event is left out");

	const cJSON *targets = pk_get(r, "target"), *t = cJSON_GetArrayItem(targets, 0);
	if (cJSON_GetArraySize(targets) > 1)
		pk_warn(&in->pk, pk_path(&in->pk, k, "target[1]"), "only the first target is kept");
	if (t) {
		static const char *const target_known[] = {"dueDate", NULL};
		unmapped_in(in, k, t, "target[0]", target_known);
		const char *due = pk_str(t, "dueDate");
		if (rp_is_date(due))
			g.target = due;
		else if (due)
			pk_warn(&in->pk, pk_path(&in->pk, k, "target[0].dueDate"),
				"dueDate '%s' is not a full date; left out", due);
	}

	goal_addresses(in, k, r, &g);

	const cJSON *notes = pk_get(r, "note"), *n0 = cJSON_GetArrayItem(notes, 0);
	if (cJSON_GetArraySize(notes) > 1)
		pk_warn(&in->pk, pk_path(&in->pk, k, "note[1]"),
			"only the first note is kept, as why the goal matters");
	if (n0) {
		static const char *const note_known[] = {"text", NULL};
		unmapped_in(in, k, n0, "note[0]", note_known);
		if (pk_is_text(pk_str(n0, "text")))
			g.why = pk_str(n0, "text");
	}

	const char *urls[] = {rp_cfg.ext_set_with}, *slots[1] = {NULL};
	struct goal_ctx gc = {&g, pk};
	extensions(in, k, pk_get(r, "extension"), "extension", urls, slots, 1, NULL, &gc);
	g.set_with = slots[0];

	if (!ok)
		return;
	struct rp_doc *d = &in->set->docs[in->v[pk].doc];
	for (size_t m = 0; m < d->n_goals; m++)
		if (pk_eq(d->goals[m].id.system, g.id.system) && pk_eq(d->goals[m].id.value, g.id.value)) {
			pk_warn(&in->pk, pk_path(&in->pk, k, "identifier"),
				"Goal left out: another Goal of this person has the same identifier");
			return;
		}
	struct rp_goal *slot = rp_add_goal(in->pk.ctx, d);
	if (!slot) {
		in->pk.nomem = true;
		return;
	}
	*slot = g;
	in->v[k].doc = in->v[pk].doc;
	in->v[k].goal = (long)(d->n_goals - 1);
}

/* The goal of document doc that reference points to, or NULL. */
static struct rp_goal *goal_of(struct in *in, const cJSON *reference, long doc)
{
	long gk = pk_resolve(&in->pk, reference, "Goal");
	if (gk < 0 || in->v[gk].doc != doc || in->v[gk].goal < 0)
		return NULL;
	return &in->set->docs[doc].goals[in->v[gk].goal];
}

/* Appends item to the arena array at arr (the address of its pointer). */
static bool push(struct in *in, void *arr, size_t *n, size_t *cap, size_t size, const void *item)
{
	void *slot = pk_append(rp_host, in->pk.ctx, arr, n, cap, size);
	if (slot)
		memcpy(slot, item, size);
	in->pk.nomem |= !slot;
	return slot != NULL;
}

struct caps {
	size_t *steps, *supports; /* per goal */
	size_t items[RP_SECTION_COUNT];
	size_t n_contacts;      /* details pushed, parallel to items[RP_CONTACTS] */
	const cJSON *contained; /* the CarePlan's contained resources */
	bool *contained_used;   /* one per contained resource */
};

/* The index of the entry of list whose display is s, or RP_NONE. */
static int display_index(const struct pk_code *list, size_t n, const char *s)
{
	for (size_t i = 0; s && i < n; i++)
		if (strcmp(list[i].display, s) == 0)
			return (int)i;
	return RP_NONE;
}

/* The contained resource a local reference "#id" names, of type (NULL:
 * any); marks it used. NULL when there is none. */
static const cJSON *contained_of(const cJSON *ref, const char *type, struct caps *caps)
{
	const char *r = pk_str(ref, "reference");
	const cJSON *c;
	size_t i = 0;
	if (!r || r[0] != '#')
		return NULL;
	cJSON_ArrayForEach(c, caps->contained)
	{
		if (pk_eq(pk_str(c, "id"), r + 1) && (!type || pk_eq(pk_str(c, "resourceType"), type))) {
			caps->contained_used[i] = true;
			return c;
		}
		i++;
	}
	return NULL;
}

/* The first telecom of system phone. */
static const char *phone_of(const cJSON *r)
{
	const cJSON *t;
	cJSON_ArrayForEach(t, pk_get(r, "telecom")) if (pk_eq(pk_str(t, "system"), "phone") &&
							pk_is_text(pk_str(t, "value"))) return pk_str(t, "value");
	return NULL;
}

/* A crisis contact's details from the RelatedPerson or HealthcareService its
 * activity's performer names (contained in the plan). */
static struct rp_contact contact_of(struct in *in, size_t k, const cJSON *det, const char *at, struct caps *caps)
{
	struct rp_contact ct = {.kind = RP_NONE};
	const cJSON *p;
	size_t j = 0;
	cJSON_ArrayForEach(p, pk_get(det, "performer"))
	{
		const cJSON *c = j == 0 ? contained_of(p, NULL, caps) : NULL;
		int kind =
			c ? display_index(rp_contact_kind, rp_contact_kind_count, pk_str(c, "resourceType")) : RP_NONE;
		if (kind == RP_NONE) {
			pk_warn(&in->pk, pk_path(&in->pk, k, "%s.performer[%zu]", at, j),
				"performer left out: a crisis contact keeps one contained RelatedPerson or "
				"HealthcareService");
		} else {
			ct.kind = kind;
			ct.phone = phone_of(c);
			if (ct.phone && strlen(ct.phone) > 64) {
				pk_warn(&in->pk, pk_path(&in->pk, k, "%s.performer[%zu]", at, j),
					"the contact's phone is longer than 64 bytes; left out");
				ct.phone = NULL;
			}
		}
		j++;
	}
	return ct;
}

static void fhir_activity(struct in *in, size_t k, long doc, size_t i, const cJSON *a, struct caps *caps)
{
	static const char *const act_known[] = {"detail", NULL};
	static const char *const detail_known[] = {"code", "status", "description", "goal", "performer", NULL};
	struct rp_doc *d = &in->set->docs[doc];
	char at[64];
	snprintf(at, sizeof at, "activity[%zu]", i);
	unmapped_in(in, k, a, at, act_known);
	const cJSON *det = pk_get(a, "detail");
	if (!det) {
		pk_warn(&in->pk, pk_path(&in->pk, k, "%s", at),
			"activity left out: only activities with a detail are kept");
		return;
	}
	snprintf(at, sizeof at, "activity[%zu].detail", i);
	unmapped_in(in, k, det, at, detail_known);
	const char *text = pk_str(det, "description");
	if (!pk_is_text(text)) {
		pk_warn(&in->pk, pk_path(&in->pk, k, "%s", at), "activity left out: it has no description");
		return;
	}
	const cJSON *codings = pk_get(pk_get(det, "code"), "coding"), *c;
	int section = RP_NONE;
	bool step = !codings;
	size_t j = 0;
	cJSON_ArrayForEach(c, codings) {
		bool local = pk_eq(pk_str(c, "system"), rp_cfg.cs_activity);
		if (local && pk_eq(pk_str(c, "code"), RP_STEP_CODE) && section == RP_NONE && !step)
			step = true;
		else if (local && section_of(pk_str(c, "code")) != RP_NONE && section == RP_NONE && !step)
			section = section_of(pk_str(c, "code"));
		else
			pk_warn(&in->pk, pk_path(&in->pk, k, "%s.code.coding[%zu]", at, j),
				"activity code %s|%s is left out", pk_str(c, "system") ? pk_str(c, "system") : "",
				pk_str(c, "code") ? pk_str(c, "code") : "");
		j++;
	}
	if (pk_get(pk_get(det, "code"), "text"))
		pk_warn(&in->pk, pk_path(&in->pk, k, "%s.code.text", at), "activity code text is left out");
	if (section != RP_NONE) {
		if (pk_get(det, "goal"))
			pk_warn(&in->pk, pk_path(&in->pk, k, "%s.goal", at),
				"a %s is not tied to a goal; the link is left out", rp_sections[section].display);
		struct rp_strings *s = &d->plan.items[section];
		if (section == RP_CONTACTS) {
			struct rp_contact ct = contact_of(in, k, det, at, caps);
			if (!push(in, &d->plan.contacts, &caps->n_contacts, &d->plan.cap_contacts, sizeof ct, &ct))
				return;
		} else if (pk_get(det, "performer")) {
			pk_warn(&in->pk, pk_path(&in->pk, k, "%s.performer", at),
				"a %s has no performer in the format; left out", rp_sections[section].display);
		}
		push(in, &s->v, &s->n, &caps->items[section], sizeof *s->v, &text);
		return;
	}
	if (!step)
		pk_warn(&in->pk, pk_path(&in->pk, k, "%s.code", at),
			"the activity is not one of the format's kinds; kept as a step");
	if (pk_get(det, "performer"))
		pk_warn(&in->pk, pk_path(&in->pk, k, "%s.performer", at),
			"a step has no performer in the format; left out");
	const char *st = pk_str(det, "status");
	int status = pk_lookup(rp_step_status, rp_step_status_count, st);
	if (status == RP_NONE) {
		pk_warn(&in->pk, pk_path(&in->pk, k, "%s.status", at),
			"step left out: status '%s' is not one the format keeps", st ? st : "");
		return;
	}
	struct rp_goal *g = NULL;
	const cJSON *gl;
	j = 0;
	cJSON_ArrayForEach(gl, pk_get(det, "goal")) {
		struct rp_goal *x = goal_of(in, gl, doc);
		if (x && !g)
			g = x;
		else
			pk_warn(&in->pk, pk_path(&in->pk, k, "%s.goal[%zu]", at, j), "goal link left out: %s",
				x ? "a step belongs to one goal" : "not a Goal of this person in the Bundle");
		j++;
	}
	if (!g) {
		pk_warn(&in->pk, pk_path(&in->pk, k, "%s", at),
			"step left out: it is not tied to a goal of this person");
		return;
	}
	size_t gi = (size_t)(g - d->goals);
	struct rp_step s = {.text = text, .status = status};
	push(in, &g->steps, &g->n_steps, &caps->steps[gi], sizeof s, &s);
}

/* The advance directive: a contained DocumentReference with an attachment
 * url; its title (or the reference's display) and creation date. */
static void fhir_directive(struct in *in, size_t k, long doc, const char *at, const cJSON *info, const cJSON *ad)
{
	struct rp_plan *p = &in->set->docs[doc].plan;
	const cJSON *att = pk_get(cJSON_GetArrayItem(pk_get(ad, "content"), 0), "attachment");
	const char *url = pk_str(att, "url"), *title = pk_str(att, "title"), *date = pk_str(att, "creation");
	if (!pk_is_text(title))
		title = pk_str(info, "display");
	if (p->has_directive || !pk_is_uri(url, false) || !pk_is_text(title)) {
		pk_warn(&in->pk, pk_path(&in->pk, k, "%s", at), "advance directive left out: %s",
			p->has_directive ? "the format keeps one" : "it needs an attachment url and a title");
		return;
	}
	if (date && !rp_is_date(date)) {
		pk_warn(&in->pk, pk_path(&in->pk, k, "%s", at),
			"the advance directive's creation '%s' is not a date YYYY-MM-DD; left out", date);
		date = NULL;
	}
	p->has_directive = true;
	p->directive = (struct rp_directive){.title = title, .url = url, .date = date};
}

static void fhir_support(struct in *in, size_t k, long doc, size_t i, const cJSON *info, struct caps *caps)
{
	static const char *const known[] = {"extension", "type", "display", "reference", NULL};
	struct rp_doc *d = &in->set->docs[doc];
	char at[64];
	snprintf(at, sizeof at, "supportingInfo[%zu]", i);
	const cJSON *ad = contained_of(info, "DocumentReference", caps);
	if (ad) {
		fhir_directive(in, k, doc, at, info, ad);
		return;
	}
	unmapped_in(in, k, info, at, known);
	const char *type = pk_str(info, "type");
	const char *reference = pk_str(info, "reference");
	if (!type && reference) {
		for (size_t t = 0; t < rp_support_kind_count && !type; t++) {
			size_t n = strlen(rp_support_kind[t].display);
			if (strncmp(reference, rp_support_kind[t].display, n) == 0 && reference[n] == '/')
				type = rp_support_kind[t].display;
		}
	}
	if (reference)
		pk_warn(&in->pk, pk_path(&in->pk, k, "%s.reference", at),
			"the support's reference is left out; its display is kept");
	int kind = RP_NONE;
	for (size_t t = 0; t < rp_support_kind_count && type; t++)
		if (strcmp(type, rp_support_kind[t].display) == 0)
			kind = (int)t;
	const char *name = pk_str(info, "display");
	struct rp_goal *g = NULL;
	const cJSON *x;

	size_t j = 0;
	cJSON_ArrayForEach(x, pk_get(info, "extension")) {
		struct rp_goal *gx = pk_eq(pk_str(x, "url"), rp_cfg.ext_support_for)
					     ? goal_of(in, pk_get(x, "valueReference"), doc)
					     : NULL;
		if (gx && !g)
			g = gx;
		else
			pk_warn(&in->pk, pk_path(&in->pk, k, "%s.extension[%zu]", at, j), "extension left out: %s",
				gx ? "a support is listed under one goal" : "not a link to a Goal of this person");
		j++;
	}
	if (kind == RP_NONE || !pk_is_text(name) || !g) {
		pk_warn(&in->pk, pk_path(&in->pk, k, "%s", at), "support left out: %s",
			kind == RP_NONE     ? "it is not a RelatedPerson, PractitionerRole or HealthcareService"
			: !pk_is_text(name) ? "it has no display"
					    : "it is not tied to a goal of this person");
		return;
	}
	size_t gi = (size_t)(g - d->goals);
	struct rp_support s = {.kind = kind, .name = name};
	push(in, &g->supports, &g->n_supports, &caps->supports[gi], sizeof s, &s);
}

static void fhir_plan(struct in *in, size_t k)
{
	static const char *const known[] = {"identifier", "status",   "intent",    "title",
					    "subject",    "created",  "author",    "supportingInfo",
					    "goal",       "activity", "contained", NULL};
	const cJSON *r = in->v[k].e.r, *it;
	in->v[k].e.used = true;
	long pk = pk_resolve(&in->pk, pk_get(r, "subject"), "Patient");
	if (pk < 0 || in->v[pk].doc < 0) {
		pk_warn(&in->pk, pk_path(&in->pk, k, "subject"),
			"CarePlan left out: its subject is not a Patient in the Bundle");
		return;
	}
	long doc = in->v[pk].doc;
	struct rp_doc *d = &in->set->docs[doc];
	if (d->has_plan) {
		pk_warn(&in->pk, pk_path(&in->pk, k, "%s", ""),
			"CarePlan left out: the format keeps one plan per person");
		return;
	}
	struct rp_plan p;
	memset(&p, 0, sizeof p);
	if (!identity(in, k, &p.id)) {
		pk_warn(&in->pk, pk_path(&in->pk, k, "identifier"),
			"CarePlan left out: it has neither an identifier nor an id");
		return;
	}
	const char *st = pk_str(r, "status");
	if ((p.status = pk_lookup(rp_plan_status, rp_plan_status_count, st)) == RP_NONE) {
		pk_warn(&in->pk, pk_path(&in->pk, k, "status"),
			"CarePlan left out: status '%s' is not one the format keeps", st ? st : "");
		return;
	}
	pk_unmapped(&in->pk, k, known);
	if (!pk_eq(pk_str(r, "intent"), "plan"))
		pk_warn(&in->pk, pk_path(&in->pk, k, "intent"), "intent '%s' is left out: the format holds plans",
			pk_str(r, "intent") ? pk_str(r, "intent") : "");
	p.title = pk_is_text(pk_str(r, "title")) ? pk_str(r, "title") : NULL;
	const char *created = pk_str(r, "created");
	if (rp_is_date(created))
		p.created = created;
	else if (created)
		pk_warn(&in->pk, pk_path(&in->pk, k, "created"), "created '%s' is not a date YYYY-MM-DD; left out",
			created);
	if (pk_get(r, "author") && pk_resolve(&in->pk, pk_get(r, "author"), "Patient") != pk)
		pk_warn(&in->pk, pk_path(&in->pk, k, "author"),
			"the format keeps plans written by the person; the author is left out");
	d->has_plan = true;
	d->plan = p;

	size_t i = 0;
	cJSON_ArrayForEach(it, pk_get(r, "goal")) {
		if (!goal_of(in, it, doc))
			pk_warn(&in->pk, pk_path(&in->pk, k, "goal[%zu]", i),
				"goal reference left out: not a Goal of this person in the "
				"Bundle that the format keeps");
		i++;
	}
	struct caps caps;
	memset(&caps, 0, sizeof caps);
	caps.steps = rp_host->alloc(in->pk.ctx, (d->n_goals + 1) * sizeof *caps.steps);
	caps.supports = rp_host->alloc(in->pk.ctx, (d->n_goals + 1) * sizeof *caps.supports);
	caps.contained = pk_get(r, "contained");
	caps.contained_used = rp_host->alloc(in->pk.ctx, ((size_t)cJSON_GetArraySize(caps.contained) + 1) *
								 sizeof *caps.contained_used);
	if (!caps.steps || !caps.supports || !caps.contained_used) {
		in->pk.nomem = true;
		return;
	}
	memset(caps.contained_used, 0, ((size_t)cJSON_GetArraySize(caps.contained) + 1) * sizeof *caps.contained_used);
	i = 0;
	cJSON_ArrayForEach(it, pk_get(r, "activity")) fhir_activity(in, k, doc, i++, it, &caps);
	i = 0;
	cJSON_ArrayForEach(it, pk_get(r, "supportingInfo")) fhir_support(in, k, doc, i++, it, &caps);
	i = 0;
	cJSON_ArrayForEach(it, caps.contained)
	{
		if (!caps.contained_used[i])
			pk_warn(&in->pk, pk_path(&in->pk, k, "contained[%zu]", i),
				"contained %s left out: neither a crisis contact nor the advance directive",
				pk_str(it, "resourceType") ? pk_str(it, "resourceType") : "resource");
		i++;
	}
}

/* An Observation of PHQ-9 item 9 (LOINC 44260-8) answered above 0 about a
 * person in the Bundle: a flag of that person's document, dated by the
 * day of effective[x]. Other Observations stay unused (the host's tally
 * names them). */
static void fhir_flag(struct in *in, size_t k)
{
	const cJSON *r = in->v[k].e.r, *c;
	bool item9 = false;
	cJSON_ArrayForEach(c, pk_get(pk_get(r, "code"), "coding")) item9 |=
		pk_eq(pk_str(c, "system"), RP_LOINC) && pk_eq(pk_str(c, "code"), RP_LOINC_PHQ9_ITEM9);
	const cJSON *v = pk_get(r, "valueInteger");
	if (!item9 || !cJSON_IsNumber(v) || v->valuedouble < 1)
		return;
	long pk = pk_resolve(&in->pk, pk_get(r, "subject"), "Patient");
	if (pk < 0 || in->v[pk].doc < 0)
		return;
	in->v[k].e.used = true;
	const char *eff = pk_str(r, "effectiveDateTime");
	if (!eff)
		eff = pk_str(pk_get(r, "effectivePeriod"), "start");
	char day[11] = "";
	if (eff && strlen(eff) >= 10) {
		memcpy(day, eff, 10);
		day[10] = '\0';
	}
	if (!rp_is_date(day) || v->valuedouble > 3 || v->valuedouble != (double)v->valueint) {
		pk_warn(&in->pk, pk_path(&in->pk, k, "%s", ""), "PHQ-9 item 9 answer left out of the flags: %s",
			rp_is_date(day) ? "the answer is not 1, 2 or 3" : "it has no effective date");
		return;
	}
	if (pk_str(r, "status") &&
	    (pk_eq(pk_str(r, "status"), "entered-in-error") || pk_eq(pk_str(r, "status"), "cancelled"))) {
		pk_warn(&in->pk, pk_path(&in->pk, k, "status"), "a PHQ-9 item 9 answer %s raises no flag",
			pk_str(r, "status"));
		return;
	}
	struct rp_doc *d = &in->set->docs[in->v[pk].doc];
	struct rp_flag f = {.source = 0, .date = rp_host->copy_string(in->pk.ctx, day), .answer = v->valueint};
	if (!f.date) {
		in->pk.nomem = true;
		return;
	}
	/* one flag a day: the highest answer of that day */
	for (size_t i = 0; i < d->n_flags; i++)
		if (!strcmp(d->flags[i].date, f.date)) {
			if (f.answer > d->flags[i].answer)
				d->flags[i].answer = f.answer;
			return;
		}
	size_t at = d->n_flags;
	while (at > 0 && strcmp(d->flags[at - 1].date, f.date) > 0)
		at--;
	if (!push(in, &d->flags, &d->n_flags, &d->cap_flags, sizeof f, &f))
		return;
	memmove(&d->flags[at + 1], &d->flags[at], (d->n_flags - 1 - at) * sizeof f);
	d->flags[at] = f;
}

enum cw_status rp_from_bundle(struct cw_ctx *ctx, const cJSON *bundle, struct rp_set *set)
{
	struct in in = {.pk = {.host = rp_host, .ctx = ctx, .format = "recovery-plan", .message = 600, .path = 300,
			       .sub = 200, .meta = 200, .meta_left_out = true},
			.set = set};
	static const struct res blank = {.doc = -1, .goal = -1};
	if (pk_in_open(&in.pk, bundle, &blank, sizeof blank) != CW_OK)
		return CW_NOMEM;
	in.v = in.pk.entries;
	static const char *const order[] = {"Patient", "Goal", "CarePlan", "Observation"};
	for (size_t t = 0; t < 4 && !in.pk.nomem; t++)
		for (size_t k = 0; k < in.pk.n && !in.pk.nomem; k++) {
			if (strcmp(in.v[k].e.type, order[t]) != 0)
				continue;
			if (t == 0)
				fhir_patient(&in, k);
			else if (t == 1)
				fhir_goal(&in, k);
			else if (t == 2)
				fhir_plan(&in, k);
			else
				fhir_flag(&in, k);
		}
	set->array = set->n != 1;
	return pk_in_close(&in.pk, "a recovery plan", false);
}
