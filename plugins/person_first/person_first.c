/* person_first — how diagnoses (Condition resources) appear in exports to
 * recovery tools: the setting diagnosis_display, docs/person-first.md.
 *
 *   codes         unchanged (the default);
 *   person-first  Condition.code.text becomes a person-first phrase
 *                 ("Person living with schizophrenia"; Z55–Z65 as
 *                 circumstances: "Person experiencing housing instability";
 *                 per-code overrides from the settings). Coding.display and
 *                 the codes are never changed;
 *   hidden        Condition entries are removed from the exported Bundle, with
 *                 one warning that N diagnoses were withheld.
 *
 * Settings: {"plugins":{"person_first":{"diagnosis_display":MODE,
 * "formats":{FORMAT:MODE,…},"overrides":{CODE:PHRASE,…}}}}. The billing
 * format always keeps codes. Conditions with the SDOHCC protective-factor
 * category (strengths) are not diagnoses and are left alone.
 *
 * Two hooks: export-bundle (removes Conditions when hidden: only a hook that
 * sees the whole Bundle can remove entries and count them) and before-export
 * (writes code.text, one Condition at a time). */
#include <stdio.h>
#include <string.h>

#include <crosswalk/plugin.h>

#include "person_first.h"

#define PF_MAX_FORMATS 64
#define PF_MAX_OVERRIDES 1000
#define PF_MAX_PHRASE 200
#define PF_MAX_CODE 32

#define PF_ICD10CM "http://hl7.org/fhir/sid/icd-10-cm"
#define PF_ICD10 "http://hl7.org/fhir/sid/icd-10"
#define PF_SNOMED "http://snomed.info/sct"
#define PF_SDOHCC "http://hl7.org/fhir/us/sdoh-clinicalcare/CodeSystem/SDOHCC-CodeSystemTemporaryCodes"

struct pf_format {
	const char *name; /* borrowed from the configuration: valid until fini */
	enum pf_mode mode;
};

struct pf_override {
	const char *code;
	const char *phrase;
};

/* Written in init, read-only afterwards (hooks run on many threads). */
static const struct cw_host *host;
static enum pf_mode global_mode = PF_CODES;
static struct pf_format formats[PF_MAX_FORMATS];
static size_t nformats;
static struct pf_override overrides[PF_MAX_OVERRIDES];
static size_t noverrides;

/* ------------------------------------------------------------ settings */

int pf_mode_parse(const char *s)
{
	if (!s)
		return -1;
	if (!strcmp(s, "codes"))
		return PF_CODES;
	if (!strcmp(s, "person-first"))
		return PF_PERSON_FIRST;
	if (!strcmp(s, "hidden"))
		return PF_HIDDEN;
	return -1;
}

static bool valid_format_name(const char *s)
{
	size_t n = 0;
	for (; s[n]; n++)
		if (!((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= '0' && s[n] <= '9') || s[n] == '_' || s[n] == '-'))
			return false;
	return n >= 1 && n <= 64;
}

bool pf_valid_code(const char *s)
{
	size_t n = 0;
	for (; s[n]; n++)
		if (!((s[n] >= 'A' && s[n] <= 'Z') || (s[n] >= 'a' && s[n] <= 'z') || (s[n] >= '0' && s[n] <= '9') ||
		      s[n] == '.' || s[n] == '-'))
			return false;
	return n >= 1 && n <= PF_MAX_CODE;
}

bool pf_valid_phrase(const char *s)
{
	size_t n = strlen(s);
	if (n < 1 || n > PF_MAX_PHRASE || s[0] == ' ' || s[n - 1] == ' ')
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return false;
	return true;
}

static enum cw_status bad(struct cw_ctx *ctx, const char *where, const char *what)
{
	host->issue(ctx, CW_SEV_ERROR, "value", where, "%s", what);
	return CW_CONFIG;
}

