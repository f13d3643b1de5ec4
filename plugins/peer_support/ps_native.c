/* ps_native — the peer-support native documents: reading JSON and CSV into
 * a struct ps_doc with every problem reported (JSON pointer or "line N,
 * column M" locations), and writing a struct ps_doc back as JSON or CSV. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "peer_support.h"

/* A reader's state: the ctx, and whether anything was wrong. */
struct rd {
	struct cw_ctx *ctx;
	size_t errors;
	bool nomem;
};

static void bad(struct rd *r, const char *code, const char *where, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void bad(struct rd *r, const char *code, const char *where, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	ps_host->issue(r->ctx, CW_SEV_ERROR, code, where, "%s", msg);
	r->errors++;
}

static const char *keep(struct rd *r, const char *s)
{
	char *c = ps_host->copy_string(r->ctx, s);
	if (s && !c)
		r->nomem = true;
	return c;
}

static void list_codes(const struct ps_code *list, size_t n, char *buf, size_t cap)
{
	size_t used = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < n && used < cap; i++)
		used += (size_t)snprintf(buf + used, cap - used, "%s%s", i ? ", " : "", list[i].code);
}

/* ------------------------------------------------- checks both share */

static void check_system(struct rd *r, const char *s, const char *where)
{
	if (!ps_is_uri(s))
		bad(r, "value", where, "an identifier system must be an absolute URI");
	else if (strcmp(s, PS_NPI_SYSTEM) == 0)
		bad(r, "value", where, "the NPI goes in the npi field, not in the identifier");
}

static void check_text(struct rd *r, const char *s, const char *where)
{
	if (!ps_is_token(s))
		bad(r, "value", where, "must not be empty nor start or end with white space");
}

static void check_npi(struct rd *r, const char *s, const char *where)
{
	if (!ps_npi_valid(s))
		bad(r, "value", where, "not an NPI: 10 digits whose Luhn check digit (with prefix 80840) holds");
}

static void check_start(struct rd *r, const char *s, const char *where)
{
	if (!ps_datetime(s, NULL, NULL, NULL))
		bad(r, "value", where,
		    "not a date-time YYYY-MM-DDThh:mm:ss with Z or an offset ±hh:mm (a real date, year 1900 on)");
}

static long check_minutes_text(struct rd *r, const char *s, const char *where)
{
	/* A whole number written plainly: no sign, no fraction, no exponent. */
	long v = 0;
	bool ok = s && *s && (s[0] != '0' || !s[1]) && strlen(s) <= 6;
	for (const char *p = s; ok && *p; p++) {
		if (*p == '-' && p == s) {
			bad(r, "value", where, "a duration cannot be negative");
			return -1;
		}
		ok = *p >= '0' && *p <= '9';
		v = v * 10 + (*p - '0');
	}
	if (!ok) {
		bad(r, "value", where, "not a whole number of minutes");
		return -1;
	}
	if (v < 1 || v > PS_MAX_MINUTES) {
		bad(r, "value", where, "a duration is 1 to %d minutes", PS_MAX_MINUTES);
		return -1;
	}
	return v;
}

static int check_code(struct rd *r, const struct ps_code *list, size_t n, const char *s, const char *what,
		      const char *where)
{
	int i = ps_lookup(list, n, s);
	if (i < 0) {
		char codes[400];
		list_codes(list, n, codes, sizeof codes);
		bad(r, "code-invalid", where, "unknown %s '%s' (one of: %s)", what, s ? s : "", codes);
	}
	return i;
}

static void check_goal(struct rd *r, const char *s, const char *where)
{
	if (!ps_is_token(s) || strchr(s, ';'))
		bad(r, "value", where, "a goal identifier is not empty, has no ';' and no white space at either end");
}

static bool same(const char *a, const char *b) { return (!a && !b) || (a && b && strcmp(a, b) == 0); }

static bool same_ident(const struct ps_ident *a, const struct ps_ident *b)
{
	return same(a->system, b->system) && same(a->value, b->value);
}

/* Checks across encounters: unique encounter ids, one specialist = one set
 * of details, no activity or goal twice in one encounter. */
