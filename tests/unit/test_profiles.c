/* Unit tests: the conformance resources in profiles/.
 *
 * Every JSON file in profiles/ must pass the core's structural validation with no
 * error, carry the common metadata, live under the canonical base at
 * {base}/{resourceType}/{id} (the file being {resourceType}-{id}.json) with a
 * unique url; every StructureDefinition must constrain an R4 type (directly
 * or through another profile here); every ValueSet must include only
 * CodeSystems defined here (and codes they have) or known external systems;
 * every ConceptMap must map codes of a CodeSystem here; the core's
 * terminology loader must load every CodeSystem; and every
 * StructureDefinition or CodeSystem URL the plugins build (read from
 * plugins/NAME/NAME*.{c,h}: string macros, macro calls and run-time format
 * strings, see plugin_urls) must be defined here.
 *
 * Run from the repository root (make test does); CW_PROFILES_DIR and
 * CW_PLUGIN_SRC override the folders. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/fjson.h"
#include "fhir/model.h"
#include "fhir/terminology.h"
#include "fhir/validate.h"

#define BASE "https://crosswalk.example.org/fhir"
#define R4_SD "http://hl7.org/fhir/StructureDefinition/"
#define MAX_FILES 256
#define MAX_URLS 256

struct res {
	char file[256];
	cJSON *json;
};

static struct res files[MAX_FILES];
static size_t n_files;

static const char *env_or(const char *name, const char *dflt)
{
	const char *v = getenv(name);
	return v && *v ? v : dflt;
}

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	struct stat st;
	char *buf = NULL;
	*len = 0;
	if (fstat(fileno(f), &st) == 0 && (buf = malloc((size_t)st.st_size + 1)))
		*len = fread(buf, 1, (size_t)st.st_size, f);
	fclose(f);
	if (buf)
		buf[*len] = '\0';
	return buf;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n >= m && strcmp(s + n - m, suffix) == 0;
}

static const char *str(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static const cJSON *get(const cJSON *o, const char *key) { return cJSON_GetObjectItemCaseSensitive(o, key); }

static int cmp_names(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int load_all(void **state)
{
	(void)state;
	const char *dir = env_or("CW_PROFILES_DIR", "profiles");
	DIR *d = opendir(dir);
	if (!d) {
		fprintf(stderr, "cannot open %s (run from the repository root)\n", dir);
		return -1;
	}
	char *names[MAX_FILES];
	size_t n = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL && n < MAX_FILES)
		if (e->d_name[0] != '.' && ends_with(e->d_name, ".json"))
			names[n++] = strdup(e->d_name);
	closedir(d);
	qsort(names, n, sizeof *names, cmp_names);
	int rc = 0;
	for (size_t i = 0; i < n; i++) {
		char path[600];
		size_t len;
		snprintf(path, sizeof path, "%s/%s", dir, names[i]);
		char *text = slurp(path, &len);
		struct fjson_error err;
		cJSON *j = text ? fjson_parse(text, len, NULL, &err) : NULL;
		if (!j) {
			fprintf(stderr, "%s: %s\n", path, text ? err.message : "cannot read");
			rc = -1;
		} else {
			snprintf(files[n_files].file, sizeof files[n_files].file, "%s", names[i]);
			files[n_files++].json = j;
		}
		free(text);
		free(names[i]);
	}
	return n_files ? rc : -1;
}

static int free_all(void **state)
{
	(void)state;
	for (size_t i = 0; i < n_files; i++)
		cJSON_Delete(files[i].json);
	n_files = 0;
	return 0;
}

static const cJSON *by_url(const char *type, const char *url)
{
	for (size_t i = 0; url && i < n_files; i++) {
		const char *rt = str(files[i].json, "resourceType"), *u = str(files[i].json, "url");
		if (rt && u && strcmp(rt, type) == 0 && strcmp(u, url) == 0)
			return files[i].json;
	}
	return NULL;
}

static size_t count_type(const char *type)
{
	size_t n = 0;
	for (size_t i = 0; i < n_files; i++)
		n += str(files[i].json, "resourceType") && strcmp(str(files[i].json, "resourceType"), type) == 0;
	return n;
}

/* The position of an element path in its type's definition order, one rank
 * per path segment (inherited elements rank before the type's own); false
 * when the path is not an R4 element. */
