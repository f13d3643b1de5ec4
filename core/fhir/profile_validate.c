/* profile_validate — a resource against a profile's snapshot (see profile.h). */
#include <ctype.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/arena.h"
#include "fhir/fhirpath.h"
#include "fhir/invariants.h"
#include "fhir/model.h"
#include "fhir/profile_int.h"
#include "fhir/valueset.h"

#define CORE_SD "http://hl7.org/fhir/StructureDefinition/"
#define LOC_MAX 512
#define MAX_NEST 6 /* profiles validated within profiles (slices by profile, extensions) */

struct vctx {
	const struct profile_set *ps;
	const struct profile *p;
	const cJSON *resource;  /* %resource of constraints */
	const cJSON *bundle;    /* the Bundle resource is an entry of (references resolve in it), or NULL */
	const char *full_url;   /* that entry's fullUrl, or NULL */
	const cJSON *container; /* the resource that contains resource, or NULL ("#id" resolves in it) */
	const char *unresolved; /* set by a discriminator through resolve() that met a reference it could not resolve */
	struct outcome *oo;     /* NULL: only count errors (a slice probe) */
	size_t errors;
	struct profile_stats *st;
	struct arena *a;
	int nest;
};

struct val {
	const cJSON *j;
	const struct model_type *t;
	char loc[LOC_MAX];
};

struct vals {
	struct val *v;
	size_t n, cap;
};

