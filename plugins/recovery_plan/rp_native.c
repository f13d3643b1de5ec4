/* rp_native — the recovery-plan native document: reading JSON into a struct
 * rp_set with every problem reported at its JSON pointer, and writing a
 * struct rp_set back, members in the documented order, so that what was
 * read comes back byte for byte (once white space is taken out). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "recovery_plan.h"

/* A reader of this format (plugkit's, with the format's sizes and rules). The
 * whole document ("" as a JSON pointer) has no expression. */
static struct pk_reader reader(struct cw_ctx *ctx)
{
	return (struct pk_reader){.host = rp_host, .ctx = ctx, .message = 600, .where = 300, .root = NULL,
				  .is_text = pk_is_text,
				  .not_text = "must not be empty nor start or end with white space"};
}

static void idx(char *out, size_t cap, const char *base, size_t i) { snprintf(out, cap, "%s/%zu", base, i); }

static const char *text_at(struct pk_reader *r, const cJSON *v, const char *where, const char *what)
{
	if (!cJSON_IsString(v)) {
		pk_bad(r, "structure", where, "%s must be a string", what);
		return NULL;
	}
	if (!pk_is_text(v->valuestring)) {
		pk_bad(r, "value", where, "%s must not be empty nor start or end with white space", what);
		return NULL;
	}
	return pk_keep(r, v->valuestring);
}

static const char *text_member(struct pk_reader *r, const cJSON *o, const char *key, const char *base, bool required)
{
	char where[300], what[80];
	const cJSON *v = pk_member(r, o, key, base, required, where, sizeof where);
	if (!v)
		return NULL;
	snprintf(what, sizeof what, "'%s'", key);
	return text_at(r, v, where, what);
}

/* A coded member: its index in list, RP_NONE when absent or unknown. */
static int code_member(struct pk_reader *r, const cJSON *o, const char *key, const char *base, bool required,
		       const struct pk_code *list, size_t n, const char *what)
{
	const char *s = text_member(r, o, key, base, required);
	if (!s)
		return RP_NONE;
	char where[300];
	pk_ptr(where, sizeof where, base, key);
	return pk_check_code(r, list, n, s, what, where);
}

static const char *date_member(struct pk_reader *r, const cJSON *o, const char *key, const char *base)
{
	const char *s = text_member(r, o, key, base, false);
	if (s && !rp_is_date(s)) {
		char where[300];
		pk_ptr(where, sizeof where, base, key);
		pk_bad(r, "value", where, "'%s' is not a date YYYY-MM-DD (a real calendar date, year 1900 on)", s);
		return NULL;
	}
	return s;
}

static void strings_member(struct pk_reader *r, const cJSON *o, const char *key, const char *base, struct rp_strings *s)
{
	char where[300], w[320];
	const cJSON *a = pk_array_member(r, o, key, base, false, false, where, sizeof where), *it;
	if (!a)
		return;
	if (!(s->v = pk_alloc_for(r, a, sizeof *s->v)))
		return;
	size_t i = 0;
	cJSON_ArrayForEach(it, a) {
		idx(w, sizeof w, where, i++);
		const char *t = text_at(r, it, w, "each entry");
		if (t)
			s->v[s->n++] = t;
	}
}

static void read_ident(struct pk_reader *r, const cJSON *o, const char *base, struct pk_ident *id)
{
	static const char *const allowed[] = {"system", "value", NULL};
	char where[300];
	const cJSON *v = pk_object_member(r, o, "identifier", base, true, where, sizeof where);
	if (!v)
		return;
	pk_only_members(r, v, where, allowed);
	id->system = text_member(r, v, "system", where, true);
	id->value = text_member(r, v, "value", where, true);
	if (id->system && !pk_is_uri(id->system, false)) {
		char w[320];
		pk_ptr(w, sizeof w, where, "system");
		pk_bad(r, "value", w, "an identifier system must be an absolute URI");
		id->system = NULL;
	}
}

