/* ps_native — the peer-support native documents as a plugkit record format
 * (ps_records): what an encounter's members and CSV cells must be, each
 * problem reported at its JSON pointer or "line N, column M", the checks
 * across a document, and an encounter written back as JSON or CSV. plugkit
 * reads and writes the rest: the log around the encounters, the person,
 * the CSV rows. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "peer_support.h"

/* ------------------------------------------- checks JSON and CSV share */

static void check_system(struct pk_reader *r, const char *s, const char *where)
{
	if (!ps_is_uri(s))
		pk_bad(r, "value", where, "an identifier system must be an absolute URI");
	else if (strcmp(s, PS_NPI_SYSTEM) == 0)
		pk_bad(r, "value", where, "the NPI goes in the npi field, not in the identifier");
}

static void check_npi(struct pk_reader *r, const char *s, const char *where)
{
	if (!pk_npi_valid(s))
		pk_bad(r, "value", where, "not an NPI: 10 digits whose Luhn check digit (with prefix 80840) holds");
}

static void check_start(struct pk_reader *r, const char *s, const char *where)
{
	if (!ps_datetime(s, NULL, NULL, NULL))
		pk_bad(r, "value", where,
		       "not a date-time YYYY-MM-DDThh:mm:ss with Z or an offset ±hh:mm (a real date, year 1900 on)");
}

static long check_minutes_text(struct pk_reader *r, const char *s, const char *where)
{
	/* A whole number written plainly: no sign, no fraction, no exponent. */
	long v = 0;
	bool ok = s && *s && (s[0] != '0' || !s[1]) && strlen(s) <= 6;
	for (const char *p = s; ok && *p; p++) {
		if (*p == '-' && p == s) {
			pk_bad(r, "value", where, "a duration cannot be negative");
			return -1;
		}
		ok = *p >= '0' && *p <= '9';
		v = v * 10 + (*p - '0');
	}
	if (!ok) {
		pk_bad(r, "value", where, "not a whole number of minutes");
		return -1;
	}
	if (v < 1 || v > PS_MAX_MINUTES) {
		pk_bad(r, "value", where, "a duration is 1 to %d minutes", PS_MAX_MINUTES);
		return -1;
	}
	return v;
}

/* Checks across encounters: unique encounter ids, one specialist = one set
 * of details, no activity or goal twice in one encounter. */
static void check_doc(struct pk_reader *r, const struct pk_doc *doc, bool csv)
{
	for (size_t i = 0; i < doc->n; i++) {
		const struct ps_encounter *e = ps_enc(doc, i);
		char where[160];
		for (size_t j = 0; j < i; j++) {
			const struct ps_encounter *o = ps_enc(doc, j);
			if (e->id && o->id && strcmp(e->id, o->id) == 0) {
				snprintf(where, sizeof where, csv ? "%s, column 5" : "%s/id", e->it.where);
				pk_bad(r, "duplicate", where, "encounter '%s' was already given at %s", e->id,
				       o->it.where);
				break;
			}
		}
		for (size_t j = 0; j < i; j++) {
			const struct ps_encounter *o = ps_enc(doc, j);
			if (!e->sp.id.value || !o->sp.id.value || !pk_same_ident(&e->sp.id, &o->sp.id))
				continue;
			if (!pk_same(e->sp.name, o->sp.name) || !pk_same(e->sp.credential, o->sp.credential) ||
			    !pk_same(e->sp.npi, o->sp.npi)) {
				snprintf(where, sizeof where, csv ? "%s" : "%s/specialist", e->it.where);
				pk_bad(r, "conflict", where,
				       "this specialist's name, credential or NPI differ from those at %s",
				       o->it.where);
			}
			break;
		}
		for (size_t a = 0; a < e->n_acts; a++)
			for (size_t b = 0; b < a; b++)
				if (e->acts[a] == e->acts[b] && e->acts[a] != PS_NO_ACTIVITY) {
					snprintf(where, sizeof where, csv ? "%s, column 15" : "%s/activities/%zu",
						 e->it.where, a);
					pk_bad(r, "duplicate", where, "activity '%s' is listed twice",
					       ps_activities[e->acts[a]].code);
				}
		pk_check_goals(r, e->goals, e->n_goals, e->it.where, csv ? 16 : 0, where, sizeof where);
	}
}

/* ----------------------------------------------------------- JSON in */