#define MAX_DEPTH 8
static bool order_key(const char *path, long key[MAX_DEPTH], size_t *n)
{
	char prefix[300];
	const char *dot = strchr(path, '.');
	*n = 0;
	if (!dot || (size_t)(dot - path) >= sizeof prefix)
		return dot == NULL && model_type(path) != NULL;
	memcpy(prefix, path, (size_t)(dot - path));
	prefix[dot - path] = '\0';
	const struct model_type *walked = model_type(prefix);
	while (dot && *n < MAX_DEPTH) {
		const char *next = strchr(dot + 1, '.');
		size_t len = next ? (size_t)(next - path) : strlen(path);
		if (len >= sizeof prefix)
			return false;
		memcpy(prefix, path, len);
		prefix[len] = '\0';
		const struct model_type *owner = NULL, *chosen = NULL;
		const struct model_elem *e = model_resolve_path(prefix, &owner, &chosen);
		if (!e || !owner)
			return false;
		long distance = 0;
		for (const struct model_type *t = walked; t && t != owner; distance++)
			t = t->base != MODEL_NONE ? &model_types[t->base] : NULL;
		key[(*n)++] = -distance * 1000 + (long)(e - model_elems) - (long)owner->elems;
		walked = chosen;
		dot = next;
	}
	return true;
}

static int cmp_keys(const long *a, size_t na, const long *b, size_t nb)
{
	for (size_t i = 0; i < na && i < nb; i++)
		if (a[i] != b[i])
			return a[i] < b[i] ? -1 : 1;
	return na < nb ? -1 : na > nb;
}

/* ---------------------------------------------------------------- checks */

static void every_file_is_structurally_valid(void **state)
{
	(void)state;
	assert_true(n_files >= 30);
	size_t bad = 0;
	for (size_t i = 0; i < n_files; i++) {
		struct outcome oo = OUTCOME_INIT;
		size_t n = validate_resource(files[i].json, &oo);
		for (size_t k = 0; k < oo.n && k < 5; k++)
			print_message("# %s: %s @ %s\n", files[i].file, oo.issues[k].diagnostics,
				      oo.issues[k].expression ? oo.issues[k].expression : "");
		outcome_release(&oo);
		bad += n;
	}
	assert_int_equal(bad, 0);
}

static void metadata_urls_and_file_names(void **state)
{
	(void)state;
	static const char *const with_fhir_version[] = {"StructureDefinition", NULL};
	size_t bad = 0;
	for (size_t i = 0; i < n_files; i++) {
		const cJSON *r = files[i].json;
		const char *f = files[i].file, *rt = str(r, "resourceType"), *id = str(r, "id"), *url = str(r, "url");
		static const char *const required[] = {"url",    "version",   "name",        "title",
						       "status", "date",      "publisher",   "description", NULL};
		for (const char *const *k = required; *k; k++)
			if (!str(r, *k))
				bad++, print_message("# %s: no %s\n", f, *k);
		for (const char *const *t = with_fhir_version; rt && *t; t++)
			if (strcmp(rt, *t) == 0 && (!str(r, "fhirVersion") || strcmp(str(r, "fhirVersion"), "4.0.1") != 0))
				bad++, print_message("# %s: fhirVersion must be 4.0.1\n", f);
		if (!str(r, "status") || strcmp(str(r, "status"), "draft") != 0)
			bad++, print_message("# %s: status must be draft\n", f);
		if (!str(r, "publisher") || strcmp(str(r, "publisher"), "Crosswalk") != 0)
			bad++, print_message("# %s: publisher must be Crosswalk\n", f);
		char want[600];
		snprintf(want, sizeof want, "%s-%s.json", rt ? rt : "?", id ? id : "?");
		if (strcmp(want, f) != 0)
			bad++, print_message("# %s: file should be named %s\n", f, want);
		snprintf(want, sizeof want, BASE "/%s/%s", rt ? rt : "?", id ? id : "?");
		if (!url || strcmp(url, want) != 0)
			bad++, print_message("# %s: url %s, expected %s (under the canonical base)\n", f,
					     url ? url : "(none)", want);
		for (size_t k = 0; k < i && url; k++)
			if (str(files[k].json, "url") && strcmp(str(files[k].json, "url"), url) == 0)
				bad++, print_message("# %s: url %s also in %s\n", f, url, files[k].file);
	}
	assert_int_equal(bad, 0);
}

