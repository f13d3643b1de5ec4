/* rp_native — the recovery-plan native document: reading JSON into a struct
 * rp_set with every problem reported at its JSON pointer, and writing a
 * struct rp_set back, members in the documented order, so that what was
 * read comes back byte for byte (once white space is taken out). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "recovery_plan.h"

struct rd {
	struct cw_ctx *ctx;
	size_t errors;
	bool nomem;
};

static void bad(struct rd *r, const char *code, const char *where, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void bad(struct rd *r, const char *code, const char *where, const char *fmt, ...)
{
	char msg[600];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	/* The whole document ("" as a JSON pointer) has no expression. */
	rp_host->issue(r->ctx, CW_SEV_ERROR, code, where && *where ? where : NULL, "%s", msg);
	r->errors++;
}

static const char *keep(struct rd *r, const char *s)
{
	char *c = rp_host->copy_string(r->ctx, s);
	if (s && !c)
		r->nomem = true;
	return c;
}

static void ptr(char *out, size_t cap, const char *base, const char *token)
{
	size_t n = (size_t)snprintf(out, cap, "%s/", base);
	if (n >= cap)
		n = cap - 1;
	for (const char *p = token; *p && n + 3 < cap; p++) {
		if (*p == '~' || *p == '/') {
			out[n++] = '~';
			out[n++] = *p == '~' ? '0' : '1';
		} else {
			out[n++] = *p;
		}
	}
	out[n < cap ? n : cap - 1] = '\0';
}

static void idx(char *out, size_t cap, const char *base, size_t i) { snprintf(out, cap, "%s/%zu", base, i); }

static void codes_of(const struct rp_code *list, size_t n, char *buf, size_t cap)
{
	size_t used = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < n && used < cap; i++)
		used += (size_t)snprintf(buf + used, cap - used, "%s%s", i ? ", " : "", list[i].code);
}

static void only_members(struct rd *r, const cJSON *o, const char *base, const char *const *allowed)
{
	const cJSON *m;
	cJSON_ArrayForEach(m, o) {
		bool known = false;
		for (const char *const *a = allowed; *a && !known; a++)
			known = strcmp(*a, m->string) == 0;
		if (!known) {
			char where[300];
			ptr(where, sizeof where, base, m->string);
			bad(r, "structure", where, "unknown member '%s'", m->string);
		}
	}
}

static const cJSON *member(struct rd *r, const cJSON *o, const char *key, const char *base, bool required)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	if (!v && required) {
		char where[300];
		ptr(where, sizeof where, base, key);
		bad(r, "required", where, "'%s' is required", key);
	}
	return v;
}

static const char *text_at(struct rd *r, const cJSON *v, const char *where, const char *what)
{
	if (!cJSON_IsString(v)) {
		bad(r, "structure", where, "%s must be a string", what);
		return NULL;
	}
	if (!rp_is_text(v->valuestring)) {
		bad(r, "value", where, "%s must not be empty nor start or end with white space", what);
		return NULL;
	}
	return keep(r, v->valuestring);
}

static const char *text_member(struct rd *r, const cJSON *o, const char *key, const char *base, bool required)
{
	const cJSON *v = member(r, o, key, base, required);
	if (!v)
		return NULL;
	char where[300], what[80];
	ptr(where, sizeof where, base, key);
	snprintf(what, sizeof what, "'%s'", key);
	return text_at(r, v, where, what);
}

/* A coded member: its index in list, RP_NONE when absent or unknown. */
static int code_member(struct rd *r, const cJSON *o, const char *key, const char *base, bool required,
		       const struct rp_code *list, size_t n, const char *what)
{
	const char *s = text_member(r, o, key, base, required);
	if (!s)
		return RP_NONE;
	int i = rp_lookup(list, n, s);
	if (i == RP_NONE) {
		char where[300], codes[300];
		ptr(where, sizeof where, base, key);
		codes_of(list, n, codes, sizeof codes);
		bad(r, "code-invalid", where, "unknown %s '%s' (one of: %s)", what, s, codes);
	}
	return i;
}

static const char *date_member(struct rd *r, const cJSON *o, const char *key, const char *base)
{
	const char *s = text_member(r, o, key, base, false);
	if (s && !rp_is_date(s)) {
		char where[300];
		ptr(where, sizeof where, base, key);
		bad(r, "value", where, "'%s' is not a date YYYY-MM-DD (a real calendar date, year 1900 on)", s);
		return NULL;
	}
	return s;
}