static void check_doc(struct rd *r, const struct ps_doc *doc, bool csv)
{
	for (size_t i = 0; i < doc->n_encs; i++) {
		const struct ps_encounter *e = &doc->encs[i];
		char where[160];
		for (size_t j = 0; j < i; j++) {
			const struct ps_encounter *o = &doc->encs[j];
			if (e->id && o->id && strcmp(e->id, o->id) == 0) {
				snprintf(where, sizeof where, csv ? "%s, column 5" : "%s/id", e->where);
				bad(r, "duplicate", where, "encounter '%s' was already given at %s", e->id, o->where);
				break;
			}
		}
		for (size_t j = 0; j < i; j++) {
			const struct ps_encounter *o = &doc->encs[j];
			if (!e->sp.id.value || !o->sp.id.value || !same_ident(&e->sp.id, &o->sp.id))
				continue;
			if (!same(e->sp.name, o->sp.name) || !same(e->sp.credential, o->sp.credential) ||
			    !same(e->sp.npi, o->sp.npi)) {
				snprintf(where, sizeof where, csv ? "%s" : "%s/specialist", e->where);
				bad(r, "conflict", where,
				    "this specialist's name, credential or NPI differ from those at %s", o->where);
			}
			break;
		}
		for (size_t a = 0; a < e->n_acts; a++)
			for (size_t b = 0; b < a; b++)
				if (e->acts[a] == e->acts[b] && e->acts[a] != PS_NO_ACTIVITY) {
					snprintf(where, sizeof where, csv ? "%s, column 15" : "%s/activities/%zu",
						 e->where, a);
					bad(r, "duplicate", where, "activity '%s' is listed twice",
					    ps_activities[e->acts[a]].code);
				}
		for (size_t a = 0; a < e->n_goals; a++)
			for (size_t b = 0; b < a; b++)
				if (e->goals[a] && e->goals[b] && strcmp(e->goals[a], e->goals[b]) == 0) {
					snprintf(where, sizeof where, csv ? "%s, column 16" : "%s/goals/%zu", e->where, a);
					bad(r, "duplicate", where, "goal '%s' is listed twice", e->goals[a]);
				}
	}
}

/* ----------------------------------------------------------- JSON in */

