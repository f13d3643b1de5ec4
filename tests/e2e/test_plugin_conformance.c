/* Plugin output against the project's own conformance resources (profiles/).
 *
 * Through the plugin host, with the built plugins: every mapping plugin maps
 * every example it ships (docs/formats/examples/FORMAT-*.{json,csv}; the
 * strengths plugin once more in its "condition" mode) to FHIR, and every
 * resource of every Bundle is checked:
 *
 *  - every meta.profile is a StructureDefinition in profiles/;
 *  - every extension URL is an extension definition in profiles/ (or one of
 *    the few published elsewhere, listed in external_extensions with where
 *    they are defined), used where its context allows and with the value
 *    type it defines;
 *  - every coding in a CodeSystem under the canonical base names a CodeSystem
 *    in profiles/ that has the code, with the CodeSystem's display;
 *  - the claimed profile's differential holds (min/max per parent, fixed[x],
 *    pattern[x], slices by pattern or extension URL, choice types, reference
 *    targets, required bindings to ValueSets in profiles/), following
 *    baseDefinition through the profiles here.
 *
 *  - the profile engine (core/fhir/profile.h), loaded as the gateway loads
 *    it (app_load_terminology, app_load_profiles over the same folder),
 *    finds no error in the resource against the profiles it claims:
 *    snapshots, slicing, bindings and the FHIRPath constraints included.
 *
 * The differential check (diffcheck_*) predates the engine and is kept as a
 * second, independent reading of the differentials; the URL resolution and
 * display checks above are not the engine's (it warns on an unknown profile
 * or extension, and does not compare displays).
 *
 * Run from the repository root (make test does); CW_PROFILES_DIR overrides
 * the profiles folder. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <ctype.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "config/config.h"
#include "e2e/plugin_kit.h"
#include "fhir/outcome.h"
#include "fhir/profile.h"
#include "fhir/terminology.h"

#define EXAMPLES "docs/formats/examples"
#define BASE "https://crosswalk.example.org/fhir"
#define R4_SD "http://hl7.org/fhir/StructureDefinition/"
#define MAX_PROFILES 256
#define MAX_VALUES 512

static cJSON *profiles[MAX_PROFILES];
static size_t n_profiles;
/* The profile engine over the same folder, as the gateway loads it. */
static struct terminology *engine_terms;
static struct profile_set *engine;

/* Extensions a plugin writes that are defined outside profiles/. */
static const struct {
	const char *url, *context, *value; /* context: a type or element path; value: the value[x] type */
} external_extensions[] = {
	/* R4 core (hl7.fhir.r4.core 4.0.1, extension-goal-acceptance): complex */
	{R4_SD "goal-acceptance", "Goal", NULL},
	/* R4 core (extension-resource-pertainstogoal): any resource */
	{R4_SD "resource-pertainsToGoal", "Resource", "Reference"},
	/* Person-Centered Outcomes IG (hl7.fhir.us.pco): complex, on Goal */
	{"http://hl7.org/fhir/us/pco/StructureDefinition/pco-goal-attainment-scaling", "Goal", NULL},
};

/* ---------------------------------------------------------------- loading */