static const cJSON *object_member(struct rd *r, const cJSON *o, const char *key, const char *base, bool required,
				  char *where, size_t cap)
{
	ptr(where, cap, base, key);
	const cJSON *v = member(r, o, key, base, required);
	if (v && !cJSON_IsObject(v)) {
		bad(r, "structure", where, "'%s' must be an object", key);
		return NULL;
	}
	return v;
}

/* An array member: NULL when absent or not an array. Empty arrays are
 * refused unless allow_empty (an optional list is left out instead). */
static const cJSON *array_member(struct rd *r, const cJSON *o, const char *key, const char *base, bool required,
				 bool allow_empty, char *where, size_t cap)
{
	ptr(where, cap, base, key);
	const cJSON *v = member(r, o, key, base, required);
	if (v && (!cJSON_IsArray(v) || (!allow_empty && !v->child))) {
		bad(r, "structure", where, "'%s' must be a%s array", key, allow_empty ? "n" : " non-empty");
		return NULL;
	}
	return v;
}

static void strings_member(struct rd *r, const cJSON *o, const char *key, const char *base, struct rp_strings *s)
{
	char where[300], w[320];
	const cJSON *a = array_member(r, o, key, base, false, false, where, sizeof where), *it;
	if (!a)
		return;
	s->v = rp_host->alloc(r->ctx, (size_t)cJSON_GetArraySize(a) * sizeof *s->v);
	if (!s->v) {
		r->nomem = true;
		return;
	}
	size_t i = 0;
	cJSON_ArrayForEach(it, a) {
		idx(w, sizeof w, where, i++);
		const char *t = text_at(r, it, w, "each entry");
		if (t)
			s->v[s->n++] = t;
	}
}

static void read_ident(struct rd *r, const cJSON *o, const char *base, struct rp_ident *id)
{
	static const char *const allowed[] = {"system", "value", NULL};
	char where[300];
	const cJSON *v = object_member(r, o, "identifier", base, true, where, sizeof where);
	if (!v)
		return;
	only_members(r, v, where, allowed);
	id->system = text_member(r, v, "system", where, true);
	id->value = text_member(r, v, "value", where, true);
	if (id->system && !rp_is_uri(id->system)) {
		char w[320];
		ptr(w, sizeof w, where, "system");
		bad(r, "value", w, "an identifier system must be an absolute URI");
		id->system = NULL;
	}
}

static void read_person(struct rd *r, const cJSON *o, struct rp_doc *d, const char *base)
{
	static const char *const allowed[] = {"identifier", "name", "pronouns", "language", "identity", NULL};
	char where[300];
	const cJSON *p = object_member(r, o, "person", base, true, where, sizeof where);
	if (!p)
		return;
	only_members(r, p, where, allowed);
	read_ident(r, p, where, &d->person);
	d->name = text_member(r, p, "name", where, false);
	d->pronouns = text_member(r, p, "pronouns", where, false);
	d->language = text_member(r, p, "language", where, false);
	if (d->language && !rp_is_language(d->language)) {
		char w[320];
		ptr(w, sizeof w, where, "language");
		bad(r, "value", w, "'%s' is not a BCP 47 language tag such as 'en' or 'es-MX'", d->language);
	}
	d->identity = text_member(r, p, "identity", where, false);
}

static void read_plan(struct rd *r, const cJSON *o, struct rp_doc *d, const char *base)
{
	static const char *const allowed[] = {"identifier", "title", "status", "created", "wellness_tools",
					      "crisis_plan", NULL};
	static const char *const crisis_allowed[] = {"warning_signs", "what_helps", "contacts", NULL};
	char where[300], cw[320];
	const cJSON *p = object_member(r, o, "plan", base, false, where, sizeof where);
	if (!p)
		return;
	d->has_plan = true;
	only_members(r, p, where, allowed);
	read_ident(r, p, where, &d->plan.id);
	d->plan.title = text_member(r, p, "title", where, false);
	d->plan.status = code_member(r, p, "status", where, true, rp_plan_status, rp_plan_status_count, "plan status");
	d->plan.created = date_member(r, p, "created", where);
	strings_member(r, p, rp_sections[RP_WELLNESS].key, where, &d->plan.items[RP_WELLNESS]);
	const cJSON *c = object_member(r, p, "crisis_plan", where, false, cw, sizeof cw);
	if (!c)
		return;
	only_members(r, c, cw, crisis_allowed);
	if (!c->child)
		bad(r, "required", cw, "a crisis plan holds at least one of warning_signs, what_helps, contacts");
	for (int s = 0; s < RP_SECTION_COUNT; s++)
		if (rp_sections[s].crisis)
			strings_member(r, c, rp_sections[s].key, cw, &d->plan.items[s]);
}