static void report(struct vctx *vc, enum outcome_severity sev, const char *code, const char *msgid, const char *loc,
		   const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static void report(struct vctx *vc, enum outcome_severity sev, const char *code, const char *msgid, const char *loc,
		   const char *fmt, ...)
{
	if (sev <= OUTCOME_ERROR)
		vc->errors++;
	if (!vc->oo)
		return;
	char buf[768];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	outcome_add_id(vc->oo, sev, code, msgid, loc, "%s: %s: %s", vc->p->url, loc, buf);
}

/* out = "a.b" or "a.b[i]" (i < 0: no index), cut at LOC_MAX. */
static void loc_join(char *out, const char *a, const char *b, int i)
{
	int n = i < 0 ? snprintf(out, LOC_MAX, "%s.%s", a, b) : snprintf(out, LOC_MAX, "%s.%s[%d]", a, b, i);
	if (n < 0 || n >= LOC_MAX)
		out[LOC_MAX - 1] = '\0';
}

static const char *str_of(const cJSON *o, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static bool vals_push(struct vals *vs, const cJSON *j, const struct model_type *t, const char *loc)
{
	if (vs->n == vs->cap) {
		size_t nc = vs->cap ? vs->cap * 2 : 8;
		struct val *nv = realloc(vs->v, nc * sizeof *nv);
		if (!nv)
			return false;
		vs->v = nv;
		vs->cap = nc;
	}
	struct val *v = &vs->v[vs->n++];
	v->j = j;
	v->t = t;
	snprintf(v->loc, sizeof v->loc, "%s", loc);
	return true;
}

/* The model type of a value under a property: resources by their own type. */
static const struct model_type *value_type(const struct model_type *chosen, const cJSON *j)
{
	if (chosen && (chosen->kind == MODEL_RESOURCE || !strcmp(chosen->name, "Resource"))) {
		const char *rt = str_of(j, "resourceType");
		const struct model_type *r = rt ? model_resource(rt) : NULL;
		return r ? r : chosen;
	}
	return chosen;
}

static void push_member(struct vals *out, const cJSON *m, const struct model_type *t, const char *loc)
{
	const struct model_type *chosen = NULL;
	if (t)
		model_find_elem(t, m->string, strlen(m->string), &chosen);
	char l[LOC_MAX];
	if (cJSON_IsArray(m)) {
		int i = 0;
		const cJSON *it;
		cJSON_ArrayForEach(it, m)
		{
			if (!cJSON_IsNull(it)) {
				loc_join(l, loc, m->string, i);
				vals_push(out, it, value_type(chosen, it), l);
			}
			i++;
		}
	} else {
		loc_join(l, loc, m->string, -1);
		vals_push(out, m, value_type(chosen, m), l);
	}
}

/* The values of element name ("coding", "value[x]", "valueQuantity") in one
 * instance. */
static void collect(const struct val *in, const char *name, struct vals *out)
{
	if (!cJSON_IsObject(in->j))
		return;
	size_t nl = strlen(name);
	if (nl > 3 && !strcmp(name + nl - 3, "[x]")) {
		size_t bl = nl - 3;
		const cJSON *m;
		cJSON_ArrayForEach(m, in->j)
		{
			if (m->string && !strncmp(m->string, name, bl) && isupper((unsigned char)m->string[bl]))
				push_member(out, m, in->t, in->loc);
		}
		return;
	}
	const cJSON *m = cJSON_GetObjectItemCaseSensitive(in->j, name);
	if (m)
		push_member(out, m, in->t, in->loc);
}

/* ---- value checks ---- */

static bool num_eq(const cJSON *a, const cJSON *b) { return a->valuedouble == b->valuedouble; }

/* pattern ⊆ value: every member of an object pattern matches, every item of
 * an array pattern matches some item of the value. exact: the same value. */
static bool json_match(const cJSON *pat, const cJSON *v, bool exact)
{
	if (!pat || !v)
		return false;
	if (cJSON_IsObject(pat)) {
		if (!cJSON_IsObject(v))
			return false;
		const cJSON *m;
		cJSON_ArrayForEach(m, pat)
		{
			if (!json_match(m, cJSON_GetObjectItemCaseSensitive(v, m->string), exact))
				return false;
		}
		if (exact)
			cJSON_ArrayForEach(m, v) if (!cJSON_GetObjectItemCaseSensitive(pat, m->string)) return false;
		return true;
	}
	if (cJSON_IsArray(pat)) {
		if (!cJSON_IsArray(v))
			return false;
		if (exact && cJSON_GetArraySize(pat) != cJSON_GetArraySize(v))
			return false;
		const cJSON *p;
		int i = 0;
		cJSON_ArrayForEach(p, pat)
		{
			bool found = false;
			if (exact) {
				found = json_match(p, cJSON_GetArrayItem(v, i), true);
			} else {
				const cJSON *x;
				cJSON_ArrayForEach(x, v) if (json_match(p, x, false))
				{
					found = true;
					break;
				}
			}
			if (!found)
				return false;
			i++;
		}
		return true;
	}
	if (cJSON_IsString(pat))
		return cJSON_IsString(v) && !strcmp(pat->valuestring, v->valuestring);
	if (cJSON_IsNumber(pat))
		return cJSON_IsNumber(v) && num_eq(pat, v);
	if (cJSON_IsBool(pat))
		return cJSON_IsBool(v) && cJSON_IsTrue(pat) == cJSON_IsTrue(v);
	return false;
}

/* The type codes an element allows, matched against a value's type name
 * (case-insensitive first letter: valueString vs "string"). */
static bool type_allowed(const cJSON *types, const char *tn)
{
	const cJSON *t;
	bool any = false;
	cJSON_ArrayForEach(t, types)
	{
		const char *code = str_of(t, "code");
		if (!code || strchr(code, '/'))
			return true; /* a FHIRPath system type (id, url): not checked here */
		any = true;
		if (!strcasecmp(code, tn))
			return true;
		if (!strcmp(code, "Resource") || !strcmp(code, "DomainResource"))
			return true;
	}
	return !any;
}

/* The resource type a profile or core definition URL stands for. */
static const char *target_type(const struct profile_set *ps, const char *url)
{
	const struct profile *p = profile_find(ps, url);
	if (p)
		return p->type;
	if (!strncmp(url, CORE_SD, strlen(CORE_SD)))
		return url + strlen(CORE_SD);
	return NULL;
}

/* The resource type in a reference "Type/id", ".../Type/id[/_history/v]". */
static bool ref_type(const char *ref, char *out, size_t n)
{
	if (ref[0] == '#' || !strncmp(ref, "urn:", 4))
		return false;
	const char *h = strstr(ref, "/_history/");
	size_t len = h ? (size_t)(h - ref) : strlen(ref);
	/* back over the id, then the type */
	const char *end = ref + len;
	const char *s = end;
	while (s > ref && s[-1] != '/')
		s--;
	if (s == ref)
		return false;
	const char *te = s - 1, *ts = te;
	while (ts > ref && ts[-1] != '/')
		ts--;
	if ((size_t)(te - ts) + 1 > n || te == ts)
		return false;
	memcpy(out, ts, (size_t)(te - ts));
	out[te - ts] = '\0';
	return model_resource(out) != NULL;
}

static void check_target(struct vctx *vc, const struct pelem *e, const struct val *v)
{
	const char *ref = str_of(v->j, "reference");
	char rt[64];
	if (!ref || !ref_type(ref, rt, sizeof rt))
		return;
	const cJSON *t;
	bool constrained = false;
	cJSON_ArrayForEach(t, e->types)
	{
		const char *code = str_of(t, "code");
		if (!code || strcmp(code, "Reference") != 0)
			continue;
		const cJSON *tp;
		cJSON_ArrayForEach(tp, cJSON_GetObjectItemCaseSensitive(t, "targetProfile"))
		{
			if (!cJSON_IsString(tp))
				continue;
			const char *tt = target_type(vc->ps, tp->valuestring);
			if (!tt || !strcmp(tt, "Resource"))
				return;
			constrained = true;
			if (!strcmp(tt, rt))
				return;
		}
	}
	if (constrained)
		report(vc, OUTCOME_ERROR, "invalid", "profile-target", v->loc,
		       "the reference to a %s is not to a type the element's target profiles allow (%s)", rt, e->id);
}

static void check_code(struct vctx *vc, const struct pelem *e, const struct val *v, const char *vs, bool required,
		       const char *system, const char *code, bool *in, bool *undecided)
{
	int r = profile_vs_contains(vc->ps, vs, system, code);
	(void)e;
	(void)v;
	(void)required;
	if (r == 1)
		*in = true;
	else if (r < 0)
		*undecided = true;
}

static void check_binding(struct vctx *vc, const struct pelem *e, const struct val *v)
{
	const char *strength = str_of(e->binding, "strength"), *vs = str_of(e->binding, "valueSet");
	if (!strength || !vs || !v->t)
		return;
	bool required = !strcmp(strength, "required");
	if (!required && strcmp(strength, "extensible") != 0)
		return;
	/* the very binding of the core element: structural validation reports it */
	const struct valueset_binding *cb = valueset_binding_path(e->path);
	if (cb && cb->strength == (required ? VALUESET_REQUIRED : VALUESET_EXTENSIBLE) &&
	    valueset_of(cb) == valueset_core(vs))
		return;
	if (!profile_valueset(vc->ps, vs) && !valueset_core(vs)) {
		if (vc->st)
			vc->st->unchecked++;
		return;
	}
	const char *tn = v->t->name;
	bool in = false, undecided = false, any = false;
	if (!strcmp(tn, "code") && cJSON_IsString(v->j)) {
		any = true;
		check_code(vc, e, v, vs, required, NULL, v->j->valuestring, &in, &undecided);
	} else if (!strcmp(tn, "Coding") || !strcmp(tn, "CodeableConcept")) {
		const cJSON *codings = !strcmp(tn, "Coding") ? NULL : cJSON_GetObjectItemCaseSensitive(v->j, "coding");
		const cJSON *c = codings ? codings->child : v->j;
		for (; c; c = codings ? c->next : NULL) {
			const char *code = str_of(c, "code");
			if (code) {
				any = true;
				check_code(vc, e, v, vs, required, str_of(c, "system"), code, &in, &undecided);
			}
		}
		if (!any && !strcmp(tn, "CodeableConcept") && !required)
			return; /* extensible: text alone is allowed */
	} else {
		return;
	}
	if (in)
		return;
	if (undecided) {
		report(vc, OUTCOME_INFORMATION, "informational", "profile-binding-unchecked", v->loc,
		       "the code could not be checked against %s (a code system that is not loaded is not guessed)",
		       vs);
		return;
	}
	report(vc, required ? OUTCOME_ERROR : OUTCOME_WARNING, "code-invalid",
	       required ? "profile-binding-required" : "profile-binding-extensible", v->loc,
	       any ? "no code is in the %s value set %s" : "no code given for the %s value set %s", strength, vs);
}

/* Whether the core invariants table (checked by structural validation)
 * holds this very constraint. */
static bool core_checked(const char *key, const char *expr)
{
	if (!strcmp(key, "ele-1"))
		return true; /* structural validation refuses empty elements */
	for (size_t i = 0; i < invariants_n; i++)
		if (invariants[i].key[0] == key[0] && !strcmp(invariants[i].key, key) &&
		    !strcmp(invariants[i].expr, expr))
			return true;
	return false;
}

static void check_constraints(struct vctx *vc, const struct pelem *e, const struct val *v)
{
	for (size_t k = 0; k < e->nconstraint; k++) {
		const cJSON *c;
		cJSON_ArrayForEach(c, e->constraint[k])
		{
			const char *key = str_of(c, "key"), *expr = str_of(c, "expression"),
				   *sev = str_of(c, "severity"), *human = str_of(c, "human");
			if (!key || !expr || core_checked(key, expr))
				continue;
			struct fp_error err;
			const struct fp_expr *fe = fp_cached(expr, &err);
			if (vc->st)
				vc->st->constraints++;
			if (!fe) {
				if (vc->st)
					vc->st->unchecked++;
				continue;
			}
			struct fp_env env = {vc->resource, vc->bundle ? vc->bundle : vc->resource, v->j,
					     v->t ? v->t->name : NULL};
			arena_reset(vc->a);
			int r = fp_eval_bool(fe, &env, vc->a, &err);
			if (r < 0) {
				if (vc->st)
					vc->st->unchecked++;
			} else if (r == 0) {
				bool warn = sev && !strcmp(sev, "warning");
				report(vc, warn ? OUTCOME_WARNING : OUTCOME_ERROR, "invariant", "profile-constraint",
				       v->loc, "constraint %s failed: %s", key, human ? human : expr);
			}
		}
	}
}

static void check_value(struct vctx *vc, const struct pelem *e, const struct val *v)
{
	if (e->types && v->t && !type_allowed(e->types, v->t->name))
		report(vc, OUTCOME_ERROR, "structure", "profile-type", v->loc,
		       "a %s is not a type element %s allows here", v->t->name, e->id);
	if (e->types && v->t && !strcmp(v->t->name, "Reference"))
		check_target(vc, e, v);
	if (e->fixed && !json_match(e->fixed, v->j, true))
		report(vc, OUTCOME_ERROR, "value", "profile-fixed", v->loc,
		       "the value is not the fixed value %s requires (%s)", e->id, e->fixed->string);
	if (e->pattern && !json_match(e->pattern, v->j, false))
		report(vc, OUTCOME_ERROR, "value", "profile-pattern", v->loc,
		       "the value does not hold the pattern %s requires (%s)", e->id, e->pattern->string);
	if (e->binding)
		check_binding(vc, e, v);
	if (e->nconstraint)
		check_constraints(vc, e, v);
}

/* ---- slicing ---- */

static size_t validate_against(struct vctx *vc, const struct profile *p, const struct val *v, bool quiet);

/* The nodes a discriminator path selects in v (simple dotted paths, or
 * FHIRPath). */
static void disc_nodes(struct vctx *vc, const struct val *v, const char *path, struct vals *out)
{
	if (!strcmp(path, "$this")) {
		vals_push(out, v->j, v->t, v->loc);
		return;
	}
	if (!strpbrk(path, "()")) {
		struct vals cur = {0}, next = {0};
		vals_push(&cur, v->j, v->t, v->loc);
		char seg[128];
		for (const char *s = path; *s;) {
			size_t l = strcspn(s, ".");
			snprintf(seg, sizeof seg, "%.*s", (int)l, s);
			next.n = 0;
			for (size_t i = 0; i < cur.n; i++)
				collect(&cur.v[i], seg, &next);
			struct vals t = cur;
			cur = next;
			next = t;
			s += l;
			if (*s == '.')
				s++;
		}
		for (size_t i = 0; i < cur.n; i++)
			vals_push(out, cur.v[i].j, cur.v[i].t, cur.v[i].loc);
		free(cur.v);
		free(next.v);
		return;
	}
	struct fp_error err;
	const struct fp_expr *fe = fp_cached(path, &err);
	if (!fe)
		return;
	struct fp_env env = {vc->resource, vc->bundle ? vc->bundle : vc->resource, v->j, v->t ? v->t->name : NULL};
	struct fp_coll c;
	arena_reset(vc->a);
	if (fp_eval(fe, &env, vc->a, &c, &err) != 0)
		return;
	for (size_t i = 0; i < c.n; i++)
		if (c.v[i].kind == FP_NODE && c.v[i].u.node.j)
			vals_push(out, c.v[i].u.node.j, c.v[i].u.node.t, v->loc);
}

/* The element under slice s that a discriminator path names ($this: s). */
static const struct pelem *disc_elem(const struct profile *p, const struct pelem *s, const char *path)
{
	if (!strcmp(path, "$this"))
		return s;
	char id[1024];
	if ((size_t)snprintf(id, sizeof id, "%s.%s", s->id, path) >= sizeof id)
		return NULL;
	const struct pelem *e = profile_elem(p, id);
	if (!e && (size_t)snprintf(id, sizeof id, "%s.%s[x]", s->id, path) < sizeof id)
		e = profile_elem(p, id); /* "value" names the choice "value[x]" */
	return e;
}

/* The first profile of the slice's (or its element's) types. */
static const char *type_profile(const struct pelem *e)
{
	const cJSON *t;
	const cJSON *types = e ? e->types : NULL;
	cJSON_ArrayForEach(t, types)
	{
		const cJSON *pr = cJSON_GetObjectItemCaseSensitive(t, "profile");
		if (cJSON_IsArray(pr) && cJSON_IsString(pr->child))
			return pr->child->valuestring;
	}
	return NULL;
}

/* Whether binding is required and a code of node is in its ValueSet. */
static bool binding_holds(const struct vctx *vc, const cJSON *binding, const struct val *node)
{
	const char *strength = str_of(binding, "strength"), *vs = str_of(binding, "valueSet");
	if (!strength || !vs || strcmp(strength, "required") != 0)
		return false;
	if (cJSON_IsString(node->j))
		return profile_vs_contains(vc->ps, vs, NULL, node->j->valuestring) == 1;
	const cJSON *codings = cJSON_GetObjectItemCaseSensitive(node->j, "coding");
	const cJSON *c = cJSON_IsArray(codings) ? codings->child : node->j;
	for (; c; c = cJSON_IsArray(codings) ? c->next : NULL) {
		const char *code = str_of(c, "code");
		if (code && profile_vs_contains(vc->ps, vs, str_of(c, "system"), code) == 1)
			return true;
	}
	return false;
}

/* A value or pattern discriminator: some node holds the value element de
 * fixes (a primitive exactly; a complex fixed value, like a pattern, by the
 * members it states), its pattern, or a code of its required binding. */
static bool value_disc(const struct vctx *vc, const struct pelem *de, const struct vals *nodes)
{
	for (size_t i = 0; i < nodes->n; i++) {
		const cJSON *j = nodes->v[i].j;
		if (de->fixed) {
			if (json_match(de->fixed, j, !cJSON_IsObject(de->fixed) && !cJSON_IsArray(de->fixed)))
				return true;
		} else if (de->pattern) {
			if (json_match(de->pattern, j, false))
				return true;
		} else if (de->binding && binding_holds(vc, de->binding, &nodes->v[i])) {
			return true;
		}
	}
	return false;
}

/* The resource a Reference value points to: a contained resource ("#id", or
 * "#" for the container), else an entry of the Bundle the resource is in (by
 * fullUrl; a relative reference against the base of the referring entry's
 * fullUrl, or by type and id when that entry has none). NULL when it cannot
 * be resolved. */
static const cJSON *resolve_ref(const struct vctx *vc, const cJSON *refv)
{
	const char *ref = cJSON_IsString(refv) ? refv->valuestring : str_of(refv, "reference");
	if (!ref || !*ref)
		return NULL;
	if (ref[0] == '#') {
		const cJSON *holder = vc->container ? vc->container : vc->resource;
		if (!ref[1])
			return holder;
		const cJSON *c;
		cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(holder, "contained"))
		{
			const char *id = str_of(c, "id");
			if (id && !strcmp(id, ref + 1))
				return c;
		}
		return NULL;
	}
	const cJSON *b = vc->bundle;
	const char *rt = str_of(vc->resource, "resourceType");
	if (!b && rt && !strcmp(rt, "Bundle"))
		b = vc->resource;
	if (!b)
		return NULL;
	/* a relative "Type/id" against the base of the referring entry */
	char want[1024] = "";
	bool relative = !strstr(ref, "://") && strncmp(ref, "urn:", 4) != 0;
	if (relative && vc->full_url && strstr(vc->full_url, "://")) {
		const char *end = vc->full_url + strlen(vc->full_url);
		int slashes = 0;
		while (end > vc->full_url && slashes < 2)
			if (*--end == '/')
				slashes++;
		if (slashes == 2)
			snprintf(want, sizeof want, "%.*s/%s", (int)(end - vc->full_url), vc->full_url, ref);
	}
	char rtype[64];
	const char *rid = relative ? strchr(ref, '/') : NULL;
	if (rid && (size_t)(rid - ref) < sizeof rtype)
		snprintf(rtype, sizeof rtype, "%.*s", (int)(rid - ref), ref);
	else
		rid = NULL;
	const cJSON *e;
	cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(b, "entry"))
	{
		const cJSON *res = cJSON_GetObjectItemCaseSensitive(e, "resource");
		const char *fu = str_of(e, "fullUrl");
		if (!cJSON_IsObject(res))
			continue;
		if (fu && (!strcmp(fu, ref) || (want[0] && !strcmp(fu, want))))
			return res;
		if (rid && !want[0]) {
			const char *t = str_of(res, "resourceType"), *id = str_of(res, "id");
			if (t && id && !strcmp(t, rtype) && !strcmp(id, rid + 1))
				return res;
		}
	}
	return NULL;
}