static void structure_definitions_constrain_r4_types(void **state)
{
	(void)state;
	size_t bad = 0, n = 0;
	for (size_t i = 0; i < n_files; i++) {
		const cJSON *r = files[i].json;
		const char *f = files[i].file;
		if (strcmp(str(r, "resourceType"), "StructureDefinition") != 0)
			continue;
		n++;
		const char *type = str(r, "type"), *base = str(r, "baseDefinition"), *kind = str(r, "kind");
		const struct model_type *mt = type ? model_type(type) : NULL;
		if (!mt) {
			bad++, print_message("# %s: type %s is not an R4 type\n", f, type ? type : "(none)");
			continue;
		}
		bool is_resource = model_resource(type) != NULL;
		if (!kind || strcmp(kind, is_resource ? "resource" : "complex-type") != 0)
			bad++, print_message("# %s: kind %s does not fit type %s\n", f, kind ? kind : "(none)", type);
		if (!str(r, "derivation") || strcmp(str(r, "derivation"), "constraint") != 0)
			bad++, print_message("# %s: derivation must be constraint\n", f);
		char r4[300];
		snprintf(r4, sizeof r4, R4_SD "%s", type);
		const cJSON *parent = by_url("StructureDefinition", base);
		if (!base || (strcmp(base, r4) != 0 && !(parent && str(parent, "type") && !strcmp(str(parent, "type"), type))))
			bad++, print_message("# %s: baseDefinition %s is neither %s nor a %s profile here\n", f,
					     base ? base : "(none)", r4, type);
		if (strcmp(type, "Extension") == 0 && !cJSON_GetArraySize(get(r, "context")))
			bad++, print_message("# %s: an extension needs a context\n", f);
		const cJSON *els = get(get(r, "differential"), "element"), *e;
		if (!cJSON_GetArraySize(els))
			bad++, print_message("# %s: no differential\n", f);
		size_t tl = strlen(type), nprev = 0;
		long prev[MAX_DEPTH];
		cJSON_ArrayForEach(e, els) {
			const char *p = str(e, "path"), *id = str(e, "id");
			long k[MAX_DEPTH];
			size_t nk = 0;
			if (p && !order_key(p, k, &nk))
				bad++, print_message("# %s: %s is not an R4 element\n", f, p);
			else if (p && cmp_keys(k, nk, prev, nprev) < 0)
				bad++, print_message("# %s: %s is out of the R4 element order\n", f, p);
			else if (p)
				memcpy(prev, k, sizeof k), nprev = nk;
			if (!p || strncmp(p, type, tl) != 0 || (p[tl] && p[tl] != '.'))
				bad++, print_message("# %s: element path %s outside %s\n", f, p ? p : "(none)", type);
			if (!id || strncmp(id, p ? p : "", strlen(p ? p : "")) != 0)
				bad++, print_message("# %s: element id %s does not start with its path\n", f, id ? id : "");
			/* Bindings and profiles that point here must exist here. */
			const char *vs = str(get(e, "binding"), "valueSet");
			if (vs && strncmp(vs, BASE "/", strlen(BASE) + 1) == 0 && !by_url("ValueSet", vs))
				bad++, print_message("# %s: %s binds to %s, not defined here\n", f, p, vs);
			const cJSON *t, *u;
			cJSON_ArrayForEach(t, get(e, "type")) {
				cJSON_ArrayForEach(u, get(t, "profile"))
				if (cJSON_IsString(u) && strncmp(u->valuestring, BASE "/", strlen(BASE) + 1) == 0 &&
				    !by_url("StructureDefinition", u->valuestring))
					bad++, print_message("# %s: %s profile %s not here\n", f, p, u->valuestring);
				cJSON_ArrayForEach(u, get(t, "targetProfile"))
				if (cJSON_IsString(u) && strncmp(u->valuestring, BASE "/", strlen(BASE) + 1) == 0 &&
				    !by_url("StructureDefinition", u->valuestring))
					bad++, print_message("# %s: %s target %s not here\n", f, p, u->valuestring);
			}
		}
	}
	assert_true(n >= 15);
	assert_int_equal(bad, 0);
}

