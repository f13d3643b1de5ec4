/* outcomes — outcome measures (PHQ-9, GAD-7, goal attainment, RAS, QoL,
 * BARC-10) for a person, to and from FHIR R4. The format is
 * docs/formats/outcomes.md.
 *
 * native → FHIR: the whole document is checked first and every problem is
 * reported with a JSON-pointer location; only a clean document is mapped, to
 * a transaction Bundle of PUTs with deterministic ids (Patient, one
 * QuestionnaireResponse per administration, Observations derived from it).
 *
 * FHIR → native: the QuestionnaireResponses this plugin writes carry every
 * native field, so they alone give the document back; the Observations
 * derived from them are recognised and skipped. Resources from elsewhere
 * (Observations with the standard total or goal-attainment codes) become
 * administrations too; everything that cannot be carried is reported as a
 * warning, and also listed in the exported document's "warnings" member,
 * because a successful export answers only the document. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <crosswalk/plugin.h>

#include "plugkit.h"

#define LOINC "http://loinc.org"
#define PHQ9_ITEM9 "44260-8" /* PHQ-9 item 9, thoughts of self-harm */
#define FALLBACK_SYSTEM "urn:crosswalk:fhir-reference"
#define DEFAULT_BASE "https://crosswalk.example.org/fhir"

static const struct cw_host *host; /* set in init; read-only afterwards */
static char base[256];             /* canonical base, from the configuration */
static char cs_local[320];         /* local CodeSystem for codes no standard has */
static char id_ns[320];            /* namespace of the deterministic ids */

/* ------------------------------------------------------------ instruments */

enum kind { PHQ9, GAD7, GAS, RAS, QOL, BARC, N_KINDS };

struct instrument {
	const char *name; /* native "instrument" */
	const char *title;
	int min, max;      /* item score range */
	int n_items, alt_items; /* accepted item counts (0: no items) */
	const char *panel, *panel_display; /* LOINC panel, or NULL */
	const char *total_system, *total, *total_display;
	const char *profile; /* meta.profile suffix of its score Observation */
};

static const struct instrument instruments[N_KINDS] = {
	[PHQ9] = {"phq-9", "Patient Health Questionnaire (PHQ-9)", 0, 3, 9, 9, "44249-1",
		  "PHQ-9 quick depression assessment panel [Reported.PHQ]", LOINC, "44261-6",
		  "Patient Health Questionnaire 9 item (PHQ-9) total score [Reported]", "outcomes-phq-9"},
	[GAD7] = {"gad-7", "Generalized Anxiety Disorder (GAD-7)", 0, 3, 7, 7, "69737-5",
		  "Generalized anxiety disorder 7 item (GAD-7) panel", LOINC, "70274-6",
		  "Generalized anxiety disorder 7 item (GAD-7) total score [Reported.PHQ]", "outcomes-gad-7"},
	[GAS] = {"goal-attainment", "Goal attainment scaling", -2, 2, 0, 0, NULL, NULL, NULL, NULL, NULL,
		 "outcomes-goal-attainment"},
	[RAS] = {"ras", "Recovery Assessment Scale", 1, 5, 24, 41, NULL, NULL, NULL, "ras-total",
		 "Recovery Assessment Scale total score", "outcomes-ras"},
	[QOL] = {"qol", "Quality of life", 0, 0, 0, 0, NULL, NULL, NULL, "qol-score", "Quality of life score",
		 "outcomes-qol"},
	/* Brief Assessment of Recovery Capital: ten items on a six-point scale
	 * (no LOINC code was found: a local one) */
	[BARC] = {"barc-10", "Brief Assessment of Recovery Capital (BARC-10)", 1, 6, 10, 10, NULL, NULL, NULL,
		  "barc-10-total", "Brief Assessment of Recovery Capital (BARC-10) total score", "outcomes-barc-10"},
};

/* Goal attainment: who rated, and the LOINC answer for each level (LL6900-6). */
static const struct rater {
	const char *name, *code, *display;
} raters[] = {
	{"person", "107334-5", "Patient follow-up goal attainment scaling score"},
	{"practitioner", "107333-7", "Practitioner follow-up goal attainment scaling score"},
	{"caregiver", "107331-1", "Caregiver follow-up goal attainment scaling score"},
};
#define N_RATERS (sizeof raters / sizeof raters[0])

static const struct level {
	int score;
	const char *code, *display;
} levels[] = {
	{2, "LA34479-8", "Much better than expected"}, {1, "LA34480-6", "Better than expected"},
	{0, "LA34481-4", "Expected outcome"},          {-1, "LA34483-0", "Less than expected"},
	{-2, "LA34484-8", "Much less than expected"},
};
#define N_LEVELS (sizeof levels / sizeof levels[0])

/* RAS domains (the five factors of the 24-item version); scores are item means. */
static const struct domain {
	const char *key, *display;
} domains[] = {
	{"personal-confidence-and-hope", "RAS personal confidence and hope"},
	{"willingness-to-ask-for-help", "RAS willingness to ask for help"},
	{"goal-and-success-orientation", "RAS goal and success orientation"},
	{"reliance-on-others", "RAS reliance on others"},
	{"no-domination-by-symptoms", "RAS no domination by symptoms"},
};
#define N_DOMAINS (sizeof domains / sizeof domains[0])

/* Quality-of-life instruments with a code of their own: the scale named
 * (compared in any case, spaces and hyphens ignored) gives the code; any
 * other scale keeps the generic qol-score with its name as text. */
static const struct qol_instrument {
	const char *name, *code, *display;
} qol_instruments[] = {
	{"MANSA", "qol-mansa", "Manchester Short Assessment of Quality of Life (MANSA) score"},
	{"WHOQOL-BREF", "qol-whoqol-bref", "WHOQOL-BREF quality of life score"},
	{"Q-LES-Q-SF", "qol-q-les-q-sf", "Quality of Life Enjoyment and Satisfaction Questionnaire, short form, score"},
	{"QOLI", "qol-qoli", "Lehman Quality of Life Interview score"},
};

/* Stability events: what happened, as an Encounter of the class that says
 * it (HL7 v3 ActCode), so that stability and recovery series can be
 * reported side by side. */
#define ACT_CODE "http://terminology.hl7.org/CodeSystem/v3-ActCode"
static const struct event_kind {
	const char *name, *display, *act, *act_display;
} event_kinds[] = {
	{"crisis-contact", "Crisis contact", "EMER", "emergency"},
	{"emergency-visit", "Emergency visit", "EMER", "emergency"},
	{"admission", "Admission", "IMP", "inpatient encounter"},
};
#define N_EVENT_KINDS (sizeof event_kinds / sizeof event_kinds[0])

static const struct event_kind *event_kind_of(const char *name)
{
	for (size_t i = 0; name && i < N_EVENT_KINDS; i++)
		if (!strcmp(name, event_kinds[i].name))
			return &event_kinds[i];
	return NULL;
}

/* a and b equal but for case, spaces and hyphens. */
static bool same_name(const char *a, const char *b)
{
	for (;;) {
		while (*a == ' ' || *a == '-')
			a++;
		while (*b == ' ' || *b == '-')
			b++;
		char x = *a >= 'a' && *a <= 'z' ? (char)(*a - 32) : *a,
		     y = *b >= 'a' && *b <= 'z' ? (char)(*b - 32) : *b;
		if (x != y)
			return false;
		if (!x)
			return true;
		a++;
		b++;
	}
}

static const struct qol_instrument *qol_instrument_of(const char *scale)
{
	for (size_t i = 0; scale && i < sizeof qol_instruments / sizeof qol_instruments[0]; i++)
		if (same_name(scale, qol_instruments[i].name))
			return &qol_instruments[i];
	return NULL;
}

/* ------------------------------------------------------------ small helpers */