/* person.diagnosis_language: {"style", "words": [{"code", "text"}…]}, at
 * least one of the two; a code at most once. */
static void native_lang(struct pk_reader *r, const cJSON *p, struct rp_doc *d, const char *base)
{
	static const char *const allowed[] = {"style", "words", NULL};
	static const char *const word_allowed[] = {"code", "text", NULL};
	char where[300], ww[320], w[340];
	const cJSON *o = pk_object_member(r, p, "diagnosis_language", base, false, where, sizeof where);
	d->lang_style = RP_NONE;
	if (!o)
		return;
	d->has_lang = true;
	pk_only_members(r, o, where, allowed);
	const char *style = text_member(r, o, "style", where, false);
	if (style) {
		pk_ptr(w, sizeof w, where, "style");
		d->lang_style = pk_check_code(r, rp_lang_style, rp_lang_style_count, style, "style", w);
	}
	const cJSON *a = pk_array_member(r, o, "words", where, false, false, ww, sizeof ww), *it;
	if (!style && !a)
		pk_bad(r, "required", where, "diagnosis_language needs a style, words, or both");
	if (!a || !(d->words = pk_alloc_for(r, a, sizeof *d->words)))
		return;
	size_t i = 0;
	cJSON_ArrayForEach(it, a)
	{
		idx(w, sizeof w, ww, i++);
		if (!cJSON_IsObject(it)) {
			pk_bad(r, "structure", w, "each entry of words is an object {code, text}");
			continue;
		}
		pk_only_members(r, it, w, word_allowed);
		const char *code = text_member(r, it, "code", w, true), *text = text_member(r, it, "text", w, true);
		char cw[360];
		pk_ptr(cw, sizeof cw, w, "code");
		if (code && !rp_is_code(code)) {
			pk_bad(r, "value", cw, "a code is 1 to 32 letters, digits, '.' or '-'");
			code = NULL;
		}
		for (size_t k = 0; code && k < d->n_words; k++)
			if (!strcmp(d->words[k].code, code)) {
				pk_bad(r, "duplicate", cw, "the code '%s' has words already", code);
				code = NULL;
			}
		if (text && strlen(text) > 200) {
			pk_ptr(cw, sizeof cw, w, "text");
			pk_bad(r, "value", cw, "the words are at most 200 bytes");
			text = NULL;
		}
		if (code && text)
			d->words[d->n_words++] = (struct rp_word){code, text};
	}
}

static void read_person(struct pk_reader *r, const cJSON *o, struct rp_doc *d, const char *base)
{
	static const char *const allowed[] = {"identifier",         "name", "pronouns", "language", "identity",
					      "diagnosis_language", NULL};
	char where[300];
	const cJSON *p = pk_object_member(r, o, "person", base, true, where, sizeof where);
	if (!p)
		return;
	pk_only_members(r, p, where, allowed);
	read_ident(r, p, where, &d->person);
	d->name = text_member(r, p, "name", where, false);
	d->pronouns = text_member(r, p, "pronouns", where, false);
	d->language = text_member(r, p, "language", where, false);
	if (d->language && !rp_is_language(d->language)) {
		char w[320];
		pk_ptr(w, sizeof w, where, "language");
		pk_bad(r, "value", w, "'%s' is not a BCP 47 language tag such as 'en' or 'es-MX'", d->language);
	}
	d->identity = text_member(r, p, "identity", where, false);
	native_lang(r, p, d, where);
}

/* plan.crisis_plan.contacts: each entry text (who, as the person says it)
 * or {role, kind, phone}. */