/* Whether code is a concept (at any depth) of the CodeSystem cs. */
static bool has_code(const cJSON *concepts, const char *code)
{
	const cJSON *c;
	cJSON_ArrayForEach(c, concepts) {
		if (str(c, "code") && strcmp(str(c, "code"), code) == 0)
			return true;
		if (has_code(get(c, "concept"), code))
			return true;
	}
	return false;
}

static const char *const external_systems[] = {
	"http://loinc.org",
	"http://snomed.info/sct",
	"http://nucc.org/provider-taxonomy",
	"http://unitsofmeasure.org",
	"http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets",
	"http://www.ama-assn.org/go/cpt",
	"http://hl7.org/fhir/sid/icd-10-cm",
	"http://terminology.hl7.org/CodeSystem/observation-category",
	"http://terminology.hl7.org/CodeSystem/v3-ActCode",
	"http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
	"http://hl7.org/fhir/us/sdoh-clinicalcare/CodeSystem/SDOHCC-CodeSystemTemporaryCodes",
	"http://hl7.org/fhir/us/pco/CodeSystem/pco-goal-domains-temporary",
	NULL,
};

static bool external(const char *system)
{
	for (const char *const *s = external_systems; *s; s++)
		if (strcmp(*s, system) == 0)
			return true;
	return false;
}

static void value_sets_include_known_systems(void **state)
{
	(void)state;
	size_t bad = 0;
	for (size_t i = 0; i < n_files; i++) {
		const cJSON *r = files[i].json, *inc, *c;
		const char *f = files[i].file;
		if (strcmp(str(r, "resourceType"), "ValueSet") != 0)
			continue;
		const cJSON *includes = get(get(r, "compose"), "include");
		if (!cJSON_GetArraySize(includes))
			bad++, print_message("# %s: no compose.include\n", f);
		cJSON_ArrayForEach(inc, includes) {
			const char *sys = str(inc, "system");
			const cJSON *cs = by_url("CodeSystem", sys);
			if (!sys || (!cs && !external(sys))) {
				bad++, print_message("# %s: system %s is neither here nor known\n", f, sys ? sys : "(none)");
				continue;
			}
			cJSON_ArrayForEach(c, get(inc, "concept"))
			if (cs && !has_code(get(cs, "concept"), str(c, "code") ? str(c, "code") : ""))
				bad++, print_message("# %s: %s has no code %s\n", f, sys, str(c, "code"));
		}
	}
	/* Every CodeSystem here has its all-codes ValueSet here. */
	for (size_t i = 0; i < n_files; i++) {
		const cJSON *r = files[i].json;
		if (strcmp(str(r, "resourceType"), "CodeSystem") != 0)
			continue;
		const cJSON *vs = by_url("ValueSet", str(r, "valueSet"));
		const cJSON *inc = vs ? cJSON_GetArrayItem(get(get(vs, "compose"), "include"), 0) : NULL;
		if (!inc || !str(inc, "system") || strcmp(str(inc, "system"), str(r, "url")) != 0 || get(inc, "concept"))
			bad++, print_message("# %s: CodeSystem.valueSet is not a ValueSet here of all its codes\n",
					     files[i].file);
	}
	assert_int_equal(bad, 0);
}

static void concept_maps_map_local_codes(void **state)
{
	(void)state;
	size_t bad = 0, n = 0;
	for (size_t i = 0; i < n_files; i++) {
		const cJSON *r = files[i].json, *g, *e, *t;
		const char *f = files[i].file;
		if (strcmp(str(r, "resourceType"), "ConceptMap") != 0)
			continue;
		n++;
		if (!by_url("ValueSet", str(r, "sourceCanonical")))
			bad++, print_message("# %s: sourceCanonical is not a ValueSet here\n", f);
		cJSON_ArrayForEach(g, get(r, "group")) {
			const cJSON *cs = by_url("CodeSystem", str(g, "source"));
			if (!cs)
				bad++, print_message("# %s: group source is not a CodeSystem here\n", f);
			if (!str(g, "target") || !(by_url("CodeSystem", str(g, "target")) || external(str(g, "target"))))
				bad++, print_message("# %s: group target is not a known system\n", f);
			cJSON_ArrayForEach(e, get(g, "element")) {
				if (cs && !has_code(get(cs, "concept"), str(e, "code") ? str(e, "code") : ""))
					bad++, print_message("# %s: source code %s unknown\n", f, str(e, "code"));
				if (!cJSON_GetArraySize(get(e, "target")))
					bad++, print_message("# %s: %s has no target\n", f, str(e, "code"));
				cJSON_ArrayForEach(t, get(e, "target"))
				if (!str(t, "comment"))
					bad++, print_message("# %s: %s→%s has no comment\n", f, str(e, "code"), str(t, "code"));
			}
		}
	}
	assert_int_equal(n, 2);
	assert_int_equal(bad, 0);
}

