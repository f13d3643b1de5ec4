/* plugkit — helpers the plugins under plugins/ share: reading a native JSON
 * or CSV document with every problem reported at its location, writing CSV,
 * building a transaction Bundle through the host, and reading a Bundle with
 * what a format cannot carry reported as warnings at FHIRPath locations.
 *
 * Not part of the plugin ABI. The build compiles plugins/common/ into a
 * static library that every plugin links (hidden symbols: a plugin still
 * exports only cw_plugin_entry); nothing here is ever loaded on its own.
 *
 * Like a plugin, plugkit reaches the core only through the host table: every
 * state struct below carries the host pointer and the call's ctx, set by the
 * plugin. It keeps no state of its own, so any number of threads may use it,
 * each with its own structs.
 *
 * The plugins keep their own vocabulary: every message that names a format,
 * a field or a rule comes from the plugin (a string or a callback); the
 * texts here are the ones every format shares. Each plugin also gives the
 * sizes of the buffers its messages and locations are written into (longer
 * ones are cut there), so that what it reports is its own to the byte.
 *
 * Memory: what outlives a call is in the call's arena (host->alloc), in the
 * same allocations a plugin would make itself; trees built here belong to
 * the caller. */
#ifndef PLUGKIT_H
#define PLUGKIT_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#include <crosswalk/plugin.h>

/* The largest message or location buffer a plugin may ask for. */
#define PK_TEXT_MAX 1024

/* R4 core extension linking any resource to the Goals it serves. */
#define PK_PERTAINS_TO_GOAL "http://hl7.org/fhir/StructureDefinition/resource-pertainsToGoal"

/* ------------------------------------------------------------- values */

/* One entry of a code table. */
struct pk_code {
	const char *code, *display;
};

/* An identifier as the native formats write it. */
struct pk_ident {
	const char *system, *value;
};

bool pk_eq(const char *a, const char *b);   /* both given and equal */
bool pk_same(const char *a, const char *b); /* equal, or both NULL */
bool pk_same_ident(const struct pk_ident *a, const struct pk_ident *b); /* pk_same on both parts */
/* Not empty, and no white space at either end. */
bool pk_is_text(const char *s);
/* A scheme (a letter, then letters, digits, '+', '-', '.'), ':', then at
 * least one character and no space or control character; DEL (0x7f) passes
 * only with allow_del. */
bool pk_is_uri(const char *s, bool allow_del);
/* 10 digits whose Luhn check, over the prefix 80840 and the first nine,
 * gives the tenth. */
bool pk_npi_valid(const char *s);
/* The n decimal digits at s as a number; -1 when one is not a digit. */
int pk_digits(const char *s, int n);
/* The index of code in list, or -1 (also for a NULL code). */
int pk_lookup(const struct pk_code *list, size_t n, const char *code);

const cJSON *pk_get(const cJSON *o, const char *key); /* case-sensitive member */
const char *pk_str(const cJSON *o, const char *key);  /* a string member, else NULL */
/* {"system", "value"} of id, a new tree. */
cJSON *pk_ident_json(const struct pk_ident *id);
/* o.key = the strings v as an array, when there are any. */
void pk_add_strings(cJSON *o, const char *key, const char *const *v, size_t n);
/* A HumanName's given names, then its family name, joined by spaces into
 * buf (cut at cap); "" when it has none. */
void pk_join_name(const cJSON *name, char *buf, size_t cap);

/* ------------------------------------------------------- arena arrays */

/* Appends one zeroed element to the arena array whose pointer is at array
 * (e.g. &doc->people), counted by *n and *cap: the new element, or NULL
 * when the arena is spent (the array is left as it was). A full array is
 * copied into one twice as large (the old one stays in the arena). */
void *pk_append(const struct cw_host *host, struct cw_ctx *ctx, void *array, size_t *n, size_t *cap, size_t size);

/* Checks the plugin's settings (host->config): each must be one of known
 * (NULL-terminated) and, with strings, a string. False, with an issue
 * each, when one is not; plugin is its name in the locations. */
bool pk_settings(const struct cw_host *host, struct cw_ctx *ctx, const char *plugin, const char *const *known,
		 bool strings);

/* --------------------------------------------------------------- issues */