static enum cw_status read_formats(struct cw_ctx *ctx, const cJSON *obj)
{
	if (!cJSON_IsObject(obj))
		return bad(ctx, "plugins.person_first.formats", "must be an object of format name to mode");
	const cJSON *m;
	cJSON_ArrayForEach(m, obj) {
		if (nformats >= PF_MAX_FORMATS)
			return bad(ctx, "plugins.person_first.formats", "more than 64 formats");
		if (!valid_format_name(m->string))
			return bad(ctx, "plugins.person_first.formats", "a format name is not ^[a-z0-9_-]{1,64}$");
		int mode = cJSON_IsString(m) ? pf_mode_parse(m->valuestring) : -1;
		if (mode < 0) {
			host->issue(ctx, CW_SEV_ERROR, "value", "plugins.person_first.formats",
				    "format '%s': the mode must be \"codes\", \"person-first\" or \"hidden\"", m->string);
			return CW_CONFIG;
		}
		if (!strcmp(m->string, "billing") && mode != PF_CODES)
			return bad(ctx, "plugins.person_first.formats.billing",
				   "billing exports keep codes: the mode must be \"codes\"");
		formats[nformats++] = (struct pf_format){m->string, (enum pf_mode)mode};
	}
	return CW_OK;
}

static enum cw_status read_overrides(struct cw_ctx *ctx, const cJSON *obj)
{
	if (!cJSON_IsObject(obj))
		return bad(ctx, "plugins.person_first.overrides", "must be an object of code to phrase");
	const cJSON *m;
	cJSON_ArrayForEach(m, obj) {
		if (noverrides >= PF_MAX_OVERRIDES)
			return bad(ctx, "plugins.person_first.overrides", "more than 1000 overrides");
		if (!pf_valid_code(m->string))
			return bad(ctx, "plugins.person_first.overrides",
				   "a code must be 1 to 32 letters, digits, '.' or '-'");
		if (!cJSON_IsString(m) || !pf_valid_phrase(m->valuestring)) {
			host->issue(ctx, CW_SEV_ERROR, "value", "plugins.person_first.overrides",
				    "code '%s': the phrase must be a string of 1 to %d characters without control "
				    "characters or surrounding spaces",
				    m->string, PF_MAX_PHRASE);
			return CW_CONFIG;
		}
		overrides[noverrides++] = (struct pf_override){m->string, m->valuestring};
	}
	return CW_OK;
}

static enum cw_status init(const struct cw_host *h, struct cw_ctx *ctx)
{
	CW_HOST_REQUIRE(h, print_json); /* ABI 1.0 members only */
	host = h;
	global_mode = PF_CODES;
	nformats = noverrides = 0;
	const cJSON *conf = host->config(ctx), *m;
	cJSON_ArrayForEach(m, conf) {
		if (strcmp(m->string, "diagnosis_display") && strcmp(m->string, "formats") &&
		    strcmp(m->string, "overrides")) {
			host->issue(ctx, CW_SEV_ERROR, "not-supported", "plugins.person_first", "unknown setting '%s'",
				    m->string);
			return CW_CONFIG;
		}
	}
	const cJSON *dd = cJSON_GetObjectItemCaseSensitive(conf, "diagnosis_display");
	if (dd) {
		int mode = cJSON_IsString(dd) ? pf_mode_parse(dd->valuestring) : -1;
		if (mode < 0)
			return bad(ctx, "plugins.person_first.diagnosis_display",
				   "must be \"codes\", \"person-first\" or \"hidden\"");
		global_mode = (enum pf_mode)mode;
	}
	const cJSON *f = cJSON_GetObjectItemCaseSensitive(conf, "formats");
	if (f && read_formats(ctx, f) != CW_OK)
		return CW_CONFIG;
	const cJSON *o = cJSON_GetObjectItemCaseSensitive(conf, "overrides");
	if (o && read_overrides(ctx, o) != CW_OK)
		return CW_CONFIG;
	return CW_OK;
}

/* The mode for an export to format (NULL: the global one). Billing keeps
 * codes unless configured otherwise (and it can only be configured to codes). */
static enum pf_mode mode_for(const char *format)
{
	if (!format)
		return global_mode;
	for (size_t i = 0; i < nformats; i++)
		if (!strcmp(formats[i].name, format))
			return formats[i].mode;
	return strcmp(format, "billing") ? global_mode : PF_CODES;
}

/* ---------------------------------------------------------- rendering */

static bool word_char(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || (unsigned char)c >= 0x80; }

static char lower(char c) { return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c; }

/* Qualifiers dropped from a display (whole words; the first five in any
 * case, the abbreviations in capitals only). */
