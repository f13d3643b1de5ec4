/* person_first — how diagnoses appear in exports to recovery tools: the
 * setting diagnosis_display, docs/person-first.md.
 *
 *   codes         unchanged (billing, and formats other than the recovery
 *                 tools' unless configured);
 *   person-first  Condition.code.text becomes a person-first phrase
 *                 ("Person living with schizophrenia"; Z55–Z65 as
 *                 circumstances: "Person experiencing housing instability";
 *                 F1x.1/F1x.2 as mild / moderate or severe use disorders;
 *                 remission as "Person in recovery from …") from the table
 *                 of profiles/ (CodeSystem person-first-phrases), and every
 *                 other carrier of the diagnosis (Goal and CarePlan
 *                 addresses, Encounter diagnosis and reasons, Procedure
 *                 reasons) says the same; Coding.display and the codes are
 *                 never changed. The default of the recovery formats;
 *   hidden        Conditions are removed from the exported Bundle and so is
 *                 every reference or reason naming one, with one warning.
 *
 * Precedence of the phrase: the person's own words for the code (the
 * diagnosis-language extension of their Patient, which the recovery plan
 * writes), the settings' overrides, the template (in the person's style:
 * person-first or identity-first). A resource that carries a diagnosis
 * loses its narrative, which may name it too.
 *
 * Settings: {"plugins":{"person_first":{"diagnosis_display":MODE,
 * "formats":{FORMAT:MODE,…},"overrides":{CODE:PHRASE,…}}}}. The billing
 * format always keeps codes. Conditions with the SDOHCC protective-factor
 * category (strengths) are not diagnoses and are left alone.
 *
 * Two hooks: export-bundle (does it all: only a hook that sees the whole
 * Bundle can resolve references, find the person and remove entries) and
 * before-export (fails closed when a diagnosis reaches it in hidden mode). */
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
#define PF_STRENGTH_CATEGORY PF_BASE "/CodeSystem/strength-category"

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
static bool global_set; /* diagnosis_display was given */
static const cJSON *global_conf; /* the settings init read (host->config gives a client's own instead) */
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
	global_set = false;
	nformats = noverrides = 0;
	const cJSON *conf = host->config(ctx), *m;
	global_conf = conf;
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
		global_set = true;
	}
	const cJSON *f = cJSON_GetObjectItemCaseSensitive(conf, "formats");
	if (f && read_formats(ctx, f) != CW_OK)
		return CW_CONFIG;
	const cJSON *o = cJSON_GetObjectItemCaseSensitive(conf, "overrides");
	if (o && read_overrides(ctx, o) != CW_OK)
		return CW_CONFIG;
	return CW_OK;
}

/* The mode for an export to format (NULL: the global one). For a client
 * with its own settings (auth.clients[].plugins.person_first, merged over
 * the global ones by the host): their diagnosis_display, for every format
 * but billing; a value that is no mode withholds (hidden). Otherwise the
 * format's own setting, else codes for billing (which can only be
 * configured to codes), else diagnosis_display, else person-first for the
 * recovery formats and codes for the others. */
static enum pf_mode mode_for(struct cw_ctx *ctx, const char *format)
{
	const cJSON *conf = host->config(ctx);
	if (conf && conf != global_conf && !(format && !strcmp(format, "billing"))) {
		const cJSON *dd = cJSON_GetObjectItemCaseSensitive(conf, "diagnosis_display");
		int mode = cJSON_IsString(dd) ? pf_mode_parse(dd->valuestring) : -1;
		if (mode >= 0)
			return (enum pf_mode)mode;
		if (dd)
			return PF_HIDDEN;
	}
	if (!format)
		return global_mode;
	for (size_t i = 0; i < nformats; i++)
		if (!strcmp(formats[i].name, format))
			return formats[i].mode;
	if (!strcmp(format, "billing"))
		return PF_CODES;
	if (global_set)
		return global_mode;
	/* unset: person-first for the recovery tools' formats, codes elsewhere */
	static const char *const recovery[] = {"recovery-plan", "peer-support", "strengths", "outcomes"};
	for (size_t i = 0; i < sizeof recovery / sizeof *recovery; i++)
		if (!strcmp(format, recovery[i]))
			return PF_PERSON_FIRST;
	return PF_CODES;
}

