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

/* An ICD-10-CM code of the loaded code pack (none loaded: none is). */
static void check_diagnosis(struct pk_reader *r, const char *code, const char *where)
{
	unsigned f = CW_HOST_HAS(ps_host, code_flags) ? ps_host->code_flags(r->ctx, PS_ICD10CM, code) : 0;
	if (!(f & CW_CODE_KNOWN))
		pk_bad(r, "code-invalid", where, "'%s' is not an ICD-10-CM code of the loaded code pack", code);
}

static void check_date(struct pk_reader *r, const char *s, const char *where)
{
	char dt[32];
	if (strlen(s) != 10 || snprintf(dt, sizeof dt, "%sT00:00:00Z", s) != 20 || !ps_datetime(dt, NULL, NULL, NULL))
		pk_bad(r, "value", where, "not a date YYYY-MM-DD (a real date, year 1900 on)");
}

static void check_area(struct pk_reader *r, const char *s, const char *where)
{
	pk_check_code(r, ps_areas, PS_AREA_COUNT, s, "certification area", where);
}

/* The diagnoses of an encounter: each a known code, once, at most
 * PS_MAX_DIAGNOSES. where_of(i) is the location of diagnosis i. */
static void check_diagnoses(struct pk_reader *r, const char *const *dx, size_t n, const char *list_where, bool csv)
{
	char w[300];
	if (n > PS_MAX_DIAGNOSES)
		pk_bad(r, "value", list_where, "at most %d diagnoses (those of one claim)", PS_MAX_DIAGNOSES);
	for (size_t i = 0; i < n; i++) {
		if (csv)
			snprintf(w, sizeof w, "%s", list_where);
		else
			snprintf(w, sizeof w, "%s/%zu", list_where, i);
		check_diagnosis(r, dx[i], w);
		for (size_t j = 0; j < i; j++)
			if (strcmp(dx[i], dx[j]) == 0) {
				pk_bad(r, "duplicate", w, "diagnosis '%s' is listed twice", dx[i]);
				break;
			}
	}
}

static bool same_cert(const struct ps_cert *a, const struct ps_cert *b)
{
	return pk_same(a->issuer, b->issuer) && pk_same(a->number, b->number) && pk_same(a->expiry, b->expiry) &&
	       pk_same(a->area, b->area);
}