static const char *str(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static const cJSON *get(const cJSON *o, const char *key) { return cJSON_GetObjectItemCaseSensitive(o, key); }

static bool eq(const char *a, const char *b) { return a && b && strcmp(a, b) == 0; }

static const cJSON *by_url(const char *type, const char *url)
{
	for (size_t i = 0; url && i < n_profiles; i++)
		if (eq(str(profiles[i], "resourceType"), type) && eq(str(profiles[i], "url"), url))
			return profiles[i];
	return NULL;
}

static int load_profiles(void **state)
{
	(void)state;
	const char *dir = tk_env_or("CW_PROFILES_DIR", "profiles");
	DIR *d = opendir(dir);
	if (!d)
		return -1;
	struct dirent *e;
	while ((e = readdir(d)) != NULL && n_profiles < MAX_PROFILES) {
		size_t n = strlen(e->d_name);
		if (n < 6 || strcmp(e->d_name + n - 5, ".json") != 0)
			continue;
		char path[600];
		snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
		char *text = tk_slurp(path, NULL);
		cJSON *j = cJSON_Parse(text);
		free(text);
		if (!j) {
			closedir(d);
			return -1;
		}
		profiles[n_profiles++] = j;
	}
	closedir(d);
	if (n_profiles < 30)
		return -1;
	struct config cfg;
	char err[512];
	if (config_defaults(&cfg) != 0)
		return -1;
	free(cfg.profiles_dir);
	cfg.profiles_dir = strdup(dir);
	int rc = -1;
	if (cfg.profiles_dir && (engine_terms = app_load_terminology(&cfg, err, sizeof err)) != NULL &&
	    (engine = app_load_profiles(&cfg, engine_terms, err, sizeof err)) != NULL)
		rc = 0;
	else
		fprintf(stderr, "# loading %s: %s\n", dir, err);
	config_release(&cfg);
	return rc;
}

static int free_profiles(void **state)
{
	(void)state;
	for (size_t i = 0; i < n_profiles; i++)
		cJSON_Delete(profiles[i]);
	n_profiles = 0;
	profile_set_free(engine);
	terminology_free(engine_terms);
	engine = NULL;
	engine_terms = NULL;
	return 0;
}

/* ------------------------------------------------------ problem reporting */

struct check {
	const char *example; /* the example file the Bundle came from */
	const cJSON *bundle;
	const char *want; /* a text some problem must contain (the_check_finds_problems) */
	bool found;
	size_t problems;
	size_t resources, profiles_checked, extensions, codings;
	size_t engine_checked, constraints; /* resources the engine checked; FHIRPath constraints it evaluated */
};

static void problem(struct check *c, const cJSON *r, const char *fmt, ...)
{
	char msg[700];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (c->want && strstr(msg, c->want))
		c->found = true;
	if (c->problems < 40)
		fprintf(stderr, "# %s: %s/%s: %s\n", c->example, str(r, "resourceType"),
			str(r, "id") ? str(r, "id") : "?", msg);
	c->problems++;
}

/* ---------------------------------------------------------- codes and sets */

/* The concept code of a CodeSystem's concepts (at any depth), or NULL. */
static const cJSON *cs_concept(const cJSON *concepts, const char *code)
{
	const cJSON *k, *found;
	cJSON_ArrayForEach(k, concepts)
	{
		if (eq(str(k, "code"), code))
			return k;
		if ((found = cs_concept(get(k, "concept"), code)) != NULL)
			return found;
	}
	return NULL;
}

static bool cs_has_code(const cJSON *concepts, const char *code) { return cs_concept(concepts, code) != NULL; }

/* Whether (system, code) is in the ValueSet vs (compose.include only: a
 * whole CodeSystem here, listed concepts, or a whole external system).
 * system NULL: any system of the set. */
static bool vs_has(const cJSON *vs, const char *system, const char *code)
{
	const cJSON *inc, *k;
	cJSON_ArrayForEach(inc, get(get(vs, "compose"), "include"))
	{
		const char *sys = str(inc, "system");
		if (system && !eq(sys, system))
			continue;
		if (get(inc, "concept")) {
			cJSON_ArrayForEach(k, get(inc, "concept"))
			{
				if (eq(str(k, "code"), code))
					return true;
			}
			continue;
		}
		const cJSON *cs = by_url("CodeSystem", sys);
		if (!cs || cs_has_code(get(cs, "concept"), code))
			return true;
	}
	return false;
}

/* ------------------------------------------------ walking the resource */

/* The element path of a member name (choice members "valueString" match
 * "value[x]"); the chosen type's name (lower-case first letter for
 * primitives as FHIR writes them) in type when it was a choice. */
static bool member_matches(const char *member, const char *seg, char *type, size_t cap)
{
	size_t n = strlen(seg);
	if (n > 3 && strcmp(seg + n - 3, "[x]") == 0) {
		n -= 3;
		if (strncmp(member, seg, n) != 0 || !isupper((unsigned char)member[n]))
			return false;
		snprintf(type, cap, "%s", member + n);
		return true;
	}
	type[0] = '\0';
	return strcmp(member, seg) == 0;
}

struct value {
	const cJSON *node;
	char type[48]; /* the chosen type of a choice element, else "" */
};

/* The values of the child seg of node (an array member gives each item). */
static size_t children(const cJSON *node, const char *seg, struct value *out, size_t cap)
{
	size_t n = 0;
	const cJSON *m;
	cJSON_ArrayForEach(m, node)
	{
		char type[48];
		if (!m->string || !member_matches(m->string, seg, type, sizeof type))
			continue;
		if (cJSON_IsArray(m)) {
			const cJSON *it;
			cJSON_ArrayForEach(it, m)
			{
				if (n < cap) {
					out[n].node = it;
					snprintf(out[n].type, sizeof out[n].type, "%s", type);
					n++;
				}
			}
		} else if (n < cap) {
			out[n].node = m;
			snprintf(out[n].type, sizeof out[n].type, "%s", type);
			n++;
		}
	}
	return n;
}

/* The nodes at the dotted path rel (below the resource root) of r. */
static size_t nodes_at(const cJSON *r, const char *rel, struct value *out, size_t cap)
{
	size_t n = 1;
	out[0].node = r;
	out[0].type[0] = '\0';
	char seg[128];
	while (*rel) {
		size_t len = strcspn(rel, ".");
		if (len >= sizeof seg)
			return 0;
		memcpy(seg, rel, len);
		seg[len] = '\0';
		rel += len + (rel[len] == '.');
		struct value *next = calloc(cap, sizeof *next);
		assert_non_null(next);
		size_t m = 0;
		for (size_t i = 0; i < n; i++)
			m += children(out[i].node, seg, next + m, cap - m);
		memcpy(out, next, m * sizeof *out);
		free(next);
		n = m;
	}
	return n;
}

/* pattern[x] semantics: every member of the pattern is in the value; each
 * item of a pattern array matches some item of the value's array. */
static bool pattern_holds(const cJSON *pattern, const cJSON *value)
{
	if (cJSON_IsObject(pattern)) {
		if (!cJSON_IsObject(value))
			return false;
		const cJSON *m;
		cJSON_ArrayForEach(m, pattern)
		{
			if (!pattern_holds(m, get(value, m->string)))
				return false;
		}
		return true;
	}
	if (cJSON_IsArray(pattern)) {
		if (!cJSON_IsArray(value))
			return false;
		const cJSON *p, *v;
		cJSON_ArrayForEach(p, pattern)
		{
			bool found = false;
			cJSON_ArrayForEach(v, value) found = found || pattern_holds(p, v);
			if (!found)
				return false;
		}
		return true;
	}
	return value && cJSON_Compare(pattern, value, true);
}

/* The member fixedX or patternX of an element definition, if any. */
static const cJSON *prefixed(const cJSON *e, const char *prefix)
{
	const cJSON *m;
	size_t n = strlen(prefix);
	cJSON_ArrayForEach(m, e)
	{
		if (m->string && strncmp(m->string, prefix, n) == 0 && isupper((unsigned char)m->string[n]))
			return m;
	}
	return NULL;
}

/* ------------------------------------------------- the differential check */

/* Whether value is a member of the slice sl (its pattern, or for extension
 * slices its profile URL). */
static bool diffcheck_in_slice(const cJSON *sl, const cJSON *value)
{
	const cJSON *pat = prefixed(sl, "pattern");
	if (pat)
		return pattern_holds(pat, value);
	const cJSON *prof = cJSON_GetArrayItem(get(cJSON_GetArrayItem(get(sl, "type"), 0), "profile"), 0);
	if (cJSON_IsString(prof))
		return eq(str(value, "url"), prof->valuestring);
	return false;
}

/* The resource a reference points at in the Bundle, or NULL. */
static const cJSON *resolve(const cJSON *bundle, const char *ref)
{
	const cJSON *e;
	cJSON_ArrayForEach(e, get(bundle, "entry"))
	{
		const cJSON *r = get(e, "resource");
		char local[300];
		snprintf(local, sizeof local, "%s/%s", str(r, "resourceType") ? str(r, "resourceType") : "",
			 str(r, "id") ? str(r, "id") : "");
		if (eq(str(e, "fullUrl"), ref) || eq(local, ref))
			return r;
	}
	return NULL;
}

static bool claims(const cJSON *r, const char *profile)
{
	const cJSON *p;
	cJSON_ArrayForEach(p, get(get(r, "meta"), "profile"))
	{
		if (cJSON_IsString(p) && eq(p->valuestring, profile))
			return true;
	}
	return false;
}

/* A Reference value against the targetProfiles of the element's types. */
static void diffcheck_reference(struct check *c, const cJSON *r, const char *path, const cJSON *types,
				const cJSON *value)
{
	const char *ref = str(value, "reference");
	const cJSON *t, *tp;
	bool any = false, ok = false;
	char rtype[64] = "";
	if (ref && strchr(ref, '/') && strncmp(ref, "urn:", 4) != 0)
		snprintf(rtype, sizeof rtype, "%.*s", (int)(strchr(ref, '/') - ref), ref);
	else if (str(value, "type"))
		snprintf(rtype, sizeof rtype, "%s", str(value, "type"));
	const cJSON *target = ref ? resolve(c->bundle, ref) : NULL;
	if (target)
		snprintf(rtype, sizeof rtype, "%s", str(target, "resourceType"));
	cJSON_ArrayForEach(t, types)
	{
		cJSON_ArrayForEach(tp, get(t, "targetProfile"))
		{
			const char *u = tp->valuestring;
			any = true;
			if (strncmp(u, R4_SD, strlen(R4_SD)) == 0) {
				ok = ok || !rtype[0] || eq(u + strlen(R4_SD), rtype);
			} else {
				const cJSON *sd = by_url("StructureDefinition", u);
				if (!sd) {
					problem(c, r, "%s: target profile %s is not in profiles/", path, u);
					continue;
				}
				/* A target in the Bundle must claim the profile. */
				ok = ok || (target ? claims(target, u) : (!rtype[0] || eq(str(sd, "type"), rtype)));
			}
		}
	}
	if (any && !ok)
		problem(c, r, "%s: reference %s is not to one of the profile's targets", path, ref ? ref : "(none)");
}

/* A required binding: the value (code, Coding or CodeableConcept) is in vs. */
static void diffcheck_binding(struct check *c, const cJSON *r, const char *path, const cJSON *binding,
			      const cJSON *value)
{
	if (!eq(str(binding, "strength"), "required"))
		return;
	const char *vsu = str(binding, "valueSet");
	const cJSON *vs = by_url("ValueSet", vsu);
	if (!vs) {
		if (vsu && strncmp(vsu, BASE "/", strlen(BASE) + 1) == 0)
			problem(c, r, "%s: binding to %s, not in profiles/", path, vsu);
		return; /* an external set is not expanded here */
	}
	bool ok = false;
	if (cJSON_IsString(value)) {
		ok = vs_has(vs, NULL, value->valuestring);
	} else if (get(value, "coding")) {
		const cJSON *k;
		cJSON_ArrayForEach(k, get(value, "coding")) ok = ok || vs_has(vs, str(k, "system"), str(k, "code"));
	} else {
		ok = vs_has(vs, str(value, "system"), str(value, "code"));
	}
	if (!ok)
		problem(c, r, "%s: value not in the required ValueSet %s", path, vsu);
}

static void diffcheck_profile(struct check *c, const cJSON *r, const char *url, int depth);

/* One element definition of a differential against the resource. */
static void diffcheck_element(struct check *c, const cJSON *r, const cJSON *sd, const cJSON *e)
{
	const char *path = str(e, "path"), *id = str(e, "id"), *type = str(sd, "type");
	size_t tl = strlen(type);
	if (!path || strncmp(path, type, tl) != 0 || !path[tl])
		return; /* the root */
	/* Only slices on the last segment are understood here. */
	const char *colon = id ? strchr(id, ':') : NULL;
	if (colon && strchr(colon, '.'))
		return;
	const cJSON *slice = NULL;
	if (colon) {
		const cJSON *o;
		cJSON_ArrayForEach(o, get(get(sd, "differential"), "element"))
		{
			if (eq(str(o, "id"), id))
				slice = o;
		}
	}
	const char *rel = path + tl + 1, *dot = strrchr(rel, '.');
	char parent[256], seg[128];
	snprintf(parent, sizeof parent, "%.*s", dot ? (int)(dot - rel) : 0, rel);
	snprintf(seg, sizeof seg, "%s", dot ? dot + 1 : rel);

	struct value *parents = calloc(MAX_VALUES, sizeof *parents), *vals = calloc(MAX_VALUES, sizeof *vals);
	assert_non_null(parents);
	assert_non_null(vals);
	size_t np = nodes_at(r, parent, parents, MAX_VALUES);
	const cJSON *min = get(e, "min");
	const char *max = str(e, "max");
	const cJSON *fixed = prefixed(e, "fixed"), *pattern = prefixed(e, "pattern"), *types = get(e, "type");
	for (size_t p = 0; p < np; p++) {
		size_t nv = children(parents[p].node, seg, vals, MAX_VALUES), kept = 0;
		for (size_t i = 0; i < nv; i++) {
			const cJSON *v = vals[i].node;
			if (slice && !diffcheck_in_slice(slice, v))
				continue;
			kept++;
			if (fixed && !cJSON_Compare(fixed, v, true))
				problem(c, r, "%s: not the fixed value of %s", id, fixed->string);
			if (pattern && !pattern_holds(pattern, v))
				problem(c, r, "%s: does not match %s", id, pattern->string);
			if (get(e, "binding"))
				diffcheck_binding(c, r, id, get(e, "binding"), v);
			if (vals[i].type[0] && cJSON_GetArraySize(types)) {
				bool ok = false;
				const cJSON *t;
				cJSON_ArrayForEach(t, types) ok =
					ok || (str(t, "code") && strcasecmp(str(t, "code"), vals[i].type) == 0);
				if (!ok)
					problem(c, r, "%s: type %s is not allowed", id, vals[i].type);
			}
			const cJSON *t0 = cJSON_GetArrayItem(types, 0);
			if (eq(str(t0, "code"), "Reference") || eq(vals[i].type, "Reference"))
				diffcheck_reference(c, r, id, types, v);
			const cJSON *prof = get(t0, "profile"), *pu;
			/* An element typed with a profile here (not an extension, done by URL) */
			cJSON_ArrayForEach(pu, prof)
			{
				if (!eq(str(t0, "code"), "Extension") && by_url("StructureDefinition", pu->valuestring))
					diffcheck_profile(c, v, pu->valuestring, 1);
			}
		}
		if (cJSON_IsNumber(min) && kept < (size_t)min->valueint)
			problem(c, r, "%s: %zu present, at least %d required", id, kept, min->valueint);
		if (max && strcmp(max, "*") != 0 && kept > (size_t)atoi(max))
			problem(c, r, "%s: %zu present, at most %s allowed", id, kept, max);
	}
	free(parents);
	free(vals);
}

static void diffcheck_profile(struct check *c, const cJSON *r, const char *url, int depth)
{
	const cJSON *sd = by_url("StructureDefinition", url);
	if (!sd || depth > 8)
		return;
	c->profiles_checked++;
	if (!eq(str(sd, "type"), str(r, "resourceType")) && !eq(str(sd, "kind"), "complex-type"))
		problem(c, r, "profile %s is for %s", url, str(sd, "type"));
	const cJSON *e;
	cJSON_ArrayForEach(e, get(get(sd, "differential"), "element")) diffcheck_element(c, r, sd, e);
	const char *base = str(sd, "baseDefinition");
	if (base && by_url("StructureDefinition", base))
		diffcheck_profile(c, r, base, depth + 1);
}

/* The differential check of every profile r claims. */
static void diffcheck_resource(struct check *c, const cJSON *r)
{
	const cJSON *p;
	cJSON_ArrayForEach(p, get(get(r, "meta"), "profile"))
	{
		const char *u = cJSON_IsString(p) ? p->valuestring : NULL;
		if (!by_url("StructureDefinition", u))
			problem(c, r, "meta.profile %s is not a StructureDefinition in profiles/",
				u ? u : "(not a string)");
		else
			diffcheck_profile(c, r, u, 0);
	}
}

/* ------------------------------------------------ extensions and codings */

static bool context_allows(const char *context, const char *where)
{
	if (eq(context, "Resource") || eq(context, "Element"))
		return true;
	return eq(context, where);
}

static void check_extension(struct check *c, const cJSON *r, const cJSON *ext, const char *where)
{
	const char *url = str(ext, "url");
	c->extensions++;
	if (!url) {
		problem(c, r, "%s: an extension without url", where);
		return;
	}
	char value_type[48] = "";
	const cJSON *m;
	cJSON_ArrayForEach(m, ext)
	{
		if (m->string && strncmp(m->string, "value", 5) == 0 && isupper((unsigned char)m->string[5]))
			snprintf(value_type, sizeof value_type, "%s", m->string + 5);
	}
	const cJSON *sd = by_url("StructureDefinition", url);
	if (sd) {
		bool ok = false;
		const cJSON *ctx;
		cJSON_ArrayForEach(ctx, get(sd, "context")) ok = ok || context_allows(str(ctx, "expression"), where);
		if (!ok)
			problem(c, r, "extension %s is used on %s, outside its context", url, where);
		if (!eq(str(sd, "type"), "Extension"))
			problem(c, r, "%s is not an extension definition", url);
		diffcheck_profile(c, ext, url, 0);
		return;
	}
	for (size_t i = 0; i < sizeof external_extensions / sizeof external_extensions[0]; i++) {
		if (!eq(external_extensions[i].url, url))
			continue;
		if (!context_allows(external_extensions[i].context, where))
			problem(c, r, "extension %s is used on %s, outside its context", url, where);
		const char *want = external_extensions[i].value;
		if (want ? strcmp(want, value_type) != 0 : value_type[0] != '\0')
			problem(c, r, "extension %s has value%s", url, value_type);
		return;
	}
	problem(c, r, "extension %s (on %s) is defined neither in profiles/ nor among the known external ones", url,
		where);
}

/* Walks node (at element path where) for extensions and local codings. */
static void walk(struct check *c, const cJSON *r, const cJSON *node, const char *where)
{
	if (cJSON_IsArray(node)) {
		const cJSON *it;
		cJSON_ArrayForEach(it, node) walk(c, r, it, where);
		return;
	}
	if (!cJSON_IsObject(node))
		return;
	const char *sys = str(node, "system"), *code = str(node, "code");
	if (sys && code && strncmp(sys, BASE "/CodeSystem/", strlen(BASE "/CodeSystem/")) == 0) {
		c->codings++;
		const cJSON *cs = by_url("CodeSystem", sys);
		if (!cs)
			problem(c, r, "%s: code system %s is not in profiles/", where, sys);
		else if (!cs_has_code(get(cs, "concept"), code))
			problem(c, r, "%s: %s has no code %s", where, sys, code);
		else if (str(node, "display") &&
			 !eq(str(node, "display"), str(cs_concept(get(cs, "concept"), code), "display")))
			problem(c, r, "%s: display '%s' of %s#%s is not the CodeSystem's '%s'", where,
				str(node, "display"), sys, code, str(cs_concept(get(cs, "concept"), code), "display"));
	}
	const cJSON *m;
	cJSON_ArrayForEach(m, node)
	{
		if (!m->string)
			continue;
		if (strcmp(m->string, "extension") == 0 || strcmp(m->string, "modifierExtension") == 0) {
			const cJSON *x;
			cJSON_ArrayForEach(x, m)
			{
				check_extension(c, r, x, where);
				/* Sub-extensions of a complex one are named, not defined apart. */
				const cJSON *v;
				cJSON_ArrayForEach(v, x)
				{
					if (v->string && strcmp(v->string, "extension") != 0)
						walk(c, r, v, "Extension");
				}
			}
			continue;
		}
		if (strcmp(m->string, "contained") == 0) {
			const cJSON *x;
			cJSON_ArrayForEach(x, m) walk(c, r, x, str(x, "resourceType") ? str(x, "resourceType") : "?");
			continue;
		}
		if (strcmp(m->string, "resource") == 0)
			continue;
		char path[300];
		snprintf(path, sizeof path, "%s.%s", where, m->string);
		walk(c, r, m, path);
	}
}

/* The profile engine on r against the profiles r claims: every error (and
 * fatal) issue is a problem. */
static void engine_check(struct check *c, const cJSON *r)
{
	if (!cJSON_GetArraySize(get(get(r, "meta"), "profile")))
		return;
	struct outcome oo = OUTCOME_INIT;
	struct profile_stats st = {0};
	profile_validate(engine, r, NULL, &oo, &st);
	assert_false(oo.oom);
	c->engine_checked++;
	c->constraints += st.constraints;
	for (size_t i = 0; i < oo.n; i++) {
		const struct outcome_issue *is = &oo.issues[i];
		if (is->severity <= OUTCOME_ERROR)
			problem(c, r, "engine %s at %s: %s", is->message_id ? is->message_id : is->code,
				is->expression ? is->expression : "?", is->diagnostics ? is->diagnostics : "");
	}
	outcome_release(&oo);
}

static void check_bundle(struct check *c, const cJSON *bundle)
{
	c->bundle = bundle;
	const cJSON *e;
	cJSON_ArrayForEach(e, get(bundle, "entry"))
	{
		const cJSON *r = get(e, "resource");
		c->resources++;
		walk(c, r, r, str(r, "resourceType"));
		diffcheck_resource(c, r);
		engine_check(c, r);
	}
}

/* Every example of format through the plugin; returns the examples seen. */
static int check_examples(struct check *c, const char *format)
{
	DIR *d = opendir(EXAMPLES);
	assert_non_null(d);
	struct dirent *de;
	int seen = 0;
	size_t fl = strlen(format);
	while ((de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, format, fl) != 0 || de->d_name[fl] != '-')
			continue;
		bool csv = strstr(de->d_name, ".csv") != NULL;
		char path[512];
		snprintf(path, sizeof path, "%s/%s", EXAMPLES, de->d_name);
		char *doc = tk_slurp(path, NULL);
		struct tk_call call;
		tk_call_begin(&call);
		cJSON *b = tk_to_fhir(&call, format, csv ? CW_MEDIA_CSV : CW_MEDIA_JSON, doc);
		if (!b)
			tk_dump(&call.oo);
		assert_non_null(b);
		c->example = path;
		check_bundle(c, b);
		cJSON_Delete(b);
		tk_call_end(&call);
		free(doc);
		seen++;
	}
	closedir(d);
	return seen;
}