/* Each targetProfile of element e's Reference types, until f returns true. */
static bool each_target(const struct pelem *e, bool (*f)(struct vctx *, const char *, void *), struct vctx *vc,
			void *arg)
{
	const cJSON *t;
	const cJSON *types = e ? e->types : NULL;
	cJSON_ArrayForEach(t, types)
	{
		const cJSON *tp;
		cJSON_ArrayForEach(tp, cJSON_GetObjectItemCaseSensitive(t, "targetProfile"))
		{
			if (cJSON_IsString(tp) && f(vc, tp->valuestring, arg))
				return true;
		}
	}
	return false;
}

struct resolved {
	const cJSON *res;
	const char *type, *rest; /* discriminator type, the path after resolve() ("" for none) */
};

static bool disc_match(struct vctx *vc, const struct pelem *s, const struct val *v, const char *type, const char *path);

/* Whether the resolved resource meets the discriminator as seen through
 * the target profile url. */
static bool target_match(struct vctx *vc, const char *url, void *arg)
{
	const struct resolved *r = arg;
	const char *rt = str_of(r->res, "resourceType");
	const char *tt = target_type(vc->ps, url);
	if (!rt || !tt || (strcmp(tt, rt) != 0 && strcmp(tt, "Resource") != 0))
		return false;
	if (!strcmp(r->type, "type") && !*r->rest)
		return true;
	const struct profile *tp = profile_find(vc->ps, url);
	if (!tp || !tp->nel || vc->nest >= MAX_NEST)
		return false;
	struct vctx sub = *vc;
	sub.p = tp;
	sub.resource = r->res;
	sub.full_url = NULL;
	struct val rv = {.j = r->res, .t = model_resource(rt)};
	snprintf(rv.loc, sizeof rv.loc, "%s", rt);
	if (!strcmp(r->type, "profile") && !*r->rest)
		return validate_against(&sub, tp, &rv, true) == 0;
	/* value, pattern, exists at a path inside the target: its root element
	 * stands for the slice */
	sub.nest++;
	return disc_match(&sub, &tp->el[0], &rv, r->type, *r->rest ? r->rest : "$this");
}