static void read_contacts(struct pk_reader *r, const cJSON *c, struct rp_plan *p, const char *base)
{
	static const char *const allowed[] = {"role", "kind", "phone", NULL};
	char where[300], w[320];
	struct rp_strings *s = &p->items[RP_CONTACTS];
	const cJSON *a = pk_array_member(r, c, "contacts", base, false, false, where, sizeof where), *it;
	if (!a || !(s->v = pk_alloc_for(r, a, sizeof *s->v)) ||
	    !(p->contacts = pk_alloc_for(r, a, sizeof *p->contacts)))
		return;
	size_t i = 0;
	cJSON_ArrayForEach(it, a)
	{
		idx(w, sizeof w, where, i++);
		struct rp_contact ct = {.kind = RP_NONE};
		const char *t;
		if (cJSON_IsObject(it)) {
			pk_only_members(r, it, w, allowed);
			t = text_member(r, it, "role", w, true);
			ct.kind = code_member(r, it, "kind", w, true, rp_contact_kind, rp_contact_kind_count,
					      "contact kind");
			ct.phone = text_member(r, it, "phone", w, false);
			if (ct.phone && strlen(ct.phone) > 64) {
				char pw[340];
				pk_ptr(pw, sizeof pw, w, "phone");
				pk_bad(r, "value", pw, "a phone number is at most 64 bytes");
			}
			if (ct.kind == RP_NONE)
				t = NULL;
		} else if (!cJSON_IsString(it)) {
			pk_bad(r, "structure", w, "a contact is text or an object {role, kind, phone}");
			continue;
		} else {
			t = text_at(r, it, w, "each entry");
		}
		if (t) {
			p->contacts[s->n] = ct;
			s->v[s->n++] = t;
		}
	}
}

/* plan.crisis_plan.advance_directive: {title, url, date}. */
static void read_directive(struct pk_reader *r, const cJSON *c, struct rp_plan *p, const char *base)
{
	static const char *const allowed[] = {"title", "url", "date", NULL};
	char where[300], w[320];
	const cJSON *o = pk_object_member(r, c, "advance_directive", base, false, where, sizeof where);
	if (!o)
		return;
	pk_only_members(r, o, where, allowed);
	p->has_directive = true;
	p->directive.title = text_member(r, o, "title", where, true);
	p->directive.url = text_member(r, o, "url", where, true);
	if (p->directive.url && !pk_is_uri(p->directive.url, false)) {
		pk_ptr(w, sizeof w, where, "url");
		pk_bad(r, "value", w, "the advance directive's url must be an absolute URI");
	}
	p->directive.date = date_member(r, o, "date", where);
}

static void read_plan(struct pk_reader *r, const cJSON *o, struct rp_doc *d, const char *base)
{
	static const char *const allowed[] = {"identifier", "title",          "status",
					      "created",    "wellness_tools", "daily_maintenance",
					      "triggers",   "crisis_plan",    NULL};
	static const char *const crisis_allowed[] = {"warning_signs", "what_helps",        "contacts",
						     "post_crisis",   "advance_directive", NULL};
	char where[300], cw[320];
	const cJSON *p = pk_object_member(r, o, "plan", base, false, where, sizeof where);
	if (!p)
		return;
	d->has_plan = true;
	pk_only_members(r, p, where, allowed);
	read_ident(r, p, where, &d->plan.id);
	d->plan.title = text_member(r, p, "title", where, false);
	d->plan.status = code_member(r, p, "status", where, true, rp_plan_status, rp_plan_status_count, "plan status");
	d->plan.created = date_member(r, p, "created", where);
	for (int s = 0; s < RP_SECTION_COUNT; s++)
		if (!rp_sections[s].crisis)
			strings_member(r, p, rp_sections[s].key, where, &d->plan.items[s]);
	const cJSON *c = pk_object_member(r, p, "crisis_plan", where, false, cw, sizeof cw);
	if (!c)
		return;
	pk_only_members(r, c, cw, crisis_allowed);
	if (!c->child)
		pk_bad(r, "required", cw,
		       "a crisis plan holds at least one of warning_signs, what_helps, contacts, post_crisis, "
		       "advance_directive");
	for (int s = 0; s < RP_SECTION_COUNT; s++)
		if (rp_sections[s].crisis && s != RP_CONTACTS)
			strings_member(r, c, rp_sections[s].key, cw, &d->plan.items[s]);
	read_contacts(r, c, &d->plan, cw);
	read_directive(r, c, &d->plan, cw);
}