static void terminology_loads_every_code_system(void **state)
{
	(void)state;
	struct terminology *t = terminology_new();
	assert_non_null(t);
	char err[512] = "";
	int n = terminology_load_dir(t, env_or("CW_PROFILES_DIR", "profiles"), err, sizeof err);
	if (n < 0)
		print_message("# %s\n", err);
	assert_int_equal(n, (int)count_type("CodeSystem"));
	terminology_seal(t);
	assert_string_equal(terminology_lookup(t, BASE "/CodeSystem/peer-support-activity", "recovery-story"),
			    "Sharing recovery experience");
	assert_string_equal(terminology_lookup(t, BASE "/CodeSystem/peer-support-mode", "group"), "Group peer support");
	assert_string_equal(terminology_lookup(t, BASE "/CodeSystem/recovery-dimension", "purpose"), "Purpose");
	assert_string_equal(terminology_lookup(t, BASE "/CodeSystem/outcomes", "caregiver"), "Caregiver");
	assert_string_equal(terminology_lookup(t, BASE "/CodeSystem/outcomes", "ras-total"),
			    "Recovery Assessment Scale total score");
	assert_null(terminology_lookup(t, BASE "/CodeSystem/recovery-dimension", "spirit"));
	terminology_free(t);
}

/* ---------------------------------------------- URLs the plugins build */

struct macro {
	char name[64];
	char value[512];
	bool param; /* function-like with one parameter appended at the end */
};

struct scan {
	struct macro m[128];
	size_t n;
	char urls[MAX_URLS][512];
	size_t n_urls;
};

static void add_url(struct scan *s, const char *url)
{
	for (size_t i = 0; i < s->n_urls; i++)
		if (strcmp(s->urls[i], url) == 0)
			return;
	if (s->n_urls < MAX_URLS)
		snprintf(s->urls[s->n_urls++], sizeof s->urls[0], "%s", url);
}

static const struct macro *find_macro(const struct scan *s, const char *name, size_t len)
{
	for (size_t i = 0; i < s->n; i++)
		if (strlen(s->m[i].name) == len && strncmp(s->m[i].name, name, len) == 0)
			return &s->m[i];
	return NULL;
}

/* Appends a C string literal at *p (no escapes in these literals) to out. */
static const char *literal(const char *p, char *out, size_t cap)
{
	size_t n = strlen(out);
	for (p++; *p && *p != '"' && *p != '\n'; p++)
		if (n + 1 < cap)
			out[n++] = *p;
	out[n] = '\0';
	return *p == '"' ? p + 1 : p;
}

/* Evaluates a sequence of literals and known string macros up to the end of
 * the line (or a ')' when stop_paren); false if anything else appears. */
static bool concat(const struct scan *s, const char *p, char *out, size_t cap, const char *param, bool *ends_param)
{
	out[0] = '\0';
	*ends_param = false;
	bool any = false;
	while (*p && *p != '\n') {
		if (*p == ' ' || *p == '\t') {
			p++;
		} else if (*p == '"') {
			p = literal(p, out, cap);
			any = true;
		} else if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || *p == '_') {
			const char *q = p;
			while ((*q >= 'A' && *q <= 'Z') || (*q >= 'a' && *q <= 'z') || (*q >= '0' && *q <= '9') || *q == '_')
				q++;
			const struct macro *m = find_macro(s, p, (size_t)(q - p));
			if (param && (size_t)(q - p) == strlen(param) && strncmp(p, param, strlen(param)) == 0) {
				*ends_param = true;
			} else if (m && !m->param) {
				size_t have = strlen(out);
				snprintf(out + have, cap - have, "%s", m->value);
				any = true;
			} else {
				return false;
			}
			p = q;
		} else if (*p == '/' && p[1] == '*') {
			break;
		} else {
			return false;
		}
	}
	return any;
}

