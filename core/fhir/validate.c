#include "fhir/invariants.h"
#include "fhir/validate.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <regex.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fhir/fhir_xml.h"
#include "base/crypto.h"
#include "base/fjson.h"
#include "base/strbuf.h"
#include "fhir/model.h"
#include "fhir/search_params.h"
#include "fhir/validate_bundle.h"
#include "fhir/valueset.h"

/* ------------------------------------------------------------ primitives */

static const char *const regex_types[] = {"date",  "dateTime", "instant", "time", "integer", "unsignedInt",
					  "positiveInt", "decimal", "boolean", "oid", "uuid"};
#define NREGEX (sizeof regex_types / sizeof *regex_types)
static regex_t regexes[NREGEX];
static bool regex_ok[NREGEX];
static pthread_once_t regex_once = PTHREAD_ONCE_INIT;

static void compile_regexes(void)
{
	for (size_t i = 0; i < NREGEX; i++) {
		const struct model_type *t = model_type(regex_types[i]);
		if (!t || !t->regex)
			continue;
		size_t n = strlen(t->regex) + 5;
		char *anchored = malloc(n);
		if (!anchored)
			continue;
		snprintf(anchored, n, "^(%s)$", t->regex);
		regex_ok[i] = regcomp(&regexes[i], anchored, REG_EXTENDED | REG_NOSUB) == 0;
		free(anchored);
	}
}