/* flags: [{source, date, answer}], in date order, a source and date once. */
static void read_flags(struct pk_reader *r, const cJSON *o, struct rp_doc *d, const char *base)
{
	static const char *const allowed[] = {"source", "date", "answer", NULL};
	char where[300], w[320], aw[340];
	const cJSON *a = pk_array_member(r, o, "flags", base, false, false, where, sizeof where), *it;
	if (!a || !(d->flags = pk_alloc_for(r, a, sizeof *d->flags)))
		return;
	size_t i = 0;
	cJSON_ArrayForEach(it, a)
	{
		idx(w, sizeof w, where, i++);
		if (!cJSON_IsObject(it)) {
			pk_bad(r, "structure", w, "a flag is an object {source, date, answer}");
			continue;
		}
		pk_only_members(r, it, w, allowed);
		struct rp_flag f = {
			.source = code_member(r, it, "source", w, true, rp_flag_source, rp_flag_source_count,
					      "flag source"),
			.date = date_member(r, it, "date", w),
		};
		if (!pk_get(it, "date"))
			pk_bad(r, "required", w, "a flag needs its 'date'");
		const cJSON *v = pk_get(it, "answer");
		pk_ptr(aw, sizeof aw, w, "answer");
		if (!cJSON_IsNumber(v) || v->valuedouble != (double)v->valueint || v->valueint < 1 || v->valueint > 3) {
			pk_bad(r, "value", aw, "the answer is a whole number from 1 to 3 (0 raises no flag)");
			continue;
		}
		f.answer = v->valueint;
		if (f.source == RP_NONE || !f.date)
			continue;
		if (d->n_flags) {
			const struct rp_flag *prev = &d->flags[d->n_flags - 1];
			int cmp = strcmp(prev->date, f.date);
			if (cmp > 0 || (cmp == 0 && prev->source >= f.source)) {
				pk_ptr(aw, sizeof aw, w, "date");
				pk_bad(r, cmp == 0 ? "duplicate" : "value", aw,
				       "flags are listed by date, each source once a day");
				continue;
			}
		}
		d->flags[d->n_flags++] = f;
	}
}

/* attainment_levels: 1 to 5 of {"level": −2…2, "text"}, each level once. */
static void read_levels(struct pk_reader *r, const cJSON *o, struct rp_goal *g, const char *base)
{
	static const char *const allowed[] = {"level", "text", NULL};
	char where[300], w[320], lw[340];
	const cJSON *a = pk_array_member(r, o, "attainment_levels", base, false, false, where, sizeof where), *it;
	if (!a)
		return;
	size_t i = 0;
	cJSON_ArrayForEach(it, a)
	{
		idx(w, sizeof w, where, i++);
		if (!cJSON_IsObject(it)) {
			pk_bad(r, "structure", w, "an attainment level is an object {level, text}");
			continue;
		}
		pk_only_members(r, it, w, allowed);
		const cJSON *lv = pk_get(it, "level");
		const char *text = text_member(r, it, "text", w, true);
		pk_ptr(lw, sizeof lw, w, "level");
		if (!cJSON_IsNumber(lv) || lv->valuedouble != (double)lv->valueint || lv->valueint < -2 ||
		    lv->valueint > 2) {
			pk_bad(r, "value", lw, "a level is a whole number from -2 to 2 (goal attainment scaling)");
			continue;
		}
		bool dup = false;
		for (size_t k = 0; k < g->n_levels; k++)
			dup |= g->levels[k].level == lv->valueint;
		if (dup) {
			pk_bad(r, "duplicate", lw, "the level %d is described already", lv->valueint);
			continue;
		}
		if (text && g->n_levels < 5)
			g->levels[g->n_levels++] = (struct rp_level){lv->valueint, text};
	}
}