static void ptr(char *out, size_t cap, const char *base, const char *token)
{
	size_t n = (size_t)snprintf(out, cap, "%s/", base);
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

static void only_members(struct rd *r, const cJSON *o, const char *base, const char *const *allowed)
{
	const cJSON *m;
	cJSON_ArrayForEach(m, o) {
		bool known = false;
		for (const char *const *a = allowed; *a && !known; a++)
			known = strcmp(*a, m->string) == 0;
		if (!known) {
			char where[256];
			ptr(where, sizeof where, base, m->string);
			bad(r, "structure", where, "unknown member '%s'", m->string);
		}
	}
}

/* An object member: NULL when absent (reported when required). */
static const cJSON *member(struct rd *r, const cJSON *o, const char *key, const char *base, bool required,
			   char *where, size_t cap)
{
	ptr(where, cap, base, key);
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	if (!v && required)
		bad(r, "required", where, "'%s' is required", key);
	return v;
}

static const char *string_member(struct rd *r, const cJSON *o, const char *key, const char *base, bool required)
{
	char where[256];
	const cJSON *v = member(r, o, key, base, required, where, sizeof where);
	if (!v)
		return NULL;
	if (!cJSON_IsString(v)) {
		bad(r, "structure", where, "'%s' must be a string", key);
		return NULL;
	}
	check_text(r, v->valuestring, where);
	return keep(r, v->valuestring);
}

static const cJSON *object_member(struct rd *r, const cJSON *o, const char *key, const char *base, char *where,
				  size_t cap)
{
	const cJSON *v = member(r, o, key, base, true, where, cap);
	if (v && !cJSON_IsObject(v)) {
		bad(r, "structure", where, "'%s' must be an object", key);
		return NULL;
	}
	return v;
}

static void read_ident(struct rd *r, const cJSON *o, const char *key, const char *base, struct ps_ident *id)
{
	char where[256];
	static const char *const allowed[] = {"system", "value", NULL};
	const cJSON *v = object_member(r, o, key, base, where, sizeof where);
	if (!v)
		return;
	only_members(r, v, where, allowed);
	id->system = string_member(r, v, "system", where, true);
	id->value = string_member(r, v, "value", where, true);
	if (id->system) {
		char w[300];
		ptr(w, sizeof w, where, "system");
		check_system(r, id->system, w);
	}
}

static void read_specialist(struct rd *r, const cJSON *o, const char *base, struct ps_specialist *sp)
{
	static const char *const allowed[] = {"identifier", "name", "credential", "npi", NULL};
	char where[256];
	const cJSON *v = object_member(r, o, "specialist", base, where, sizeof where);
	if (!v)
		return;
	only_members(r, v, where, allowed);
	read_ident(r, v, "identifier", where, &sp->id);
	sp->name = string_member(r, v, "name", where, true);
	sp->credential = string_member(r, v, "credential", where, false);
	sp->npi = string_member(r, v, "npi", where, false);
	if (sp->npi) {
		char w[300];
		ptr(w, sizeof w, where, "npi");
		check_npi(r, sp->npi, w);
	}
}

static const cJSON *array_member(struct rd *r, const cJSON *o, const char *key, const char *base, bool required,
				 char *where, size_t cap)
{
	const cJSON *v = member(r, o, key, base, required, where, cap);
	if (v && (!cJSON_IsArray(v) || !v->child)) {
		bad(r, "structure", where, "'%s' must be a non-empty array", key);
		return NULL;
	}
	return v;
}

static void read_encounter(struct rd *r, const cJSON *o, const char *base, struct ps_encounter *e)
{
	static const char *const allowed[] = {"id", "specialist", "start", "duration_minutes", "mode", "setting",
					      "activities", "goals", "billable", "notes", NULL};
	char where[256];
	e->where = keep(r, base);
	if (!cJSON_IsObject(o)) {
		bad(r, "structure", base, "an encounter must be an object");
		return;
	}
	only_members(r, o, base, allowed);
	e->id = string_member(r, o, "id", base, true);
	read_specialist(r, o, base, &e->sp);
	if ((e->start = string_member(r, o, "start", base, true))) {
		ptr(where, sizeof where, base, "start");
		check_start(r, e->start, where);
	}
	const cJSON *v = member(r, o, "duration_minutes", base, true, where, sizeof where);
	if (v && !cJSON_IsNumber(v))
		bad(r, "structure", where, "'duration_minutes' must be a number");
	else if (v)
		e->minutes = check_minutes_text(r, v->valuestring ? v->valuestring : "", where);
	const char *s = string_member(r, o, "mode", base, true);
	if (s) {
		ptr(where, sizeof where, base, "mode");
		int i = check_code(r, ps_modes, PS_MODE_COUNT, s, "mode", where);
		e->mode = i < 0 ? PS_INDIVIDUAL : (enum ps_mode)i;
	}
	if ((s = string_member(r, o, "setting", base, true))) {
		ptr(where, sizeof where, base, "setting");
		int i = check_code(r, ps_settings, PS_SETTING_COUNT, s, "setting", where);
		e->setting = i < 0 ? PS_CLINIC : (enum ps_setting)i;
	}
	const cJSON *a = array_member(r, o, "activities", base, true, where, sizeof where), *it;
	if (a) {
		e->acts = ps_host->alloc(r->ctx, (size_t)cJSON_GetArraySize(a) * sizeof *e->acts);
		r->nomem |= !e->acts;
		size_t i = 0;
		cJSON_ArrayForEach(it, a) {
			char w[300];
			snprintf(w, sizeof w, "%s/%zu", where, i++);
			int k = check_code(r, ps_activities, ps_activity_count, cJSON_IsString(it) ? it->valuestring : "",
					   "activity", w);
			if (e->acts) /* an unknown one keeps its place, for the positions reported */
				e->acts[e->n_acts++] = k >= 0 ? (size_t)k : PS_NO_ACTIVITY;
		}
	}
	if ((a = array_member(r, o, "goals", base, false, where, sizeof where))) {
		e->goals = ps_host->alloc(r->ctx, (size_t)cJSON_GetArraySize(a) * sizeof *e->goals);
		r->nomem |= !e->goals;
		size_t i = 0;
		cJSON_ArrayForEach(it, a) {
			char w[300];
			snprintf(w, sizeof w, "%s/%zu", where, i++);
			const char *g = cJSON_IsString(it) ? it->valuestring : NULL;
			check_goal(r, g, w);
			if (e->goals)
				e->goals[e->n_goals++] = keep(r, g);
		}
	}
	v = member(r, o, "billable", base, true, where, sizeof where);
	if (v && !cJSON_IsBool(v))
		bad(r, "structure", where, "'billable' must be true or false");
	e->billable = cJSON_IsTrue(v);
	e->notes = string_member(r, o, "notes", base, false);
}

static void read_log(struct rd *r, struct ps_doc *doc, const cJSON *o, const char *base)
{
	static const char *const allowed[] = {"version", "person", "encounters", NULL};
	static const char *const person_allowed[] = {"identifier", "name", NULL};
	char where[256];
	if (!cJSON_IsObject(o)) {
		bad(r, "structure", *base ? base : "/", "a peer-support log must be a JSON object");
		return;
	}
	only_members(r, o, base, allowed);
	const cJSON *v = member(r, o, "version", base, true, where, sizeof where);
	if (v && !(cJSON_IsNumber(v) && v->valuestring && strcmp(v->valuestring, "1") == 0))
		bad(r, "not-supported", where, "this plugin reads version 1 of the format");
	struct ps_person *p = ps_add_person(r->ctx, doc);
	if (!p) {
		r->nomem = true;
		return;
	}
	size_t pi = doc->n_people - 1;
	p->where = keep(r, base);
	const cJSON *person = object_member(r, o, "person", base, where, sizeof where);
	if (person) {
		only_members(r, person, where, person_allowed);
		read_ident(r, person, "identifier", where, &p->id);
		p->name = string_member(r, person, "name", where, false);
		for (size_t i = 0; i < pi && p->id.value; i++)
			if (same_ident(&doc->people[i].id, &p->id)) {
				bad(r, "duplicate", where, "this person's log was already given at %s",
				    *doc->people[i].where ? doc->people[i].where : "/");
				break;
			}
	}
	v = member(r, o, "encounters", base, true, where, sizeof where);
	if (v && !cJSON_IsArray(v)) {
		bad(r, "structure", where, "'encounters' must be an array");
		return;
	}
	size_t i = 0;
	const cJSON *it;
	cJSON_ArrayForEach(it, v) {
		char w[300];
		snprintf(w, sizeof w, "%s/%zu", where, i++);
		struct ps_encounter *e = ps_add_encounter(r->ctx, doc);
		if (!e) {
			r->nomem = true;
			return;
		}
		e->person = pi;
		read_encounter(r, it, w, e);
	}
}

enum cw_status ps_read_json(struct cw_ctx *ctx, const char *data, size_t len, struct ps_doc *doc)
{
	cJSON *in = ps_host->parse_json(ctx, data, len); /* reports its own issue */
	if (!in)
		return CW_INVALID;
	struct rd r = {.ctx = ctx};
	if (cJSON_IsArray(in)) {
		doc->array = true;
		if (!in->child)
			bad(&r, "required", "/", "an array of logs must hold at least one log");
		size_t i = 0;
		const cJSON *it;
		cJSON_ArrayForEach(it, in) {
			char w[32];
			snprintf(w, sizeof w, "/%zu", i++);
			read_log(&r, doc, it, w);
		}
	} else {
		read_log(&r, doc, in, "");
	}
	cJSON_Delete(in);
	if (!r.nomem)
		check_doc(&r, doc, false);
	if (r.nomem) {
		ps_host->issue(ctx, CW_SEV_ERROR, "exception", NULL, "out of memory");
		return CW_NOMEM;
	}
	return r.errors ? CW_INVALID : CW_OK;
}

/* ------------------------------------------------------------ CSV in */

struct row {
	size_t line; /* physical line the record starts on */
	size_t n;
	const char *cell[PS_CSV_COLUMNS + 1]; /* extra cells are counted, not kept */
	bool quoted_bad;
};

/* Reads one RFC 4180 record from *p (advancing it). Cells are copied into
 * the arena. Returns false at the end of the input. */
static bool csv_record(struct rd *r, const char **p, const char *end, size_t *line, struct row *row)
{
	if (*p >= end)
		return false;
	memset(row, 0, sizeof *row);
	row->line = *line;
	char *buf = ps_host->alloc(r->ctx, (size_t)(end - *p) + 1);
	if (!buf) {
		r->nomem = true;
		return false;
	}
	const char *s = *p;
	for (;;) {
		size_t n = 0;
		if (s < end && *s == '"') {
			s++;
			for (;;) {
				if (s >= end) {
					row->quoted_bad = true;
					break;
				}
				if (*s == '"') {
					if (s + 1 < end && s[1] == '"') {
						buf[n++] = '"';
						s += 2;
						continue;
					}
					s++;
					break;
				}
				if (*s == '\n')
					(*line)++;
				buf[n++] = *s++;
			}
			if (s < end && *s != ',' && *s != '\n' && *s != '\r')
				row->quoted_bad = true;
			while (s < end && *s != ',' && *s != '\n' && *s != '\r')
				s++;
		} else {
			while (s < end && *s != ',' && *s != '\n' && !(*s == '\r' && s + 1 < end && s[1] == '\n')) {
				if (*s == '"')
					row->quoted_bad = true;
				buf[n++] = *s++;
			}
		}
		buf[n] = '\0';
		if (row->n < PS_CSV_COLUMNS + 1)
			row->cell[row->n] = buf;
		row->n++;
		buf += n + 1;
		if (s < end && *s == ',') {
			s++;
			continue;
		}
		if (s < end && *s == '\r')
			s++;
		if (s < end && *s == '\n')
			s++;
		(*line)++;
		break;
	}
	*p = s;
	return true;
}

/* Where: "line N, column M". */
static const char *at(char *buf, size_t cap, const struct row *row, size_t col)
{
	snprintf(buf, cap, "line %zu, column %zu", row->line, col + 1);
	return buf;
}

/* Splits a ';' list cell into arena strings; returns the count. */
static size_t split(struct rd *r, const char *cell, const char ***out)
{
	size_t n = 1;
	for (const char *c = cell; *c; c++)
		n += *c == ';';
	*out = ps_host->alloc(r->ctx, n * sizeof **out);
	char *copy = ps_host->copy_string(r->ctx, cell);
	if (!*out || !copy) {
		r->nomem = true;
		return 0;
	}
	size_t i = 0;
	for (char *s = copy;; i++) {
		char *semi = strchr(s, ';');
		(*out)[i] = s;
		if (!semi)
			break;
		*semi = '\0';
		s = semi + 1;
	}
	return n;
}

static const char *opt(const char *cell) { return cell && *cell ? cell : NULL; }

static void read_row(struct rd *r, struct ps_doc *doc, const struct row *row)
{
	char w[96], w2[96];
	const char *const *c = row->cell;
	/* Every cell but the optional ones must be present. */
	static const bool optional[PS_CSV_COLUMNS] = {[3] = true, [8] = true, [9] = true, [15] = true, [17] = true};
	for (size_t i = 0; i < PS_CSV_COLUMNS; i++) {
		if (!*c[i] && !optional[i])
			bad(r, "required", at(w, sizeof w, row, i), "%s is required", ps_csv_header[i]);
		else if (*c[i] && i != 14 && i != 15)
			check_text(r, c[i], at(w, sizeof w, row, i));
	}
	if (*c[0] && strcmp(c[0], "1") != 0)
		bad(r, "not-supported", at(w, sizeof w, row, 0), "this plugin reads version 1 of the format");

	struct ps_ident pid = {opt(c[1]), opt(c[2])};
	if (pid.system)
		check_system(r, pid.system, at(w, sizeof w, row, 1));
	size_t pi = doc->n_people;
	for (size_t i = 0; i < doc->n_people && pid.system && pid.value; i++)
		if (same_ident(&doc->people[i].id, &pid)) {
			pi = i;
			break;
		}
	if (pi == doc->n_people) {
		struct ps_person *p = ps_add_person(r->ctx, doc);
		if (!p) {
			r->nomem = true;
			return;
		}
		p->id = pid;
		p->name = opt(c[3]);
		snprintf(w, sizeof w, "line %zu", row->line);
		p->where = keep(r, w);
	} else if (!same(doc->people[pi].name, opt(c[3]))) {
		bad(r, "conflict", at(w, sizeof w, row, 3), "person_name differs from the one at %s",
		    doc->people[pi].where);
	}

	struct ps_encounter *e = ps_add_encounter(r->ctx, doc);
	if (!e) {
		r->nomem = true;
		return;
	}
	snprintf(w, sizeof w, "line %zu", row->line);
	e->where = keep(r, w);
	e->person = pi;
	e->id = opt(c[4]);
	e->sp.id.system = opt(c[5]);
	if (e->sp.id.system)
		check_system(r, e->sp.id.system, at(w, sizeof w, row, 5));
	e->sp.id.value = opt(c[6]);
	e->sp.name = opt(c[7]);
	e->sp.credential = opt(c[8]);
	if ((e->sp.npi = opt(c[9])))
		check_npi(r, e->sp.npi, at(w, sizeof w, row, 9));
	if ((e->start = opt(c[10])))
		check_start(r, e->start, at(w, sizeof w, row, 10));
	if (*c[11])
		e->minutes = check_minutes_text(r, c[11], at(w, sizeof w, row, 11));
	int k;
	if (*c[12] && (k = check_code(r, ps_modes, PS_MODE_COUNT, c[12], "mode", at(w, sizeof w, row, 12))) >= 0)
		e->mode = (enum ps_mode)k;
	if (*c[13] &&
	    (k = check_code(r, ps_settings, PS_SETTING_COUNT, c[13], "setting", at(w, sizeof w, row, 13))) >= 0)
		e->setting = (enum ps_setting)k;
	if (*c[14]) {
		const char **codes;
		size_t n = split(r, c[14], &codes);
		e->acts = ps_host->alloc(r->ctx, (n ? n : 1) * sizeof *e->acts);
		r->nomem |= !e->acts;
		for (size_t i = 0; i < n && e->acts; i++) {
			snprintf(w2, sizeof w2, "activity %zu", i + 1);
			k = check_code(r, ps_activities, ps_activity_count, codes[i], w2, at(w, sizeof w, row, 14));
			e->acts[e->n_acts++] = k >= 0 ? (size_t)k : PS_NO_ACTIVITY;
		}
	}
	if (*c[15]) {
		e->n_goals = split(r, c[15], &e->goals);
		for (size_t i = 0; i < e->n_goals; i++)
			check_goal(r, e->goals[i], at(w, sizeof w, row, 15));
	}
	if (*c[16] && strcmp(c[16], "true") != 0 && strcmp(c[16], "false") != 0)
		bad(r, "value", at(w, sizeof w, row, 16), "billable is true or false");
	e->billable = strcmp(c[16], "true") == 0;
	e->notes = opt(c[17]);
}

enum cw_status ps_read_csv(struct cw_ctx *ctx, const char *data, size_t len, struct ps_doc *doc)
{
	struct rd r = {.ctx = ctx};
	const char *p = data, *end = data + len;
	if (len >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0)
		p += 3; /* a byte order mark */
	size_t line = 1;
	struct row row;
	char w[96];
	if (!csv_record(&r, &p, end, &line, &row)) {
		if (!r.nomem)
			bad(&r, "required", "line 1", "the header row is missing");
	} else {
		if (row.n != PS_CSV_COLUMNS)
			bad(&r, "structure", "line 1", "the header has %zu columns, the format has %d", row.n,
			    PS_CSV_COLUMNS);
		for (size_t i = 0; i < row.n && i < PS_CSV_COLUMNS; i++)
			if (strcmp(row.cell[i], ps_csv_header[i]) != 0)
				bad(&r, "structure", at(w, sizeof w, &row, i), "header '%s' where '%s' belongs",
				    row.cell[i], ps_csv_header[i]);
		size_t rows = 0;
		while (!r.nomem && csv_record(&r, &p, end, &line, &row)) {
			if (row.n == 1 && !*row.cell[0] && p >= end)
				break; /* nothing after the last line break */
			rows++;
			snprintf(w, sizeof w, "line %zu", row.line);
			if (row.quoted_bad)
				bad(&r, "structure", w, "a quoted cell is malformed (RFC 4180)");
			if (row.n != PS_CSV_COLUMNS)
				bad(&r, "structure", w, "%zu columns where the header has %d", row.n, PS_CSV_COLUMNS);
			else
				read_row(&r, doc, &row);
		}
		if (!rows && !r.nomem)
			bad(&r, "required", "line 2", "no encounter rows");
	}
	if (!r.nomem)
		check_doc(&r, doc, true);
	if (r.nomem) {
		ps_host->issue(ctx, CW_SEV_ERROR, "exception", NULL, "out of memory");
		return CW_NOMEM;
	}
	return r.errors ? CW_INVALID : CW_OK;
}

/* ---------------------------------------------------------- JSON out */

static cJSON *ident_json(const struct ps_ident *id)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "system", id->system);
	cJSON_AddStringToObject(o, "value", id->value);
	return o;
}