/* A discriminator path through resolve() ("resolve()", "item.resolve().code"):
 * the references at the part before it are resolved, and the part after it
 * is matched in each resolved resource against the slice's target profiles.
 * A reference that cannot be resolved matches nothing and is remembered in
 * vc->unresolved, for the caller to say so. */
static bool disc_resolve(struct vctx *vc, const struct pelem *s, const struct val *v, const char *type,
			 const char *path, const char *at)
{
	char pre[256];
	size_t pl = (size_t)(at - path);
	if (pl && path[pl - 1] == '.')
		pl--;
	if (pl >= sizeof pre)
		return false;
	snprintf(pre, sizeof pre, "%.*s", (int)pl, path);
	const char *rest = at + strlen("resolve()");
	if (*rest == '.')
		rest++;
	if (strstr(rest, "resolve()"))
		return false; /* one hop only */
	const struct pelem *re = pl ? disc_elem(vc->p, s, pre) : s;
	struct vals refs = {0};
	if (pl)
		disc_nodes(vc, v, pre, &refs);
	else
		vals_push(&refs, v->j, v->t, v->loc);
	bool ok = false;
	for (size_t i = 0; !ok && i < refs.n; i++) {
		const cJSON *res = resolve_ref(vc, refs.v[i].j);
		if (!res) {
			const char *ref = cJSON_IsString(refs.v[i].j) ? refs.v[i].j->valuestring
								      : str_of(refs.v[i].j, "reference");
			vc->unresolved = ref ? ref : "(no reference)";
			continue;
		}
		struct resolved r = {res, type, rest};
		ok = each_target(re, target_match, vc, &r);
	}
	free(refs.v);
	return ok;
}