/* Formats the message into msg (cap bytes, cut there) and reports it. */
void pk_vissue(const struct cw_host *host, struct cw_ctx *ctx, enum cw_severity sev, const char *code,
	       const char *where, char *msg, size_t cap, const char *fmt, va_list ap)
	__attribute__((format(printf, 8, 0)));

/* ---------------------------------------------------- native documents */

/* A reader's state. The plugin sets host, ctx, the sizes, root and its
 * rule for text; errors and nomem start at zero. */
struct pk_reader {
	const struct cw_host *host;
	struct cw_ctx *ctx;
	size_t message;   /* the size of a message buffer (at most PK_TEXT_MAX) */
	size_t where;     /* the size of a JSON-pointer buffer (at most PK_TEXT_MAX) */
	const char *root; /* the location reported for the whole document, "" as a pointer */
	bool (*is_text)(const char *s); /* what every string of the format must be */
	const char *not_text;           /* the message when one is not */
	size_t errors;
	bool nomem;
};

/* An error at where (a JSON pointer, or a place such as "line 3, column 4"). */
void pk_bad(struct pk_reader *r, const char *code, const char *where, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* s copied into the arena (NULL for NULL); nomem noted when that fails. */
const char *pk_keep(struct pk_reader *r, const char *s);
/* The index of s in list, or -1 with an error naming what and the codes. */
int pk_check_code(struct pk_reader *r, const struct pk_code *list, size_t n, const char *s, const char *what,
		  const char *where);

/* base + "/" + token, the token escaped as RFC 6901 says; cut at cap. */
void pk_ptr(char *out, size_t cap, const char *base, const char *token);
/* Reports every member of o not in allowed (NULL-terminated). */
void pk_only_members(struct pk_reader *r, const cJSON *o, const char *base, const char *const *allowed);
/* Member key of o, its pointer in where (cap bytes): NULL when absent, an
 * error when it is required. */
const cJSON *pk_member(struct pk_reader *r, const cJSON *o, const char *key, const char *base, bool required,
		       char *where, size_t cap);
/* A string member, checked with reader.is_text, copied into the arena. */
const char *pk_string_member(struct pk_reader *r, const cJSON *o, const char *key, const char *base,
			     bool required);
/* An object member: NULL when absent or not an object (an error). */
const cJSON *pk_object_member(struct pk_reader *r, const cJSON *o, const char *key, const char *base,
			      bool required, char *where, size_t cap);
/* An array member: NULL when absent, not an array or (unless allow_empty)
 * empty, each but the first an error. */
const cJSON *pk_array_member(struct pk_reader *r, const cJSON *o, const char *key, const char *base,
			     bool required, bool allow_empty, char *where, size_t cap);
/* Room in the arena for the elements of array a, each size bytes (nomem
 * noted when the arena is spent). */
void *pk_alloc_for(struct pk_reader *r, const cJSON *a, size_t size);
/* "version" must be the number 1. */
void pk_check_version(struct pk_reader *r, const cJSON *o, const char *base);
/* "version" must be a whole number from 1 to max; returns it (1 when it is
 * missing or wrong, which is reported). */
int pk_record_version(struct pk_reader *r, const cJSON *o, const char *base, int max);
/* Member key of o as an identifier {system, value}, both strings the
 * reader's text; check_system judges the system at its own pointer. */
void pk_read_ident(struct pk_reader *r, const cJSON *o, const char *key, const char *base, bool required,
		   struct pk_ident *id, void (*check_system)(struct pk_reader *r, const char *s, const char *where));

/* Parses a JSON document (the host reports a syntax error: false) and hands
 * item every record: the document itself at "", or each element of an
 * array at "/N" (*array set; an empty array is the error empty). */
bool pk_read_json(struct pk_reader *r, const char *data, size_t len, bool *array, const char *empty,
		  void (*item)(struct pk_reader *r, void *doc, const cJSON *o, const char *base), void *doc);
/* The reader's verdict: CW_NOMEM (reported), CW_INVALID or CW_OK. */
enum cw_status pk_finish(struct pk_reader *r);

/* --------------------------------------------------------------- CSV in */

#define PK_CSV_CELLS 32 /* cells kept per record; more are counted only */

/* One RFC 4180 record of a CSV document; cells are in the arena. */
struct pk_csv_row {
	size_t line; /* the physical line the record starts on */
	size_t n;    /* cells seen */
	const char *cell[PK_CSV_CELLS];
	bool malformed; /* a quote out of place */
};

/* "line N, column M" of a cell (col from 0), in buf. */
const char *pk_csv_at(char *buf, size_t cap, const struct pk_csv_row *row, size_t col);
/* Splits a ';' list into arena strings in *out; the count (0 with nomem
 * noted when the arena is spent). */
size_t pk_split(struct pk_reader *r, const char *cell, const char ***out);

static inline const char *pk_opt(const char *cell) { return cell && *cell ? cell : NULL; }

/* -------------------------------------------------------------- CSV out */

/* Text being written. With in_arena it grows in the arena (each step a new
 * block); else in malloc'd memory, copied into the arena by pk_buf_finish. */
struct pk_buf {
	const struct cw_host *host;
	struct cw_ctx *ctx;
	bool in_arena;
	char *p; /* NUL-terminated */
	size_t n, cap;
	bool nomem;
};

void pk_put(struct pk_buf *b, const char *s, size_t n);
/* The guard against formula injection (OWASP "CSV injection"): true when a
 * spreadsheet could run s as a formula, i.e. s begins, after any
 * apostrophes, with '=', '+', '-', '@', a tab or a CR — except a plain
 * negative number (-12, -3.5), which a spreadsheet reads as a number and
 * which is written as it is. */
bool pk_csv_guarded(const char *s);
/* One cell and its separator (',' or, after the last, '\n'); quoted, with
 * quotes doubled, only when it holds a comma, quote, CR or LF. NULL is "".
 * A guarded cell (pk_csv_guarded) gets an apostrophe before its text, inside
 * the quotes when quoted; the CSV reader of record formats takes one such
 * apostrophe away again, so what is written reads back unchanged. Every
 * plugin's CSV goes through here. */
void pk_csv_cell(struct pk_buf *b, const char *s, bool last);
/* One cell holding items joined by ';'. */
void pk_csv_list(struct pk_buf *b, const char *const *items, size_t n, bool last);
/* The text, in the arena, into *out and *len; false when memory ran out.
 * Frees what the buffer malloc'd. */
bool pk_buf_finish(struct pk_buf *b, char **out, size_t *len);

/* ------------------------------------------------- per-person records */

/* A person of a record format. */
struct pk_person {
	struct pk_ident id;
	const char *name;  /* may be NULL */
	const char *where; /* where it was first read (for conflicts); NULL from FHIR */
};

/* The people of a document, an arena array. */
struct pk_people {
	struct pk_person *v;
	size_t n, cap;
};

/* Appends a zeroed person; NULL when the arena is spent. */
struct pk_person *pk_add_person(const struct cw_host *host, struct cw_ctx *ctx, struct pk_people *people);

/* The head of an item of a record format: the plugin's item struct
 * begins with one. */
struct pk_item {
	size_t person;     /* index into the document's people */
	const char *where; /* the JSON pointer or "line N" it was read at; NULL from FHIR */
	int version;       /* the format version of its record or row (1 when not read) */
};

/* A document of a record format: its people, and its items in an arena
 * array (each of the format's item size, beginning with a struct pk_item). */
struct pk_doc {
	struct pk_people people;
	void *items;
	size_t n, cap;
	bool array; /* the JSON document was an array of records */
	/* Set by the writers before item_json/write_row run: the version the
	 * document is written in and, in CSV, the number of columns. */
	int version;
	size_t columns;
};

/* Appends a zeroed item of size bytes; NULL when the arena is spent. */
void *pk_doc_add(const struct cw_host *host, struct cw_ctx *ctx, struct pk_doc *doc, size_t size);
static inline const struct pk_item *pk_doc_item(const struct pk_doc *doc, size_t size, size_t i)
{
	return (const struct pk_item *)(const void *)((const char *)doc->items + i * size);
}

/* A record format: a JSON document of one record per person,
 *     {"version": 1, "person": {"identifier": {"system", "value"}, "name"},
 *      ITEMS: [item, …]}
 * or an array of such records; or a CSV document of one row per item
 * whose first four columns are version, person_system, person_value and
 * person_name. Names and rules are the plugin's; so are the item's other
 * members and cells, read and written by its callbacks. */
struct pk_records {
	/* the reader's settings (struct pk_reader) */
	size_t message, where;
	bool (*is_text)(const char *s);
	const char *not_text;
	/* names in messages */
	const char *kind, *noun; /* "peer-support", "log": "a peer-support log" */
	const char *items;       /* the member listing the items: "encounters" */
	const char *item;        /* one item: "an encounter" */
	const char *no_items;    /* "with no encounters": a person without a CSV row */
	const char *no_rows;     /* "no encounter rows" */
	const char *const *item_members; /* the members of an item (NULL-terminated) */
	size_t item_size;
	/* the CSV */
	const char *const *header; /* the column names, in order */
	size_t columns;            /* at most PK_CSV_CELLS - 1 */
	size_t slack;              /* bytes each row's cell buffer holds beyond the rest of the input */
	const bool *optional;      /* per column: may be empty */
	const bool *lists;         /* per column: a ';' list, not checked as one text */
	/* Later versions (max_version > 1) may add optional trailing columns:
	 * header then holds max_columns names, and a document's header is the
	 * first columns..max_columns of them; optional and lists cover all.
	 * 0 means columns. A row of a version that predates a column must leave
	 * it empty (the plugin's read_row checks, knowing the row's version). */
	size_t max_columns;
	int max_version;                    /* the newest version read (0 means 1) */
	const char *const *item_members_v2; /* an item's members from version 2 (NULL: item_members) */
	/* The version a document is written in and its CSV column count
	 * (NULL: version 1, columns). */
	int (*doc_version)(const struct pk_doc *doc, size_t *columns);
	/* rules */
	bool same_needs_system; /* a JSON person is found again only when it has a system */
	bool report_nomem;      /* writing reports running out of memory as an issue */
	void (*check_system)(struct pk_reader *r, const char *s, const char *where);
	/* A JSON item (an object with known members only) into item. */
	void (*read)(struct pk_reader *r, const cJSON *o, const char *base, void *item);
	/* The cells of a CSV row past the person's into item. */
	void (*read_row)(struct pk_reader *r, const struct pk_csv_row *row, void *item);
	/* Checks across the document once it is read (csv: read from CSV). */
	void (*check)(struct pk_reader *r, const struct pk_doc *doc, bool csv);
	/* Item i as JSON; its cells past the person's as CSV (the last ends
	 * the row). */
	cJSON *(*item_json)(const struct pk_doc *doc, size_t i);
	void (*write_row)(struct pk_buf *b, const struct pk_doc *doc, size_t i);
	/* The plugin's mapping of a document to a transaction Bundle, and of a
	 * Bundle to a document (setting doc->array). */
	enum cw_status (*to_bundle)(struct cw_ctx *ctx, const struct pk_doc *doc, cJSON **out);
	enum cw_status (*from_bundle)(struct cw_ctx *ctx, const cJSON *bundle, struct pk_doc *doc);
};

/* The format's mappers (struct cw_format). to_fhir reads the document in
 * media (JSON unless CSV), every problem reported, then maps it with
 * to_bundle. from_fhir maps the Bundle with from_bundle, then writes the
 * document in the arena: in JSON one record, or an array when doc->array
 * is set or there is not exactly one person; in CSV, with a warning about
 * each person without items. */
enum cw_status pk_records_to_fhir(const struct pk_records *f, const struct cw_host *host, struct cw_ctx *ctx,
				  const char *data, size_t len, enum cw_media media, cJSON **out);
enum cw_status pk_records_from_fhir(const struct pk_records *f, const struct cw_host *host, struct cw_ctx *ctx,
				    const cJSON *bundle, enum cw_media media, char **out, size_t *len);
/* Reports each goal (each a ';'-free reader text) listed twice in an item
 * read at item_where: at "ITEM_WHERE/goals/N", or in CSV (column not 0) at
 * "ITEM_WHERE, column C"; the location is written in where (cap bytes). */
void pk_check_goals(struct pk_reader *r, const char *const *goals, size_t n, const char *item_where, int column,
		    char *where, size_t cap);
/* A goal identifier: a reader text without ';'. */
void pk_check_goal(struct pk_reader *r, const char *s, const char *where);
/* The JSON array of goal identifiers at where into *goals (arena). */
size_t pk_read_goals(struct pk_reader *r, const cJSON *a, const char *where, const char ***goals);

/* A JSON document of records (one, or an array when first is false) in the
 * arena; arr is deleted. CW_NOMEM (reported when report) when printing
 * failed. */
enum cw_status pk_print(const struct cw_host *host, struct cw_ctx *ctx, cJSON *arr, bool first, bool report,
			char **out, size_t *len);

/* ------------------------------------------------------------- to FHIR */

/* A transaction Bundle being built. Identifiers, codings and references are
 * made by the host; when one cannot be (the host reported why) failed is
 * set and the mapping fails. */
struct pk_out {
	const struct cw_host *host;
	struct cw_ctx *ctx;
	cJSON *entries; /* Bundle.entry */
	bool failed;
};

/* A new transaction Bundle whose entries o collects (NULL when out of
 * memory). */
cJSON *pk_transaction(struct pk_out *o);
/* The verdict on bundle (handed over): CW_INVALID (deleted) when a part
 * failed, else CW_OK with *out = bundle. */
enum cw_status pk_close(struct pk_out *o, cJSON *bundle, cJSON **out);
/* {resourceType, id, meta.profile[profile]} (no meta when profile is NULL). */
cJSON *pk_resource(const char *type, const char *id, const char *profile);
/* Enters res (handed over) as PUT type/id. */
void pk_add_put(struct pk_out *o, cJSON *res, const char *type, const char *id);
/* Adds a host-made item to an object (key) or an array (key NULL); a NULL
 * item fails the mapping. */
void pk_put_item(struct pk_out *o, cJSON *into, const char *key, cJSON *item);
/* A CodeableConcept of one host-made coding. */
cJSON *pk_concept(struct pk_out *o, const char *system, const char *code, const char *display);
/* A host-made reference type/id. */
cJSON *pk_reference(struct pk_out *o, const char *type, const char *id);
/* into.key = [{"text": text}] (a name, a note). */
void pk_add_text(cJSON *into, const char *key, const char *text);
/* Enters a Patient: the identifier, and the name as text when given. */
void pk_patient(struct pk_out *o, const char *id, const char *profile, const struct pk_ident *ident,
		const char *name);
/* Appends to ext a resource-pertainsToGoal extension: a reference to Goal
 * goal_id typed Goal, with the goal's identifier. False when it failed. */
bool pk_goal_link(struct pk_out *o, cJSON *ext, const char *goal_id, const struct pk_ident *goal);

/* ----------------------------------------------------------------- ids */

/* Every id the plugins derive (docs/plugins.md, "Deterministic ids"):
 *   - a person's Patient: uuid5(ns = the person identifier's system,
 *     name = its value) — the same Patient in every plugin for the same
 *     identifier;
 *   - what belongs to a person (a goal, a plan, an encounter, a strength,
 *     an administration…): uuid5(ns = that Patient's id, name =
 *     "Type|system|value" of the item's identifier, with more "|" parts
 *     where one item gives several resources), so two people with the same
 *     item identifier get two resources, and so do two programs (their
 *     person identifier systems differ).
 * PK_ID_RULE is that rule's number (a plugin's cw_plugin.id_rule); rule 1
 * derived an item's id from its identifier alone, uuid5(system, value).
 * Each function sets o->failed (the host reported why) when no id could be
 * made; o->entries may be NULL (upgrading). */
#define PK_ID_RULE 2u
bool pk_patient_id(struct pk_out *o, const struct pk_ident *person, char out[CW_ID_SIZE]);
bool pk_owned_id(struct pk_out *o, const char *pid, const char *key, char out[CW_ID_SIZE]);
/* pk_owned_id with the key "type|system|value". */
bool pk_item_id(struct pk_out *o, const char *pid, const char *type, const struct pk_ident *item,
		char out[CW_ID_SIZE]);

/* Upgrading what rule 1 stored (cw_plugin.upgrade). */
/* r.identifier[0] (or r.identifier, where it is a single Identifier) as
 * {system, value}, borrowed from r; false when absent. */
bool pk_first_ident(const cJSON *r, struct pk_ident *id);
/* The id of r.key when it is a reference "type/id", else NULL. */
const char *pk_ref_id(const cJSON *r, const char *key, const char *type);
/* Adds {"type/old": new_id} to *moved (created when NULL). */
bool pk_add_move(cJSON **moved, const char *type, const char *old, const char *new_id);
/* r (borrowed) when it is a resource of rule 1: of one of types
 * (NULL-terminated), its id uuid5(identifier[0].system, value) — with
 * only_system (may be NULL) that system alone — and r.subject a Patient.
 * *out is then a copy under the id pk_item_id gives (its type, that
 * Patient, that identifier), with every resource-pertainsToGoal link of
 * rule 1 (uuid5(goal system, value)) moved to the Patient's Goal. *out
 * stays NULL when r is no such resource. CW_NOMEM (reported) when memory
 * ran out. */
enum cw_status pk_upgrade_item(const struct cw_host *host, struct cw_ctx *ctx, const cJSON *r,
			       const char *const *types, const char *only_system, cJSON **out);

/* ----------------------------------------------------------- from FHIR */

/* What a Bundle entry is. A plugin keeps per entry a struct of its own
 * that begins with one of these. */
struct pk_entry {
	const cJSON *r;         /* entry.resource (may be NULL) */
	const char *type;       /* its resourceType, "" when none */
	const char *id, *full;  /* its id and entry.fullUrl, each may be NULL */
	bool used;              /* mapped, or reported */
};

/* A Bundle being read. The plugin sets host, ctx, format, the sizes and
 * meta_left_out; pk_in_open sets the rest. */
struct pk_in {
	const struct cw_host *host;
	struct cw_ctx *ctx;
	const char *format; /* the format's name in warnings, e.g. "peer-support" */
	size_t message;     /* the size of a warning buffer (at most PK_TEXT_MAX) */
	size_t path;        /* the size of a location buffer (at most PK_TEXT_MAX) */
	size_t sub;         /* the size of the buffer for what follows "resource." */
	size_t meta;        /* the size of the buffer for "meta.NAME" */
	bool meta_left_out; /* meta must be an object; its unmapped members are "left out" */
	void *entries;      /* n records of stride bytes, each starting with a struct pk_entry */
	size_t n, stride;
	bool nomem;
};

/* Indexes the entries of bundle into records of stride bytes, each a copy
 * of blank (the plugin's record with its own members set) with the struct
 * pk_entry filled in. CW_NOMEM (reported) when the arena is spent. */
enum cw_status pk_in_open(struct pk_in *in, const cJSON *bundle, const void *blank, size_t stride);
static inline struct pk_entry *pk_entry(const struct pk_in *in, size_t k)
{
	return (struct pk_entry *)(void *)((char *)in->entries + k * in->stride);
}
/* A warning ("not-supported") at where. */
void pk_warn(struct pk_in *in, const char *where, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* "Bundle.entry[k].resource" + "." + the formatted rest (when not empty),
 * in the arena ("Bundle" when it is spent). */
const char *pk_path(struct pk_in *in, size_t k, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* The entry a reference points to, when it has the given type, or -1: by
 * fullUrl, else by "type/id" at its end. */
long pk_resolve(const struct pk_in *in, const cJSON *ref, const char *type);
/* Warns about every member of entry k outside known (NULL-terminated);
 * resourceType and id always belong, and of meta only profile, versionId,
 * lastUpdated and source. */
void pk_unmapped(struct pk_in *in, size_t k, const char *const *known);
/* Warns about the entries neither mapped nor reported (all: also after the
 * arena ran out) — one warning per resource type, "2 Encounter resources
 * are not part of what; left out", at the first of them (pk_tally) — then
 * gives the verdict: CW_NOMEM (reported) or CW_OK. */
enum cw_status pk_in_close(struct pk_in *in, const char *what, bool all);

/* What an export leaves out whole, counted by resource type, so that a
 * person's record exported to one format gives one line per type outside the
 * format rather than one per resource, and the warnings about what was in
 * scope but could not be mapped stay visible. The caller owns the struct
 * (zero it to start); types and locations are borrowed and must outlive it.
 * Beyond PK_TALLY_TYPES types, the rest are counted in more. */
#define PK_TALLY_TYPES 48
struct pk_tally_type {
	const char *type;  /* "" for an entry without a resource */
	const char *first; /* where the first one is, set by the caller */
	size_t count;
};
struct pk_tally {
	size_t n, more;
	struct pk_tally_type by[PK_TALLY_TYPES];
};
/* Counts one resource of type (NULL: an entry without a resource); its
 * slot, whose count is 1 the first time (set first then), or NULL when the
 * resource went to more. */
struct pk_tally_type *pk_tally_add(struct pk_tally *t, const char *type);
/* "2 Encounter resources are", "1 Goal resource is", "1 entry without a
 * resource is" for slot s, into buf (snprintf's result). */
int pk_tally_subject(const struct pk_tally_type *s, char *buf, size_t size);

#endif