static void read_goal(struct pk_reader *r, const cJSON *o, struct rp_goal *g, const char *base)
{
	static const char *const allowed[] = {"identifier", "dimension",    "words",      "why",
					      "status",     "progress",     "start_date", "target_date",
					      "set_with",   "expressed_by", "acceptance", "attainment_levels",
					      "addresses",  "steps",        "supports",   NULL};
	static const char *const step_allowed[] = {"text", "status", NULL};
	static const char *const support_allowed[] = {"kind", "name", NULL};
	char where[300], w[320];
	g->where = pk_keep(r, base);
	g->dimension = g->status = g->progress = g->acceptance = RP_NONE;
	if (!cJSON_IsObject(o)) {
		pk_bad(r, "structure", base, "a goal must be an object");
		return;
	}
	pk_only_members(r, o, base, allowed);
	read_ident(r, o, base, &g->id);
	const char *dim = text_member(r, o, "dimension", base, true);
	if (dim && !strcmp(dim, RP_UNASSIGNED_CODE))
		g->dimension = RP_UNASSIGNED;
	else if (dim && (g->dimension = rp_dimension(dim)) == RP_NONE) {
		pk_ptr(where, sizeof where, base, "dimension");
		pk_bad(r, "code-invalid", where,
		       "unknown dimension '%s' (one of: health, home, purpose, community, unassigned)", dim);
	}
	g->words = text_member(r, o, "words", base, true);
	g->why = text_member(r, o, "why", base, false);
	g->status = code_member(r, o, "status", base, true, rp_goal_status, rp_goal_status_count, "goal status");
	g->progress = code_member(r, o, "progress", base, false, rp_progress, rp_progress_count, "progress");
	g->start = date_member(r, o, "start_date", base);
	g->target = date_member(r, o, "target_date", base);
	g->set_with = text_member(r, o, "set_with", base, false);
	g->expressed_by =
		code_member(r, o, "expressed_by", base, false, rp_expressed_by, rp_expressed_by_count, "expressed_by");
	if (g->expressed_by == RP_NONE)
		g->expressed_by = RP_BY_SELF;
	g->acceptance = code_member(r, o, "acceptance", base, false, rp_acceptance, rp_acceptance_count, "acceptance");
	read_levels(r, o, g, base);
	strings_member(r, o, "addresses", base, &g->addresses);

	const cJSON *a = pk_array_member(r, o, "steps", base, false, false, where, sizeof where), *it;
	if (a) {
		g->steps = pk_alloc_for(r, a, sizeof *g->steps);
		size_t i = 0;
		cJSON_ArrayForEach(it, a) {
			idx(w, sizeof w, where, i++);
			if (!cJSON_IsObject(it)) {
				pk_bad(r, "structure", w, "a step must be an object");
				continue;
			}
			pk_only_members(r, it, w, step_allowed);
			struct rp_step st = {
				.text = text_member(r, it, "text", w, true),
				.status = code_member(r, it, "status", w, true, rp_step_status, rp_step_status_count,
						      "step status"),
			};
			if (g->steps)
				g->steps[g->n_steps++] = st;
		}
	}
	if ((a = pk_array_member(r, o, "supports", base, false, false, where, sizeof where))) {
		g->supports = pk_alloc_for(r, a, sizeof *g->supports);
		size_t i = 0;
		cJSON_ArrayForEach(it, a) {
			idx(w, sizeof w, where, i++);
			if (!cJSON_IsObject(it)) {
				pk_bad(r, "structure", w, "a support must be an object");
				continue;
			}
			pk_only_members(r, it, w, support_allowed);
			struct rp_support sp = {
				.kind = code_member(r, it, "kind", w, true, rp_support_kind, rp_support_kind_count,
						    "support kind"),
				.name = text_member(r, it, "name", w, true),
			};
			if (g->supports)
				g->supports[g->n_supports++] = sp;
		}
	}
}