static void plugin_conforms(const char *format, const char *settings)
{
	/* with the shipped code packs, as a gateway has them (peer-support
	 * refuses a diagnosis that is not in the ICD-10-CM pack) */
	assert_int_equal(tk_host_up_codes(format, settings), 0);
	struct check c = {0};
	int n = check_examples(&c, format);
	tk_host_down();
	print_message("# %s: %d examples, %zu resources, %zu profile checks, %zu extensions, %zu local codings, %zu "
		      "checked by the engine (%zu constraints), %zu problems\n",
		      format, n, c.resources, c.profiles_checked, c.extensions, c.codings, c.engine_checked,
		      c.constraints, c.problems);
	assert_true(n >= 2);
	assert_true(c.profiles_checked >= c.resources / 2);
	assert_true(c.engine_checked >= c.resources / 2);
	assert_int_equal(c.problems, 0);
}

static void peer_support_conforms(void **state)
{
	(void)state;
	plugin_conforms("peer-support", NULL);
}

static void outcomes_conforms(void **state)
{
	(void)state;
	plugin_conforms("outcomes", NULL);
}

static void recovery_plan_conforms(void **state)
{
	(void)state;
	plugin_conforms("recovery-plan", NULL);
}

static void strengths_conforms(void **state)
{
	(void)state;
	plugin_conforms("strengths", NULL);
}