/* snprintf for locations and keys, where a cut is acceptable. */
static void at(char *out, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void at(char *out, size_t cap, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(out, cap, fmt, ap);
	va_end(ap);
}

/* A JSON number's text: the literal the strict reader kept, else printed. */
static const char *num_text(const cJSON *n, char *buf, size_t cap)
{
	if (n->valuestring)
		return n->valuestring;
	snprintf(buf, cap, "%.17g", n->valuedouble);
	return buf;
}

/* A whole number written as one (no fraction, no exponent), in int range. */
static bool whole(const cJSON *n, int *out)
{
	if (!cJSON_IsNumber(n) || n->valuedouble < -1e6 || n->valuedouble > 1e6)
		return false;
	char buf[40];
	const char *t = num_text(n, buf, sizeof buf);
	if (*t == '-')
		t++;
	if (!*t || strspn(t, "0123456789") != strlen(t))
		return false;
	*out = (int)n->valuedouble;
	return (double)*out == n->valuedouble;
}

/* A number node that prints as the same literal as src. */
static cJSON *num_copy(const cJSON *src)
{
	cJSON *n = cJSON_CreateNumber(src->valuedouble);
	if (n && src->valuestring && !(n->valuestring = strdup(src->valuestring))) {
		cJSON_Delete(n);
		return NULL;
	}
	return n;
}

/* ------------------------------------------------------------ checking native */

struct check {
	struct cw_ctx *ctx;
	int errors;
	char **seen; /* "system|value" of administration identifiers, for duplicates */
	size_t n_seen, cap_seen;
	char **people;
	size_t n_people, cap_people;
	bool quiet;      /* export: count problems and keep the first, report nothing */
	char first[400]; /* the first problem seen while quiet */
};

static void bad(struct check *c, const char *code, const char *loc, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void bad(struct check *c, const char *code, const char *loc, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (c->quiet && !c->first[0])
		at(c->first, sizeof c->first, "%s (at %s)", msg, loc);
	if (!c->quiet)
		host->issue(c->ctx, CW_SEV_ERROR, code, loc, "%s", msg);
	c->errors++;
}

/* Reports members of o not in allowed (NULL-terminated). */
static void only(struct check *c, const cJSON *o, const char *loc, const char *const *allowed, const char *what)
{
	const cJSON *m;
	cJSON_ArrayForEach(m, o) {
		bool ok = false;
		for (const char *const *a = allowed; *a && !ok; a++)
			ok = pk_eq(m->string, *a);
		if (!ok) {
			char l[300];
			pk_ptr(l, sizeof l, loc, m->string);
			bad(c, "structure", l, "unknown member \"%s\" in %s", m->string, what);
		}
	}
}

/* Records key in the list; false when it was there already (or OOM). */
static bool remember(struct check *c, char ***list, size_t *n, size_t *cap, const char *key)
{
	for (size_t i = 0; i < *n; i++)
		if (strcmp((*list)[i], key) == 0)
			return false;
	if (*n == *cap) {
		size_t nc = *cap ? *cap * 2 : 16;
		char **nl = host->alloc(c->ctx, nc * sizeof *nl);
		if (!nl)
			return true;
		if (*n)
			memcpy(nl, *list, *n * sizeof *nl);
		*list = nl;
		*cap = nc;
	}
	char *copy = host->copy_string(c->ctx, key);
	if (copy)
		(*list)[(*n)++] = copy;
	return true;
}

/* An identifier {"system": absolute URI, "value": non-empty string}. Writes
 * "system|value" into key when valid. */
static bool check_identifier(struct check *c, const cJSON *id, const char *loc, bool required, char *key, size_t cap)
{
	char l[300];
	if (!id) {
		if (required)
			bad(c, "required", loc, "an identifier {system, value} is required");
		return false;
	}
	if (!cJSON_IsObject(id)) {
		bad(c, "structure", loc, "an identifier must be an object {system, value}");
		return false;
	}
	static const char *const allowed[] = {"system", "value", NULL};
	only(c, id, loc, allowed, "an identifier");
	const char *sys = pk_str(id, "system"), *val = pk_str(id, "value");
	bool ok = true;
	at(l, sizeof l, "%s/system", loc);
	if (!pk_get(id, "system"))
		ok = false, bad(c, "required", l, "the identifier's system is required");
	else if (!pk_is_uri(sys, false))
		ok = false, bad(c, "value", l, "the identifier's system must be an absolute URI");
	at(l, sizeof l, "%s/value", loc);
	if (!pk_get(id, "value"))
		ok = false, bad(c, "required", l, "the identifier's value is required");
	else if (!val || !*val)
		ok = false, bad(c, "value", l, "the identifier's value must be a non-empty string");
	if (ok && key)
		at(key, cap, "%s|%s", sys, val);
	return ok;
}

static const char *const *allowed_for(enum kind k)
{
	static const char *const common[] = {"identifier", "instrument", "date", "administered_by", NULL};
	static const char *const scored[] = {"identifier", "instrument", "date", "administered_by", "items", "total",
					     NULL};
	static const char *const gas[] = {"identifier", "instrument", "date", "administered_by", "rater", "goals",
					  NULL};
	static const char *const ras[] = {"identifier", "instrument", "date", "administered_by", "items", "total",
					  "domains",    "form",       NULL};
	static const char *const qol[] = {"identifier", "instrument", "date", "administered_by", "score", "scale",
					  NULL};
	switch (k) {
	case PHQ9:
	case GAD7:
		return scored;
	case GAS:
		return gas;
	case RAS:
		return ras;
	case BARC:
		return scored;
	case QOL:
		return qol;
	case N_KINDS:
		break;
	}
	return common;
}

static int kind_of(const char *name)
{
	for (int k = 0; k < N_KINDS; k++)
		if (pk_eq(name, instruments[k].name))
			return k;
	return -1;
}

/* items (optional) and total (optional; at least one of the two). */
static void check_scored(struct check *c, const cJSON *a, const char *loc, enum kind k)
{
	const struct instrument *in = &instruments[k];
	const cJSON *items = pk_get(a, "items"), *total = pk_get(a, "total");
	char l[300];
	int sum = 0;
	bool sum_ok = false;
	if (!items && !total) {
		at(l, sizeof l, "%s/items", loc);
		bad(c, "required", l, "%s needs its item answers, or at least a total", in->name);
	}
	if (items) {
		at(l, sizeof l, "%s/items", loc);
		int n = cJSON_GetArraySize(items);
		if (!cJSON_IsArray(items)) {
			bad(c, "structure", l, "items must be an array of whole numbers");
		} else {
			sum_ok = true;
			if (n != in->n_items && n != in->alt_items) {
				sum_ok = false;
				if (in->n_items == in->alt_items)
					bad(c, "value", l, "%s has %d items, not %d", in->name, in->n_items, n);
				else
					bad(c, "value", l, "%s has %d or %d items, not %d", in->name, in->n_items,
					    in->alt_items, n);
			}
			int i = 0;
			const cJSON *it;
			cJSON_ArrayForEach(it, items) {
				int v;
				at(l, sizeof l, "%s/items/%d", loc, i++);
				if (!whole(it, &v))
					sum_ok = false, bad(c, "value", l, "an item answer must be a whole number");
				else if (v < in->min || v > in->max)
					sum_ok = false,
					bad(c, "value", l, "item score %d is out of range %d..%d", v, in->min, in->max);
				else
					sum += v;
			}
		}
	}
	if (total) {
		int t;
		at(l, sizeof l, "%s/total", loc);
		/* The range follows the item count when the items are there. */
		int n = sum_ok ? cJSON_GetArraySize(items) : 0;
		int lo = in->min * (n ? n : in->n_items), hi = in->max * (n ? n : in->alt_items);
		if (!whole(total, &t))
			bad(c, "value", l, "the total must be a whole number");
		else if (t < lo || t > hi)
			bad(c, "value", l, "total %d is out of range %d..%d", t, lo, hi);
		else if (sum_ok && t != sum)
			bad(c, "value", l, "total %d disagrees with the items, which add up to %d", t, sum);
	}
}

/* RAS versions: the 24-item and the original 41-item scale, each its own
 * total code (their totals are not comparable). */
static const struct ras_form {
	const char *name, *code, *display;
	int items;
} ras_forms[] = {
	{"ras-24", "ras-24-total", "Recovery Assessment Scale, 24-item version (RAS-24) total score", 24},
	{"ras-41", "ras-41-total", "Recovery Assessment Scale, 41-item version total score", 41},
};

/* The form of a RAS administration: the one named, else the one its item
 * count gives; NULL when neither says (a total alone). */
static const struct ras_form *ras_form_of(const cJSON *a)
{
	const char *name = pk_str(a, "form");
	int n = cJSON_GetArraySize(pk_get(a, "items"));
	for (size_t i = 0; i < sizeof ras_forms / sizeof ras_forms[0]; i++)
		if (name ? pk_eq(name, ras_forms[i].name) : n == ras_forms[i].items)
			return &ras_forms[i];
	return NULL;
}

static void check_ras_form(struct check *c, const cJSON *a, const char *loc)
{
	char l[300];
	at(l, sizeof l, "%s/form", loc);
	const char *name = pk_str(a, "form");
	const struct ras_form *f = ras_form_of(a);
	const cJSON *items = pk_get(a, "items");
	if (!name || !f)
		bad(c, "code-invalid", l, "form must be \"ras-24\" or \"ras-41\"");
	else if (cJSON_IsArray(items) && cJSON_GetArraySize(items) != f->items)
		bad(c, "value", l, "%s has %d items, not %d", name, f->items, cJSON_GetArraySize(items));
	int t;
	if (f && !items && whole(pk_get(a, "total"), &t) && (t < f->items || t > 5 * f->items)) {
		at(l, sizeof l, "%s/total", loc);
		bad(c, "value", l, "a %s total is %d..%d, not %d", name, f->items, 5 * f->items, t);
	}
}

static void check_domains(struct check *c, const cJSON *d, const char *loc)
{
	char l[300];
	at(l, sizeof l, "%s/domains", loc);
	if (!cJSON_IsObject(d)) {
		bad(c, "structure", l, "domains must be an object of domain scores");
		return;
	}
	const cJSON *m;
	cJSON_ArrayForEach(m, d) {
		char ml[300];
		pk_ptr(ml, sizeof ml, l, m->string);
		bool known = false;
		for (size_t i = 0; i < N_DOMAINS && !known; i++)
			known = pk_eq(m->string, domains[i].key);
		if (!known)
			bad(c, "code-invalid", ml, "\"%s\" is not a RAS domain", m->string);
		else if (!cJSON_IsNumber(m) || m->valuedouble < 1 || m->valuedouble > 5)
			bad(c, "value", ml, "a domain score must be a number from 1 to 5 (the mean of its items)");
	}
}

static void check_goals(struct check *c, const cJSON *a, const char *loc)
{
	char l[300];
	const char *rater = pk_str(a, "rater");
	at(l, sizeof l, "%s/rater", loc);
	if (!pk_get(a, "rater")) {
		bad(c, "required", l, "goal-attainment needs rater (person, practitioner or caregiver)");
	} else {
		bool ok = false;
		for (size_t i = 0; i < N_RATERS && !ok; i++)
			ok = pk_eq(rater, raters[i].name);
		if (!ok)
			bad(c, "code-invalid", l, "rater must be person, practitioner or caregiver");
	}
	const cJSON *goals = pk_get(a, "goals");
	at(l, sizeof l, "%s/goals", loc);
	if (!goals) {
		bad(c, "required", l, "goal-attainment needs goals");
		return;
	}
	if (!cJSON_IsArray(goals) || cJSON_GetArraySize(goals) == 0) {
		bad(c, "structure", l, "goals must be a non-empty array");
		return;
	}
	char **seen = NULL;
	size_t n = 0, cap = 0;
	int i = 0;
	const cJSON *g;
	cJSON_ArrayForEach(g, goals) {
		char gl[300], sl[320], il[320], key[1024];
		at(gl, sizeof gl, "%s/%d", l, i++);
		if (!cJSON_IsObject(g)) {
			bad(c, "structure", gl, "a goal must be an object {goal, score}");
			continue;
		}
		static const char *const allowed[] = {"goal", "score", NULL};
		only(c, g, gl, allowed, "a goal");
		at(il, sizeof il, "%s/goal", gl);
		if (check_identifier(c, pk_get(g, "goal"), il, true, key, sizeof key) &&
		    !remember(c, &seen, &n, &cap, key))
			bad(c, "duplicate", il, "this goal is scored twice in one administration");
		at(sl, sizeof sl, "%s/score", gl);
		int v;
		if (!pk_get(g, "score"))
			bad(c, "required", sl, "the goal's score is required");
		else if (!whole(pk_get(g, "score"), &v) || v < -2 || v > 2)
			bad(c, "value", sl, "a goal attainment score is a whole number from -2 to 2");
	}
}

static void check_administration(struct check *c, const cJSON *a, const char *loc)
{
	char l[300], key[1024];
	if (!cJSON_IsObject(a)) {
		bad(c, "structure", loc, "an administration must be an object");
		return;
	}
	at(l, sizeof l, "%s/identifier", loc);
	if (check_identifier(c, pk_get(a, "identifier"), l, true, key, sizeof key) &&
	    !remember(c, &c->seen, &c->n_seen, &c->cap_seen, key))
		bad(c, "duplicate", l, "another administration has the same identifier");

	at(l, sizeof l, "%s/instrument", loc);
	const char *name = pk_str(a, "instrument");
	int k = kind_of(name);
	if (!pk_get(a, "instrument"))
		bad(c, "required", l, "the instrument is required");
	else if (k < 0)
		bad(c, "code-invalid", l,
		    "unknown instrument%s%s%s; known: phq-9, gad-7, goal-attainment, ras, qol, barc-10",
		    name ? " \"" : "", name ? name : "", name ? "\"" : "");

	at(l, sizeof l, "%s/date", loc);
	const char *date = pk_str(a, "date");
	char day[CW_DATE_SIZE];
	if (!pk_get(a, "date"))
		bad(c, "required", l, "the date is required");
	else if (!date || strlen(date) != 10 || host->iso_date(c->ctx, date, day) != CW_OK || strcmp(day, date) != 0)
		bad(c, "value", l, "the date must be a calendar date written YYYY-MM-DD");

	const cJSON *by = pk_get(a, "administered_by");
	if (by) {
		at(l, sizeof l, "%s/administered_by", loc);
		if (!cJSON_IsObject(by)) {
			bad(c, "structure", l, "administered_by must be an object {name, identifier}");
		} else {
			static const char *const allowed[] = {"name", "identifier", NULL};
			only(c, by, l, allowed, "administered_by");
			char nl[320], il[320];
			at(nl, sizeof nl, "%s/name", l);
			const char *nm = pk_str(by, "name");
			if (!pk_get(by, "name"))
				bad(c, "required", nl, "administered_by needs a name");
			else if (!nm || !*nm)
				bad(c, "value", nl, "the name must be a non-empty string");
			at(il, sizeof il, "%s/identifier", l);
			check_identifier(c, pk_get(by, "identifier"), il, false, NULL, 0);
		}
	}
	if (k < 0)
		return; /* the instrument decides what else belongs */
	only(c, a, loc, allowed_for((enum kind)k), instruments[k].name);
	switch ((enum kind)k) {
	case PHQ9:
	case GAD7:
	case RAS:
	case BARC:
		check_scored(c, a, loc, (enum kind)k);
		if (k == RAS && pk_get(a, "domains"))
			check_domains(c, pk_get(a, "domains"), loc);
		if (k == RAS && pk_get(a, "form"))
			check_ras_form(c, a, loc);
		break;
	case GAS:
		check_goals(c, a, loc);
		break;
	case QOL: {
		const cJSON *score = pk_get(a, "score"), *scale = pk_get(a, "scale");
		at(l, sizeof l, "%s/score", loc);
		if (!score)
			bad(c, "required", l, "qol needs its score");
		else if (!cJSON_IsNumber(score))
			bad(c, "value", l, "the score must be a number");
		at(l, sizeof l, "%s/scale", loc);
		if (scale && (!cJSON_IsString(scale) || !*scale->valuestring))
			bad(c, "value", l, "the scale must be a non-empty string naming the QoL instrument");
		break;
	}
	case N_KINDS:
		break;
	}
}

/* A calendar date YYYY-MM-DD, exactly. */
static bool is_day(struct check *c, const char *d)
{
	char day[CW_DATE_SIZE];
	return d && strlen(d) == 10 && host->iso_date(c->ctx, d, day) == CW_OK && !strcmp(day, d);
}

/* events: [{identifier, kind, start, end?}], identifiers unique among the
 * document's events. */
static void check_events(struct check *c, const cJSON *events, const char *loc)
{
	static const char *const allowed[] = {"identifier", "kind", "start", "end", NULL};
	char l[300], el[320], key[1024];
	at(l, sizeof l, "%s/events", loc);
	if (!cJSON_IsArray(events)) {
		bad(c, "structure", l, "events must be an array");
		return;
	}
	int i = 0;
	const cJSON *e;
	cJSON_ArrayForEach(e, events)
	{
		char base_[300];
		at(base_, sizeof base_, "%s/%d", l, i++);
		if (!cJSON_IsObject(e)) {
			bad(c, "structure", base_, "an event must be an object");
			continue;
		}
		only(c, e, base_, allowed, "an event");
		at(el, sizeof el, "%s/identifier", base_);
		char ekey[1100];
		if (check_identifier(c, pk_get(e, "identifier"), el, true, key, sizeof key)) {
			at(ekey, sizeof ekey, "event|%s", key);
			if (!remember(c, &c->seen, &c->n_seen, &c->cap_seen, ekey))
				bad(c, "duplicate", el, "another event has the same identifier");
		}
		at(el, sizeof el, "%s/kind", base_);
		if (!pk_get(e, "kind"))
			bad(c, "required", el, "the kind is required (crisis-contact, emergency-visit, admission)");
		else if (!event_kind_of(pk_str(e, "kind")))
			bad(c, "code-invalid", el, "unknown kind; known: crisis-contact, emergency-visit, admission");
		const char *start = pk_str(e, "start"), *end = pk_str(e, "end");
		at(el, sizeof el, "%s/start", base_);
		if (!pk_get(e, "start"))
			bad(c, "required", el, "the start date is required");
		else if (!is_day(c, start))
			bad(c, "value", el, "the start must be a calendar date YYYY-MM-DD");
		at(el, sizeof el, "%s/end", base_);
		if (pk_get(e, "end") && !is_day(c, end))
			bad(c, "value", el, "the end must be a calendar date YYYY-MM-DD");
		else if (end && is_day(c, start) && strcmp(end, start) < 0)
			bad(c, "value", el, "the end is before the start");
	}
}

static void check_person(struct check *c, const cJSON *p, const char *loc)
{
	char l[300], key[1024];
	if (!cJSON_IsObject(p)) {
		bad(c, "structure", loc, "a person must be an object");
		return;
	}
	static const char *const allowed[] = {"identifier", "name", "administrations", "events", NULL};
	only(c, p, loc, allowed, "a person");
	if (pk_get(p, "events"))
		check_events(c, pk_get(p, "events"), loc);
	at(l, sizeof l, "%s/identifier", loc);
	if (check_identifier(c, pk_get(p, "identifier"), l, true, key, sizeof key) &&
	    !remember(c, &c->people, &c->n_people, &c->cap_people, key))
		bad(c, "duplicate", l, "another person has the same identifier");
	const cJSON *name = pk_get(p, "name");
	at(l, sizeof l, "%s/name", loc);
	if (name && (!cJSON_IsString(name) || !*name->valuestring))
		bad(c, "value", l, "the name must be a non-empty string");
	const cJSON *adms = pk_get(p, "administrations");
	at(l, sizeof l, "%s/administrations", loc);
	if (!adms) {
		bad(c, "required", l, "administrations is required (it may be empty)");
	} else if (!cJSON_IsArray(adms)) {
		bad(c, "structure", l, "administrations must be an array");
	} else {
		int i = 0;
		const cJSON *a;
		cJSON_ArrayForEach(a, adms) {
			char al[300];
			at(al, sizeof al, "%s/%d", l, i++);
			check_administration(c, a, al);
		}
	}
}

/* Reports every problem of the document; returns the number of errors. */
static int check_document(struct cw_ctx *ctx, const cJSON *doc)
{
	struct check c = {.ctx = ctx};
	if (!cJSON_IsObject(doc)) {
		bad(&c, "structure", "", "the document must be a JSON object");
		return c.errors;
	}
	static const char *const allowed[] = {"format", "version", "people", "warnings", NULL};
	only(&c, doc, "", allowed, "the document");
	int v;
	if (!pk_get(doc, "format"))
		bad(&c, "required", "/format", "format is required (\"outcomes\")");
	else if (!pk_eq(pk_str(doc, "format"), "outcomes"))
		bad(&c, "value", "/format", "format must be \"outcomes\"");
	if (!pk_get(doc, "version"))
		bad(&c, "required", "/version", "version is required (1)");
	else if (!whole(pk_get(doc, "version"), &v) || v != 1)
		bad(&c, "not-supported", "/version", "only version 1 of the outcomes format is known");
	const cJSON *people = pk_get(doc, "people");
	if (!people) {
		bad(&c, "required", "/people", "people is required");
	} else if (!cJSON_IsArray(people)) {
		bad(&c, "structure", "/people", "people must be an array");
	} else {
		int i = 0;
		const cJSON *p;
		cJSON_ArrayForEach(p, people) {
			char l[64];
			at(l, sizeof l, "/people/%d", i++);
			check_person(&c, p, l);
		}
	}
	return c.errors;
}

/* ------------------------------------------------------------ native → FHIR */

struct build {
	struct cw_ctx *ctx;
	cJSON *entries;
	const char *pid; /* the Patient whose administrations are mapped: the namespace of their ids */
	bool oom;
};

static void add(struct build *b, cJSON *obj, const char *key, cJSON *item)
{
	if (!item) {
		b->oom = true;
		return;
	}
	if (!obj || !cJSON_AddItemToObject(obj, key, item)) {
		cJSON_Delete(item);
		b->oom = true;
	}
}

static void push(struct build *b, cJSON *arr, cJSON *item)
{
	if (!item || !arr || !cJSON_AddItemToArray(arr, item)) {
		cJSON_Delete(item);
		b->oom = true;
	}
}

static void add_str(struct build *b, cJSON *obj, const char *key, const char *s)
{
	add(b, obj, key, cJSON_CreateString(s));
}

static cJSON *arr_add(struct build *b, cJSON *obj, const char *key)
{
	cJSON *a = cJSON_CreateArray();
	add(b, obj, key, a);
	return b->oom ? NULL : a;
}

static cJSON *obj_add(struct build *b, cJSON *obj, const char *key)
{
	cJSON *o = cJSON_CreateObject();
	add(b, obj, key, o);
	return b->oom ? NULL : o;
}

/* uuid5(ns, the formatted key). */
static bool key_id(struct cw_ctx *ctx, const char *ns, char out[CW_ID_SIZE], const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static bool key_id(struct cw_ctx *ctx, const char *ns, char out[CW_ID_SIZE], const char *fmt, ...)
{
	char key[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(key, sizeof key, fmt, ap);
	va_end(ap);
	return host->make_id(ctx, ns, key, out) == CW_OK;
}

/* An id of what belongs to the person b maps: plugkit's rule, uuid5(the
 * Patient's id, "Type|system|value|…"). */
static bool make_id(struct build *b, char out[CW_ID_SIZE], const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static bool make_id(struct build *b, char out[CW_ID_SIZE], const char *fmt, ...)
{
	char key[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(key, sizeof key, fmt, ap);
	va_end(ap);
	struct pk_out o = {.host = host, .ctx = b->ctx};
	if (!pk_owned_id(&o, b->pid, key, out)) {
		b->oom = true;
		return false;
	}
	return true;
}

/* A new resource, entered in the Bundle as PUT Type/id. */
static cJSON *resource(struct build *b, const char *type, const char *id)
{
	cJSON *e = cJSON_CreateObject(), *r = cJSON_CreateObject();
	push(b, b->entries, e);
	if (b->oom) {
		cJSON_Delete(r);
		return NULL;
	}
	add(b, e, "resource", r);
	if (b->oom)
		return NULL;
	add_str(b, r, "resourceType", type);
	add_str(b, r, "id", id);
	cJSON *req = obj_add(b, e, "request");
	char url[128];
	at(url, sizeof url, "%s/%s", type, id);
	add_str(b, req, "method", "PUT");
	add_str(b, req, "url", url);
	return b->oom ? NULL : r;
}

static void profile(struct build *b, cJSON *r, const char *name)
{
	char url[400];
	at(url, sizeof url, "%s/StructureDefinition/%s", base, name);
	cJSON *meta = obj_add(b, r, "meta");
	push(b, arr_add(b, meta, "profile"), cJSON_CreateString(url));
}

static cJSON *identifier(struct build *b, const cJSON *id)
{
	cJSON *i = host->make_identifier(b->ctx, pk_str(id, "system"), pk_str(id, "value"));
	if (!i)
		b->oom = true;
	return i;
}

/* A logical reference {type, identifier, display}. */
static cJSON *logical(struct build *b, const char *type, const cJSON *id, const char *display)
{
	cJSON *r = cJSON_CreateObject();
	if (!r) {
		b->oom = true;
		return NULL;
	}
	add_str(b, r, "type", type);
	if (id)
		add(b, r, "identifier", identifier(b, id));
	if (display)
		add_str(b, r, "display", display);
	return r;
}

/* The person's Goal with identifier goal, as a literal reference: the id
 * every plugin gives that Goal (plugkit's rule: uuid5(the Patient's id,
 * "Goal|system|value")), with its type and identifier, so that a search by
 * the Goal (Observation?focus=Goal/id) finds what refers to it. */
static cJSON *goal_ref(struct build *b, const cJSON *goal)
{
	const struct pk_ident id = {pk_str(goal, "system"), pk_str(goal, "value")};
	struct pk_out o = {.host = host, .ctx = b->ctx};
	char gid[CW_ID_SIZE];
	if (!pk_item_id(&o, b->pid, "Goal", &id, gid)) {
		b->oom = true;
		return NULL;
	}
	cJSON *r = host->make_reference(b->ctx, "Goal", gid, NULL);
	if (!r) {
		b->oom = true;
		return NULL;
	}
	add_str(b, r, "type", "Goal");
	add(b, r, "identifier", identifier(b, goal));
	return r;
}

static cJSON *reference(struct build *b, const char *type, const char *id)
{
	cJSON *r = host->make_reference(b->ctx, type, id, NULL);
	if (!r)
		b->oom = true;
	return r;
}

static cJSON *concept(struct build *b, const char *system, const char *code, const char *display, const char *text)
{
	cJSON *cc = cJSON_CreateObject();
	if (!cc) {
		b->oom = true;
		return NULL;
	}
	cJSON *coding = host->make_coding(b->ctx, system, code, display);
	if (!coding)
		b->oom = true;
	push(b, arr_add(b, cc, "coding"), coding);
	if (text)
		add_str(b, cc, "text", text);
	return cc;
}

static cJSON *performer(struct build *b, const cJSON *adm)
{
	const cJSON *by = pk_get(adm, "administered_by");
	return by ? logical(b, "Practitioner", pk_get(by, "identifier"), pk_str(by, "name")) : NULL;
}

/* QuestionnaireResponse.item: one question with one answer. */
static cJSON *qr_item(struct build *b, cJSON *items, const char *link, const char *vkey, cJSON *value)
{
	cJSON *it = cJSON_CreateObject();
	push(b, items, it);
	if (b->oom) {
		cJSON_Delete(value);
		return NULL;
	}
	add_str(b, it, "linkId", link);
	cJSON *ans = cJSON_CreateObject();
	push(b, arr_add(b, it, "answer"), ans);
	if (b->oom) {
		cJSON_Delete(value);
		return NULL;
	}
	add(b, ans, vkey, value);
	return it;
}

/* An Observation derived from the administration's QuestionnaireResponse. */
static cJSON *observation(struct build *b, const char *id, const cJSON *adm, const char *subject,
			  const char *qr_id, const char *prof, cJSON *code)
{
	cJSON *o = resource(b, "Observation", id);
	if (!o) {
		cJSON_Delete(code);
		return NULL;
	}
	profile(b, o, prof);
	add_str(b, o, "status", "final");
	cJSON *cat = cJSON_CreateObject();
	push(b, arr_add(b, o, "category"), cat);
	if (!b->oom)
		push(b, arr_add(b, cat, "coding"),
		     host->make_coding(b->ctx, "http://terminology.hl7.org/CodeSystem/observation-category", "survey",
				       "Survey"));
	add(b, o, "code", code);
	add(b, o, "subject", reference(b, "Patient", subject));
	add_str(b, o, "effectiveDateTime", pk_str(adm, "date"));
	cJSON *perf = performer(b, adm);
	if (perf)
		push(b, arr_add(b, o, "performer"), perf);
	push(b, arr_add(b, o, "derivedFrom"), reference(b, "QuestionnaireResponse", qr_id));
	return b->oom ? NULL : o;
}

static void map_administration(struct build *b, const cJSON *adm, const char *patient_id)
{
	enum kind k = (enum kind)kind_of(pk_str(adm, "instrument"));
	const struct instrument *in = &instruments[k];
	const cJSON *aid = pk_get(adm, "identifier");
	const char *asys = pk_str(aid, "system"), *aval = pk_str(aid, "value");
	char qr_id[CW_ID_SIZE], q[400], prof[64];
	if (!make_id(b, qr_id, "QuestionnaireResponse|%s|%s", asys, aval))
		return;
	cJSON *qr = resource(b, "QuestionnaireResponse", qr_id);
	if (!qr)
		return;
	profile(b, qr, "outcomes-questionnaireresponse");
	add(b, qr, "identifier", identifier(b, aid));
	at(q, sizeof q, "%s/Questionnaire/%s", base, in->name);
	add_str(b, qr, "questionnaire", q);
	add_str(b, qr, "status", "completed");
	add(b, qr, "subject", reference(b, "Patient", patient_id));
	add_str(b, qr, "authored", pk_str(adm, "date"));
	cJSON *perf = performer(b, adm);
	if (perf)
		add(b, qr, "author", perf);
	cJSON *items = arr_add(b, qr, "item");
	if (b->oom)
		return;

	const cJSON *it, *list = pk_get(adm, "items"), *total = pk_get(adm, "total");
	int n = 0, sum = 0, v = 0;
	cJSON_ArrayForEach(it, list) {
		char link[16];
		at(link, sizeof link, "%d", ++n);
		whole(it, &v);
		sum += v;
		qr_item(b, items, link, "valueInteger", cJSON_CreateNumber(v));
	}
	if (total) {
		whole(total, &v);
		qr_item(b, items, "total", "valueInteger", cJSON_CreateNumber(v));
		sum = v; /* equal to the items' sum when both are given */
	}
	at(prof, sizeof prof, "%s", in->profile);

	if (k == PHQ9 || k == GAD7) {
		char panel_id[CW_ID_SIZE], total_id[CW_ID_SIZE];
		if (!make_id(b, panel_id, "Observation|%s|%s|panel", asys, aval) ||
		    !make_id(b, total_id, "Observation|%s|%s|total", asys, aval))
			return;
		cJSON *p = observation(b, panel_id, adm, patient_id, qr_id, prof,
				       concept(b, LOINC, in->panel, in->panel_display, NULL));
		push(b, arr_add(b, p, "hasMember"), reference(b, "Observation", total_id));
		cJSON *t = observation(b, total_id, adm, patient_id, qr_id, prof,
				       concept(b, in->total_system, in->total, in->total_display, NULL));
		add(b, t, "valueInteger", cJSON_CreateNumber(sum));
		/* PHQ-9 item 9 (thoughts of self-harm) above 0: an Observation of
		 * its own, a member of the panel, so that a crisis plan sees it
		 * without reading the response */
		int item9 = 0;
		if (k == PHQ9 && whole(cJSON_GetArrayItem(list, 8), &item9) && item9 > 0) {
			char item_id[CW_ID_SIZE];
			if (!make_id(b, item_id, "Observation|%s|%s|item9", asys, aval))
				return;
			push(b, cJSON_GetObjectItemCaseSensitive(p, "hasMember"), reference(b, "Observation", item_id));
			cJSON *o9 = observation(b, item_id, adm, patient_id, qr_id, prof,
						concept(b, LOINC, PHQ9_ITEM9, NULL, NULL));
			add(b, o9, "valueInteger", cJSON_CreateNumber(item9));
		}
	} else if (k == BARC) {
		char total_id[CW_ID_SIZE];
		if (!make_id(b, total_id, "Observation|%s|%s|total", asys, aval))
			return;
		cJSON *t = observation(b, total_id, adm, patient_id, qr_id, prof,
				       concept(b, cs_local, in->total, in->total_display, NULL));
		add(b, t, "valueInteger", cJSON_CreateNumber(sum));
	} else if (k == RAS) {
		const cJSON *d = pk_get(adm, "domains");
		cJSON_ArrayForEach(it, d) {
			char link[80];
			at(link, sizeof link, "domain/%s", it->string);
			qr_item(b, items, link, "valueDecimal", num_copy(it));
		}
		if (pk_str(adm, "form"))
			qr_item(b, items, "form", "valueString", cJSON_CreateString(pk_str(adm, "form")));
		char total_id[CW_ID_SIZE];
		if (!make_id(b, total_id, "Observation|%s|%s|total", asys, aval))
			return;
		/* one code per version; the unversioned one only for a total alone */
		const struct ras_form *form = ras_form_of(adm);
		cJSON *t = observation(b, total_id, adm, patient_id, qr_id, prof,
				       concept(b, cs_local, form ? form->code : in->total,
					       form ? form->display : in->total_display, NULL));
		add(b, t, "valueInteger", cJSON_CreateNumber(sum));
		cJSON *comps = d && cJSON_GetArraySize(d) ? arr_add(b, t, "component") : NULL;
		cJSON_ArrayForEach(it, d) {
			const struct domain *dm = NULL;
			for (size_t i = 0; i < N_DOMAINS; i++)
				if (pk_eq(it->string, domains[i].key))
					dm = &domains[i];
			char code[80];
			at(code, sizeof code, "ras-%s", dm->key);
			cJSON *comp = cJSON_CreateObject();
			push(b, comps, comp);
			if (b->oom)
				return;
			add(b, comp, "code", concept(b, cs_local, code, dm->display, NULL));
			cJSON *qty = obj_add(b, comp, "valueQuantity");
			add(b, qty, "value", num_copy(it));
			add_str(b, qty, "unit", "score");
		}
	} else if (k == GAS) {
		const char *rname = pk_str(adm, "rater");
		const struct rater *r = &raters[0];
		for (size_t i = 0; i < N_RATERS; i++)
			if (pk_eq(rname, raters[i].name))
				r = &raters[i];
		qr_item(b, items, "rater", "valueCoding", host->make_coding(b->ctx, cs_local, r->name, NULL));
		int gi = 0;
		cJSON_ArrayForEach(it, pk_get(adm, "goals")) {
			const cJSON *goal = pk_get(it, "goal");
			int score = 0;
			whole(pk_get(it, "score"), &score);
			const struct level *lv = &levels[0];
			for (size_t i = 0; i < N_LEVELS; i++)
				if (levels[i].score == score)
					lv = &levels[i];
			char link[32], sub[48];
			at(link, sizeof link, "goal/%d", ++gi);
			cJSON *grp = cJSON_CreateObject();
			push(b, items, grp);
			if (b->oom)
				return;
			add_str(b, grp, "linkId", link);
			cJSON *sub_items = arr_add(b, grp, "item");
			at(sub, sizeof sub, "%s/goal", link);
			qr_item(b, sub_items, sub, "valueReference", goal_ref(b, goal));
			at(sub, sizeof sub, "%s/score", link);
			qr_item(b, sub_items, sub, "valueInteger", cJSON_CreateNumber(score));

			char oid[CW_ID_SIZE];
			if (!make_id(b, oid, "Observation|%s|%s|goal|%s|%s", asys, aval, pk_str(goal, "system"),
				     pk_str(goal, "value")))
				return;
			cJSON *o = observation(b, oid, adm, patient_id, qr_id, prof,
					       concept(b, LOINC, r->code, r->display, NULL));
			push(b, arr_add(b, o, "focus"), goal_ref(b, goal));
			add(b, o, "valueCodeableConcept", concept(b, LOINC, lv->code, lv->display, NULL));
		}
	} else if (k == QOL) {
		const cJSON *score = pk_get(adm, "score");
		const char *scale = pk_str(adm, "scale");
		qr_item(b, items, "score", "valueDecimal", num_copy(score));
		if (scale)
			qr_item(b, items, "scale", "valueString", cJSON_CreateString(scale));
		char oid[CW_ID_SIZE];
		if (!make_id(b, oid, "Observation|%s|%s|score", asys, aval))
			return;
		/* one code per instrument; the generic one for a scale not known here */
		const struct qol_instrument *qi = qol_instrument_of(scale);
		cJSON *o = observation(
			b, oid, adm, patient_id, qr_id, prof,
			concept(b, cs_local, qi ? qi->code : in->total, qi ? qi->display : in->total_display, scale));
		cJSON *qty = obj_add(b, o, "valueQuantity");
		add(b, qty, "value", num_copy(score));
		add_str(b, qty, "unit", "score");
	}
}

/* An event as an Encounter: class EMER or IMP, type the local event code,
 * period from start (and end). */
static void map_event(struct build *b, const cJSON *ev, const char *patient_id)
{
	const struct event_kind *k = event_kind_of(pk_str(ev, "kind"));
	const cJSON *eid = pk_get(ev, "identifier");
	char id[CW_ID_SIZE];
	if (!k || !make_id(b, id, "Encounter|%s|%s", pk_str(eid, "system"), pk_str(eid, "value")))
		return;
	cJSON *r = resource(b, "Encounter", id);
	if (!r)
		return;
	push(b, arr_add(b, r, "identifier"), identifier(b, eid));
	add_str(b, r, "status", "finished");
	add(b, r, "class", host->make_coding(b->ctx, ACT_CODE, k->act, k->act_display));
	push(b, arr_add(b, r, "type"), concept(b, cs_local, k->name, k->display, NULL));
	add(b, r, "subject", reference(b, "Patient", patient_id));
	cJSON *period = obj_add(b, r, "period");
	add_str(b, period, "start", pk_str(ev, "start"));
	if (pk_str(ev, "end"))
		add_str(b, period, "end", pk_str(ev, "end"));
}

static enum cw_status to_fhir(struct cw_ctx *ctx, const char *data, size_t len, enum cw_media media, cJSON **out)
{
	(void)media;
	*out = NULL;
	cJSON *doc = host->parse_json(ctx, data, len);
	if (!doc)
		return CW_INVALID; /* the reader reported where */
	if (check_document(ctx, doc) > 0) {
		cJSON_Delete(doc);
		return CW_INVALID;
	}
	struct build b = {.ctx = ctx};
	cJSON *bundle = cJSON_CreateObject();
	add_str(&b, bundle, "resourceType", "Bundle");
	add_str(&b, bundle, "type", "transaction");
	b.entries = arr_add(&b, bundle, "entry");
	const cJSON *p;
	cJSON_ArrayForEach(p, pk_get(doc, "people")) {
		if (b.oom)
			break;
		const cJSON *pid = pk_get(p, "identifier");
		const struct pk_ident person = {pk_str(pid, "system"), pk_str(pid, "value")};
		char id[CW_ID_SIZE];
		struct pk_out po = {.host = host, .ctx = ctx};
		if (!pk_patient_id(&po, &person, id)) {
			b.oom = true;
			break;
		}
		b.pid = id;
		cJSON *pat = resource(&b, "Patient", id);
		if (!pat)
			break;
		push(&b, arr_add(&b, pat, "identifier"), identifier(&b, pid));
		if (pk_str(p, "name")) {
			cJSON *nm = cJSON_CreateObject();
			push(&b, arr_add(&b, pat, "name"), nm);
			if (!b.oom)
				add_str(&b, nm, "text", pk_str(p, "name"));
		}
		const cJSON *a;
		cJSON_ArrayForEach(a, pk_get(p, "administrations")) {
			if (b.oom)
				break;
			map_administration(&b, a, id);
		}
		cJSON_ArrayForEach(a, pk_get(p, "events"))
		{
			if (b.oom)
				break;
			map_event(&b, a, id);
		}
	}
	cJSON_Delete(doc);
	if (b.oom) {
		cJSON_Delete(bundle);
		host->issue(ctx, CW_SEV_ERROR, "exception", NULL, "out of memory while mapping");
		return CW_NOMEM;
	}
	*out = bundle;
	return CW_OK;
}

/* ------------------------------------------------------------ FHIR → native */

struct person {
	const char *ref;      /* "Patient/id" (or the reference text when not in the input) */
	const char *key;      /* "system|value" of its identifier */
	const char *full_url; /* entry.fullUrl, may be NULL */
	cJSON *doc;           /* the native person object (owned by the people array) */
	cJSON *adms;
	cJSON *events; /* created with the first event */
};

struct exporter {
	struct cw_ctx *ctx;
	const cJSON *bundle;
	struct person *people;
	size_t n_people, cap_people;
	cJSON *people_arr;
	cJSON *warnings;
	const char **mapped_qr; /* references of the QuestionnaireResponses mapped */
	size_t n_qr;
	struct check chk; /* what is exported must read back: checked as ingest would */
	bool oom;
};

static void warn(struct exporter *x, const char *loc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void warn(struct exporter *x, const char *loc, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	pk_vissue(host, x->ctx, CW_SEV_WARNING, "informational", loc, msg, sizeof msg, fmt, ap);
	va_end(ap);
	cJSON *w = cJSON_CreateObject();
	if (!w || !cJSON_AddItemToArray(x->warnings, w)) {
		cJSON_Delete(w);
		x->oom = true;
		return;
	}
	if (!cJSON_AddStringToObject(w, "location", loc ? loc : "") || !cJSON_AddStringToObject(w, "message", msg))
		x->oom = true;
}

static void xadd(struct exporter *x, cJSON *obj, const char *key, cJSON *item)
{
	if (!item || !cJSON_AddItemToObject(obj, key, item)) {
		cJSON_Delete(item);
		x->oom = true;
	}
}

/* "Type/id" of a resource, in the arena. */
static const char *ref_of(struct exporter *x, const cJSON *r)
{
	char buf[200];
	at(buf, sizeof buf, "%s/%s", pk_str(r, "resourceType") ? pk_str(r, "resourceType") : "?",
		 pk_str(r, "id") ? pk_str(r, "id") : "(no id)");
	const char *s = host->copy_string(x->ctx, buf);
	if (!s)
		x->oom = true;
	return s ? s : "?";
}

/* Warns about every member of r that is not in known (NULL-terminated). */
static void unmapped(struct exporter *x, const cJSON *r, const char *where, const char *const *known)
{
	const cJSON *m;
	cJSON_ArrayForEach(m, r) {
		bool ok = false;
		for (const char *const *k = known; *k && !ok; k++)
			ok = pk_eq(m->string, *k);
		if (!ok) {
			char loc[300];
			at(loc, sizeof loc, "%s.%s", where, m->string);
			warn(x, loc, "%s has no place in the outcomes format; not exported", m->string);
		}
	}
}

static cJSON *native_identifier(const cJSON *id)
{
	cJSON *o = cJSON_CreateObject();
	if (o && (!cJSON_AddStringToObject(o, "system", pk_str(id, "system")) ||
		  !cJSON_AddStringToObject(o, "value", pk_str(id, "value")))) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

static cJSON *fallback_identifier(const char *value)
{
	cJSON *o = cJSON_CreateObject();
	if (o && (!cJSON_AddStringToObject(o, "system", FALLBACK_SYSTEM) || !cJSON_AddStringToObject(o, "value", value))) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

static bool usable_identifier(const cJSON *id)
{
	const char *v = pk_str(id, "value");
	return pk_is_uri(pk_str(id, "system"), false) && v && *v;
}

/* The person with identifier id (or, without one, the fallback reference),
 * created when new; ref and full_url are the names the resources use for it. */
static struct person *new_person(struct exporter *x, const char *ref, const char *full_url, const cJSON *id,
				 const char *fallback, const char *name, bool *alias)
{
	char key[1200];
	bool has_id = usable_identifier(id);
	if (has_id)
		at(key, sizeof key, "%s|%s", pk_str(id, "system"), pk_str(id, "value"));
	else
		at(key, sizeof key, "%s|%s", FALLBACK_SYSTEM, fallback);
	struct person *same = NULL;
	for (size_t i = 0; i < x->n_people && !same; i++)
		if (pk_eq(key, x->people[i].key))
			same = &x->people[i];
	if (x->n_people == x->cap_people) {
		size_t nc = x->cap_people ? x->cap_people * 2 : 8;
		struct person *np = host->alloc(x->ctx, nc * sizeof *np);
		if (!np) {
			x->oom = true;
			return NULL;
		}
		if (x->n_people)
			memcpy(np, x->people, x->n_people * sizeof *np);
		if (same)
			same = np + (same - x->people);
		x->people = np;
		x->cap_people = nc;
	}
	struct person *p = &x->people[x->n_people];
	*alias = same != NULL;
	if (same) { /* another resource for the same person: one person, two names */
		*p = *same;
		p->ref = ref;
		p->full_url = full_url;
		x->n_people++;
		return p;
	}
	*p = (struct person){.ref = ref, .full_url = full_url, .key = host->copy_string(x->ctx, key),
			     .doc = cJSON_CreateObject()};
	if (!p->key || !p->doc || !cJSON_AddItemToArray(x->people_arr, p->doc)) {
		cJSON_Delete(p->doc);
		x->oom = true;
		return NULL;
	}
	x->n_people++;
	xadd(x, p->doc, "identifier", has_id ? native_identifier(id) : fallback_identifier(fallback));
	if (name && *name)
		xadd(x, p->doc, "name", cJSON_CreateString(name));
	p->adms = cJSON_AddArrayToObject(p->doc, "administrations");
	if (!p->adms)
		x->oom = true;
	return p;
}

static void map_patient(struct exporter *x, const cJSON *r, const char *full_url)
{
	const char *where = ref_of(x, r);
	const cJSON *ids = pk_get(r, "identifier"), *id = NULL, *it;
	int i = 0;
	cJSON_ArrayForEach(it, ids) {
		char loc[300];
		at(loc, sizeof loc, "%s.identifier[%d]", where, i++);
		if (!id && usable_identifier(it))
			id = it;
		else
			warn(x, loc, "only one identifier (with system and value) is carried; not exported");
	}
	if (!id)
		warn(x, where, "the Patient has no identifier with system and value; its reference is the person's identifier");
	const cJSON *names = pk_get(r, "name"), *n0 = cJSON_GetArrayItem(names, 0);
	char text[512] = "";
	if (n0) {
		if (pk_str(n0, "text"))
			at(text, sizeof text, "%s", pk_str(n0, "text"));
		else
			pk_join_name(n0, text, sizeof text);
		static const char *const by_text[] = {"text", NULL}, *const by_parts[] = {"given", "family", NULL};
		char loc[300];
		at(loc, sizeof loc, "%s.name[0]", where);
		if (!pk_str(n0, "text") && *text)
			warn(x, loc, "given and family names were joined into one name text");
		unmapped(x, n0, loc, pk_str(n0, "text") ? by_text : by_parts);
		for (int j = 1; j < cJSON_GetArraySize(names); j++) {
			at(loc, sizeof loc, "%s.name[%d]", where, j);
			warn(x, loc, "only the first name is carried; not exported");
		}
	}
	bool alias;
	struct person *p = new_person(x, where, full_url, id, full_url ? full_url : where, text, &alias);
	if (p && alias)
		warn(x, where, "another Patient has the same identifier; both are one person");
	static const char *const known[] = {"resourceType", "id", "meta", "identifier", "name", NULL};
	unmapped(x, r, where, known);
}

/* The person a subject reference points at; a new one when the Patient is
 * not in the input. */
static struct person *person_for(struct exporter *x, const cJSON *subject, const char *where)
{
	const char *ref = pk_str(subject, "reference");
	for (size_t i = 0; ref && i < x->n_people; i++)
		if (pk_eq(ref, x->people[i].ref) || pk_eq(ref, x->people[i].full_url))
			return &x->people[i];
	const cJSON *id = pk_get(subject, "identifier");
	if (!usable_identifier(id) && !ref)
		return NULL;
	if (!usable_identifier(id))
		warn(x, where, "the subject %s is not in the input; its reference is the person's identifier", ref);
	bool alias;
	const char *display = pk_str(subject, "display");
	return new_person(x, ref ? host->copy_string(x->ctx, ref) : NULL, NULL, id, ref, display, &alias);
}

/* administered_by from a performer/author reference. */
static void map_by(struct exporter *x, cJSON *adm, const cJSON *ref, const char *loc)
{
	if (!ref)
		return;
	const char *name = pk_str(ref, "display");
	if (!name || !*name) {
		warn(x, loc, "who administered it is carried with a display name only; not exported");
		return;
	}
	cJSON *by = cJSON_CreateObject();
	xadd(x, adm, "administered_by", by);
	if (x->oom)
		return;
	xadd(x, by, "name", cJSON_CreateString(name));
	if (usable_identifier(pk_get(ref, "identifier")))
		xadd(x, by, "identifier", native_identifier(pk_get(ref, "identifier")));
	if (pk_str(ref, "reference"))
		warn(x, loc, "the reference %s is not carried, only the name and identifier", pk_str(ref, "reference"));
}

/* date from a FHIR date or dateTime; warns when a time is dropped. */
static bool map_date(struct exporter *x, cJSON *adm, const char *when, const char *loc)
{
	char day[CW_DATE_SIZE], d[11];
	if (!when || strlen(when) < 10) {
		warn(x, loc, "no full date (YYYY-MM-DD); the administration is not exported");
		return false;
	}
	memcpy(d, when, 10);
	d[10] = '\0';
	if (host->iso_date(x->ctx, d, day) != CW_OK || strcmp(day, d) != 0) {
		warn(x, loc, "not a date; the administration is not exported");
		return false;
	}
	if (strlen(when) > 10)
		warn(x, loc, "the time of day is not carried, only the date");
	xadd(x, adm, "date", cJSON_CreateString(d));
	return true;
}

/* Appends adm (consumed) to the person when it reads back as valid native. */
static void keep_administration(struct exporter *x, struct person *p, cJSON *adm, const char *where)
{
	int before = x->chk.errors;
	x->chk.first[0] = '\0';
	check_administration(&x->chk, adm, "");
	if (x->chk.errors > before) {
		warn(x, where, "not exported, it would not read back: %s", x->chk.first);
		cJSON_Delete(adm);
		return;
	}
	if (!cJSON_AddItemToArray(p->adms, adm)) {
		cJSON_Delete(adm);
		x->oom = true;
	}
}

static const cJSON *answer0(const cJSON *item) { return cJSON_GetArrayItem(pk_get(item, "answer"), 0); }

/* A QuestionnaireResponse for one of our instruments → one administration. */
static void map_qr(struct exporter *x, const cJSON *r, const char *full_url)
{
	const char *where = ref_of(x, r);
	const char *q = pk_str(r, "questionnaire");
	char prefix[320];
	at(prefix, sizeof prefix, "%s/Questionnaire/", base);
	int k = q && strncmp(q, prefix, strlen(prefix)) == 0 ? kind_of(q + strlen(prefix)) : -1;
	if (k < 0) {
		warn(x, where, "questionnaire %s is not an outcomes instrument; the response is not exported",
		     q ? q : "(none)");
		return;
	}
	if (!pk_eq(pk_str(r, "status"), "completed"))
		warn(x, where, "status %s is not carried (an administration is a completed response)",
		     pk_str(r, "status") ? pk_str(r, "status") : "(none)");
	struct person *p = person_for(x, pk_get(r, "subject"), where);
	if (!p) {
		warn(x, where, "the response has no subject; not exported");
		return;
	}
	cJSON *adm = cJSON_CreateObject();
	if (!adm)
		return (void)(x->oom = true);
	const cJSON *id = pk_get(r, "identifier");
	xadd(x, adm, "identifier", usable_identifier(id) ? native_identifier(id) : fallback_identifier(full_url ? full_url : where));
	xadd(x, adm, "instrument", cJSON_CreateString(instruments[k].name));
	char loc[300];
	at(loc, sizeof loc, "%s.authored", where);
	if (!map_date(x, adm, pk_str(r, "authored"), loc)) {
		cJSON_Delete(adm);
		return;
	}
	at(loc, sizeof loc, "%s.author", where);
	map_by(x, adm, pk_get(r, "author"), loc);

	cJSON *items = NULL, *goals = NULL, *doms = NULL;
	const cJSON *total = NULL, *score = NULL, *scale = NULL, *rater = NULL, *form = NULL, *it;
	int i = 0, expect = 1;
	cJSON_ArrayForEach(it, pk_get(r, "item")) {
		const char *link = pk_str(it, "linkId");
		const cJSON *a = answer0(it), *v;
		at(loc, sizeof loc, "%s.item[%d]", where, i++);
		char num[16];
		at(num, sizeof num, "%d", expect);
		if ((k == PHQ9 || k == GAD7 || k == RAS || k == BARC) && pk_eq(link, num) &&
		    (v = pk_get(a, "valueInteger"))) {
			if (!items && !(items = cJSON_CreateArray()))
				return (void)(x->oom = true, cJSON_Delete(adm));
			cJSON *n = num_copy(v);
			if (!n || !cJSON_AddItemToArray(items, n))
				x->oom = true, cJSON_Delete(n);
			expect++;
		} else if ((k == PHQ9 || k == GAD7 || k == RAS || k == BARC) && pk_eq(link, "total") &&
			   pk_get(a, "valueInteger")) {
			total = pk_get(a, "valueInteger");
		} else if (k == RAS && link && strncmp(link, "domain/", 7) == 0 && pk_get(a, "valueDecimal")) {
			if (!doms && !(doms = cJSON_CreateObject()))
				return (void)(x->oom = true, cJSON_Delete(adm), cJSON_Delete(items));
			if (pk_get(doms, link + 7))
				warn(x, loc, "a second answer for %s; not exported", link);
			else
				xadd(x, doms, link + 7, num_copy(pk_get(a, "valueDecimal")));
		} else if (k == RAS && pk_eq(link, "form") && pk_str(a, "valueString")) {
			form = pk_get(a, "valueString");
		} else if (k == QOL && pk_eq(link, "score") && pk_get(a, "valueDecimal")) {
			score = pk_get(a, "valueDecimal");
		} else if (k == QOL && pk_eq(link, "scale") && pk_str(a, "valueString")) {
			scale = pk_get(a, "valueString");
		} else if (k == GAS && pk_eq(link, "rater") && pk_get(a, "valueCoding")) {
			rater = pk_get(pk_get(a, "valueCoding"), "code");
		} else if (k == GAS && link && strncmp(link, "goal/", 5) == 0) {
			const cJSON *sub, *goal = NULL, *sc = NULL;
			cJSON_ArrayForEach(sub, pk_get(it, "item")) {
				const char *sl = pk_str(sub, "linkId");
				size_t ll = strlen(link);
				if (sl && strncmp(sl, link, ll) == 0 && pk_eq(sl + ll, "/goal"))
					goal = pk_get(pk_get(answer0(sub), "valueReference"), "identifier");
				else if (sl && strncmp(sl, link, ll) == 0 && pk_eq(sl + ll, "/score"))
					sc = pk_get(answer0(sub), "valueInteger");
			}
			if (!usable_identifier(goal) || !sc) {
				warn(x, loc, "a goal without its identifier or score; not exported");
				continue;
			}
			if (!goals && !(goals = cJSON_CreateArray()))
				return (void)(x->oom = true, cJSON_Delete(adm));
			cJSON *g = cJSON_CreateObject();
			if (!g || !cJSON_AddItemToArray(goals, g)) {
				cJSON_Delete(g);
				x->oom = true;
				continue;
			}
			xadd(x, g, "goal", native_identifier(goal));
			xadd(x, g, "score", num_copy(sc));
		} else {
			warn(x, loc, "item %s is not part of %s; not exported", link ? link : "(no linkId)",
			     instruments[k].name);
		}
	}
	if (items)
		xadd(x, adm, "items", items);
	if (total)
		xadd(x, adm, "total", num_copy(total));
	if (doms)
		xadd(x, adm, "domains", doms);
	if (form)
		xadd(x, adm, "form", cJSON_Duplicate(form, 1));
	if (rater)
		xadd(x, adm, "rater", cJSON_Duplicate(rater, 1));
	if (goals)
		xadd(x, adm, "goals", goals);
	if (score)
		xadd(x, adm, "score", num_copy(score));
	if (scale)
		xadd(x, adm, "scale", cJSON_Duplicate(scale, 1));
	keep_administration(x, p, adm, where);
	static const char *const known[] = {"resourceType", "id",      "meta",     "identifier", "questionnaire",
					    "status",       "subject", "authored", "author",     "item",
					    NULL};
	unmapped(x, r, where, known);
	if (x->n_qr < 4096 && x->mapped_qr)
		x->mapped_qr[x->n_qr++] = where;
	if (x->n_qr < 4096 && x->mapped_qr && full_url)
		x->mapped_qr[x->n_qr++] = full_url;
}

static bool derived_from_mapped(const struct exporter *x, const cJSON *r)
{
	const cJSON *d;
	cJSON_ArrayForEach(d, pk_get(r, "derivedFrom"))
		for (size_t i = 0; i < x->n_qr; i++)
			if (pk_eq(pk_str(d, "reference"), x->mapped_qr[i]))
				return true;
	return false;
}

static const cJSON *loinc_code(const cJSON *r)
{
	const cJSON *c;
	cJSON_ArrayForEach(c, pk_get(pk_get(r, "code"), "coding"))
		if (pk_eq(pk_str(c, "system"), LOINC) && pk_str(c, "code"))
			return c;
	return NULL;
}

/* A whole-number value from valueInteger or valueQuantity.value. */
static const cJSON *int_value(const cJSON *r)
{
	const cJSON *v = pk_get(r, "valueInteger");
	int n;
	if (!v)
		v = pk_get(pk_get(r, "valueQuantity"), "value");
	return v && whole(v, &n) ? v : NULL;
}

/* An Observation from elsewhere: a PHQ-9/GAD-7 total or a goal attainment
 * score becomes an administration of its own. */
static void map_observation(struct exporter *x, const cJSON *r, const char *full_url)
{
	const char *where = ref_of(x, r);
	if (derived_from_mapped(x, r))
		return; /* ours: everything it says is in the response it came from */
	const cJSON *c = loinc_code(r);
	const char *code = pk_str(c, "code");
	int k = -1;
	const struct rater *rt = NULL;
	if (pk_eq(code, instruments[PHQ9].total))
		k = PHQ9;
	else if (pk_eq(code, instruments[GAD7].total))
		k = GAD7;
	for (size_t i = 0; i < N_RATERS; i++)
		if (pk_eq(code, raters[i].code))
			k = GAS, rt = &raters[i];
	if (k < 0) {
		if (pk_eq(code, instruments[PHQ9].panel) || pk_eq(code, instruments[GAD7].panel))
			warn(x, where, "a panel carries nothing of its own; its total score Observation is exported when present");
		else
			warn(x, where, "%s%s is not an outcome measure the outcomes format carries; not exported",
			     code ? "LOINC " : "the code", code ? code : "");
		return;
	}
	if (!pk_eq(pk_str(r, "status"), "final") && !pk_eq(pk_str(r, "status"), "amended") &&
	    !pk_eq(pk_str(r, "status"), "corrected")) {
		warn(x, where, "status %s: only final results are exported",
		     pk_str(r, "status") ? pk_str(r, "status") : "(none)");
		return;
	}
	char loc[300];
	const cJSON *value = NULL;
	const struct level *lv = NULL;
	const cJSON *goal = NULL;
	if (k == GAS) {
		const cJSON *cc, *v = pk_get(r, "valueCodeableConcept");
		cJSON_ArrayForEach(cc, pk_get(v, "coding"))
			for (size_t i = 0; i < N_LEVELS; i++)
				if (pk_eq(pk_str(cc, "system"), LOINC) && pk_eq(pk_str(cc, "code"), levels[i].code))
					lv = &levels[i];
		const cJSON *f;
		cJSON_ArrayForEach(f, pk_get(r, "focus"))
			if (!goal && usable_identifier(pk_get(f, "identifier")))
				goal = pk_get(f, "identifier");
		if (!lv || !goal) {
			warn(x, where, "a goal attainment score needs a LOINC answer (LL6900-6) and a focus Goal identifier; not exported");
			return;
		}
	} else {
		int t;
		value = int_value(r);
		if (!value || !whole(value, &t) || t < 0 || t > 3 * instruments[k].n_items) {
			warn(x, where, "the total score is missing or out of range; not exported");
			return;
		}
	}
	const cJSON *subject = pk_get(r, "subject");
	struct person *p = person_for(x, subject, where);
	if (!p) {
		warn(x, where, "the Observation has no subject; not exported");
		return;
	}
	cJSON *adm = cJSON_CreateObject();
	if (!adm)
		return (void)(x->oom = true);
	const cJSON *ids = pk_get(r, "identifier"), *id = cJSON_GetArrayItem(ids, 0);
	xadd(x, adm, "identifier",
	     usable_identifier(id) ? native_identifier(id) : fallback_identifier(full_url ? full_url : where));
	xadd(x, adm, "instrument", cJSON_CreateString(instruments[k].name));
	at(loc, sizeof loc, "%s.effective", where);
	if (!map_date(x, adm, pk_str(r, "effectiveDateTime"), loc)) {
		cJSON_Delete(adm);
		return;
	}
	const cJSON *perf = pk_get(r, "performer");
	at(loc, sizeof loc, "%s.performer", where);
	map_by(x, adm, cJSON_GetArrayItem(perf, 0), loc);
	for (int j = 1; j < cJSON_GetArraySize(perf); j++) {
		at(loc, sizeof loc, "%s.performer[%d]", where, j);
		warn(x, loc, "only one performer is carried; not exported");
	}
	if (k == GAS) {
		xadd(x, adm, "rater", cJSON_CreateString(rt->name));
		cJSON *goals = cJSON_CreateArray(), *g = cJSON_CreateObject();
		if (!goals || !g || !cJSON_AddItemToArray(goals, g)) {
			cJSON_Delete(goals);
			cJSON_Delete(g);
			cJSON_Delete(adm);
			x->oom = true;
			return;
		}
		xadd(x, g, "goal", native_identifier(goal));
		xadd(x, g, "score", cJSON_CreateNumber(lv->score));
		xadd(x, adm, "goals", goals);
	} else {
		xadd(x, adm, "total", num_copy(value));
	}
	keep_administration(x, p, adm, where);
	for (int j = 1; j < cJSON_GetArraySize(ids); j++) {
		at(loc, sizeof loc, "%s.identifier[%d]", where, j);
		warn(x, loc, "only one identifier is carried; not exported");
	}
	static const char *const known[] = {"resourceType",
					    "id",
					    "meta",
					    "identifier",
					    "status",
					    "category",
					    "code",
					    "subject",
					    "effectiveDateTime",
					    "performer",
					    "valueInteger",
					    "valueQuantity",
					    "valueCodeableConcept",
					    "focus",
					    NULL};
	unmapped(x, r, where, known);
}

/* An Encounter that is a stability event: this plugin's (its type the local
 * event code) or one from elsewhere of class EMER or IMP (the kind taken
 * from the class, with a warning). False, and nothing reported, for any
 * other Encounter: it is left out with the other types. */
static bool map_encounter(struct exporter *x, const cJSON *r)
{
	const char *where = ref_of(x, r);
	const struct event_kind *k = NULL;
	const cJSON *t, *c;
	cJSON_ArrayForEach(t, pk_get(r, "type"))
		cJSON_ArrayForEach(c, pk_get(t, "coding")) if (!k && pk_eq(pk_str(c, "system"), cs_local)) k =
			event_kind_of(pk_str(c, "code"));
	const cJSON *cls = pk_get(r, "class");
	const char *act = pk_eq(pk_str(cls, "system"), ACT_CODE) ? pk_str(cls, "code") : NULL;
	bool inferred = false;
	if (!k && (pk_eq(act, "EMER") || pk_eq(act, "IMP") || pk_eq(act, "ACUTE") || pk_eq(act, "NONAC"))) {
		k = event_kind_of(pk_eq(act, "EMER") ? "emergency-visit" : "admission");
		inferred = true;
	}
	if (!k)
		return false;
	struct person *p = person_for(x, pk_get(r, "subject"), where);
	if (!p) {
		warn(x, where, "an event without a subject Patient; not exported");
		return true;
	}
	if (inferred)
		warn(x, where, "the event's kind (%s) is taken from its class %s", k->name, act);
	const cJSON *id = cJSON_GetArrayItem(pk_get(r, "identifier"), 0);
	const cJSON *period = pk_get(r, "period");
	const char *start = pk_str(period, "start"), *end = pk_str(period, "end");
	cJSON *ev = cJSON_CreateObject();
	if (!ev) {
		x->oom = true;
		return true;
	}
	xadd(x, ev, "identifier",
	     usable_identifier(id) ? native_identifier(id) : fallback_identifier(where ? where : "Encounter"));
	if (!usable_identifier(id))
		warn(x, where, "the event has no identifier with system and value; its reference stands in");
	xadd(x, ev, "kind", cJSON_CreateString(k->name));
	char day[11];
	const char *dates[2] = {start, end}, *keys[2] = {"start", "end"};
	for (int i = 0; i < 2; i++) {
		if (!dates[i])
			continue;
		snprintf(day, sizeof day, "%.10s", dates[i]);
		xadd(x, ev, keys[i], cJSON_CreateString(day));
		if (strlen(dates[i]) > 10)
			warn(x, where, "the time of day of the event's %s is not carried, only the date", keys[i]);
	}
	/* what reads back as a native event is kept (identifiers unique
	 * across the export, as ingest wants them) */
	int before = x->chk.errors;
	x->chk.first[0] = '\0';
	cJSON *one = cJSON_CreateArray();
	if (!one || !cJSON_AddItemReferenceToArray(one, ev)) {
		cJSON_Delete(one);
		cJSON_Delete(ev);
		x->oom = true;
		return true;
	}
	check_events(&x->chk, one, "");
	cJSON_Delete(one);
	if (x->chk.errors > before) {
		warn(x, where, "the event is not exported: %s", x->chk.first);
		cJSON_Delete(ev);
		return true;
	}
	if (!p->events && !(p->events = cJSON_AddArrayToObject(p->doc, "events"))) {
		cJSON_Delete(ev);
		x->oom = true;
		return true;
	}
	cJSON_AddItemToArray(p->events, ev);
	return true;
}

static enum cw_status from_fhir(struct cw_ctx *ctx, const cJSON *bundle, enum cw_media media, char **out,
				size_t *out_len)
{
	(void)media;
	*out = NULL;
	struct exporter x = {.ctx = ctx, .bundle = bundle, .chk = {.ctx = ctx, .quiet = true}};
	cJSON *doc = cJSON_CreateObject();
	x.warnings = cJSON_CreateArray();
	x.mapped_qr = host->alloc(ctx, 4096 * sizeof *x.mapped_qr);
	if (!doc || !x.warnings || !x.mapped_qr || !cJSON_AddStringToObject(doc, "format", "outcomes") ||
	    !cJSON_AddNumberToObject(doc, "version", 1) || !(x.people_arr = cJSON_AddArrayToObject(doc, "people"))) {
		cJSON_Delete(doc);
		cJSON_Delete(x.warnings);
		return CW_NOMEM;
	}
	const cJSON *entries = pk_get(bundle, "entry"), *e;
	/* Patients first, so that references resolve whatever the order. */
	cJSON_ArrayForEach(e, entries) {
		const cJSON *r = pk_get(e, "resource");
		if (pk_eq(pk_str(r, "resourceType"), "Patient"))
			map_patient(&x, r, pk_str(e, "fullUrl"));
	}
	cJSON_ArrayForEach(e, entries) {
		const cJSON *r = pk_get(e, "resource");
		if (pk_eq(pk_str(r, "resourceType"), "QuestionnaireResponse"))
			map_qr(&x, r, pk_str(e, "fullUrl"));
	}
	/* What the format does not carry at all: one warning per type. */
	struct pk_tally left;
	memset(&left, 0, sizeof left);
	int i = 0;
	cJSON_ArrayForEach(e, entries) {
		const cJSON *r = pk_get(e, "resource");
		const char *type = pk_str(r, "resourceType");
		i++;
		if (pk_eq(type, "Observation")) {
			map_observation(&x, r, pk_str(e, "fullUrl"));
		} else if (pk_eq(type, "Encounter") && map_encounter(&x, r)) {
			continue;
		} else if (!pk_eq(type, "Patient") && !pk_eq(type, "QuestionnaireResponse")) {
			struct pk_tally_type *t = pk_tally_add(&left, type);
			char loc[64];
			at(loc, sizeof loc, "Bundle.entry[%d]", i - 1);
			if (t && t->count == 1 && !(t->first = type ? ref_of(&x, r) : host->copy_string(ctx, loc)))
				x.oom = true;
		}
	}
	for (size_t k = 0; k < left.n; k++) {
		char subject[128];
		pk_tally_subject(&left.by[k], subject, sizeof subject);
		warn(&x, left.by[k].first, "%s not carried by the outcomes format; not exported", subject);
	}
	if (left.more)
		warn(&x, "Bundle", "%zu resources of further types are not carried by the outcomes format; not exported",
		     left.more);
	if (cJSON_GetArraySize(x.warnings) > 0) {
		cJSON_AddItemToObject(doc, "warnings", x.warnings);
		x.warnings = NULL;
	}
	cJSON_Delete(x.warnings);
	if (!x.oom)
		*out = host->print_json(ctx, doc, out_len);
	cJSON_Delete(doc);
	return *out ? CW_OK : CW_NOMEM;
}

/* ------------------------------------------------------------ descriptor */

static enum cw_status init(const struct cw_host *h, struct cw_ctx *ctx)
{
	CW_HOST_REQUIRE(h, print_json); /* ABI 1.0 members only */
	host = h;
	const char *b = host->config_string(ctx, "canonical_base", DEFAULT_BASE);
	size_t n = strlen(b);
	while (n > 0 && b[n - 1] == '/')
		n--;
	if (!pk_is_uri(b, false) || n == 0 || n >= sizeof base - 64) {
		host->issue(ctx, CW_SEV_ERROR, "value", "plugins.outcomes.canonical_base",
			    "canonical_base must be an absolute URI of at most %zu characters", sizeof base - 64);
		return CW_CONFIG;
	}
	memcpy(base, b, n);
	base[n] = '\0';
	at(cs_local, sizeof cs_local, "%s/CodeSystem/outcomes", base);
	at(id_ns, sizeof id_ns, "%s/outcomes", base);
	return CW_OK;
}

static const struct cw_format formats[] = {
	{.name = "outcomes",
	 .summary = "outcome measures (PHQ-9, GAD-7, goal attainment, RAS, QoL, BARC-10) as QuestionnaireResponse + "
		    "Observations",
	 .media = CW_MEDIA_JSON,
	 .to_fhir = to_fhir,
	 .from_fhir = from_fhir},
	{0}};

/* ------------------------------------------------------------ upgrade */

/* Rule 1 derived every id in {base}/outcomes from "Type|system|value|…"
 * alone (Patients too): a Patient moves to the id every plugin gives it,
 * an administration's QuestionnaireResponse to its Patient's id, and the
 * Observations made from it with it. */
static enum cw_status upgrade(struct cw_ctx *ctx, const cJSON *r, cJSON **out, cJSON **moved)
{
	const char *type = pk_str(r, "resourceType"), *id = pk_str(r, "id");
	struct pk_ident ident;
	char old[CW_ID_SIZE], now[CW_ID_SIZE];
	struct pk_out o = {.host = host, .ctx = ctx};
	if (!id || !pk_first_ident(r, &ident))
		return CW_OK;
	bool patient = pk_eq(type, "Patient");
	const char *pid = patient ? NULL : pk_ref_id(r, "subject", "Patient");
	if (!(patient || (pk_eq(type, "QuestionnaireResponse") && pid)) ||
	    !key_id(ctx, id_ns, old, "%s|%s|%s", type, ident.system, ident.value) || strcmp(old, id) != 0)
		return CW_OK;
	if (patient ? !pk_patient_id(&o, &ident, now)
		    : !key_id(ctx, pid, now, "%s|%s|%s", type, ident.system, ident.value)) {
		host->issue(ctx, CW_SEV_ERROR, "exception", NULL, "no id could be made");
		return CW_INVALID;
	}
	cJSON *copy = cJSON_Duplicate(r, true);
	bool ok = copy && cJSON_ReplaceItemInObjectCaseSensitive(copy, "id", cJSON_CreateString(now));
	*out = copy;
	if (ok && !patient) {
		static const char *const parts[] = {"panel", "total", "score"};
		char a[CW_ID_SIZE], b[CW_ID_SIZE];
		for (size_t i = 0; ok && i < sizeof parts / sizeof parts[0]; i++)
			ok = key_id(ctx, id_ns, a, "Observation|%s|%s|%s", ident.system, ident.value, parts[i]) &&
			     key_id(ctx, pid, b, "Observation|%s|%s|%s", ident.system, ident.value, parts[i]) &&
			     pk_add_move(moved, "Observation", a, b);
		const cJSON *grp, *it;
		cJSON_ArrayForEach(grp, pk_get(r, "item")) {
			cJSON_ArrayForEach(it, pk_get(grp, "item")) {
				const cJSON *g = pk_get(pk_get(cJSON_GetArrayItem(pk_get(it, "answer"), 0), "valueReference"),
							"identifier");
				if (!ok || !pk_str(g, "system") || !pk_str(g, "value"))
					continue;
				ok = key_id(ctx, id_ns, a, "Observation|%s|%s|goal|%s|%s", ident.system, ident.value,
					    pk_str(g, "system"), pk_str(g, "value")) &&
				     key_id(ctx, pid, b, "Observation|%s|%s|goal|%s|%s", ident.system, ident.value,
					    pk_str(g, "system"), pk_str(g, "value")) &&
				     pk_add_move(moved, "Observation", a, b);
			}
		}
	}
	if (!ok) {
		host->issue(ctx, CW_SEV_ERROR, "exception", NULL, "out of memory");
		return CW_NOMEM;
	}
	return CW_OK;
}

static const struct cw_plugin plugin = {
	CW_PLUGIN_HEADER,
	.name = "outcomes",
	.version = "1.0.0",
	.summary = "Outcome measures for a person, to and from FHIR R4",
	.formats = formats,
	.init = init,
	.id_rule = PK_ID_RULE,
	.upgrade = upgrade,
};

const struct cw_plugin *cw_plugin_entry(void) { return &plugin; }