static const char *const qualifiers_any_case[] = {"not elsewhere classified", "not otherwise specified",
						  "without complications", "without complication", "unspecified",
						  "uncomplicated"};
static const char *const qualifiers_caps[] = {"NEC", "NOS"};
static const char *const semantic_tags[] = {" (disorder)", " (finding)", " (situation)"};

static size_t match_at(const char *s, size_t i, const char *q, bool any_case)
{
	size_t n = strlen(q);
	for (size_t k = 0; k < n; k++) {
		if (!s[i + k])
			return 0;
		if (any_case ? lower(s[i + k]) != lower(q[k]) : s[i + k] != q[k])
			return 0;
	}
	return word_char(s[i + n]) ? 0 : n;
}

/* display without qualifiers, tidied, in out (cap bytes); words lowercased
 * except acronyms (two or more letters, all capitals: "HIV", "PTSD"). Returns
 * the length, 0 when nothing is left or it does not fit. */
size_t pf_clean_display(const char *display, char *out, size_t cap)
{
	char tmp[PF_MAX_TEXT];
	size_t len = strlen(display), t = 0;
	if (len >= sizeof tmp || cap < 2)
		return 0;
	for (size_t k = 0; k < sizeof semantic_tags / sizeof *semantic_tags; k++) {
		size_t n = strlen(semantic_tags[k]);
		if (len > n && !strcmp(display + len - n, semantic_tags[k]))
			len -= n;
	}
	for (size_t i = 0; i < len;) {
		size_t skip = 0;
		if (i == 0 || !word_char(display[i - 1])) {
			for (size_t k = 0; !skip && k < sizeof qualifiers_any_case / sizeof *qualifiers_any_case; k++)
				skip = match_at(display, i, qualifiers_any_case[k], true);
			for (size_t k = 0; !skip && k < sizeof qualifiers_caps / sizeof *qualifiers_caps; k++)
				skip = match_at(display, i, qualifiers_caps[k], false);
		}
		if (skip && i + skip <= len) {
			i += skip;
			continue;
		}
		tmp[t++] = display[i++];
	}
	tmp[t] = '\0';
	/* Tidy: one space between words, none before a comma, no empty list
	 * items, nothing dangling at either end. */
	size_t o = 0;
	for (size_t i = 0; i < t; i++) {
		char c = tmp[i];
		if (c == ' ' || c == '\t') {
			if (o && out[o - 1] != ' ')
				out[o++] = ' ';
		} else if (c == ',') {
			while (o && out[o - 1] == ' ')
				o--;
			if (o && out[o - 1] != ',')
				out[o++] = ',';
		} else {
			out[o++] = c;
		}
		if (o + 1 >= cap)
			return 0;
	}
	while (o && (out[o - 1] == ' ' || out[o - 1] == ',' || out[o - 1] == ';' || out[o - 1] == ':' ||
		     out[o - 1] == '-'))
		o--;
	size_t start = 0;
	while (start < o && (out[start] == ' ' || out[start] == ','))
		start++;
	memmove(out, out + start, o - start);
	o -= start;
	out[o] = '\0';
	/* Lowercase, word by word, keeping acronyms. */
	for (size_t i = 0; i < o;) {
		size_t j = i, letters = 0, caps = 0;
		while (j < o && word_char(out[j])) {
			if ((out[j] >= 'a' && out[j] <= 'z') || (out[j] >= 'A' && out[j] <= 'Z'))
				letters++;
			if (out[j] >= 'A' && out[j] <= 'Z')
				caps++;
			j++;
		}
		if (!(letters >= 2 && caps == letters))
			for (size_t k = i; k < j; k++)
				out[k] = lower(out[k]);
		i = j < o ? j + 1 : j;
	}
	return o;
}

/* Circumstances (ICD-10-CM Z55–Z65): the longest matching prefix (codes
 * compared without the dot) gives the phrase after "Person experiencing ". */
static const struct {
	const char *prefix;
	const char *phrase;
} circumstances[] = {
	{"Z590", "homelessness"},
	{"Z591", "inadequate housing"},
	{"Z594", "food insecurity"},
	{"Z595", "extreme poverty"},
	{"Z596", "low income"},
	{"Z597", "insufficient social insurance or welfare support"},
	{"Z5981", "housing instability"},
	{"Z5982", "transportation insecurity"},
	{"Z5986", "financial insecurity"},
	{"Z5987", "material hardship"},
	{"Z59", "housing instability"},
	{"Z651", "incarceration"},
	{"Z652", "problems after release from prison"},
	{"Z654", "crime or terrorism as a victim"},
	{"Z605", "discrimination or persecution"},
};