static cJSON *encounter_json(const struct ps_encounter *e)
{
	cJSON *o = cJSON_CreateObject(), *sp = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "id", e->id);
	cJSON_AddItemToObject(o, "specialist", sp);
	cJSON_AddItemToObject(sp, "identifier", ident_json(&e->sp.id));
	cJSON_AddStringToObject(sp, "name", e->sp.name);
	if (e->sp.credential)
		cJSON_AddStringToObject(sp, "credential", e->sp.credential);
	if (e->sp.npi)
		cJSON_AddStringToObject(sp, "npi", e->sp.npi);
	cJSON_AddStringToObject(o, "start", e->start);
	cJSON_AddNumberToObject(o, "duration_minutes", (double)e->minutes);
	cJSON_AddStringToObject(o, "mode", ps_modes[e->mode].code);
	cJSON_AddStringToObject(o, "setting", ps_settings[e->setting].code);
	cJSON *a = cJSON_AddArrayToObject(o, "activities");
	for (size_t i = 0; i < e->n_acts; i++)
		cJSON_AddItemToArray(a, cJSON_CreateString(ps_activities[e->acts[i]].code));
	if (e->n_goals) {
		a = cJSON_AddArrayToObject(o, "goals");
		for (size_t i = 0; i < e->n_goals; i++)
			cJSON_AddItemToArray(a, cJSON_CreateString(e->goals[i]));
	}
	cJSON_AddBoolToObject(o, "billable", e->billable);
	if (e->notes)
		cJSON_AddStringToObject(o, "notes", e->notes);
	return o;
}