static void read_specialist(struct pk_reader *r, const cJSON *o, const char *base, struct ps_specialist *sp)
{
	static const char *const allowed[] = {"identifier", "name", "credential", "npi", NULL};
	char where[256];
	const cJSON *v = pk_object_member(r, o, "specialist", base, true, where, sizeof where);
	if (!v)
		return;
	pk_only_members(r, v, where, allowed);
	pk_read_ident(r, v, "identifier", where, true, &sp->id, check_system);
	sp->name = pk_string_member(r, v, "name", where, true);
	sp->credential = pk_string_member(r, v, "credential", where, false);
	sp->npi = pk_string_member(r, v, "npi", where, false);
	if (sp->npi) {
		char w[300];
		pk_ptr(w, sizeof w, where, "npi");
		check_npi(r, sp->npi, w);
	}
}

/* An encounter (an object of known members) at base. */
static void read_encounter(struct pk_reader *r, const cJSON *o, const char *base, void *item)
{
	struct ps_encounter *e = item;
	char where[256];
	e->id = pk_string_member(r, o, "id", base, true);
	read_specialist(r, o, base, &e->sp);
	if ((e->start = pk_string_member(r, o, "start", base, true))) {
		pk_ptr(where, sizeof where, base, "start");
		check_start(r, e->start, where);
	}
	const cJSON *v = pk_member(r, o, "duration_minutes", base, true, where, sizeof where);
	if (v && !cJSON_IsNumber(v))
		pk_bad(r, "structure", where, "'duration_minutes' must be a number");
	else if (v)
		e->minutes = check_minutes_text(r, v->valuestring ? v->valuestring : "", where);
	const char *s = pk_string_member(r, o, "mode", base, true);
	if (s) {
		pk_ptr(where, sizeof where, base, "mode");
		int i = pk_check_code(r, ps_modes, PS_MODE_COUNT, s, "mode", where);
		e->mode = i < 0 ? PS_INDIVIDUAL : (enum ps_mode)i;
	}
	if ((s = pk_string_member(r, o, "setting", base, true))) {
		pk_ptr(where, sizeof where, base, "setting");
		int i = pk_check_code(r, ps_settings, PS_SETTING_COUNT, s, "setting", where);
		e->setting = i < 0 ? PS_CLINIC : (enum ps_setting)i;
	}
	const cJSON *a = pk_array_member(r, o, "activities", base, true, false, where, sizeof where), *it;
	if (a) {
		e->acts = pk_alloc_for(r, a, sizeof *e->acts);
		size_t i = 0;
		cJSON_ArrayForEach(it, a) {
			char w[300];
			snprintf(w, sizeof w, "%s/%zu", where, i++);
			int k = pk_check_code(r, ps_activities, ps_activity_count,
					      cJSON_IsString(it) ? it->valuestring : "", "activity", w);
			if (e->acts) /* an unknown one keeps its place, for the positions reported */
				e->acts[e->n_acts++] = k >= 0 ? (size_t)k : PS_NO_ACTIVITY;
		}
	}
	if ((a = pk_array_member(r, o, "goals", base, false, false, where, sizeof where)))
		e->n_goals = pk_read_goals(r, a, where, &e->goals);
	v = pk_member(r, o, "billable", base, true, where, sizeof where);
	if (v && !cJSON_IsBool(v))
		pk_bad(r, "structure", where, "'billable' must be true or false");
	e->billable = cJSON_IsTrue(v);
	e->notes = pk_string_member(r, o, "notes", base, false);
}

/* ------------------------------------------------------------ CSV in */

/* The cells of a row past the person's. */
static void read_row(struct pk_reader *r, const struct pk_csv_row *row, void *item)
{
	struct ps_encounter *e = item;
	const char *const *c = row->cell;
	char w[96], w2[96];
	e->id = pk_opt(c[4]);
	e->sp.id.system = pk_opt(c[5]);
	if (e->sp.id.system)
		check_system(r, e->sp.id.system, pk_csv_at(w, sizeof w, row, 5));
	e->sp.id.value = pk_opt(c[6]);
	e->sp.name = pk_opt(c[7]);
	e->sp.credential = pk_opt(c[8]);
	if ((e->sp.npi = pk_opt(c[9])))
		check_npi(r, e->sp.npi, pk_csv_at(w, sizeof w, row, 9));
	if ((e->start = pk_opt(c[10])))
		check_start(r, e->start, pk_csv_at(w, sizeof w, row, 10));
	if (*c[11])
		e->minutes = check_minutes_text(r, c[11], pk_csv_at(w, sizeof w, row, 11));
	int k;
	if (*c[12] &&
	    (k = pk_check_code(r, ps_modes, PS_MODE_COUNT, c[12], "mode", pk_csv_at(w, sizeof w, row, 12))) >= 0)
		e->mode = (enum ps_mode)k;
	if (*c[13] && (k = pk_check_code(r, ps_settings, PS_SETTING_COUNT, c[13], "setting",
					 pk_csv_at(w, sizeof w, row, 13))) >= 0)
		e->setting = (enum ps_setting)k;
	if (*c[14]) {
		const char **codes;
		size_t n = pk_split(r, c[14], &codes);
		e->acts = ps_host->alloc(r->ctx, (n ? n : 1) * sizeof *e->acts);
		r->nomem |= !e->acts;
		for (size_t i = 0; i < n && e->acts; i++) {
			snprintf(w2, sizeof w2, "activity %zu", i + 1);
			k = pk_check_code(r, ps_activities, ps_activity_count, codes[i], w2,
					  pk_csv_at(w, sizeof w, row, 14));
			e->acts[e->n_acts++] = k >= 0 ? (size_t)k : PS_NO_ACTIVITY;
		}
	}
	if (*c[15]) {
		e->n_goals = pk_split(r, c[15], &e->goals);
		for (size_t i = 0; i < e->n_goals; i++)
			pk_check_goal(r, e->goals[i], pk_csv_at(w, sizeof w, row, 15));
	}
	if (*c[16] && strcmp(c[16], "true") != 0 && strcmp(c[16], "false") != 0)
		pk_bad(r, "value", pk_csv_at(w, sizeof w, row, 16), "billable is true or false");
	e->billable = strcmp(c[16], "true") == 0;
	e->notes = pk_opt(c[17]);
}