static void strengths_condition_mode_conforms(void **state)
{
	(void)state;
	plugin_conforms("strengths", "{\"strengths\":{\"resource\":\"condition\"}}");
}

/* The checker itself catches what it is for: a resource made to break each
 * kind of rule is reported. */
static void the_check_finds_problems(void **state)
{
	(void)state;
	static const struct {
		const char *resource, *want;
	} bad[] = {
		{"{\"resourceType\":\"Patient\",\"meta\":{\"profile\":[\"" BASE "/StructureDefinition/nope\"]}}",
		 "is not a StructureDefinition in profiles/"},
		{"{\"resourceType\":\"Patient\",\"meta\":{\"profile\":[\"" BASE
		 "/StructureDefinition/peer-support-patient\"]}}",
		 "Patient.identifier: 0 present, at least 1 required"},
		{"{\"resourceType\":\"CarePlan\",\"meta\":{\"profile\":[\"" BASE
		 "/StructureDefinition/recovery-plan\"]},\"intent\":\"order\",\"status\":\"active\",\"subject\":{"
		 "\"reference\":\"Patient/p\"}}",
		 "CarePlan.intent: not the fixed value of fixedCode"},
		{"{\"resourceType\":\"Observation\",\"meta\":{\"profile\":[\"" BASE
		 "/StructureDefinition/recovery-strength\"]},\"category\":[{\"coding\":[{\"system\":\"http://"
		 "terminology.hl7.org/CodeSystem/observation-category\",\"code\":\"social-history\"}]}],\"code\":{"
		 "\"coding\":[{\"system\":\"urn:x\",\"code\":\"strength\"}]},\"subject\":{\"reference\":\"Patient/"
		 "p\"},\"valueString\":\"x\"}",
		 "Observation.code: does not match patternCodeableConcept"},
		{"{\"resourceType\":\"Observation\",\"meta\":{\"profile\":[\"" BASE
		 "/StructureDefinition/recovery-strength\"]},\"category\":[{\"coding\":[{\"system\":\"urn:x\","
		 "\"code\":\"social-history\"}]}],\"code\":{\"coding\":[{\"system\":\"" BASE
		 "/CodeSystem/recovery-observation\",\"code\":\"strength\"}]},\"subject\":{\"reference\":\"Patient/"
		 "p\"},\"valueString\":\"x\"}",
		 "Observation.category:socialHistory: 0 present, at least 1 required"},
		{"{\"resourceType\":\"Procedure\",\"meta\":{\"profile\":[\"" BASE
		 "/StructureDefinition/peer-support-procedure\"]},\"code\":{\"coding\":[{\"system\":\"urn:x\","
		 "\"code\":\"juggling\"}]}}",
		 "value not in the required ValueSet"},
		{"{\"resourceType\":\"Patient\",\"extension\":[{\"url\":\"" BASE
		 "/StructureDefinition/nope\",\"valueString\":\"x\"}]}",
		 "is defined neither in profiles/"},
		{"{\"resourceType\":\"Patient\",\"maritalStatus\":{\"coding\":[{\"system\":\"" BASE
		 "/CodeSystem/nope\",\"code\":\"x\"}]}}",
		 "code system " BASE "/CodeSystem/nope is not in profiles/"},
		{"{\"resourceType\":\"Patient\",\"maritalStatus\":{\"coding\":[{\"system\":\"" BASE
		 "/CodeSystem/recovery-dimension\",\"code\":\"spirit\"}]}}",
		 "has no code spirit"},
		{"{\"resourceType\":\"Patient\",\"maritalStatus\":{\"coding\":[{\"system\":\"" BASE
		 "/CodeSystem/recovery-dimension\",\"code\":\"home\",\"display\":\"House\"}]}}",
		 "display 'House'"},
		{"{\"resourceType\":\"Patient\",\"extension\":[{\"url\":\"" BASE
		 "/StructureDefinition/peer-support-note\",\"valueString\":\"x\"}]}",
		 "outside its context"},
		{"{\"resourceType\":\"Encounter\",\"extension\":[{\"url\":\"" BASE
		 "/StructureDefinition/peer-support-note\",\"valueCode\":\"x\"}]}",
		 "Extension.value[x]: type Code is not allowed"},
		{"{\"resourceType\":\"Observation\",\"extension\":[{\"url\":\"" BASE
		 "/StructureDefinition/strength-identified-by\",\"valueCode\":\"stranger\"}]}",
		 "Extension.value[x]: value not in the required ValueSet"},
		{"{\"resourceType\":\"Observation\",\"meta\":{\"profile\":[\"" BASE
		 "/StructureDefinition/outcomes-barc-10\"]},\"valueString\":\"12\"}",
		 "Observation.value[x]: type String is not allowed"},
		{"{\"resourceType\":\"Encounter\",\"meta\":{\"profile\":[\"" BASE
		 "/StructureDefinition/peer-support-encounter\"]},\"subject\":{\"reference\":\"Group/g\"}}",
		 "Encounter.subject: reference Group/g is not to one of the profile's targets"},
		{"{\"resourceType\":\"Patient\",\"extension\":[{\"url\":\"" R4_SD
		 "resource-pertainsToGoal\",\"valueString\":\"x\"}]}",
		 "has valueString"},
		/* the same rules as the profile engine reports them */
		{"{\"resourceType\":\"Patient\",\"meta\":{\"profile\":[\"" BASE
		 "/StructureDefinition/peer-support-patient\"]}}",
		 "engine profile-cardinality-min at Patient.identifier"},
		{"{\"resourceType\":\"CarePlan\",\"meta\":{\"profile\":[\"" BASE
		 "/StructureDefinition/recovery-plan\"]},\"intent\":\"order\",\"status\":\"active\",\"subject\":{"
		 "\"reference\":\"Patient/p\"}}",
		 "engine profile-fixed at CarePlan.intent"},
		{"{\"resourceType\":\"Procedure\",\"meta\":{\"profile\":[\"" BASE
		 "/StructureDefinition/peer-support-procedure\"]},\"code\":{\"coding\":[{\"system\":\"urn:x\","
		 "\"code\":\"juggling\"}]}}",
		 "engine profile-binding-required at Procedure.code"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		cJSON *r = cJSON_Parse(bad[i].resource);
		assert_non_null(r);
		cJSON *b = cJSON_CreateObject();
		cJSON_AddItemToArray(cJSON_AddArrayToObject(b, "entry"), cJSON_CreateObject());
		cJSON_AddItemToObject(cJSON_GetArrayItem(get(b, "entry"), 0), "resource", r);
		struct check c = {.example = "(made to fail)", .want = bad[i].want};
		check_bundle(&c, b);
		if (!c.found)
			fprintf(stderr, "# not caught (%s): %s\n", bad[i].want, bad[i].resource);
		assert_true(c.found);
		cJSON_Delete(b);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(the_check_finds_problems), cmocka_unit_test(peer_support_conforms),
		cmocka_unit_test(outcomes_conforms),        cmocka_unit_test(recovery_plan_conforms),
		cmocka_unit_test(strengths_conforms),       cmocka_unit_test(strengths_condition_mode_conforms),
	};
	return cmocka_run_group_tests(tests, load_profiles, free_profiles);
}
