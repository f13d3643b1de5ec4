/* st_native — the strengths native documents as a plugkit record format
 * (st_records): what a strength's members and CSV cells must be, each
 * problem reported at its JSON pointer or "line N, column M", the checks
 * across a document, and a strength written back as JSON or CSV. plugkit
 * reads and writes the rest: the record around the strengths, the person,
 * the CSV rows. */
#include <stdio.h>
#include <string.h>

#include "strengths.h"

/* ------------------------------------------- checks JSON and CSV share */

static void check_system(struct pk_reader *r, const char *s, const char *where)
{
	if (!st_is_uri(s))
		pk_bad(r, "value", where, "an identifier system must be an absolute URI (UTF-8, no white space)");
}

static void check_date(struct pk_reader *r, const char *s, const char *where)
{
	if (!st_is_date(r->ctx, s))
		pk_bad(r, "value", where, "not a date YYYY-MM-DD (a real calendar date, years 1000 to 9999)");
}

/* Self is the person: a name or an identifier would describe someone else. */
static void check_self(struct pk_reader *r, const struct st_strength *s, const char *where)
{
	if (s->role == ST_SELF && (s->by_name || s->by_id.system || s->by_id.value))
		pk_bad(r, "value", where,
		       "a strength the person identified (self) names nobody else: no name or identifier");
}

/* Across the document: strength ids unique, no goal twice in a strength. */
static void check_doc(struct pk_reader *r, const struct pk_doc *doc, bool csv)
{
	char where[200];
	for (size_t i = 0; i < doc->n; i++) {
		const struct st_strength *s = st_item(doc, i);
		for (size_t j = 0; j < i && s->id; j++) {
			const struct st_strength *o = st_item(doc, j);
			if (o->id && strcmp(s->id, o->id) == 0) {
				snprintf(where, sizeof where, csv ? "%s, column 5" : "%s/id", s->it.where);
				pk_bad(r, "duplicate", where, "strength '%s' was already given at %s", s->id,
				       o->it.where);
				break;
			}
		}
		pk_check_goals(r, s->goals, s->n_goals, s->it.where, csv ? 13 : 0, where, sizeof where);
	}
}

/* ----------------------------------------------------------- JSON in */

static void read_identified_by(struct pk_reader *r, const cJSON *o, const char *base, struct st_strength *s)
{
	static const char *const allowed[] = {"role", "name", "identifier", NULL};
	char where[300];
	const cJSON *v = pk_object_member(r, o, "identified_by", base, true, where, sizeof where);
	if (!v)
		return;
	pk_only_members(r, v, where, allowed);
	const char *role = pk_string_member(r, v, "role", where, true);
	if (role) {
		char w[320];
		pk_ptr(w, sizeof w, where, "role");
		int i = pk_check_code(r, st_roles, ST_ROLE_COUNT, role, "role", w);
		s->role = i < 0 ? ST_SELF : (enum st_role)i;
		if (i < 0)
			return; /* nothing to compare a name with */
	}
	s->by_name = pk_string_member(r, v, "name", where, false);
	pk_read_ident(r, v, "identifier", where, false, &s->by_id, check_system);
	if (role)
		check_self(r, s, where);
}

/* A strength (an object of known members) at base. */
static void read_strength(struct pk_reader *r, const cJSON *o, const char *base, void *item)
{
	struct st_strength *s = item;
	char where[300];
	s->category = ST_NO_CATEGORY;
	s->id = pk_string_member(r, o, "id", base, true);
	const char *cat = pk_string_member(r, o, "category", base, true);
	if (cat) {
		pk_ptr(where, sizeof where, base, "category");
		s->category = pk_check_code(r, st_categories, st_category_count, cat, "category", where);
	}
	s->description = pk_string_member(r, o, "description", base, true);
	read_identified_by(r, o, base, s);
	if ((s->date = pk_string_member(r, o, "date", base, true))) {
		pk_ptr(where, sizeof where, base, "date");
		check_date(r, s->date, where);
	}
	const cJSON *g = pk_member(r, o, "goals", base, false, where, sizeof where);
	if (g && (!cJSON_IsArray(g) || !g->child))
		pk_bad(r, "structure", where, "'goals' must be a non-empty array (leave it out when there are none)");
	else if (g)
		s->n_goals = pk_read_goals(r, g, where, &s->goals);
}

/* ------------------------------------------------------------ CSV in */

enum col {
	C_VERSION, C_PSYS, C_PVAL, C_PNAME, C_ID, C_CATEGORY, C_DESCRIPTION, C_ROLE, C_BYNAME, C_BYSYS, C_BYVAL,
	C_DATE, C_GOALS
};