static void scan_defines(struct scan *s, const char *text)
{
	for (const char *p = text; (p = strstr(p, "#define ")) != NULL; p += 8) {
		const char *n = p + 8, *q = n;
		while ((*q >= 'A' && *q <= 'Z') || (*q >= 'a' && *q <= 'z') || (*q >= '0' && *q <= '9') || *q == '_')
			q++;
		if (s->n >= sizeof s->m / sizeof s->m[0] || q == n || (size_t)(q - n) >= sizeof s->m[0].name)
			continue;
		struct macro *m = &s->m[s->n];
		memset(m, 0, sizeof *m);
		memcpy(m->name, n, (size_t)(q - n));
		char param[64] = "";
		if (*q == '(') {
			const char *e = strchr(q, ')');
			if (!e || e - q - 1 <= 0 || (size_t)(e - q - 1) >= sizeof param || memchr(q, ',', (size_t)(e - q)))
				continue;
			memcpy(param, q + 1, (size_t)(e - q - 1));
			q = e + 1;
		}
		bool ends_param = false;
		if (concat(s, q, m->value, sizeof m->value, param[0] ? param : NULL, &ends_param) &&
		    (!param[0] || ends_param)) {
			m->param = param[0] != '\0';
			s->n++;
		}
	}
}

static bool local_url(const char *u)
{
	return strncmp(u, BASE "/StructureDefinition/", strlen(BASE "/StructureDefinition/")) == 0 ||
	       strncmp(u, BASE "/CodeSystem/", strlen(BASE "/CodeSystem/")) == 0;
}

/* The URLs of one plugin's sources: (1) string macros whose value is a
 * complete URL; (2) calls NAME("x") of a function-like macro NAME(p) whose
 * body is a URL prefix followed by p; (3) run-time formats
 * "%s/StructureDefinition/%s" and "%s/CodeSystem/NAME", where the first %s is
 * the canonical base and the names of the first kind are the file's string
 * literals "PLUGIN-…" (PLUGIN: the folder name with '-' for '_'). */