size_t ps_v2_last_column(const struct ps_encounter *e)
{
	const struct ps_cert *c = &e->sp.cert;
	const void *const cells[PS_CSV_COLUMNS_V2 - PS_CSV_COLUMNS] = {e->n_diagnoses ? (const void *)e->diagnoses
										      : NULL,
								       e->payer,
								       e->member_id,
								       e->prior_auth,
								       e->supervisor.system,
								       e->supervisor.value,
								       e->supervisor_name,
								       c->issuer,
								       c->number,
								       c->expiry,
								       c->area,
								       e->plan};
	for (size_t i = PS_CSV_COLUMNS_V2 - PS_CSV_COLUMNS; i > 0; i--)
		if (cells[i - 1])
			return PS_CSV_COLUMNS + i - 1;
	return 0;
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
			    !pk_same(e->sp.npi, o->sp.npi) || !same_cert(&e->sp.cert, &o->sp.cert)) {
				snprintf(where, sizeof where, csv ? "%s" : "%s/specialist", e->it.where);
				pk_bad(r, "conflict", where,
				       "this specialist's name, credential, NPI or certification differ from those at "
				       "%s",
				       o->it.where);
			}
			break;
		}
		/* A supervisor is one Practitioner: one name, the specialist's when
		 * the supervisor is also a specialist of the document. */
		for (size_t j = 0; e->supervisor.value && j < doc->n; j++) {
			const struct ps_encounter *o = ps_enc(doc, j);
			const char *other = NULL;
			if (j < i && o->supervisor.value && pk_same_ident(&e->supervisor, &o->supervisor))
				other = o->supervisor_name;
			else if (o->sp.id.value && pk_same_ident(&e->supervisor, &o->sp.id))
				other = o->sp.name;
			else
				continue;
			if (!pk_same(other, e->supervisor_name)) {
				snprintf(where, sizeof where, csv ? "%s, column 25" : "%s/supervisor/name",
					 e->it.where);
				pk_bad(r, "conflict", where, "this supervisor's name differs from the one at %s",
				       o->it.where);
				break;
			}
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

/* specialist.certification (version 2) at base. */
static void read_cert(struct pk_reader *r, const cJSON *sp, const char *base, struct ps_cert *c)
{
	static const char *const allowed[] = {"issuer", "number", "expiry", "area", NULL};
	char where[300], w[320];
	const cJSON *v = pk_object_member(r, sp, "certification", base, false, where, sizeof where);
	if (!v)
		return;
	pk_only_members(r, v, where, allowed);
	c->issuer = pk_string_member(r, v, "issuer", where, true);
	c->number = pk_string_member(r, v, "number", where, true);
	if ((c->expiry = pk_string_member(r, v, "expiry", where, true))) {
		pk_ptr(w, sizeof w, where, "expiry");
		check_date(r, c->expiry, w);
	}
	if ((c->area = pk_string_member(r, v, "area", where, false))) {
		pk_ptr(w, sizeof w, where, "area");
		check_area(r, c->area, w);
	}
}

static void read_specialist(struct pk_reader *r, const cJSON *o, const char *base, int version,
			    struct ps_specialist *sp)
{
	static const char *const allowed[] = {"identifier", "name", "credential", "npi", NULL};
	static const char *const allowed_v2[] = {"identifier", "name", "credential", "npi", "certification", NULL};
	char where[256];
	const cJSON *v = pk_object_member(r, o, "specialist", base, true, where, sizeof where);
	if (!v)
		return;
	pk_only_members(r, v, where, version > 1 ? allowed_v2 : allowed);
	if (version > 1)
		read_cert(r, v, where, &sp->cert);
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

/* The members of an encounter version 2 adds (the member lists let them
 * through in version 2 documents only). */
static void read_v2(struct pk_reader *r, const cJSON *o, const char *base, struct ps_encounter *e)
{
	static const char *const coverage[] = {"payer", "member_id", "prior_authorization", NULL};
	static const char *const supervisor[] = {"identifier", "name", NULL};
	char where[256];
	const cJSON *a = pk_array_member(r, o, "diagnoses", base, false, false, where, sizeof where), *it;
	if (a) {
		e->diagnoses = pk_alloc_for(r, a, sizeof *e->diagnoses);
		size_t i = 0;
		cJSON_ArrayForEach(it, a)
		{
			char w[300];
			snprintf(w, sizeof w, "%s/%zu", where, i++);
			if (!cJSON_IsString(it) || !pk_is_text(it->valuestring))
				pk_bad(r, "structure", w, "a diagnosis is an ICD-10-CM code, a string");
			else if (e->diagnoses)
				e->diagnoses[e->n_diagnoses++] = pk_keep(r, it->valuestring);
		}
		if (cJSON_GetArraySize(a) == (int)e->n_diagnoses)
			check_diagnoses(r, e->diagnoses, e->n_diagnoses, where, false);
	}
	const cJSON *c = pk_object_member(r, o, "coverage", base, false, where, sizeof where);
	if (c) {
		pk_only_members(r, c, where, coverage);
		e->payer = pk_string_member(r, c, "payer", where, true);
		e->member_id = pk_string_member(r, c, "member_id", where, true);
		e->prior_auth = pk_string_member(r, c, "prior_authorization", where, false);
	}
	if ((c = pk_object_member(r, o, "supervisor", base, false, where, sizeof where))) {
		pk_only_members(r, c, where, supervisor);
		pk_read_ident(r, c, "identifier", where, true, &e->supervisor, check_system);
		e->supervisor_name = pk_string_member(r, c, "name", where, true);
	}
	e->plan = pk_string_member(r, o, "plan_of_care", base, false);
}

/* An encounter (an object of known members) at base. */
static void read_encounter(struct pk_reader *r, const cJSON *o, const char *base, void *item)
{
	struct ps_encounter *e = item;
	char where[256];
	e->id = pk_string_member(r, o, "id", base, true);
	read_specialist(r, o, base, e->it.version, &e->sp);
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
	if (e->it.version > 1)
		read_v2(r, o, base, e);
}

/* ------------------------------------------------------------ CSV in */

/* "a and b go together": an error at the empty one when one is given. */
static bool together(struct pk_reader *r, const struct pk_csv_row *row, const size_t *cols, size_t n)
{
	size_t given = 0;
	char w[96];
	for (size_t i = 0; i < n; i++)
		given += cols[i] < row->n && *row->cell[cols[i]];
	if (given == 0 || given == n)
		return given == n;
	for (size_t i = 0; i < n; i++)
		if (cols[i] >= row->n || !*row->cell[cols[i]])
			pk_bad(r, "required", pk_csv_at(w, sizeof w, row, cols[i]), "%s is required with %s",
			       ps_csv_header[cols[i]], ps_csv_header[cols[i ? 0 : 1]]);
	return false;
}

/* The version 2 cells of a row (those its header has). A version 1 row
 * leaves them empty. */
static void read_row_v2(struct pk_reader *r, const struct pk_csv_row *row, struct ps_encounter *e)
{
	const char *const *c = row->cell;
	char w[96];
	if (e->it.version < 2) {
		for (size_t i = PS_CSV_COLUMNS; i < row->n; i++)
			if (*c[i])
				pk_bad(r, "not-supported", pk_csv_at(w, sizeof w, row, i),
				       "%s is a column of version 2; this row says version 1", ps_csv_header[i]);
		return;
	}
#define CELL(i) ((i) < row->n ? pk_opt(c[i]) : NULL)
	if (CELL(18)) {
		e->n_diagnoses = pk_split(r, c[18], &e->diagnoses);
		check_diagnoses(r, e->diagnoses, e->n_diagnoses, pk_csv_at(w, sizeof w, row, 18), true);
	}
	static const size_t coverage[] = {19, 20}, supervisor[] = {22, 23, 24}, cert[] = {25, 26, 27};
	if (together(r, row, coverage, 2)) {
		e->payer = c[19];
		e->member_id = c[20];
	}
	if ((e->prior_auth = CELL(21)) && !e->payer)
		pk_bad(r, "required", pk_csv_at(w, sizeof w, row, 19), "payer is required with prior_authorization");
	if (together(r, row, supervisor, 3)) {
		e->supervisor = (struct pk_ident){c[22], c[23]};
		e->supervisor_name = c[24];
		check_system(r, c[22], pk_csv_at(w, sizeof w, row, 22));
	}
	if (together(r, row, cert, 3)) {
		e->sp.cert.issuer = c[25];
		e->sp.cert.number = c[26];
		e->sp.cert.expiry = c[27];
		check_date(r, c[27], pk_csv_at(w, sizeof w, row, 27));
	}
	if ((e->sp.cert.area = CELL(28))) {
		check_area(r, c[28], pk_csv_at(w, sizeof w, row, 28));
		if (!e->sp.cert.number)
			pk_bad(r, "required", pk_csv_at(w, sizeof w, row, 26),
			       "cert_number is required with cert_area");
	}
	e->plan = CELL(29);
#undef CELL
}

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
	read_row_v2(r, row, e);
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
	if (e->sp.cert.number) {
		cJSON *c = cJSON_AddObjectToObject(sp, "certification");
		cJSON_AddStringToObject(c, "issuer", e->sp.cert.issuer);
		cJSON_AddStringToObject(c, "number", e->sp.cert.number);
		cJSON_AddStringToObject(c, "expiry", e->sp.cert.expiry);
		if (e->sp.cert.area)
			cJSON_AddStringToObject(c, "area", e->sp.cert.area);
	}
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
	pk_add_strings(o, "diagnoses", e->diagnoses, e->n_diagnoses);
	if (e->payer) {
		cJSON *c = cJSON_AddObjectToObject(o, "coverage");
		cJSON_AddStringToObject(c, "payer", e->payer);
		cJSON_AddStringToObject(c, "member_id", e->member_id);
		if (e->prior_auth)
			cJSON_AddStringToObject(c, "prior_authorization", e->prior_auth);
	}
	if (e->supervisor.value) {
		cJSON *c = cJSON_AddObjectToObject(o, "supervisor");
		cJSON_AddItemToObject(c, "identifier", pk_ident_json(&e->supervisor));
		cJSON_AddStringToObject(c, "name", e->supervisor_name);
	}
	if (e->plan)
		cJSON_AddStringToObject(o, "plan_of_care", e->plan);
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
	pk_csv_cell(b, e->notes, doc->columns <= PS_CSV_COLUMNS);
	if (doc->columns <= PS_CSV_COLUMNS)
		return;
	const struct ps_cert *c = &e->sp.cert;
	const char *const cells[PS_CSV_COLUMNS_V2] = {[19] = e->payer,
						      [20] = e->member_id,
						      [21] = e->prior_auth,
						      [22] = e->supervisor.system,
						      [23] = e->supervisor.value,
						      [24] = e->supervisor_name,
						      [25] = c->issuer,
						      [26] = c->number,
						      [27] = c->expiry,
						      [28] = c->area,
						      [29] = e->plan};
	for (size_t col = PS_CSV_COLUMNS; col < doc->columns; col++) {
		bool last = col + 1 == doc->columns;
		if (col == 18)
			pk_csv_list(b, e->diagnoses, e->n_diagnoses, last);
		else
			pk_csv_cell(b, cells[col], last);
	}
}

/* Version 2 when an encounter uses a version 2 field, with the columns up
 * to the last one any encounter fills; else version 1. */
static int doc_version(const struct pk_doc *doc, size_t *columns)
{
	size_t last = 0;
	for (size_t i = 0; i < doc->n; i++) {
		size_t l = ps_v2_last_column(ps_enc(doc, i));
		last = l > last ? l : last;
	}
	if (!last)
		return 1;
	*columns = last + 1;
	return 2;
}

/* ------------------------------------------------------------ the format */

static const char *const encounter_members[] = {"id", "specialist", "start", "duration_minutes", "mode",
						"setting", "activities", "goals", "billable", "notes", NULL};
static const char *const encounter_members_v2[] = {"id",        "specialist", "start",      "duration_minutes", "mode",
						   "setting",   "activities", "goals",      "billable",         "notes",
						   "diagnoses", "coverage",   "supervisor", "plan_of_care",     NULL};
/* Every cell but these must be given; these are ';' lists. */
static const bool optional[PS_CSV_COLUMNS_V2] = {
	[3] = true,  [8] = true,  [9] = true,  [15] = true, [17] = true, [18] = true,
	[19] = true, [20] = true, [21] = true, [22] = true, [23] = true, [24] = true,
	[25] = true, [26] = true, [27] = true, [28] = true, [29] = true};
static const bool lists[PS_CSV_COLUMNS_V2] = {[14] = true, [15] = true, [18] = true};

const struct pk_records ps_records = {
	/* reading */
	.message = 512,
	.where = 256,
	.is_text = pk_is_text,
	.not_text = "must not be empty nor start or end with white space",
	.check_system = check_system,
	.same_needs_system = false,
	/* the document */
	.kind = "peer-support",
	.noun = "log",
	.items = "encounters",
	.item = "an encounter",
	.item_members = encounter_members,
	.item_members_v2 = encounter_members_v2,
	.item_size = sizeof(struct ps_encounter),
	.read = read_encounter,
	.check = check_doc,
	.item_json = encounter_json,
	/* the CSV */
	.header = ps_csv_header,
	.columns = PS_CSV_COLUMNS,
	.max_columns = PS_CSV_COLUMNS_V2,
	.max_version = PS_VERSION,
	.doc_version = doc_version,
	.slack = 0,
	.optional = optional,
	.lists = lists,
	.no_rows = "no encounter rows",
	.no_items = "with no encounters",
	.read_row = read_row,
	.write_row = write_row,
	/* FHIR (ps_fhir.c) */
	.to_bundle = ps_to_bundle,
	.from_bundle = ps_from_bundle,
	/* writing: running out of memory is the host's to report */
	.report_nomem = false,
};