enum cw_status ps_write_json(struct cw_ctx *ctx, const struct ps_doc *doc, char **out, size_t *len)
{
	cJSON *arr = cJSON_CreateArray();
	for (size_t p = 0; arr && p < doc->n_people; p++) {
		const struct ps_person *pp = &doc->people[p];
		cJSON *log = cJSON_CreateObject(), *person = cJSON_CreateObject();
		cJSON_AddItemToArray(arr, log);
		cJSON_AddNumberToObject(log, "version", 1);
		cJSON_AddItemToObject(log, "person", person);
		cJSON_AddItemToObject(person, "identifier", ident_json(&pp->id));
		if (pp->name)
			cJSON_AddStringToObject(person, "name", pp->name);
		cJSON *encs = cJSON_AddArrayToObject(log, "encounters");
		for (size_t i = 0; i < doc->n_encs; i++)
			if (doc->encs[i].person == p)
				cJSON_AddItemToArray(encs, encounter_json(&doc->encs[i]));
	}
	const cJSON *tree = arr && !doc->array && doc->n_people == 1 ? arr->child : arr;
	*out = tree ? ps_host->print_json(ctx, tree, len) : NULL;
	cJSON_Delete(arr);
	return *out ? CW_OK : CW_NOMEM;
}

/* ----------------------------------------------------------- CSV out */