static bool is_ws(unsigned char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

static bool check_id(const char *s)
{
	size_t n = 0;
	for (; s[n]; n++) {
		char c = s[n];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.'))
			return false;
	}
	return n >= 1 && n <= 64;
}

static bool check_code(const char *s)
{
	/* [^\s]+(\s[^\s]+)* : no leading, trailing or doubled whitespace */
	if (!*s || is_ws((unsigned char)*s))
		return false;
	for (; *s; s++)
		if (is_ws((unsigned char)*s) && (!s[1] || is_ws((unsigned char)s[1])))
			return false;
	return true;
}

static bool check_string(const char *s)
{
	/* [ \r\n\t\S]+ : non-empty, no whitespace other than space, CR, LF, tab */
	if (!*s)
		return false;
	for (; *s; s++)
		if (*s == '\v' || *s == '\f')
			return false;
	return true;
}

static bool check_uri(const char *s)
{
	/* \S* ; FHIR JSON forbids the empty string, so at least one character */
	if (!*s)
		return false;
	for (; *s; s++)
		if (is_ws((unsigned char)*s))
			return false;
	return true;
}

/* Character classes of base64Binary text: 1 an alphabet character, 2
 * whitespace, 0 anything else (also the control characters no FHIR string
 * may hold: vertical tab and form feed are not whitespace here, so this one
 * pass also does control_char's check). */
static const unsigned char b64_class[256] = {
	['\t'] = 2, ['\n'] = 2, ['\r'] = 2, [' '] = 2, ['+'] = 1, ['/'] = 1, ['='] = 1, ['0'] = 1, ['1'] = 1, ['2'] = 1,
	['3'] = 1,  ['4'] = 1,  ['5'] = 1,  ['6'] = 1, ['7'] = 1, ['8'] = 1, ['9'] = 1, ['A'] = 1, ['B'] = 1, ['C'] = 1,
	['D'] = 1,  ['E'] = 1,  ['F'] = 1,  ['G'] = 1, ['H'] = 1, ['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1, ['M'] = 1,
	['N'] = 1,  ['O'] = 1,  ['P'] = 1,  ['Q'] = 1, ['R'] = 1, ['S'] = 1, ['T'] = 1, ['U'] = 1, ['V'] = 1, ['W'] = 1,
	['X'] = 1,  ['Y'] = 1,  ['Z'] = 1,  ['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1, ['g'] = 1,
	['h'] = 1,  ['i'] = 1,  ['j'] = 1,  ['k'] = 1, ['l'] = 1, ['m'] = 1, ['n'] = 1, ['o'] = 1, ['p'] = 1, ['q'] = 1,
	['r'] = 1,  ['s'] = 1,  ['t'] = 1,  ['u'] = 1, ['v'] = 1, ['w'] = 1, ['x'] = 1, ['y'] = 1, ['z'] = 1,
};

static bool check_base64(const char *s)
{
	/* (\s*([0-9a-zA-Z\+/=]){4}\s*)+ : groups of four alphabet characters;
	 * a table per character, since attachments run to megabytes */
	size_t n = 0;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		unsigned char k = b64_class[*p];
		if (!k)
			return false;
		n += k & 1;
	}
	return n > 0 && n % 4 == 0;
}

static bool in_int_range(const char *type, const char *s)
{
	errno = 0;
	long long v = strtoll(s, NULL, 10);
	if (errno == ERANGE)
		return false;
	if (!strcmp(type, "integer"))
		return v >= INT32_MIN && v <= INT32_MAX;
	return v >= 0 && v <= INT32_MAX;
}

/* The first control character (U+0001..U+001F other than tab, CR and LF)
 * in s, or 0: FHIR strings forbid them, and XML cannot carry them. */
static unsigned char control_char(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 && *s != '\t' && *s != '\r' && *s != '\n')
			return (unsigned char)*s;
	return 0;
}

/* A decimal literal (already matching the R4 regex) must be within IEEE
 * double range: not overflowing to infinity, and not a non-zero literal that
 * underflows to 0 (subnormals are in range). The literal itself is kept. */
static bool decimal_in_range(const char *s)
{
	double d = strtod(s, NULL);
	if (isinf(d))
		return false;
	if (d != 0)
		return true;
	for (; *s && *s != 'e' && *s != 'E'; s++)
		if (*s >= '1' && *s <= '9')
			return false;
	return true;
}

bool validate_primitive_text(const char *type, const char *text)
{
	if (type && text && !strcmp(type, "base64Binary"))
		return check_base64(text); /* one pass: it refuses control characters too */
	if (!type || !text || control_char(text))
		return false;
	if (!strcmp(type, "id"))
		return check_id(text);
	if (!strcmp(type, "code"))
		return check_code(text);
	if (!strcmp(type, "string") || !strcmp(type, "markdown"))
		return check_string(text);
	if (!strcmp(type, "uri") || !strcmp(type, "url") || !strcmp(type, "canonical"))
		return check_uri(text);
	pthread_once(&regex_once, compile_regexes);
	for (size_t i = 0; i < NREGEX; i++) {
		if (strcmp(type, regex_types[i]) != 0)
			continue;
		if (!regex_ok[i] || regexec(&regexes[i], text, 0, NULL, 0) != 0)
			return false;
		if (!strcmp(type, "integer") || !strcmp(type, "unsignedInt") || !strcmp(type, "positiveInt"))
			return in_int_range(type, text);
		if (!strcmp(type, "decimal"))
			return decimal_in_range(text);
		if (!strcmp(type, "date") || !strcmp(type, "dateTime") || !strcmp(type, "instant")) {
			/* a real calendar day (no 2023-02-29): the search parser's check */
			int64_t lo, hi;
			return search_params_date_range(text, &lo, &hi);
		}
		return true;
	}
	return check_string(text);
}

/* ------------------------------------------------------------ tree walk */

struct v {
	const cJSON *contained; /* the "contained" array being checked, if any */
	struct outcome *oo;
	size_t errors;
	size_t warnings; /* binding warnings reported (at most VALIDATE_MAX_ISSUES) */
	char path[512];
	size_t len;
};

/* Reports one error (id: a stable message id, or NULL) at the current path;
 * past VALIDATE_MAX_ISSUES errors one more says the list was cut. */
static void verr_id(struct v *v, const char *id, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void verr_id(struct v *v, const char *id, const char *code, const char *fmt, ...)
{
	v->errors++;
	if (v->errors > VALIDATE_MAX_ISSUES)
		return;
	if (v->errors == VALIDATE_MAX_ISSUES) {
		outcome_add(v->oo, OUTCOME_ERROR, "too-costly", NULL,
			    "more than %d problems; the rest are not listed", VALIDATE_MAX_ISSUES - 1);
		return;
	}
	char msg[300];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	outcome_add_id(v->oo, OUTCOME_ERROR, code, id, v->len ? v->path : NULL, "%s", msg);
}

#define verr(v, ...) verr_id(v, NULL, __VA_ARGS__)

/* Appends ".name" (no dot at the start; name NULL: nothing) and "[index]"
 * (index < 0: none) to the path; when that does not fit, the path stays as
 * it was. Returns the mark to pop back to. */
static size_t push(struct v *v, const char *name, long index)
{
	size_t mark = v->len, n = strbuf_path_into(v->path, sizeof v->path, mark, name, index);
	if (n != (size_t)-1)
		v->len = n;
	return mark;
}

static void pop(struct v *v, size_t mark)
{
	v->len = mark;
	v->path[mark] = '\0';
}

static void check_object(struct v *v, const cJSON *obj, const struct model_type *t, bool resource, size_t depth);
static void check_resource(struct v *v, const cJSON *res, size_t depth);
static void check_attachment(struct v *v, const cJSON *obj);

static void check_primitive(struct v *v, const cJSON *val, const struct model_type *t)
{
	switch (t->json) {
	case MODEL_JSON_BOOL:
		if (!cJSON_IsBool(val))
			verr(v, "value", "expected true or false for a %s", t->name);
		return;
	case MODEL_JSON_NUMBER: {
		if (!cJSON_IsNumber(val)) {
			verr(v, "value", "expected a JSON number for a %s", t->name);
			return;
		}
		const char *lit = fjson_number_literal(val);
		char buf[64];
		if (!lit) {
			snprintf(buf, sizeof buf, "%.17g", val->valuedouble);
			lit = buf;
		}
		if (!validate_primitive_text(t->name, lit))
			verr(v, "value", "%.60s is not a valid %s%s", lit, t->name,
			     !strcmp(t->name, "decimal") && validate_primitive_text("string", lit)
				     ? " (outside the range of an IEEE double, or not a decimal)"
				     : "");
		return;
	}
	default:
		break;
	}
	if (!cJSON_IsString(val)) {
		verr(v, "value", "expected a JSON string for a %s", t->name);
		return;
	}
	if (!strcmp(t->name, "xhtml")) {
		char why[200];
		if (!fhir_xml_check_div(val->valuestring, strlen(val->valuestring), why, sizeof why))
			verr(v, !strncmp(why, "txt-", 4) ? "invariant" : "value", "%s", why);
		return;
	}
	unsigned char cc = control_char(val->valuestring);
	if (cc)
		verr(v, "value", "a %s must not contain the control character U+%04X", t->name, cc);
	else if (!validate_primitive_text(t->name, val->valuestring))
		verr(v, "value", "\"%.80s\" is not a valid %s", val->valuestring, t->name);
}

static void check_value(struct v *v, const cJSON *val, const struct model_type *t, size_t depth)
{
	if (t->kind == MODEL_PRIMITIVE)
		check_primitive(v, val, t);
	else if (!strcmp(t->name, "Resource"))
		check_resource(v, val, depth + 1);
	else if (!cJSON_IsObject(val))
		verr(v, "structure", "expected a JSON object for a %s", t->name);
	else
		check_object(v, val, t, false, depth + 1);
}

#define SEEN_LOCAL 40

struct seen {
	const struct model_type *chosen;
	const char *name; /* the JSON name first used */
	size_t count;
};

static void check_single(struct v *v, const cJSON *m, const struct model_type *ct, bool under, struct seen *s,
			 size_t depth)
{
	if (cJSON_IsNull(m)) {
		verr(v, "structure", "null is not a value");
		return;
	}
	if (under) {
		if (!cJSON_IsObject(m))
			verr(v, "structure", "the \"_\" sibling of a primitive must be an object");
		else
			check_object(v, m, ct, false, depth + 1);
	} else {
		check_value(v, m, ct, depth);
	}
	if (s->count < 1)
		s->count = 1;
}

static void check_array(struct v *v, const cJSON *m, const char *name, const struct model_type *ct, bool under,
			struct seen *s, size_t depth)
{
	size_t n = (size_t)cJSON_GetArraySize(m);
	if (n == 0) {
		verr(v, "structure", "an array must not be empty");
		return;
	}
	long i = 0;
	for (const cJSON *it = m->child; it; it = it->next, i++) {
		size_t mark = push(v, name, i);
		if (cJSON_IsNull(it)) {
			if (ct->kind != MODEL_PRIMITIVE)
				verr(v, "structure", "null is not a value");
		} else if (under) {
			if (!cJSON_IsObject(it))
				verr(v, "structure", "the \"_\" sibling of a primitive must be an object");
			else
				check_object(v, it, ct, false, depth + 1);
		} else {
			check_value(v, it, ct, depth);
		}
		pop(v, mark);
	}
	if (n > s->count)
		s->count = n;
}

/* The resource type a Reference names — by its "reference" (Type/id, an
 * absolute URL ending in Type/id, either with /_history/n) or its "type" (a
 * type name or its StructureDefinition URL) — or NULL when it names none
 * (contained "#id", urn:uuid:…, a logical reference by identifier). */
static const char *reference_type(const cJSON *ref, char *buf, size_t n)
{
	const cJSON *r = cJSON_GetObjectItemCaseSensitive(ref, "reference");
	char id[65];
	if (cJSON_IsString(r) && search_params_split_reference(r->valuestring, buf, n, id, sizeof id) &&
	    model_resource(buf))
		return buf;
	const cJSON *t = cJSON_GetObjectItemCaseSensitive(ref, "type");
	if (!cJSON_IsString(t))
		return NULL;
	static const char sd[] = "http://hl7.org/fhir/StructureDefinition/";
	const char *name = strncmp(t->valuestring, sd, sizeof sd - 1) == 0 ? t->valuestring + sizeof sd - 1
									   : t->valuestring;
	if (!model_resource(name) || strlen(name) >= n)
		return NULL;
	snprintf(buf, n, "%s", name);
	return buf;
}

/* A Reference (at the current path) must name a resource type element e
 * allows (R4 targetProfile): a Goal is no Encounter.reasonReference. */
static void check_target(struct v *v, const cJSON *ref, const struct model_elem *e)
{
	char type[65];
	if (!cJSON_IsObject(ref) || !reference_type(ref, type, sizeof type) || model_ref_target_ok(e, type))
		return;
	char allowed[300];
	model_ref_targets_text(e, allowed, sizeof allowed);
	verr(v, "invalid", "a reference to a %s is not allowed here (only %s)", type, allowed);
}

static void check_member(struct v *v, const cJSON *m, const char *name, const struct model_elem *e,
			 const struct model_type *ct, bool under, struct seen *s, size_t depth)
{
	bool array = e->max != 1;
	bool reference = !under && !strcmp(ct->name, "Reference");
	if (array != cJSON_IsArray(m) || !array) {
		size_t mark = push(v, name, -1);
		if (array != cJSON_IsArray(m))
			verr(v, "structure", array ? "the element repeats: expected an array"
						   : "the element allows one value, not an array");
		else
			check_single(v, m, ct, under, s, depth);
		if (reference && !array)
			check_target(v, m, e);
		pop(v, mark);
		return;
	}
	check_array(v, m, name, ct, under, s, depth);
	long i = 0;
	for (const cJSON *it = reference ? m->child : NULL; it; it = it->next, i++) {
		size_t mark = push(v, name, i);
		check_target(v, it, e);
		pop(v, mark);
	}
}

/* ---- bindings of the core ValueSets (fhir/valueset.h) */

static void check_bound_value(struct v *v, const cJSON *val, const struct valueset_binding *b,
			      const struct model_type *ct)
{
	const struct valueset_def *vs = valueset_of(b);
	enum valueset_verdict r = valueset_check_value(vs, ct->name, val);
	if (r == VALUESET_IN || r == VALUESET_SKIP)
		return;
	bool required = b->strength == VALUESET_REQUIRED;
	if (!required && (r == VALUESET_NO_CODE || r == VALUESET_ELSEWHERE))
		return; /* extensible: text alone, or a code of another system where the ValueSet lacks the concept */
	const char *strength = required ? "required" : "extensible";
	char what[160];
	if (r == VALUESET_NO_CODE)
		snprintf(what, sizeof what, "no code is given for the %s value set", strength);
	else if (cJSON_IsString(val))
		snprintf(what, sizeof what, "\"%.80s\" is not in the %s value set", val->valuestring, strength);
	else
		snprintf(what, sizeof what, "no code is in the %s value set", strength);
	if (required) {
		verr_id(v, "binding-required", "code-invalid", "%s %s (%s)", what, vs->url, b->path);
		return;
	}
	if (++v->warnings <= VALIDATE_MAX_ISSUES)
		outcome_add_id(v->oo, OUTCOME_WARNING, "code-invalid", "binding-extensible", v->len ? v->path : NULL,
			       "%s %s (%s)", what, vs->url, b->path);
}

/* A code, Coding or CodeableConcept element with a built-in binding: each
 * of its values is in the ValueSet (required: an error; extensible: a
 * warning). */
static void check_binding(struct v *v, const cJSON *m, const struct model_type *t, const struct model_elem *e,
			  const struct model_type *ct)
{
	if (strcmp(ct->name, "code") != 0 && strcmp(ct->name, "Coding") != 0 &&
	    strcmp(ct->name, "CodeableConcept") != 0)
		return;
	const struct valueset_binding *b = valueset_binding(t->name, e->name);
	if (!b)
		return;
	if (!cJSON_IsArray(m)) {
		size_t mark = push(v, e->name, -1);
		check_bound_value(v, m, b, ct);
		pop(v, mark);
		return;
	}
	long i = 0;
	for (const cJSON *it = m->child; it; it = it->next, i++) {
		size_t mark = push(v, e->name, i);
		check_bound_value(v, it, b, ct);
		pop(v, mark);
	}
}

static void check_object(struct v *v, const cJSON *obj, const struct model_type *t, bool resource, size_t depth)
{
	if (depth > 1000) {
		verr(v, "too-costly", "nesting too deep");
		return;
	}
	if (!obj->child) {
		verr(v, "structure", "an object must not be empty");
		return;
	}
	/* most types have few elements: their tallies live on the stack (at a
	 * nesting the stack can afford) */
	struct seen local[SEEN_LOCAL];
	bool on_stack = t->nelems <= SEEN_LOCAL && depth < 64;
	struct seen *seen = on_stack ? memset(local, 0, t->nelems * sizeof *local)
				     : calloc(t->nelems ? t->nelems : 1, sizeof *seen);
	if (!seen) {
		verr(v, "exception", "out of memory");
		return;
	}
	/* value arrays and their "_name" arrays must align */
	for (const cJSON *m = obj->child; m; m = m->next) {
		const char *name = m->string;
		if (resource && !strcmp(name, "resourceType"))
			continue;
		bool under = name[0] == '_';
		const char *base = under ? name + 1 : name;
		const struct model_type *ct = NULL;
		const struct model_elem *e = model_find_elem(t, base, strlen(base), &ct);
		size_t mark = push(v, base, -1);
		if (!e) {
			const struct model_elem *choice = NULL;
			for (size_t i = 0; i < t->nelems; i++) {
				const struct model_elem *c = &model_elems[t->elems + i];
				if ((c->flags & MODEL_F_CHOICE) && !strncmp(base, c->name, strlen(c->name)))
					choice = c;
			}
			if (choice)
				verr(v, "structure", "\"%s\" names a type that %s.%s[x] does not allow", name, t->name,
				     choice->name);
			else
				verr(v, "structure", "unknown element \"%s\" in %s", name, t->name);
			pop(v, mark);
			continue;
		}
		size_t idx = (size_t)(e - &model_elems[t->elems]);
		struct seen *s = &seen[idx];
		if (s->chosen && s->chosen != ct) {
			verr(v, "structure", "%s[x] is given as both %s and %s", e->name, s->name, base);
			pop(v, mark);
			continue;
		}
		s->chosen = ct;
		if (!s->name)
			s->name = base;
		if (e->flags & MODEL_F_ATTR) {
			if (under)
				verr(v, "structure", "unknown element \"%s\" in %s", name, t->name);
			else
				check_primitive(v, m, ct);
			s->count = 1;
			pop(v, mark);
			continue;
		}
		if (under && ct->kind != MODEL_PRIMITIVE) {
			verr(v, "structure", "\"%s\": only primitives have a \"_\" sibling", name);
			pop(v, mark);
			continue;
		}
		if (!under && cJSON_IsArray(m) && ct->kind == MODEL_PRIMITIVE) {
			char uname[80];
			snprintf(uname, sizeof uname, "_%s", name);
			const cJSON *u = cJSON_GetObjectItemCaseSensitive(obj, uname);
			if (u && cJSON_IsArray(u) && cJSON_GetArraySize(u) != cJSON_GetArraySize(m))
				verr(v, "structure", "\"%s\" and \"%s\" differ in length", name, uname);
			long i = 0;
			for (const cJSON *it = m->child; it; it = it->next, i++) {
				const cJSON *ui = u && cJSON_IsArray(u) ? cJSON_GetArrayItem(u, (int)i) : NULL;
				if (cJSON_IsNull(it) && (!ui || cJSON_IsNull(ui)))
					verr(v, "structure", "%s[%ld] is null without a \"_\" entry", name, i);
			}
		}
		pop(v, mark);
		const cJSON *outer = v->contained;
		if (resource && !strcmp(name, "contained"))
			v->contained = m;
		check_member(v, m, base, e, ct, under, s, depth);
		v->contained = outer;
		if (!under)
			check_binding(v, m, t, e, ct);
	}
	for (size_t i = 0; i < t->nelems; i++) {
		const struct model_elem *e = &model_elems[t->elems + i];
		if (!(e->min > 0 && seen[i].count < e->min) && !(e->max == 0 && seen[i].count > 0))
			continue;
		char nb[80];
		snprintf(nb, sizeof nb, "%s%s", e->name, (e->flags & MODEL_F_CHOICE) ? "[x]" : "");
		if (e->min > 0 && seen[i].count < e->min) {
			size_t mark = push(v, nb, -1);
			verr(v, "required", "%s.%s is required (minimum %u)", t->name, nb, (unsigned)e->min);
			pop(v, mark);
		}
		/* max is 0, 1 or * (tools/gen_model.py); 1 and * are the array
		 * check of check_member */
		if (e->max == 0 && seen[i].count > 0) {
			size_t mark = push(v, nb, -1);
			verr(v, "structure", "%s.%s is not allowed (maximum 0)", t->name, nb);
			pop(v, mark);
		}
	}
	if (!on_stack)
		free(seen);
	if (!strcmp(t->name, "Attachment"))
		check_attachment(v, obj);
}

/* ---- Attachment: size and hash against the data */

/* The bytes of a base64Binary the primitive check accepted (whitespace
 * skipped), malloc'd, their count in *n; NULL when it does not decode. */
static uint8_t *b64_decode(const char *s, size_t *n)
{
	size_t len = strlen(s), k = 0;
	char *url = malloc(len + 1);
	uint8_t *out = malloc(len / 4 * 3 + 3);
	if (!url || !out) {
		free(url);
		free(out);
		return NULL;
	}
	for (; *s; s++)
		if (!is_ws((unsigned char)*s) && *s != '=')
			url[k++] = *s == '+' ? '-' : *s == '/' ? '_' : *s;
	long got = crypto_b64url_decode(url, k, out, len / 4 * 3 + 3);
	free(url);
	if (got < 0) {
		free(out);
		return NULL;
	}
	*n = (size_t)got;
	return out;
}

/* att-size and att-hash: an Attachment's size is the length of its data and
 * its hash the base64 SHA-1 of the data (R4 Attachment.size, .hash). Only
 * checked when the data is there. */
static void check_attachment(struct v *v, const cJSON *obj)
{
	const cJSON *data = cJSON_GetObjectItemCaseSensitive(obj, "data");
	const cJSON *size = cJSON_GetObjectItemCaseSensitive(obj, "size");
	const cJSON *hash = cJSON_GetObjectItemCaseSensitive(obj, "hash");
	if (!cJSON_IsString(data) || !check_base64(data->valuestring) ||
	    (!cJSON_IsNumber(size) && !cJSON_IsString(hash)))
		return;
	size_t n = 0;
	uint8_t *bytes = b64_decode(data->valuestring, &n);
	if (!bytes) {
		size_t mark = push(v, "data", -1);
		verr(v, "value", "att-data: the data is not valid base64");
		pop(v, mark);
		return;
	}
	if (cJSON_IsNumber(size) && size->valuedouble != (double)n) {
		size_t mark = push(v, "size", -1);
		verr(v, "value", "att-size: the size %.0f is not the length of the data (%zu bytes)", size->valuedouble,
		     n);
		pop(v, mark);
	}
	uint8_t digest[CRYPTO_SHA1_LEN];
	char want[CRYPTO_SHA1_LEN * 2];
	if (cJSON_IsString(hash) && crypto_sha1(bytes, n, digest) == 0 &&
	    crypto_b64_encode(digest, sizeof digest, want, sizeof want) > 0) {
		char got[64];
		size_t k = 0;
		for (const char *h = hash->valuestring; *h && k + 1 < sizeof got; h++)
			if (!is_ws((unsigned char)*h))
				got[k++] = *h;
		got[k] = '\0';
		if (strcmp(got, want) != 0) {
			size_t mark = push(v, "hash", -1);
			verr(v, "value", "att-hash: the hash is not the base64 SHA-1 of the data (that is %s)", want);
			pop(v, mark);
		}
	}
	free(bytes);
}

/* ---- contained resources: dom-2, dom-3 and "#id" references */

struct dom {
	const cJSON *contained;
	size_t n;
	bool *used;
};

static long contained_index(const struct dom *d, const char *ref)
{
	long i = 0;
	for (const cJSON *c = d->contained ? d->contained->child : NULL; c; c = c->next, i++) {
		const cJSON *id = cJSON_GetObjectItemCaseSensitive(c, "id");
		if (cJSON_IsString(id) && !strcmp(id->valuestring, ref + 1))
			return i;
	}
	return -1;
}

/* Walks the values of one resource (not into other resources nested in it,
 * such as Bundle entries, but into its contained ones, own index in self):
 * marks which contained resources are referred to, and refuses a
 * "reference" to "#id" that no contained resource has. */
static void dom_walk(struct v *v, struct dom *d, const cJSON *node, long self, size_t depth)
{
	if (depth > 1000)
		return;
	long i = 0;
	for (const cJSON *m = node->child; m; m = m->next, i++) {
		const char *name = cJSON_IsArray(node) ? NULL : m->string;
		size_t mark = name ? push(v, name, -1) : push(v, NULL, i);
		if (cJSON_IsString(m) && m->valuestring[0] == '#') {
			const char *ref = m->valuestring;
			long c = ref[1] ? contained_index(d, ref) : self; /* "#": the container */
			if (c >= 0 && (size_t)c < d->n && (ref[1] || c == self))
				d->used[c] = true;
			if (c < 0 && ref[1] && name && !strcmp(name, "reference"))
				verr(v, "invalid", "the reference \"%.64s\" names no contained resource", ref);
		} else if (cJSON_IsObject(m) || cJSON_IsArray(m)) {
			if (!(cJSON_IsObject(m) && cJSON_GetObjectItemCaseSensitive(m, "resourceType")))
				dom_walk(v, d, m, self, depth + 1);
		}
		pop(v, mark);
	}
}

static void check_contained(struct v *v, const cJSON *res)
{
	struct dom d = {.contained = cJSON_GetObjectItemCaseSensitive(res, "contained")};
	if (d.contained && !cJSON_IsArray(d.contained))
		d.contained = NULL;
	d.n = d.contained ? (size_t)cJSON_GetArraySize(d.contained) : 0;
	d.used = calloc(d.n ? d.n : 1, sizeof *d.used);
	if (!d.used) {
		verr(v, "exception", "out of memory");
		return;
	}
	for (const cJSON *m = res->child; m; m = m->next) {
		if (!strcmp(m->string, "contained"))
			continue;
		size_t mark = push(v, m->string, -1);
		if (cJSON_IsString(m) && m->valuestring[0] == '#') {
			long c = contained_index(&d, m->valuestring);
			if (c >= 0)
				d.used[c] = true;
		} else if (cJSON_IsObject(m) || cJSON_IsArray(m)) {
			dom_walk(v, &d, m, -1, 0);
		}
		pop(v, mark);
	}
	long i = 0;
	for (const cJSON *c = d.contained ? d.contained->child : NULL; c; c = c->next, i++) {
		if (!cJSON_IsObject(c))
			continue;
		size_t mark = push(v, "contained", i);
		if (cJSON_GetObjectItemCaseSensitive(c, "contained"))
			verr(v, "invariant", "dom-2: a contained resource must not contain resources");
		dom_walk(v, &d, c, i, 0);
		pop(v, mark);
	}
	i = 0;
	for (const cJSON *c = d.contained ? d.contained->child : NULL; c; c = c->next, i++) {
		if (d.used[i] || !cJSON_IsObject(c))
			continue;
		size_t mark = push(v, "contained", i);
		verr(v, "invariant",
		     "dom-3: the contained resource is not referred to from elsewhere in the resource, nor refers to it");
		pop(v, mark);
	}
	free(d.used);
}

static void check_resource(struct v *v, const cJSON *res, size_t depth)
{
	bool contained = false;
	for (const cJSON *c = v->contained ? v->contained->child : NULL; c && !contained; c = c->next)
		contained = c == res;
	if (!cJSON_IsObject(res)) {
		verr(v, "structure", "expected a resource (a JSON object)");
		return;
	}
	const cJSON *rt = cJSON_GetObjectItemCaseSensitive(res, "resourceType");
	if (!rt) {
		verr(v, "required", "the resource has no resourceType");
		return;
	}
	const struct model_type *t = cJSON_IsString(rt) ? model_resource(rt->valuestring) : NULL;
	if (!t) {
		verr(v, "structure", "resourceType \"%.64s\" is not a FHIR R4 resource type",
		     cJSON_IsString(rt) ? rt->valuestring : "?");
		return;
	}
	size_t mark = v->len;
	if (v->len == 0)
		mark = push(v, t->name, -1);
	check_object(v, res, t, true, depth);
	if (!contained)
		check_contained(v, res);
	if (strcmp(t->name, "Bundle") == 0) {
		size_t budget = v->errors < VALIDATE_MAX_ISSUES - 1 ? VALIDATE_MAX_ISSUES - 1 - v->errors : 0;
		v->errors += validate_bundle_rules(res, v->path, v->oo, budget);
	}
	pop(v, mark);
}

size_t validate_resource(const cJSON *resource, struct outcome *oo)
{
	struct v v = {.oo = oo};
	check_resource(&v, resource, 0);
	/* the invariants read a tree the model accepts, so only one without structural errors */
	if (v.errors == 0)
		v.errors += invariants_check(resource, oo, NULL);
	return v.errors;
}

bool validate_ok(const cJSON *resource, struct outcome *oo)
{
	return validate_resource(resource, oo) == 0;
}

/* ------------------------------------------------------------ neutralising */

#define WITHHELD_DIV                                                                                   \
	"<div xmlns=\"http://www.w3.org/1999/xhtml\"><p>The narrative was withheld: it broke the FHIR " \
	"narrative rules (txt-1, txt-2).</p></div>"

static size_t neutralise(cJSON *node, size_t depth)
{
	if (depth > 1000)
		return 0;
	size_t n = 0;
	for (cJSON *m = node ? node->child : NULL; m; m = m->next) {
		if (m->string && !strcmp(m->string, "text") && cJSON_IsObject(m)) {
			cJSON *div = cJSON_GetObjectItemCaseSensitive(m, "div");
			char why[200];
			if (cJSON_IsString(div) && !fhir_xml_check_div(div->valuestring, strlen(div->valuestring), why,
								       sizeof why)) {
				cJSON *safe = cJSON_CreateString(WITHHELD_DIV);
				if (safe && cJSON_ReplaceItemInObjectCaseSensitive(m, "div", safe))
					n++;
				else
					cJSON_Delete(safe);
				cJSON *st = cJSON_CreateString("empty");
				if (st && !cJSON_ReplaceItemInObjectCaseSensitive(m, "status", st))
					cJSON_Delete(st);
			}
		}
		if (cJSON_IsObject(m) || cJSON_IsArray(m))
			n += neutralise(m, depth + 1);
	}
	return n;
}

size_t validate_neutralise_narrative(cJSON *tree)
{
	return neutralise(tree, 0);
}