static bool disc_match(struct vctx *vc, const struct pelem *s, const struct val *v, const char *type, const char *path)
{
	const char *at = strstr(path, "resolve()");
	if (at)
		return disc_resolve(vc, s, v, type, path, at);
	const struct pelem *de = disc_elem(vc->p, s, path);
	struct vals nodes = {0};
	bool ok = false;
	if (!strcmp(type, "value") || !strcmp(type, "pattern")) {
		disc_nodes(vc, v, path, &nodes);
		const char *strength = de ? str_of(de->binding, "strength") : NULL;
		if (de && (de->fixed || de->pattern || (strength && !strcmp(strength, "required")))) {
			ok = value_disc(vc, de, &nodes);
		} else if (!strcmp(path, "url") && type_profile(s)) {
			/* an extension slice: its url is its definition's */
			const char *want = type_profile(s);
			for (size_t i = 0; !ok && i < nodes.n; i++)
				ok = cJSON_IsString(nodes.v[i].j) && !strcmp(nodes.v[i].j->valuestring, want);
		}
	} else if (!strcmp(type, "exists")) {
		disc_nodes(vc, v, path, &nodes);
		if (de)
			ok = de->max == 0 ? nodes.n == 0 : de->min >= 1 ? nodes.n > 0 : true;
	} else if (!strcmp(type, "type")) {
		disc_nodes(vc, v, path, &nodes);
		const struct pelem *te = de ? de : s;
		for (size_t i = 0; !ok && i < nodes.n; i++)
			ok = nodes.v[i].t && te->types && type_allowed(te->types, nodes.v[i].t->name);
		if (!nodes.n && strcmp(path, "$this") != 0) {
			/* a choice path ("value"): the member's type suffix */
			size_t pl = strlen(path);
			if (pl > 3 && !strcmp(path + pl - 3, "[x]"))
				pl -= 3;
			const cJSON *m;
			cJSON_ArrayForEach(m, v->j)
			{
				if (m->string && !strncmp(m->string, path, pl) && isupper((unsigned char)m->string[pl]))
					ok = te->types && type_allowed(te->types, m->string + pl);
			}
		}
	} else if (!strcmp(type, "profile")) {
		disc_nodes(vc, v, path, &nodes);
		const char *want = type_profile(de ? de : s);
		const struct profile *tp = want ? profile_find(vc->ps, want) : NULL;
		for (size_t i = 0; !ok && tp && i < nodes.n; i++) {
			const char *url = str_of(nodes.v[i].j, "url");
			if (tp->is_extension)
				ok = url && !strcmp(url, tp->url);
			else
				ok = vc->nest < MAX_NEST && validate_against(vc, tp, &nodes.v[i], true) == 0;
		}
	}
	free(nodes.v);
	return ok;
}