struct buf {
	char *p;
	size_t n, cap;
	bool nomem;
};

static void put(struct buf *b, const char *s, size_t n)
{
	if (b->nomem)
		return;
	if (b->n + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 1024;
		while (cap < b->n + n + 1)
			cap *= 2;
		char *np = realloc(b->p, cap);
		if (!np) {
			b->nomem = true;
			return;
		}
		b->p = np;
		b->cap = cap;
	}
	memcpy(b->p + b->n, s, n);
	b->n += n;
	b->p[b->n] = '\0';
}

static void cell(struct buf *b, const char *s, bool last)
{
	s = s ? s : "";
	if (strpbrk(s, ",\"\r\n")) { /* quoted, with quotes doubled */
		put(b, "\"", 1);
		for (const char *q = s; *q; q++) {
			put(b, q, 1);
			if (*q == '"')
				put(b, q, 1);
		}
		put(b, "\"", 1);
	} else {
		put(b, s, strlen(s));
	}
	put(b, last ? "\n" : ",", 1);
}

/* A ';' list cell: activity codes (acts) or goal identifiers. */
static void list_cell(struct buf *b, const size_t *acts, const char *const *goals, size_t n)
{
	struct buf j = {0};
	for (size_t i = 0; i < n; i++) {
		const char *s = acts ? ps_activities[acts[i]].code : goals[i];
		if (i)
			put(&j, ";", 1);
		put(&j, s, strlen(s));
	}
	b->nomem |= j.nomem;
	cell(b, j.p ? j.p : "", false);
	free(j.p);
}