static bool same_ident(const struct pk_ident *a, const struct pk_ident *b)
{
	return pk_eq(a->system, b->system) && pk_eq(a->value, b->value);
}

static void read_doc(struct pk_reader *r, void *s, const cJSON *o, const char *base)
{
	struct rp_set *set = s;
	static const char *const allowed[] = {"version", "person", "flags", "plan", "goals", NULL};
	char where[300], w[320];
	if (!cJSON_IsObject(o)) {
		pk_bad(r, "structure", base, "a recovery plan must be a JSON object");
		return;
	}
	struct rp_doc *d = rp_add_doc(r->ctx, set);
	if (!d) {
		r->nomem = true;
		return;
	}
	d->where = pk_keep(r, base);
	pk_only_members(r, o, base, allowed);
	pk_check_version(r, o, base);
	read_person(r, o, d, base);
	read_flags(r, o, d, base);
	read_plan(r, o, d, base);
	const cJSON *a = pk_array_member(r, o, "goals", base, true, true, where, sizeof where), *it;
	size_t i = 0;
	cJSON_ArrayForEach(it, a) {
		idx(w, sizeof w, where, i++);
		struct rp_goal *g = rp_add_goal(r->ctx, d);
		if (!g) {
			r->nomem = true;
			return;
		}
		read_goal(r, it, g, w);
		if (!d->has_plan && (g->n_steps || g->n_supports))
			pk_bad(r, "required", w,
			       "steps and supports are kept in the plan: give 'plan' with an identifier and a status");
	}
}

/* Across the whole document: a person, a plan and a goal identifier each
 * appear once. */
static void check_set(struct pk_reader *r, const struct rp_set *set)
{
	for (size_t i = 0; i < set->n; i++) {
		const struct rp_doc *d = &set->docs[i];
		char where[320];
		for (size_t j = 0; j < i && d->person.value; j++)
			if (same_ident(&set->docs[j].person, &d->person)) {
				pk_ptr(where, sizeof where, d->where, "person");
				pk_bad(r, "duplicate", where, "this person's plan was already given at %s",
				       *set->docs[j].where ? set->docs[j].where : "/");
				break;
			}
		for (size_t j = 0; j < i && d->has_plan && d->plan.id.value; j++)
			if (set->docs[j].has_plan && same_ident(&set->docs[j].plan.id, &d->plan.id)) {
				snprintf(where, sizeof where, "%s/plan/identifier", d->where);
				pk_bad(r, "duplicate", where, "this plan identifier was already given at %s/plan",
				       set->docs[j].where);
				break;
			}
		for (size_t k = 0; k < d->n_goals; k++) {
			const struct rp_goal *g = &d->goals[k];
			bool dup = false;
			for (size_t j = 0; j <= i && !dup && g->id.value; j++) {
				const struct rp_doc *o = &set->docs[j];
				for (size_t m = 0; m < (j == i ? k : o->n_goals) && !dup; m++)
					if (same_ident(&o->goals[m].id, &g->id)) {
						snprintf(where, sizeof where, "%s/identifier", g->where);
						pk_bad(r, "duplicate", where, "goal identifier already given at %s",
						       o->goals[m].where);
						dup = true;
					}
			}
		}
	}
}

enum cw_status rp_read_json(struct cw_ctx *ctx, const char *data, size_t len, struct rp_set *set)
{
	struct pk_reader r = reader(ctx);
	if (!pk_read_json(&r, data, len, &set->array, "an array of plans must hold at least one plan", read_doc, set))
		return CW_INVALID;
	if (!r.nomem)
		check_set(&r, set);
	return pk_finish(&r);
}

/* ----------------------------------------------------------- JSON out */