/* Whether v belongs to slice s under the slicing of the sliced element. */
static bool in_slice(struct vctx *vc, const cJSON *slicing, const struct pelem *s, const struct val *v, bool extension)
{
	const cJSON *discs = cJSON_GetObjectItemCaseSensitive(slicing, "discriminator");
	if (!cJSON_GetArraySize(discs)) {
		if (!extension)
			return false;
		return disc_match(vc, s, v, "value", "url");
	}
	const cJSON *d;
	cJSON_ArrayForEach(d, discs)
	{
		const char *type = str_of(d, "type"), *path = str_of(d, "path");
		if (!type || !path || !disc_match(vc, s, v, type, path))
			return false;
	}
	return true;
}

static void validate_children(struct vctx *vc, size_t ei, const struct vals *in);

static void check_card(struct vctx *vc, const struct pelem *e, size_t n, const char *loc, bool slice)
{
	if (!slice && e->min == e->model_min && e->max == e->model_max)
		return; /* the model's own limits: structural validation reports them */
	if (e->min > 0 && n < (size_t)e->min)
		report(vc, OUTCOME_ERROR, "required", "profile-cardinality-min", loc,
		       "%s%s requires at least %ld value(s), found %zu", slice ? "slice " : "", e->id, e->min, n);
	if (e->max >= 0 && n > (size_t)e->max)
		report(vc, OUTCOME_ERROR, "structure", "profile-cardinality-max", loc,
		       "%s%s allows at most %ld value(s), found %zu", slice ? "slice " : "", e->id, e->max, n);
}

/* Sorts the values vs of one element into the slices at one level: the
 * slices (indexes into all) whose name has no '/' when parent is NULL, else
 * the reslices of parent ("parent/x"). slicing is the sliced element's, or
 * the slice's own when it is resliced (its parent's when it states none).
 * Each slice's values are then checked against it, its children, and its
 * reslices. */
static void check_slices(struct vctx *vc, const cJSON *slicing, const char *owner, const size_t *all, size_t nall,
			 const char *parent, const struct vals *vs, const char *loc, bool extension)
{
	size_t slices[64], nslices = 0, pl = parent ? strlen(parent) : 0;
	for (size_t k = 0; k < nall && nslices < 64; k++) {
		const char *sn = vc->p->el[all[k]].slice;
		if (parent ? !strncmp(sn, parent, pl) && sn[pl] == '/' && !strchr(sn + pl + 1, '/') : !strchr(sn, '/'))
			slices[nslices++] = all[k];
	}
	if (!nslices)
		return;
	size_t *which = calloc(vs->n ? vs->n : 1, sizeof *which);
	if (!which)
		return;
	for (size_t i = 0; i < vs->n; i++) {
		which[i] = SIZE_MAX;
		vc->unresolved = NULL;
		for (size_t s = 0; s < nslices; s++)
			if (in_slice(vc, slicing, &vc->p->el[slices[s]], &vs->v[i], extension)) {
				which[i] = s;
				break;
			}
		if (which[i] == SIZE_MAX && vc->unresolved)
			report(vc, OUTCOME_WARNING, "not-found", "profile-slice-unresolved", vs->v[i].loc,
			       "the reference %s could not be resolved (neither a contained resource nor an entry of "
			       "the Bundle), so it matches no slice of %s",
			       vc->unresolved, owner);
		vc->unresolved = NULL;
	}
	const char *rules = str_of(slicing, "rules");
	bool ordered = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(slicing, "ordered"));
	size_t last = 0;
	bool seen_unmatched = false;
	for (size_t i = 0; i < vs->n; i++) {
		if (which[i] == SIZE_MAX) {
			if (rules && !strcmp(rules, "closed"))
				report(vc, OUTCOME_ERROR, "structure", "profile-slice-closed", vs->v[i].loc,
				       "the value matches no slice of %s, and its slicing is closed", owner);
			seen_unmatched = true;
			continue;
		}
		if (seen_unmatched && rules && !strcmp(rules, "openAtEnd"))
			report(vc, OUTCOME_ERROR, "structure", "profile-slice-openatend", vs->v[i].loc,
			       "slice %s comes after a value no slice matches (slicing openAtEnd)",
			       vc->p->el[slices[which[i]]].id);
		if (ordered && which[i] < last)
			report(vc, OUTCOME_ERROR, "structure", "profile-slice-order", vs->v[i].loc,
			       "slice %s is out of the order the slicing requires", vc->p->el[slices[which[i]]].id);
		if (which[i] > last)
			last = which[i];
	}
	struct vals sv = {0};
	for (size_t s = 0; s < nslices; s++) {
		const struct pelem *se = &vc->p->el[slices[s]];
		sv.n = 0;
		for (size_t i = 0; i < vs->n; i++)
			if (which[i] == s)
				vals_push(&sv, vs->v[i].j, vs->v[i].t, vs->v[i].loc);
		check_card(vc, se, sv.n, sv.n ? sv.v[0].loc : loc, true);
		for (size_t i = 0; i < sv.n; i++)
			check_value(vc, se, &sv.v[i]);
		validate_children(vc, slices[s], &sv);
		check_slices(vc, se->slicing ? se->slicing : slicing, se->id, all, nall, se->slice, &sv, loc,
			     extension);
	}
	free(sv.v);
	free(which);
}