/* ---------------------------------------------------------- rendering */

static bool word_char(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || (unsigned char)c >= 0x80; }

static char lower(char c) { return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c; }

/* Qualifiers dropped from a display (whole words; the phrases in any case,
 * the abbreviations in capitals only). A remission clause goes too: the
 * phrase says "in recovery from" instead. */
static const char *const qualifiers_any_case[] = {"not elsewhere classified",
						  "not otherwise specified",
						  "without complications",
						  "without complication",
						  "unspecified",
						  "uncomplicated",
						  "currently in remission",
						  "in sustained remission",
						  "in partial remission",
						  "in early remission",
						  "in full remission",
						  "in remission"};
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

/* Words the guidance rules out (whole words, any case). */
static const char *const forbidden[] = {"abuse",          "abuser",        "abusers",       "abusing",
					"addict",         "addicts",       "noncompliance", "noncompliant",
					"non-compliance", "non-compliant", "alcoholic",     "alcoholism"};

static bool letter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

/* The first whole word w (any case) in s at or after s, or NULL. */
static const char *find_word(const char *s, const char *w)
{
	size_t n = strlen(w);
	for (const char *p = s; *p; p++) {
		if (p > s && letter(p[-1]))
			continue;
		size_t k = 0;
		while (k < n && p[k] && lower(p[k]) == w[k])
			k++;
		if (k == n && !letter(p[n]) && p[n] != '-')
			return p;
	}
	return NULL;
}

bool pf_forbidden(const char *text)
{
	for (size_t k = 0; text && k < sizeof forbidden / sizeof *forbidden; k++)
		if (find_word(text, forbidden[k]))
			return true;
	return false;
}

/* The table's phrase for code (ICD-10(-CM)): the longest code or category of
 * the table that begins it. */
static const char *table_row(const struct pf_table *t, const char *code)
{
	if (!t || !t->row)
		return NULL;
	char c[PF_MAX_CODE + 1], dotted[PF_MAX_CODE + 2];
	squash(code, c);
	size_t n = strlen(c), o = 0;
	for (size_t i = 0; i < n; i++) {
		if (i == 3)
			dotted[o++] = '.';
		dotted[o++] = c[i];
	}
	dotted[o] = '\0';
	while (o >= 3) {
		const char *row = t->row(t->ud, dotted);
		if (row && *row)
			return row;
		dotted[--o] = '\0';
		if (o && dotted[o - 1] == '.')
			dotted[--o] = '\0';
	}
	return NULL;
}

/* What follows the table's phrase: the display after its first "abuse" or
 * "dependence" — cleaned, joined by ", " (" " before "of …") — in out.
 * "" when the display has neither word (the phrase replaces it all). */
static bool rest_of(const char *display, char *out, size_t cap)
{
	const char *a = find_word(display, "abuse"), *d = find_word(display, "dependence");
	const char *head = a && (!d || a < d) ? a : d;
	out[0] = '\0';
	if (!head)
		return true;
	const char *rest = head + (head == a ? 5 : 10);
	char clean[PF_MAX_TEXT];
	if (!pf_clean_display(rest, clean, sizeof clean))
		return true;
	int n = snprintf(out, cap, "%s%s", strncmp(clean, "of ", 3) ? ", " : " ", clean);
	return n > 0 && (size_t)n < cap;
}