/* code without dots, uppercased, in out (PF_MAX_CODE + 1 bytes). */
static void squash(const char *code, char *out)
{
	size_t o = 0;
	for (size_t i = 0; code[i] && o < PF_MAX_CODE; i++)
		if (code[i] != '.')
			out[o++] = code[i] >= 'a' && code[i] <= 'z' ? (char)(code[i] - 'a' + 'A') : code[i];
	out[o] = '\0';
}

bool pf_is_circumstance(const char *code)
{
	char c[PF_MAX_CODE + 1];
	squash(code, c);
	return c[0] == 'Z' && ((c[1] == '5' && c[2] >= '5' && c[2] <= '9') || (c[1] == '6' && c[2] >= '0' && c[2] <= '5'));
}

size_t pf_render(const char *code, const char *display, bool icd10, char *out, size_t cap)
{
	char clean[PF_MAX_TEXT];
	int n = -1;
	if (icd10 && code && pf_is_circumstance(code)) {
		char c[PF_MAX_CODE + 1];
		squash(code, c);
		const char *best = NULL;
		size_t best_len = 0;
		for (size_t k = 0; k < sizeof circumstances / sizeof *circumstances; k++) {
			size_t pl = strlen(circumstances[k].prefix);
			if (pl > best_len && !strncmp(c, circumstances[k].prefix, pl)) {
				best = circumstances[k].phrase;
				best_len = pl;
			}
		}
		if (best)
			n = snprintf(out, cap, "Person experiencing %s", best);
		else if (display && pf_clean_display(display, clean, sizeof clean))
			n = snprintf(out, cap, "Person experiencing %s", clean);
	} else if (display && pf_clean_display(display, clean, sizeof clean)) {
		n = snprintf(out, cap, "Person living with %s", clean);
	}
	return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

/* ------------------------------------------------------------- hooks */

static const char *str(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static bool eq(const char *a, const char *b) { return a && b && !strcmp(a, b); }

/* A Condition that records a strength (SDOHCC protective factor) is not a
 * diagnosis. */
static bool is_diagnosis(const cJSON *res)
{
	const cJSON *cc, *c;
	cJSON_ArrayForEach(cc, cJSON_GetObjectItemCaseSensitive(res, "category"))
		cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(cc, "coding"))
			if (eq(str(c, "system"), PF_SDOHCC) && eq(str(c, "code"), "protective-factor"))
				return false;
	return true;
}

static bool is_condition(const cJSON *res) { return eq(str(res, "resourceType"), "Condition"); }

static const char *override_for(const char *code)
{
	char a[PF_MAX_CODE + 1], b[PF_MAX_CODE + 1];
	if (!code || !pf_valid_code(code))
		return NULL;
	squash(code, a);
	for (size_t i = 0; i < noverrides; i++) {
		squash(overrides[i].code, b);
		if (!strcmp(a, b))
			return overrides[i].phrase;
	}
	return NULL;
}

/* The phrase for one Condition.code, in out; 0 when there is none (then the
 * Condition is left as it is). */
static size_t phrase_for(struct cw_ctx *ctx, const cJSON *concept, char *out, size_t cap)
{
	const cJSON *codings = cJSON_GetObjectItemCaseSensitive(concept, "coding"), *c;
	cJSON_ArrayForEach(c, codings) {
		const char *o = override_for(str(c, "code"));
		if (o) {
			int n = snprintf(out, cap, "%s", o);
			return n > 0 && (size_t)n < cap ? (size_t)n : 0;
		}
	}
	/* ICD-10-CM first, then ICD-10, then SNOMED CT: the diagnosis code
	 * systems. Other systems (local codes) have no template. */
	static const char *const systems[] = {PF_ICD10CM, PF_ICD10, PF_SNOMED};
	for (size_t s = 0; s < sizeof systems / sizeof *systems; s++) {
		cJSON_ArrayForEach(c, codings) {
			const char *sys = str(c, "system"), *code = str(c, "code"), *display = str(c, "display");
			if (!eq(sys, systems[s]) || !code || !*code)
				continue;
			if (!display || !*display)
				display = host->code_display(ctx, sys, code);
			size_t n = pf_render(code, display, s < 2, out, cap);
			if (n)
				return n;
		}
	}
	return 0;
}

static enum cw_hook_result before_export(struct cw_ctx *ctx, const struct cw_hook_args *args, cJSON **res)
{
	if (!*res || !is_condition(*res) || !is_diagnosis(*res))
		return CW_HOOK_CONTINUE;
	enum pf_mode mode = mode_for(args->format);
	if (mode == PF_HIDDEN) {
		/* Only an export-bundle hook that ran after ours can bring a
		 * Condition here; fail closed rather than let it out. */
		host->issue(ctx, CW_SEV_ERROR, "suppressed", "Condition",
			    "a diagnosis reached the export after diagnoses were withheld by configuration");
		return CW_HOOK_STOP;
	}
	if (mode != PF_PERSON_FIRST)
		return CW_HOOK_CONTINUE;
	cJSON *concept = cJSON_GetObjectItemCaseSensitive(*res, "code");
	char phrase[PF_MAX_TEXT];
	if (!cJSON_IsObject(concept) || !phrase_for(ctx, concept, phrase, sizeof phrase))
		return CW_HOOK_CONTINUE;
	const char *old = str(concept, "text");
	if (eq(old, phrase))
		return CW_HOOK_CONTINUE;
	cJSON *text = cJSON_CreateString(phrase);
	if (!text) {
		host->issue(ctx, CW_SEV_FATAL, "exception", "Condition.code.text", "out of memory");
		return CW_HOOK_STOP;
	}
	if (cJSON_GetObjectItemCaseSensitive(concept, "text"))
		cJSON_ReplaceItemInObjectCaseSensitive(concept, "text", text);
	else
		cJSON_AddItemToObject(concept, "text", text);
	return CW_HOOK_CHANGED;
}

static enum cw_hook_result export_bundle(struct cw_ctx *ctx, const struct cw_hook_args *args, cJSON **bundle)
{
	if (!*bundle || mode_for(args->format) != PF_HIDDEN)
		return CW_HOOK_CONTINUE;
	cJSON *entries = cJSON_GetObjectItemCaseSensitive(*bundle, "entry");
	size_t n = 0;
	for (cJSON *e = cJSON_IsArray(entries) ? entries->child : NULL, *next; e; e = next) {
		next = e->next;
		const cJSON *r = cJSON_GetObjectItemCaseSensitive(e, "resource");
		if (is_condition(r) && is_diagnosis(r)) {
			cJSON_Delete(cJSON_DetachItemViaPointer(entries, e));
			n++;
		}
	}
	if (!n)
		return CW_HOOK_CONTINUE;
	cJSON *total = cJSON_GetObjectItemCaseSensitive(*bundle, "total");
	if (cJSON_IsNumber(total) && total->valuedouble >= (double)n)
		cJSON_SetNumberValue(total, total->valuedouble - (double)n);
	host->issue(ctx, CW_SEV_WARNING, "suppressed", "Bundle.entry",
		    "%zu %s withheld by configuration (diagnosis_display: hidden)", n,
		    n == 1 ? "diagnosis (Condition) was" : "diagnoses (Condition) were");
	return CW_HOOK_CHANGED;
}

static const struct cw_hook hooks[] = {
	/* Late among export-bundle hooks, so that nothing added after it slips out. */
	{.point = CW_HOOK_EXPORT_BUNDLE, .order = 1000, .fn = export_bundle},
	{.point = CW_HOOK_BEFORE_EXPORT, .order = 50, .fn = before_export},
	{0}};

static const struct cw_plugin plugin = {
	CW_PLUGIN_HEADER,
	.name = "person_first",
	.version = "1.0.0",
	.summary = "diagnosis_display: diagnoses in exports as codes, person-first phrases (Condition.code.text) or withheld",
	.formats = NULL,
	.hooks = hooks,
	.operations = NULL,
	.init = init,
	.fini = NULL,
};

const struct cw_plugin *cw_plugin_entry(void) { return &plugin; }