enum cw_status ps_write_csv(struct cw_ctx *ctx, const struct ps_doc *doc, char **out, size_t *len)
{
	struct buf b = {0};
	for (size_t p = 0; p < doc->n_people; p++) {
		bool any = false;
		for (size_t i = 0; i < doc->n_encs && !any; i++)
			any = doc->encs[i].person == p;
		if (!any)
			ps_host->issue(ctx, CW_SEV_WARNING, "not-supported", NULL,
				       "a person with no encounters has no CSV row; person %zu left out", p + 1);
	}
	for (size_t i = 0; i < PS_CSV_COLUMNS; i++)
		cell(&b, ps_csv_header[i], i + 1 == PS_CSV_COLUMNS);
	for (size_t i = 0; i < doc->n_encs; i++) {
		const struct ps_encounter *e = &doc->encs[i];
		const struct ps_person *p = &doc->people[e->person];
		char mins[24];
		snprintf(mins, sizeof mins, "%ld", e->minutes);
		cell(&b, "1", false);
		cell(&b, p->id.system, false);
		cell(&b, p->id.value, false);
		cell(&b, p->name, false);
		cell(&b, e->id, false);
		cell(&b, e->sp.id.system, false);
		cell(&b, e->sp.id.value, false);
		cell(&b, e->sp.name, false);
		cell(&b, e->sp.credential, false);
		cell(&b, e->sp.npi, false);
		cell(&b, e->start, false);
		cell(&b, mins, false);
		cell(&b, ps_modes[e->mode].code, false);
		cell(&b, ps_settings[e->setting].code, false);
		list_cell(&b, e->acts, NULL, e->n_acts);
		list_cell(&b, NULL, e->goals, e->n_goals);
		cell(&b, e->billable ? "true" : "false", false);
		cell(&b, e->notes, true);
	}
	*out = b.nomem ? NULL : ps_host->alloc(ctx, b.n + 1);
	if (*out) {
		memcpy(*out, b.p, b.n);
		(*out)[b.n] = '\0';
		*len = b.n;
	}
	free(b.p);
	return *out ? CW_OK : CW_NOMEM;
}