size_t pf_render(const char *code, const char *display, bool icd10, enum pf_style style, const struct pf_table *table,
		 char *out, size_t cap)
{
	char body[PF_MAX_TEXT], rest[PF_MAX_TEXT];
	const char *row = NULL;
	bool circumstance = false;
	if (icd10 && code) {
		char c[PF_MAX_CODE + 1];
		squash(code, c);
		circumstance = pf_is_circumstance(code);
		if (c[0] == 'R' || (c[0] == 'Z' && !circumstance))
			return 0; /* symptoms, and Z-codes that are no circumstance: no template */
		row = table_row(table, code);
	}
	if (row) {
		if (!circumstance && display && !rest_of(display, rest, sizeof rest))
			return 0;
		int n = snprintf(body, sizeof body, "%s%s", row, circumstance || !display ? "" : rest);
		if (n <= 0 || (size_t)n >= sizeof body)
			return 0;
	} else if (!display || !pf_clean_display(display, body, sizeof body)) {
		return 0;
	}
	bool recovery = !circumstance && display && find_word(display, "remission");
	int n;
	if (style == PF_STYLE_IDENTITY_FIRST) {
		char first = body[0] >= 'a' && body[0] <= 'z' ? (char)(body[0] - 'a' + 'A') : body[0];
		n = snprintf(out, cap, "%c%s%s", first, body + 1, recovery ? ", in recovery" : "");
	} else {
		n = snprintf(out, cap, "%s%s",
			     circumstance ? "Person experiencing "
			     : recovery   ? "Person in recovery from "
					  : "Person living with ",
			     body);
	}
	if (n <= 0 || (size_t)n >= cap || pf_forbidden(out)) {
		out[0] = '\0';
		return 0;
	}
	return (size_t)n;
}

/* ------------------------------------------------------------- hooks */