static void opt_string(cJSON *o, const char *key, const char *s)
{
	if (s)
		cJSON_AddStringToObject(o, key, s);
}

static void strings_json(cJSON *o, const char *key, const struct rp_strings *s)
{
	if (!s->n)
		return;
	cJSON *a = cJSON_AddArrayToObject(o, key);
	for (size_t i = 0; i < s->n; i++)
		cJSON_AddItemToArray(a, cJSON_CreateString(s->v[i]));
}

static cJSON *goal_json(const struct rp_goal *g)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddItemToObject(o, "identifier", pk_ident_json(&g->id));
	cJSON_AddStringToObject(o, "dimension",
				g->dimension == RP_UNASSIGNED ? RP_UNASSIGNED_CODE : rp_dimensions[g->dimension].code);
	cJSON_AddStringToObject(o, "words", g->words);
	opt_string(o, "why", g->why);
	cJSON_AddStringToObject(o, "status", rp_goal_status[g->status].code);
	if (g->progress != RP_NONE)
		cJSON_AddStringToObject(o, "progress", rp_progress[g->progress].code);
	opt_string(o, "start_date", g->start);
	opt_string(o, "target_date", g->target);
	opt_string(o, "set_with", g->set_with);
	if (g->expressed_by != RP_BY_SELF)
		cJSON_AddStringToObject(o, "expressed_by", rp_expressed_by[g->expressed_by].code);
	if (g->acceptance != RP_NONE)
		cJSON_AddStringToObject(o, "acceptance", rp_acceptance[g->acceptance].code);
	if (g->n_levels) {
		cJSON *a = cJSON_AddArrayToObject(o, "attainment_levels");
		for (size_t i = 0; i < g->n_levels; i++) {
			cJSON *l = cJSON_CreateObject();
			cJSON_AddNumberToObject(l, "level", g->levels[i].level);
			cJSON_AddStringToObject(l, "text", g->levels[i].text);
			cJSON_AddItemToArray(a, l);
		}
	}
	strings_json(o, "addresses", &g->addresses);
	if (g->n_steps) {
		cJSON *a = cJSON_AddArrayToObject(o, "steps");
		for (size_t i = 0; i < g->n_steps; i++) {
			cJSON *s = cJSON_CreateObject();
			cJSON_AddStringToObject(s, "text", g->steps[i].text);
			cJSON_AddStringToObject(s, "status", rp_step_status[g->steps[i].status].code);
			cJSON_AddItemToArray(a, s);
		}
	}
	if (g->n_supports) {
		cJSON *a = cJSON_AddArrayToObject(o, "supports");
		for (size_t i = 0; i < g->n_supports; i++) {
			cJSON *s = cJSON_CreateObject();
			cJSON_AddStringToObject(s, "kind", rp_support_kind[g->supports[i].kind].code);
			cJSON_AddStringToObject(s, "name", g->supports[i].name);
			cJSON_AddItemToArray(a, s);
		}
	}
	return o;
}

static void contacts_json(cJSON *c, const struct rp_plan *pl)
{
	const struct rp_strings *s = &pl->items[RP_CONTACTS];
	if (!s->n)
		return;
	cJSON *a = cJSON_AddArrayToObject(c, rp_sections[RP_CONTACTS].key);
	for (size_t i = 0; i < s->n; i++) {
		const struct rp_contact *ct = pl->contacts ? &pl->contacts[i] : NULL;
		if (!ct || ct->kind == RP_NONE) {
			cJSON_AddItemToArray(a, cJSON_CreateString(s->v[i]));
			continue;
		}
		cJSON *x = cJSON_CreateObject();
		cJSON_AddStringToObject(x, "role", s->v[i]);
		cJSON_AddStringToObject(x, "kind", rp_contact_kind[ct->kind].code);
		opt_string(x, "phone", ct->phone);
		cJSON_AddItemToArray(a, x);
	}
}