static void read_goal(struct rd *r, const cJSON *o, struct rp_goal *g, const char *base)
{
	static const char *const allowed[] = {"identifier", "dimension", "words",    "why",       "status",
					      "progress",   "target_date", "set_with", "addresses", "steps",
					      "supports",   NULL};
	static const char *const step_allowed[] = {"text", "status", NULL};
	static const char *const support_allowed[] = {"kind", "name", NULL};
	char where[300], w[320];
	g->where = keep(r, base);
	g->dimension = g->status = g->progress = RP_NONE;
	if (!cJSON_IsObject(o)) {
		bad(r, "structure", base, "a goal must be an object");
		return;
	}
	only_members(r, o, base, allowed);
	read_ident(r, o, base, &g->id);
	const char *dim = text_member(r, o, "dimension", base, true);
	if (dim && (g->dimension = rp_dimension(dim)) == RP_NONE) {
		ptr(where, sizeof where, base, "dimension");
		bad(r, "code-invalid", where, "unknown dimension '%s' (one of: health, home, purpose, community)", dim);
	}
	g->words = text_member(r, o, "words", base, true);
	g->why = text_member(r, o, "why", base, false);
	g->status = code_member(r, o, "status", base, true, rp_goal_status, rp_goal_status_count, "goal status");
	g->progress = code_member(r, o, "progress", base, false, rp_progress, rp_progress_count, "progress");
	g->target = date_member(r, o, "target_date", base);
	g->set_with = text_member(r, o, "set_with", base, false);
	strings_member(r, o, "addresses", base, &g->addresses);

	const cJSON *a = array_member(r, o, "steps", base, false, false, where, sizeof where), *it;
	if (a) {
		g->steps = rp_host->alloc(r->ctx, (size_t)cJSON_GetArraySize(a) * sizeof *g->steps);
		r->nomem |= !g->steps;
		size_t i = 0;
		cJSON_ArrayForEach(it, a) {
			idx(w, sizeof w, where, i++);
			if (!cJSON_IsObject(it)) {
				bad(r, "structure", w, "a step must be an object");
				continue;
			}
			only_members(r, it, w, step_allowed);
			struct rp_step st = {
				.text = text_member(r, it, "text", w, true),
				.status = code_member(r, it, "status", w, true, rp_step_status, rp_step_status_count,
						      "step status"),
			};
			if (g->steps)
				g->steps[g->n_steps++] = st;
		}
	}
	if ((a = array_member(r, o, "supports", base, false, false, where, sizeof where))) {
		g->supports = rp_host->alloc(r->ctx, (size_t)cJSON_GetArraySize(a) * sizeof *g->supports);
		r->nomem |= !g->supports;
		size_t i = 0;
		cJSON_ArrayForEach(it, a) {
			idx(w, sizeof w, where, i++);
			if (!cJSON_IsObject(it)) {
				bad(r, "structure", w, "a support must be an object");
				continue;
			}
			only_members(r, it, w, support_allowed);
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

static bool same_ident(const struct rp_ident *a, const struct rp_ident *b)
{
	return rp_eq(a->system, b->system) && rp_eq(a->value, b->value);
}

static void read_doc(struct rd *r, struct rp_set *set, const cJSON *o, const char *base)
{
	static const char *const allowed[] = {"version", "person", "plan", "goals", NULL};
	char where[300], w[320];
	if (!cJSON_IsObject(o)) {
		bad(r, "structure", base, "a recovery plan must be a JSON object");
		return;
	}
	struct rp_doc *d = rp_add_doc(r->ctx, set);
	if (!d) {
		r->nomem = true;
		return;
	}
	d->where = keep(r, base);
	only_members(r, o, base, allowed);
	const cJSON *v = member(r, o, "version", base, true);
	if (v && !(cJSON_IsNumber(v) && v->valuestring && strcmp(v->valuestring, "1") == 0)) {
		ptr(where, sizeof where, base, "version");
		bad(r, "not-supported", where, "this plugin reads version 1 of the format");
	}
	read_person(r, o, d, base);
	read_plan(r, o, d, base);
	const cJSON *a = array_member(r, o, "goals", base, true, true, where, sizeof where), *it;
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
			bad(r, "required", w, "steps and supports are kept in the plan: give 'plan' with an identifier "
			    "and a status");
	}
}

/* Across the whole document: a person, a plan and a goal identifier each
 * appear once. */
static void check_set(struct rd *r, const struct rp_set *set)
{
	for (size_t i = 0; i < set->n; i++) {
		const struct rp_doc *d = &set->docs[i];
		char where[320];
		for (size_t j = 0; j < i && d->person.value; j++)
			if (same_ident(&set->docs[j].person, &d->person)) {
				ptr(where, sizeof where, d->where, "person");
				bad(r, "duplicate", where, "this person's plan was already given at %s",
				    *set->docs[j].where ? set->docs[j].where : "/");
				break;
			}
		for (size_t j = 0; j < i && d->has_plan && d->plan.id.value; j++)
			if (set->docs[j].has_plan && same_ident(&set->docs[j].plan.id, &d->plan.id)) {
				snprintf(where, sizeof where, "%s/plan/identifier", d->where);
				bad(r, "duplicate", where, "this plan identifier was already given at %s/plan",
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
						bad(r, "duplicate", where, "goal identifier already given at %s",
						    o->goals[m].where);
						dup = true;
					}
			}
		}
	}
}

enum cw_status rp_read_json(struct cw_ctx *ctx, const char *data, size_t len, struct rp_set *set)
{
	cJSON *in = rp_host->parse_json(ctx, data, len); /* reports its own issue */
	if (!in)
		return CW_INVALID;
	struct rd r = {.ctx = ctx};
	if (cJSON_IsArray(in)) {
		set->array = true;
		if (!in->child)
			bad(&r, "required", "", "an array of plans must hold at least one plan");
		size_t i = 0;
		const cJSON *it;
		cJSON_ArrayForEach(it, in) {
			char w[32];
			idx(w, sizeof w, "", i++);
			read_doc(&r, set, it, w);
		}
	} else {
		read_doc(&r, set, in, "");
	}
	cJSON_Delete(in);
	if (!r.nomem)
		check_set(&r, set);
	if (r.nomem) {
		rp_host->issue(ctx, CW_SEV_ERROR, "exception", NULL, "out of memory");
		return CW_NOMEM;
	}
	return r.errors ? CW_INVALID : CW_OK;
}

/* ----------------------------------------------------------- JSON out */

static cJSON *ident_json(const struct rp_ident *id)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "system", id->system);
	cJSON_AddStringToObject(o, "value", id->value);
	return o;
}

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
	cJSON_AddItemToObject(o, "identifier", ident_json(&g->id));
	cJSON_AddStringToObject(o, "dimension", rp_dimensions[g->dimension].code);
	cJSON_AddStringToObject(o, "words", g->words);
	opt_string(o, "why", g->why);
	cJSON_AddStringToObject(o, "status", rp_goal_status[g->status].code);
	if (g->progress != RP_NONE)
		cJSON_AddStringToObject(o, "progress", rp_progress[g->progress].code);
	opt_string(o, "target_date", g->target);
	opt_string(o, "set_with", g->set_with);
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