/* ---------------------------------------------------------- JSON out */

static cJSON *encounter_json(const struct pk_doc *doc, size_t n)
{
	const struct ps_encounter *e = ps_enc(doc, n);
	cJSON *o = cJSON_CreateObject(), *sp = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "id", e->id);
	cJSON_AddItemToObject(o, "specialist", sp);
	cJSON_AddItemToObject(sp, "identifier", pk_ident_json(&e->sp.id));
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
	pk_add_strings(o, "goals", e->goals, e->n_goals);
	cJSON_AddBoolToObject(o, "billable", e->billable);
	if (e->notes)
		cJSON_AddStringToObject(o, "notes", e->notes);
	return o;
}

/* ----------------------------------------------------------- CSV out */

/* The cells of an encounter's row past the person's. */
static void write_row(struct pk_buf *b, const struct pk_doc *doc, size_t i)
{
	const struct ps_encounter *e = ps_enc(doc, i);
	char mins[24];
	snprintf(mins, sizeof mins, "%ld", e->minutes);
	pk_csv_cell(b, e->id, false);
	pk_csv_cell(b, e->sp.id.system, false);
	pk_csv_cell(b, e->sp.id.value, false);
	pk_csv_cell(b, e->sp.name, false);
	pk_csv_cell(b, e->sp.credential, false);
	pk_csv_cell(b, e->sp.npi, false);
	pk_csv_cell(b, e->start, false);
	pk_csv_cell(b, mins, false);
	pk_csv_cell(b, ps_modes[e->mode].code, false);
	pk_csv_cell(b, ps_settings[e->setting].code, false);
	const char **acts = malloc((e->n_acts + 1) * sizeof *acts);
	b->nomem |= !acts;
	for (size_t k = 0; acts && k < e->n_acts; k++)
		acts[k] = ps_activities[e->acts[k]].code;
	pk_csv_list(b, acts, acts ? e->n_acts : 0, false);
	free(acts);
	pk_csv_list(b, e->goals, e->n_goals, false);
	pk_csv_cell(b, e->billable ? "true" : "false", false);
	pk_csv_cell(b, e->notes, true);
}

/* ------------------------------------------------------------ the format */

static const char *const encounter_members[] = {"id", "specialist", "start", "duration_minutes", "mode",
						"setting", "activities", "goals", "billable", "notes", NULL};
/* Every cell but these must be given; these are ';' lists. */
static const bool optional[PS_CSV_COLUMNS] = {[3] = true, [8] = true, [9] = true, [15] = true, [17] = true};
static const bool lists[PS_CSV_COLUMNS] = {[14] = true, [15] = true};

const struct pk_records ps_records = {
	/* reading */
	.message = 512, .where = 256, .is_text = pk_is_text,
	.not_text = "must not be empty nor start or end with white space",
	.check_system = check_system, .same_needs_system = false,
	/* the document */
	.kind = "peer-support", .noun = "log", .items = "encounters", .item = "an encounter",
	.item_members = encounter_members, .item_size = sizeof(struct ps_encounter),
	.read = read_encounter, .check = check_doc, .item_json = encounter_json,
	/* the CSV */
	.header = ps_csv_header, .columns = PS_CSV_COLUMNS, .slack = 0, .optional = optional, .lists = lists,
	.no_rows = "no encounter rows", .no_items = "with no encounters", .read_row = read_row,
	.write_row = write_row,
	/* FHIR (ps_fhir.c) */
	.to_bundle = ps_to_bundle, .from_bundle = ps_from_bundle,
	/* writing: running out of memory is the host's to report */
	.report_nomem = false,
};