static void plan_json(cJSON *o, const struct rp_plan *pl)
{
	cJSON *q = cJSON_AddObjectToObject(o, "plan");
	cJSON_AddItemToObject(q, "identifier", pk_ident_json(&pl->id));
	opt_string(q, "title", pl->title);
	cJSON_AddStringToObject(q, "status", rp_plan_status[pl->status].code);
	opt_string(q, "created", pl->created);
	for (int s = 0; s < RP_SECTION_COUNT; s++)
		if (!rp_sections[s].crisis)
			strings_json(q, rp_sections[s].key, &pl->items[s]);
	bool crisis = pl->has_directive;
	for (int s = 0; s < RP_SECTION_COUNT; s++)
		crisis |= rp_sections[s].crisis && pl->items[s].n;
	if (!crisis)
		return;
	cJSON *c = cJSON_AddObjectToObject(q, "crisis_plan");
	for (int s = 0; s < RP_SECTION_COUNT; s++)
		if (s == RP_CONTACTS)
			contacts_json(c, pl);
		else if (rp_sections[s].crisis)
			strings_json(c, rp_sections[s].key, &pl->items[s]);
	if (pl->has_directive) {
		cJSON *x = cJSON_AddObjectToObject(c, "advance_directive");
		cJSON_AddStringToObject(x, "title", pl->directive.title);
		cJSON_AddStringToObject(x, "url", pl->directive.url);
		opt_string(x, "date", pl->directive.date);
	}
}

static cJSON *doc_json(const struct rp_doc *d)
{
	cJSON *o = cJSON_CreateObject(), *p = cJSON_CreateObject();
	cJSON_AddNumberToObject(o, "version", 1);
	cJSON_AddItemToObject(o, "person", p);
	cJSON_AddItemToObject(p, "identifier", pk_ident_json(&d->person));
	opt_string(p, "name", d->name);
	opt_string(p, "pronouns", d->pronouns);
	opt_string(p, "language", d->language);
	opt_string(p, "identity", d->identity);
	if (d->has_lang) {
		cJSON *l = cJSON_AddObjectToObject(p, "diagnosis_language");
		if (d->lang_style != RP_NONE)
			cJSON_AddStringToObject(l, "style", rp_lang_style[d->lang_style].code);
		if (d->n_words) {
			cJSON *a = cJSON_AddArrayToObject(l, "words");
			for (size_t i = 0; i < d->n_words; i++) {
				cJSON *w = cJSON_CreateObject();
				cJSON_AddStringToObject(w, "code", d->words[i].code);
				cJSON_AddStringToObject(w, "text", d->words[i].text);
				cJSON_AddItemToArray(a, w);
			}
		}
	}
	if (d->n_flags) {
		cJSON *a = cJSON_AddArrayToObject(o, "flags");
		for (size_t i = 0; i < d->n_flags; i++) {
			cJSON *f = cJSON_CreateObject();
			cJSON_AddStringToObject(f, "source", rp_flag_source[d->flags[i].source].code);
			cJSON_AddStringToObject(f, "date", d->flags[i].date);
			cJSON_AddNumberToObject(f, "answer", d->flags[i].answer);
			cJSON_AddItemToArray(a, f);
		}
	}
	if (d->has_plan)
		plan_json(o, &d->plan);
	cJSON *goals = cJSON_AddArrayToObject(o, "goals");
	for (size_t i = 0; i < d->n_goals; i++)
		cJSON_AddItemToArray(goals, goal_json(&d->goals[i]));
	return o;
}

enum cw_status rp_write_json(struct cw_ctx *ctx, const struct rp_set *set, char **out, size_t *len)
{
	cJSON *arr = cJSON_CreateArray();
	for (size_t i = 0; arr && i < set->n; i++)
		cJSON_AddItemToArray(arr, doc_json(&set->docs[i]));
	return pk_print(rp_host, ctx, arr, !set->array && set->n == 1, true, out, len);
}