static void validate_group(struct vctx *vc, const struct pelem *base, const size_t *slices, size_t nslices,
			   const char *name, const struct val *inst)
{
	struct vals vs = {0};
	collect(inst, name, &vs);
	char loc[LOC_MAX];
	loc_join(loc, inst->loc, name, -1);
	size_t ll = strlen(loc);
	if (ll > 3 && !strcmp(loc + ll - 3, "[x]"))
		loc[ll - 3] = '\0';
	if (base) {
		check_card(vc, base, vs.n, vs.n ? vs.v[0].loc : loc, false);
		for (size_t i = 0; i < vs.n; i++)
			check_value(vc, base, &vs.v[i]);
		validate_children(vc, (size_t)(base - vc->p->el), &vs);
	}
	if (nslices)
		check_slices(vc, base ? base->slicing : NULL, base ? base->id : name, slices, nslices, NULL, &vs, loc,
			     !strcmp(name, "extension") || !strcmp(name, "modifierExtension"));
	free(vs.v);
}

/* Checks the children of element ei in every instance of it. */
static void validate_children(struct vctx *vc, size_t ei, const struct vals *in)
{
	const struct profile *p = vc->p;
	if (!in->n)
		return;
	for (size_t c = p->el[ei].first_child; c != SIZE_MAX; c = p->el[c].next_sibling) {
		const struct pelem *ce = &p->el[c];
		if (!ce->name_first)
			continue;
		const struct pelem *base = NULL;
		size_t slices[64], ns = 0;
		for (size_t k = c; k != SIZE_MAX; k = p->el[k].next_sibling) {
			const struct pelem *ke = &p->el[k];
			if (strcmp(ke->name, ce->name) != 0)
				continue;
			if (!ke->slice)
				base = ke;
			else if (ns < 64)
				slices[ns++] = k; /* slices and reslices ("a/b") */
		}
		for (size_t i = 0; i < in->n; i++)
			validate_group(vc, base, slices, ns, ce->name, &in->v[i]);
	}
}

/* Validates v against p; quiet: count errors only. Returns the errors. */
static size_t validate_against(struct vctx *vc, const struct profile *p, const struct val *v, bool quiet)
{
	struct vctx sub = *vc;
	sub.p = p;
	sub.errors = 0;
	sub.nest = vc->nest + 1;
	if (quiet)
		sub.oo = NULL;
	if (!p->nel)
		return 0;
	struct vals in = {0};
	vals_push(&in, v->j, v->t, v->loc);
	check_value(&sub, &p->el[0], v);
	validate_children(&sub, 0, &in);
	free(in.v);
	return sub.errors;
}

/* ---- extensions anywhere in the resource ---- */

static bool type_is(const struct model_type *t, const char *name)
{
	for (; t; t = t->base == MODEL_NONE ? NULL : &model_types[t->base])
		if (!strcmp(t->name, name))
			return true;
	return false;
}

static bool context_ok(const struct profile *ext, const struct model_type *holder, const char *epath,
		       const char *parent_url)
{
	const cJSON *ctx = cJSON_GetObjectItemCaseSensitive(ext->sd, "context");
	if (!cJSON_GetArraySize(ctx))
		return true;
	const cJSON *c;
	cJSON_ArrayForEach(c, ctx)
	{
		const char *type = str_of(c, "type"), *ex = str_of(c, "expression");
		if (!type || !ex)
			continue;
		if (!strcmp(type, "fhirpath"))
			return true; /* not decided here */
		if (!strcmp(type, "extension") && parent_url && !strcmp(ex, parent_url))
			return true;
		if (!strcmp(type, "element") &&
		    (!strcmp(ex, epath) || (holder && type_is(holder, ex)) || !strcmp(ex, "Element")))
			return true;
	}
	return false;
}

static void walk(struct vctx *vc, const cJSON *j, const struct model_type *t, const char *loc, const char *epath,
		 const char *parent_url, int depth);

static void check_extension(struct vctx *vc, const cJSON *ext, bool modifier, const struct model_type *holder,
			    const char *loc, const char *epath, const char *parent_url)
{
	const char *url = str_of(ext, "url");
	if (!url || !strstr(url, ":"))
		return; /* a sub-extension's local name: its parent's definition checks it */
	const struct profile *p = profile_find(vc->ps, url);
	struct vctx sub = *vc;
	if (!p || !p->is_extension) {
		static const struct profile none = {.url = "(extensions)"};
		sub.p = &none;
		report(&sub, OUTCOME_WARNING, "not-found", "extension-unknown", loc,
		       "extension %s has no definition loaded", url);
		vc->errors += sub.errors;
		return;
	}
	sub.p = p;
	if (!context_ok(p, holder, epath, parent_url))
		report(&sub, OUTCOME_ERROR, "structure", "extension-context", loc,
		       "the extension may not be used on %s (its definition's context)", epath);
	if (modifier && !p->ext_modifier)
		report(&sub, OUTCOME_ERROR, "structure", "extension-not-modifier", loc,
		       "a modifierExtension whose definition is not a modifier");
	if (!modifier && p->ext_modifier)
		report(&sub, OUTCOME_ERROR, "structure", "extension-modifier", loc,
		       "a modifier extension given as a plain extension (it belongs in modifierExtension)");
	vc->errors += sub.errors;
	if (vc->nest < MAX_NEST) {
		struct val v = {.j = ext, .t = model_type("Extension")};
		snprintf(v.loc, sizeof v.loc, "%s", loc);
		vc->errors += validate_against(vc, p, &v, false);
	}
}