static cJSON *doc_json(const struct rp_doc *d)
{
	cJSON *o = cJSON_CreateObject(), *p = cJSON_CreateObject();
	cJSON_AddNumberToObject(o, "version", 1);
	cJSON_AddItemToObject(o, "person", p);
	cJSON_AddItemToObject(p, "identifier", ident_json(&d->person));
	opt_string(p, "name", d->name);
	opt_string(p, "pronouns", d->pronouns);
	opt_string(p, "language", d->language);
	opt_string(p, "identity", d->identity);
	if (d->has_plan) {
		const struct rp_plan *pl = &d->plan;
		cJSON *q = cJSON_AddObjectToObject(o, "plan");
		cJSON_AddItemToObject(q, "identifier", ident_json(&pl->id));
		opt_string(q, "title", pl->title);
		cJSON_AddStringToObject(q, "status", rp_plan_status[pl->status].code);
		opt_string(q, "created", pl->created);
		strings_json(q, rp_sections[RP_WELLNESS].key, &pl->items[RP_WELLNESS]);
		bool crisis = false;
		for (int s = 0; s < RP_SECTION_COUNT; s++)
			crisis |= rp_sections[s].crisis && pl->items[s].n;
		if (crisis) {
			cJSON *c = cJSON_AddObjectToObject(q, "crisis_plan");
			for (int s = 0; s < RP_SECTION_COUNT; s++)
				if (rp_sections[s].crisis)
					strings_json(c, rp_sections[s].key, &pl->items[s]);
		}
	}
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
	const cJSON *tree = arr && !set->array && set->n == 1 ? arr->child : arr;
	*out = tree ? rp_host->print_json(ctx, tree, len) : NULL;
	cJSON_Delete(arr);
	if (!*out)
		rp_host->issue(ctx, CW_SEV_ERROR, "exception", NULL, "out of memory");
	return *out ? CW_OK : CW_NOMEM;
}