static void scan_plugin(struct scan *s, const char *plugin, char **texts, size_t n)
{
	s->n = 0;
	for (size_t i = 0; i < n; i++)
		scan_defines(s, texts[i]);
	for (size_t i = 0; i < s->n; i++)
		if (!s->m[i].param && local_url(s->m[i].value) && !ends_with(s->m[i].value, "-") &&
		    !ends_with(s->m[i].value, "/"))
			add_url(s, s->m[i].value);
	char prefix[80];
	snprintf(prefix, sizeof prefix, "\"%s-", plugin);
	for (char *c = prefix; *c; c++)
		if (*c == '_')
			*c = '-';
	for (size_t t = 0; t < n; t++) {
		const char *text = texts[t];
		for (size_t i = 0; i < s->n; i++) {
			if (!s->m[i].param || !local_url(s->m[i].value))
				continue;
			char call[80];
			snprintf(call, sizeof call, "%s(\"", s->m[i].name);
			for (const char *p = text; (p = strstr(p, call)) != NULL; p += strlen(call)) {
				if (p > text && (p[-1] == '_' || (p[-1] >= 'A' && p[-1] <= 'Z')))
					continue;
				char url[512];
				snprintf(url, sizeof url, "%s", s->m[i].value);
				literal(p + strlen(call) - 1, url, sizeof url);
				add_url(s, url);
			}
		}
		static const char *const kinds[] = {"StructureDefinition", "CodeSystem"};
		for (size_t k = 0; k < 2; k++) {
			char fmt[64];
			snprintf(fmt, sizeof fmt, "\"%%s/%s/", kinds[k]);
			for (const char *p = text; (p = strstr(p, fmt)) != NULL; p += strlen(fmt)) {
				char tail[256] = "";
				literal(p + strlen(fmt) - 1, tail, sizeof tail);
				char url[512];
				if (strcmp(tail, "%s") != 0) {
					snprintf(url, sizeof url, BASE "/%s/%s", kinds[k], tail);
					add_url(s, url);
					continue;
				}
				for (const char *q = text; (q = strstr(q, prefix)) != NULL; q++) {
					char name[256] = "";
					literal(q, name, sizeof name);
					if (strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789-") != strlen(name))
						continue;
					snprintf(url, sizeof url, BASE "/%s/%s", kinds[k], name);
					add_url(s, url);
				}
			}
		}
	}
}

static void plugin_urls_are_defined_here(void **state)
{
	(void)state;
	const char *root = env_or("CW_PLUGIN_SRC", "plugins");
	DIR *d = opendir(root);
	assert_non_null(d);
	struct scan *s = calloc(1, sizeof *s);
	assert_non_null(s);
	size_t bad = 0, plugins = 0, total = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		char dir[600];
		snprintf(dir, sizeof dir, "%s/%s", root, e->d_name);
		DIR *pd = opendir(dir);
		if (!pd)
			continue;
		char *texts[32];
		size_t n = 0;
		struct dirent *f;
		while ((f = readdir(pd)) != NULL && n < 32) {
			if (!ends_with(f->d_name, ".c") && !ends_with(f->d_name, ".h"))
				continue;
			char path[1200];
			size_t len;
			snprintf(path, sizeof path, "%s/%s", dir, f->d_name);
			if ((texts[n] = slurp(path, &len)) != NULL)
				n++;
		}
		closedir(pd);
		s->n_urls = 0;
		scan_plugin(s, e->d_name, texts, n);
		for (size_t i = 0; i < n; i++)
			free(texts[i]);
		plugins++;
		total += s->n_urls;
		for (size_t i = 0; i < s->n_urls; i++) {
			const char *u = s->urls[i];
			const char *type = strstr(u, "/StructureDefinition/") ? "StructureDefinition" : "CodeSystem";
			if (!by_url(type, u))
				bad++, print_message("# plugin %s uses %s, not defined in profiles/\n", e->d_name, u);
		}
	}
	closedir(d);
	free(s);
	assert_true(plugins >= 2);
	/* peer_support: 5 profiles, 1 extension, 2 CodeSystems; outcomes: 6 profiles, 1 CodeSystem. */
	assert_true(total >= 15);
	assert_int_equal(bad, 0);
}

/* The scanner itself, on sources shaped like the plugins'. */
static void plugin_url_scanner(void **state)
{
	(void)state;
	struct scan *s = calloc(1, sizeof *s);
	assert_non_null(s);
	char a[] = "#define B \"" BASE "\"\n#define CS B \"/CodeSystem/x-codes\"\n"
		   "#define PROF(name) B \"/StructureDefinition/x-\" name\n#define N 3\n"
		   "f(PROF(\"one\")); g(MYPROF(\"no\"));\n";
	char b[] = "at(u, \"%s/StructureDefinition/%s\", base, n); at(c, \"%s/CodeSystem/x\", base);\n"
		   "static const char *p[] = {\"x-two\", \"x two\", \"y-three\"};\n";
	char *texts[] = {a, b};
	scan_plugin(s, "x", texts, 2);
	static const char *const want[] = {BASE "/CodeSystem/x-codes", BASE "/StructureDefinition/x-one",
					   BASE "/StructureDefinition/x-two", BASE "/CodeSystem/x"};
	assert_int_equal(s->n_urls, 4);
	for (size_t i = 0; i < 4; i++) {
		bool found = false;
		for (size_t k = 0; k < s->n_urls; k++)
			found |= strcmp(s->urls[k], want[i]) == 0;
		if (!found)
			print_message("# missing %s\n", want[i]);
		assert_true(found);
	}
	free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(every_file_is_structurally_valid),
		cmocka_unit_test(metadata_urls_and_file_names),
		cmocka_unit_test(structure_definitions_constrain_r4_types),
		cmocka_unit_test(value_sets_include_known_systems),
		cmocka_unit_test(concept_maps_map_local_codes),
		cmocka_unit_test(terminology_loads_every_code_system),
		cmocka_unit_test(plugin_url_scanner),
		cmocka_unit_test(plugin_urls_are_defined_here),
	};
	return cmocka_run_group_tests(tests, load_all, free_all);
}