/* The cells of a row past the person's. */
static void read_row(struct pk_reader *r, const struct pk_csv_row *row, void *item)
{
	struct st_strength *s = item;
	const char *const *c = row->cell;
	char w[96];
	s->category = ST_NO_CATEGORY;
	s->id = pk_opt(c[C_ID]);
	if (*c[C_CATEGORY])
		s->category = pk_check_code(r, st_categories, st_category_count, c[C_CATEGORY], "category",
					 pk_csv_at(w, sizeof w, row, C_CATEGORY));
	s->description = pk_opt(c[C_DESCRIPTION]);
	int role = -1;
	if (*c[C_ROLE])
		role = pk_check_code(r, st_roles, ST_ROLE_COUNT, c[C_ROLE], "role",
				     pk_csv_at(w, sizeof w, row, C_ROLE));
	s->role = role < 0 ? ST_SELF : (enum st_role)role;
	s->by_name = pk_opt(c[C_BYNAME]);
	s->by_id.system = pk_opt(c[C_BYSYS]);
	s->by_id.value = pk_opt(c[C_BYVAL]);
	if (s->by_id.system)
		check_system(r, s->by_id.system, pk_csv_at(w, sizeof w, row, C_BYSYS));
	if (!s->by_id.system != !s->by_id.value)
		pk_bad(r, "required", pk_csv_at(w, sizeof w, row, s->by_id.system ? C_BYVAL : C_BYSYS),
		       "identified_by_system and identified_by_value go together");
	if (role >= 0)
		check_self(r, s, pk_csv_at(w, sizeof w, row, C_ROLE));
	if ((s->date = pk_opt(c[C_DATE])))
		check_date(r, s->date, pk_csv_at(w, sizeof w, row, C_DATE));
	if (*c[C_GOALS]) {
		s->n_goals = pk_split(r, c[C_GOALS], &s->goals);
		for (size_t i = 0; i < s->n_goals; i++)
			pk_check_goal(r, s->goals[i], pk_csv_at(w, sizeof w, row, C_GOALS));
	}
}

/* ---------------------------------------------------------- JSON out */

static cJSON *strength_json(const struct pk_doc *doc, size_t n)
{
	const struct st_strength *s = st_item(doc, n);
	cJSON *o = cJSON_CreateObject(), *by = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "id", s->id);
	cJSON_AddStringToObject(o, "category", st_categories[s->category].code);
	cJSON_AddStringToObject(o, "description", s->description);
	cJSON_AddItemToObject(o, "identified_by", by);
	cJSON_AddStringToObject(by, "role", st_roles[s->role].code);
	if (s->by_name)
		cJSON_AddStringToObject(by, "name", s->by_name);
	if (s->by_id.system && s->by_id.value)
		cJSON_AddItemToObject(by, "identifier", pk_ident_json(&s->by_id));
	cJSON_AddStringToObject(o, "date", s->date);
	pk_add_strings(o, "goals", s->goals, s->n_goals);
	return o;
}

/* ----------------------------------------------------------- CSV out */

/* The cells of a strength's row past the person's. */
static void write_row(struct pk_buf *b, const struct pk_doc *doc, size_t i)
{
	const struct st_strength *s = st_item(doc, i);
	pk_csv_cell(b, s->id, false);
	pk_csv_cell(b, st_categories[s->category].code, false);
	pk_csv_cell(b, s->description, false);
	pk_csv_cell(b, st_roles[s->role].code, false);
	pk_csv_cell(b, s->by_name, false);
	pk_csv_cell(b, s->by_id.system, false);
	pk_csv_cell(b, s->by_id.value, false);
	pk_csv_cell(b, s->date, false);
	pk_csv_list(b, s->goals, s->n_goals, true);
}

/* ------------------------------------------------------------ the format */

static const char *const strength_members[] = {"id", "category", "description", "identified_by", "date", "goals", NULL};
/* Every cell but these must be given; the goals are a ';' list. */
static const bool optional[ST_CSV_COLUMNS] = {
	[C_PNAME] = true, [C_BYNAME] = true, [C_BYSYS] = true, [C_BYVAL] = true, [C_GOALS] = true};
static const bool lists[ST_CSV_COLUMNS] = {[C_GOALS] = true};

const struct pk_records st_records = {
	/* reading: text is UTF-8 a FHIR string may hold */
	.message = 600, .where = 300, .is_text = st_is_text,
	.not_text = "must not be empty nor start or end with white space, and must be UTF-8 without control "
		    "characters",
	.check_system = check_system, .same_needs_system = true,
	/* the document */
	.kind = "strengths", .noun = "record", .items = "strengths", .item = "a strength",
	.item_members = strength_members, .item_size = sizeof(struct st_strength),
	.read = read_strength, .check = check_doc, .item_json = strength_json,
	/* the CSV (each row's cell buffer has room for a NUL per column) */
	.header = st_csv_header, .columns = ST_CSV_COLUMNS, .slack = ST_CSV_COLUMNS, .optional = optional,
	.lists = lists, .no_rows = "no strength rows", .no_items = "without strengths", .read_row = read_row,
	.write_row = write_row,
	/* FHIR (st_fhir.c) */
	.to_bundle = st_to_bundle, .from_bundle = st_from_bundle,
	/* writing reports running out of memory */
	.report_nomem = true,
};