static void walk(struct vctx *vc, const cJSON *j, const struct model_type *t, const char *loc, const char *epath,
		 const char *parent_url, int depth)
{
	if (!cJSON_IsObject(j) || depth > 64)
		return;
	const char *self_url = t && !strcmp(t->name, "Extension") ? str_of(j, "url") : NULL;
	const cJSON *m;
	cJSON_ArrayForEach(m, j)
	{
		if (!m->string || m->string[0] == '_')
			continue;
		const struct model_type *chosen = NULL;
		const struct model_elem *me = t ? model_find_elem(t, m->string, strlen(m->string), &chosen) : NULL;
		if (!me || !chosen || chosen->kind == MODEL_PRIMITIVE)
			continue;
		bool ext = !strcmp(m->string, "extension"), mod = !strcmp(m->string, "modifierExtension");
		char l[LOC_MAX], ep[LOC_MAX];
		int i = 0;
		const cJSON *it = cJSON_IsArray(m) ? m->child : m;
		for (; it; it = cJSON_IsArray(m) ? it->next : NULL, i++) {
			if (cJSON_IsArray(m))
				loc_join(l, loc, m->string, i);
			else
				loc_join(l, loc, m->string, -1);
			const struct model_type *ct = value_type(chosen, it);
			if (ext || mod)
				check_extension(vc, it, mod, t, l, epath, self_url ? self_url : parent_url);
			if (ct && ct->kind == MODEL_RESOURCE)
				snprintf(ep, sizeof ep, "%s", ct->name);
			else if (ct && ct->kind == MODEL_BACKBONE)
				snprintf(ep, sizeof ep, "%s", ct->name);
			else
				loc_join(ep, epath, me->name, -1);
			walk(vc, it, ct, l, ep, self_url ? self_url : parent_url, depth + 1);
		}
	}
}

/* ---- entry ---- */

static size_t validate_claims(struct vctx *vc, const cJSON *res, const char *loc, int depth);

static size_t validate_one(struct vctx *vc, const struct profile *p, const cJSON *res, const char *loc)
{
	const char *rt = str_of(res, "resourceType");
	struct vctx sub = *vc;
	sub.p = p;
	sub.resource = res;
	if (!rt || strcmp(rt, p->type) != 0) {
		report(&sub, OUTCOME_ERROR, "invalid", "profile-type-mismatch", loc,
		       "the profile is for a %s, not a %s", p->type, rt ? rt : "(no resourceType)");
		return sub.errors;
	}
	struct val v = {.j = res, .t = model_resource(rt)};
	snprintf(v.loc, sizeof v.loc, "%s", loc);
	return validate_against(&sub, p, &v, false);
}

static size_t validate_claims(struct vctx *vc, const cJSON *res, const char *loc, int depth)
{
	size_t errors = 0;
	const cJSON *claims =
		cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(res, "meta"), "profile");
	const cJSON *c;
	cJSON_ArrayForEach(c, claims)
	{
		if (!cJSON_IsString(c))
			continue;
		const struct profile *p = profile_find(vc->ps, c->valuestring);
		if (!p) {
			static const struct profile none = {.url = "(meta.profile)"};
			struct vctx sub = *vc;
			sub.p = &none;
			report(&sub, OUTCOME_WARNING, "not-found", "profile-unknown", loc,
			       "the claimed profile %s is not loaded", c->valuestring);
			continue;
		}
		errors += validate_one(vc, p, res, loc);
	}
	if (depth > 8)
		return errors;
	/* contained resources and Bundle entries carry their own claims */
	char l[LOC_MAX];
	int i = 0;
	cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(res, "contained"))
	{
		loc_join(l, loc, "contained", i++);
		struct vctx sub = *vc;
		sub.container = res;
		errors += validate_claims(&sub, c, l, depth + 1);
		vc->errors = sub.errors;
	}
	i = 0;
	cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(res, "entry"))
	{
		const cJSON *r = cJSON_GetObjectItemCaseSensitive(c, "resource");
		char e[LOC_MAX];
		loc_join(e, loc, "entry", i++);
		loc_join(l, e, "resource", -1);
		if (!cJSON_IsObject(r))
			continue;
		/* an entry's references resolve within its Bundle */
		struct vctx sub = *vc;
		sub.bundle = res;
		sub.full_url = str_of(c, "fullUrl");
		sub.container = NULL;
		errors += validate_claims(&sub, r, l, depth + 1);
		vc->errors = sub.errors;
	}
	return errors;
}

size_t profile_validate(const struct profile_set *ps, const cJSON *resource, const char *url, struct outcome *oo,
			struct profile_stats *stats)
{
	struct arena a;
	arena_init(&a, 16u << 20);
	struct profile_stats st = {0};
	struct vctx vc = {.ps = ps, .resource = resource, .oo = oo, .st = &st, .a = &a};
	const char *rt = str_of(resource, "resourceType");
	const char *loc = rt ? rt : "";
	size_t before = oo ? outcome_errors(oo) : 0;
	if (url) {
		const struct profile *p = profile_find(ps, url);
		if (!p) {
			static const struct profile none = {.url = "(profile)"};
			vc.p = &none;
			report(&vc, OUTCOME_ERROR, "not-supported", "profile-unknown", loc,
			       "the profile %s is not loaded", url);
		} else {
			validate_one(&vc, p, resource, loc);
		}
	} else {
		validate_claims(&vc, resource, loc, 0);
	}
	walk(&vc, resource, rt ? model_resource(rt) : NULL, loc, loc, NULL, 0);
	arena_release(&a);
	if (stats)
		*stats = st;
	return oo ? outcome_errors(oo) - before : vc.errors;
}