static const char *str(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static bool eq(const char *a, const char *b) { return a && b && !strcmp(a, b); }

/* A Condition that records a strength (SDOHCC protective factor, or a
 * category of the strength-category CodeSystem the strengths plugin
 * writes) is not a diagnosis. */
static bool is_diagnosis(const cJSON *res)
{
	const cJSON *cc, *c;
	cJSON_ArrayForEach(cc, cJSON_GetObjectItemCaseSensitive(res, "category")) cJSON_ArrayForEach(
		c, cJSON_GetObjectItemCaseSensitive(cc, "coding")) if ((eq(str(c, "system"), PF_SDOHCC) &&
									eq(str(c, "code"), "protective-factor")) ||
								       eq(str(c, "system"),
									  PF_STRENGTH_CATEGORY)) return false;
	return true;
}

static bool is_condition(const cJSON *res) { return eq(str(res, "resourceType"), "Condition"); }

static cJSON *get(const cJSON *o, const char *key) { return cJSON_GetObjectItemCaseSensitive(o, key); }

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

/* One person's preference: the PF_PREFERENCE extension of their Patient,
 * {"style": identity-first | person-first, "words": [{"code", "text"}…]}. */
struct pf_person {
	enum pf_style style;
	const cJSON *pref; /* the extension, or NULL */
};

/* The person's own words for code, or NULL. */
static const char *person_words(const struct pf_person *p, const char *code)
{
	char a[PF_MAX_CODE + 1], b[PF_MAX_CODE + 1];
	if (!p->pref || !code || !pf_valid_code(code))
		return NULL;
	squash(code, a);
	const cJSON *w, *y;
	cJSON_ArrayForEach(w, get(p->pref, "extension"))
	{
		if (!eq(str(w, "url"), "words"))
			continue;
		const char *c = NULL, *t = NULL;
		cJSON_ArrayForEach(y, get(w, "extension"))
		{
			if (eq(str(y, "url"), "code"))
				c = str(y, "valueCode");
			else if (eq(str(y, "url"), "text"))
				t = str(y, "valueString");
		}
		if (c && t && pf_valid_code(c) && pf_valid_phrase(t)) {
			squash(c, b);
			if (!strcmp(a, b))
				return t;
		}
	}
	return NULL;
}

static const char *table_lookup(void *ud, const char *code)
{
	return host->code_display((struct cw_ctx *)ud, PF_PHRASES, code);
}

/* The phrase for a CodeableConcept of the person's, in out; 0 when there is
 * none. The person's own words for one of its codes, else an override of
 * the settings, else the template. */
static size_t phrase_for(struct cw_ctx *ctx, const cJSON *concept, const struct pf_person *who, char *out, size_t cap)
{
	const cJSON *codings = get(concept, "coding"), *c;
	cJSON_ArrayForEach(c, codings) {
		const char *o = person_words(who, str(c, "code"));
		if (!o)
			o = override_for(str(c, "code"));
		if (o) {
			int n = snprintf(out, cap, "%s", o);
			return n > 0 && (size_t)n < cap ? (size_t)n : 0;
		}
	}
	/* ICD-10-CM first, then ICD-10, then SNOMED CT: the diagnosis code
	 * systems. Other systems (local codes) have no template. */
	static const char *const systems[] = {PF_ICD10CM, PF_ICD10, PF_SNOMED};
	const struct pf_table table = {table_lookup, ctx};
	for (size_t s = 0; s < sizeof systems / sizeof *systems; s++) {
		cJSON_ArrayForEach(c, codings) {
			const char *sys = str(c, "system"), *code = str(c, "code"), *display = str(c, "display");
			if (!eq(sys, systems[s]) || !code || !*code)
				continue;
			if (!display || !*display)
				display = host->code_display(ctx, sys, code);
			size_t n = pf_render(code, display, s < 2, who->style, &table, out, cap);
			if (n)
				return n;
		}
	}
	return 0;
}

/* A concept coded in a diagnosis code system. */
static bool diagnosis_concept(const cJSON *concept)
{
	const cJSON *c;
	cJSON_ArrayForEach(c, get(concept, "coding"))
	{
		const char *sys = str(c, "system");
		if (eq(sys, PF_ICD10CM) || eq(sys, PF_ICD10) || eq(sys, PF_SNOMED))
			return true;
	}
	return false;
}

/* ------------------------------------------------ one export's Bundle */

struct pf_export {
	struct cw_ctx *ctx;
	cJSON *bundle;
	enum pf_mode mode;
	size_t carriers; /* references and reasons withheld from other resources */
	bool nomem;
};

/* The resource of the Bundle ref points at (by fullUrl, or "Type/id" at its
 * end), or NULL. */
static cJSON *resolve(const struct pf_export *x, const cJSON *ref)
{
	const char *r = str(ref, "reference");
	if (!r)
		return NULL;
	size_t rl = strlen(r);
	const cJSON *e;
	cJSON_ArrayForEach(e, get(x->bundle, "entry"))
	{
		cJSON *res = get(e, "resource");
		if (eq(str(e, "fullUrl"), r))
			return res;
		const char *t = str(res, "resourceType"), *id = str(res, "id");
		if (!t || !id)
			continue;
		size_t tl = strlen(t), il = strlen(id);
		if (rl < tl + 1 + il || strcmp(r + rl - il, id) || r[rl - il - 1] != '/' ||
		    strncmp(r + rl - il - 1 - tl, t, tl))
			continue;
		if (rl == tl + 1 + il || r[rl - il - 2 - tl] == '/')
			return res;
	}
	return NULL;
}

/* ref points at a diagnosis: a Condition of the Bundle that records no
 * strength, or a Condition the Bundle does not hold (what it says is not
 * known, so it is taken as one). *target: the Condition when held. */
static bool diagnosis_ref(const struct pf_export *x, const cJSON *ref, cJSON **target)
{
	*target = resolve(x, ref);
	if (*target)
		return is_condition(*target) && is_diagnosis(*target);
	const char *r = str(ref, "reference");
	return eq(str(ref, "type"), "Condition") || (r && (!strncmp(r, "Condition/", 10) || strstr(r, "/Condition/")));
}

/* The preference of the Patient res is about (subject or patient). */
static struct pf_person person_of(const struct pf_export *x, const cJSON *res)
{
	struct pf_person p = {PF_STYLE_PERSON_FIRST, NULL};
	const cJSON *subject = get(res, "subject");
	const cJSON *pat = resolve(x, subject ? subject : get(res, "patient"));
	if (!eq(str(pat, "resourceType"), "Patient"))
		return p;
	const cJSON *e, *y;
	cJSON_ArrayForEach(e, get(pat, "extension"))
	{
		if (!eq(str(e, "url"), PF_PREFERENCE))
			continue;
		p.pref = e;
		cJSON_ArrayForEach(y, get(e, "extension")) if (eq(str(y, "url"), "style") &&
							       eq(str(y, "valueCode"), "identity-first")) p.style =
			PF_STYLE_IDENTITY_FIRST;
	}
	return p;
}

/* Sets o.key to the string v (replacing it); false on OOM. */
static bool set_string(cJSON *o, const char *key, const char *v)
{
	if (eq(str(o, key), v))
		return true;
	cJSON *s = cJSON_CreateString(v);
	if (!s)
		return false;
	if (get(o, key))
		cJSON_ReplaceItemInObjectCaseSensitive(o, key, s);
	else
		cJSON_AddItemToObject(o, key, s);
	return true;
}

/* Element elem of array arr holds the reference ref to a diagnosis: hidden
 * withholds elem; person-first writes the Condition's phrase as the
 * reference's display, or drops the display (a diagnosis label) when there
 * is no phrase. */
static void carrier_ref(struct pf_export *x, cJSON *arr, cJSON *elem, cJSON *ref, const cJSON *target,
			const struct pf_person *who)
{
	if (x->mode == PF_HIDDEN) {
		cJSON_Delete(cJSON_DetachItemViaPointer(arr, elem));
		x->carriers++;
		return;
	}
	char phrase[PF_MAX_TEXT];
	if (target && phrase_for(x->ctx, get(target, "code"), who, phrase, sizeof phrase))
		x->nomem |= !set_string(ref, "display", phrase);
	else
		cJSON_DeleteItemFromObjectCaseSensitive(ref, "display");
}

/* r.key, a list of References (inner NULL) or of elements holding one at
 * inner (Encounter.diagnosis.condition). True when one is a diagnosis. */
static bool carrier_refs(struct pf_export *x, cJSON *r, const char *key, const char *inner, const struct pf_person *who)
{
	cJSON *arr = get(r, key);
	bool found = false;
	for (cJSON *e = cJSON_IsArray(arr) ? arr->child : NULL, *next; e; e = next) {
		next = e->next;
		cJSON *ref = inner ? get(e, inner) : e, *target;
		if (!cJSON_IsObject(ref) || !diagnosis_ref(x, ref, &target))
			continue;
		found = true;
		carrier_ref(x, arr, e, ref, target, who);
	}
	if (cJSON_IsArray(arr) && !arr->child)
		cJSON_DeleteItemFromObjectCaseSensitive(r, key);
	return found;
}

/* r.key, a list of CodeableConcepts (reasonCode): a diagnosis among them
 * is withheld (hidden) or gets the phrase as its text (person-first; the
 * text is dropped when there is none). True when one is a diagnosis. */
static bool carrier_concepts(struct pf_export *x, cJSON *r, const char *key, const struct pf_person *who)
{
	cJSON *arr = get(r, key);
	bool found = false;
	for (cJSON *e = cJSON_IsArray(arr) ? arr->child : NULL, *next; e; e = next) {
		next = e->next;
		if (!diagnosis_concept(e))
			continue;
		found = true;
		char phrase[PF_MAX_TEXT];
		if (x->mode == PF_HIDDEN) {
			cJSON_Delete(cJSON_DetachItemViaPointer(arr, e));
			x->carriers++;
		} else if (phrase_for(x->ctx, e, who, phrase, sizeof phrase)) {
			x->nomem |= !set_string(e, "text", phrase);
		} else {
			cJSON_DeleteItemFromObjectCaseSensitive(e, "text");
		}
	}
	if (cJSON_IsArray(arr) && !arr->child)
		cJSON_DeleteItemFromObjectCaseSensitive(r, key);
	return found;
}

/* Every carrier of a diagnosis in r other than a Condition itself: Goal and
 * CarePlan addresses, Encounter diagnosis, reasonReference and reasonCode,
 * Procedure reasonReference and reasonCode. A resource that carries one
 * loses its narrative, which may name the diagnosis too. */
static void carriers(struct pf_export *x, cJSON *r)
{
	const char *type = str(r, "resourceType");
	struct pf_person who = person_of(x, r);
	bool found = false;
	if (eq(type, "Goal") || eq(type, "CarePlan")) {
		found |= carrier_refs(x, r, "addresses", NULL, &who);
	} else if (eq(type, "Encounter") || eq(type, "Procedure")) {
		if (eq(type, "Encounter"))
			found |= carrier_refs(x, r, "diagnosis", "condition", &who);
		found |= carrier_refs(x, r, "reasonReference", NULL, &who);
		found |= carrier_concepts(x, r, "reasonCode", &who);
	}
	if (found)
		cJSON_DeleteItemFromObjectCaseSensitive(r, "text");
}

/* A Condition in person-first mode: code.text becomes the phrase (left as
 * it is when there is none); its narrative goes. */
static void condition_text(struct pf_export *x, cJSON *r)
{
	cJSON_DeleteItemFromObjectCaseSensitive(r, "text");
	cJSON *concept = get(r, "code");
	struct pf_person who = person_of(x, r);
	char phrase[PF_MAX_TEXT];
	if (cJSON_IsObject(concept) && phrase_for(x->ctx, concept, &who, phrase, sizeof phrase))
		x->nomem |= !set_string(concept, "text", phrase);
}

static enum cw_hook_result before_export(struct cw_ctx *ctx, const struct cw_hook_args *args, cJSON **res)
{
	if (!*res || !is_condition(*res) || !is_diagnosis(*res) || mode_for(ctx, args->format) != PF_HIDDEN)
		return CW_HOOK_CONTINUE;
	/* Only an export-bundle hook that ran after ours can bring a
	 * Condition here; fail closed rather than let it out. */
	host->issue(ctx, CW_SEV_ERROR, "suppressed", "Condition",
		    "a diagnosis reached the export after diagnoses were withheld by configuration");
	return CW_HOOK_STOP;
}

static enum cw_hook_result export_bundle(struct cw_ctx *ctx, const struct cw_hook_args *args, cJSON **bundle)
{
	struct pf_export x = {.ctx = ctx, .bundle = *bundle, .mode = mode_for(ctx, args->format)};
	if (!*bundle || x.mode == PF_CODES)
		return CW_HOOK_CONTINUE;
	cJSON *entries = get(*bundle, "entry");
	if (!cJSON_IsArray(entries))
		return CW_HOOK_CONTINUE;
	cJSON *e;
	/* carriers first, while the Conditions they point at are still there */
	cJSON_ArrayForEach(e, entries)
	{
		cJSON *r = get(e, "resource");
		if (cJSON_IsObject(r) && !is_condition(r))
			carriers(&x, r);
	}
	size_t n = 0;
	for (e = entries->child; e;) {
		cJSON *next = e->next, *r = get(e, "resource");
		if (is_condition(r) && is_diagnosis(r)) {
			if (x.mode == PF_HIDDEN) {
				cJSON_Delete(cJSON_DetachItemViaPointer(entries, e));
				n++;
			} else {
				condition_text(&x, r);
			}
		}
		e = next;
	}
	if (x.nomem) {
		host->issue(ctx, CW_SEV_FATAL, "exception", "Bundle", "out of memory");
		return CW_HOOK_STOP;
	}
	if (x.mode != PF_HIDDEN)
		return CW_HOOK_CHANGED;
	cJSON *total = get(*bundle, "total");
	if (n && cJSON_IsNumber(total) && total->valuedouble >= (double)n)
		cJSON_SetNumberValue(total, total->valuedouble - (double)n);
	if (n && x.carriers)
		host->issue(ctx, CW_SEV_WARNING, "suppressed", "Bundle.entry",
			    "%zu %s withheld by configuration (diagnosis_display: hidden), and %zu %s to diagnoses "
			    "in other resources",
			    n, n == 1 ? "diagnosis (Condition) was" : "diagnoses (Condition) were", x.carriers,
			    x.carriers == 1 ? "reference or reason" : "references or reasons");
	else if (n)
		host->issue(ctx, CW_SEV_WARNING, "suppressed", "Bundle.entry",
			    "%zu %s withheld by configuration (diagnosis_display: hidden)", n,
			    n == 1 ? "diagnosis (Condition) was" : "diagnoses (Condition) were");
	else if (x.carriers)
		host->issue(ctx, CW_SEV_WARNING, "suppressed", "Bundle.entry",
			    "%zu %s to diagnoses %s withheld by configuration (diagnosis_display: hidden)", x.carriers,
			    x.carriers == 1 ? "reference or reason" : "references or reasons",
			    x.carriers == 1 ? "was" : "were");
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
