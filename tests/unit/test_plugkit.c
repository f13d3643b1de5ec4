/* Unit tests: plugkit, the helpers the plugins share (plugins/common/),
 * through a fake host table: the same calls a plugin makes, with every
 * issue recorded as one line "SEVERITY CODE @LOCATION: MESSAGE". */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plugkit.h"

/* ------------------------------------------------------------ fake host */

static void *blocks[4096];
static size_t n_blocks, budget = (size_t)-1; /* bytes alloc may still hand out */
static char issues[8192];
static cJSON *settings;

static void *fake_alloc(struct cw_ctx *ctx, size_t size)
{
	(void)ctx;
	if (size > budget || n_blocks == sizeof blocks / sizeof blocks[0])
		return NULL;
	budget -= size;
	return blocks[n_blocks++] = calloc(1, size ? size : 1);
}

static char *fake_copy(struct cw_ctx *ctx, const char *s)
{
	char *c = s ? fake_alloc(ctx, strlen(s) + 1) : NULL;
	return c ? strcpy(c, s) : NULL;
}

static void fake_issue(struct cw_ctx *ctx, enum cw_severity sev, const char *code, const char *location,
		       const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void fake_issue(struct cw_ctx *ctx, enum cw_severity sev, const char *code, const char *location,
		       const char *fmt, ...)
{
	(void)ctx;
	static const char *const names[] = {"fatal", "error", "warning", "information"};
	size_t n = strlen(issues);
	n += (size_t)snprintf(issues + n, sizeof issues - n, "%s %s @%s: ", names[sev], code,
			      location ? location : "-");
	va_list ap;
	va_start(ap, fmt);
	if (n < sizeof issues)
		n += (size_t)vsnprintf(issues + n, sizeof issues - n, fmt, ap);
	va_end(ap);
	if (n + 1 < sizeof issues)
		strcat(issues, "\n");
}

static const cJSON *fake_config(struct cw_ctx *ctx)
{
	(void)ctx;
	return settings;
}

static cJSON *fake_reference(struct cw_ctx *ctx, const char *type, const char *id, const char *display)
{
	(void)ctx, (void)display;
	char ref[128];
	snprintf(ref, sizeof ref, "%s/%s", type, id);
	cJSON *r = cJSON_CreateObject();
	cJSON_AddStringToObject(r, "reference", ref);
	return r;
}

/* No identifier without a system: the host reports why. */
static cJSON *fake_identifier(struct cw_ctx *ctx, const char *system, const char *value)
{
	if (!system) {
		fake_issue(ctx, CW_SEV_ERROR, "value", NULL, "no system");
		return NULL;
	}
	cJSON *i = cJSON_CreateObject();
	cJSON_AddStringToObject(i, "system", system);
	cJSON_AddStringToObject(i, "value", value);
	return i;
}

static cJSON *fake_coding(struct cw_ctx *ctx, const char *system, const char *code, const char *display)
{
	(void)ctx;
	cJSON *c = cJSON_CreateObject();
	cJSON_AddStringToObject(c, "system", system);
	cJSON_AddStringToObject(c, "code", code);
	if (display)
		cJSON_AddStringToObject(c, "display", display);
	return c;
}

/* Numbers keep their literal, as the host's reader keeps it (integers
 * only, here). */
static void keep_literals(cJSON *j)
{
	for (; j; j = j->next) {
		char lit[32];
		snprintf(lit, sizeof lit, "%.0f", j->valuedouble);
		if (cJSON_IsNumber(j))
			j->valuestring = strdup(lit);
		keep_literals(j->child);
	}
}

static cJSON *fake_parse(struct cw_ctx *ctx, const char *data, size_t len)
{
	cJSON *j = cJSON_ParseWithLength(data, len);
	keep_literals(j);
	if (!j)
		fake_issue(ctx, CW_SEV_ERROR, "structure", "line 1, column 1", "not JSON");
	return j;
}

static char *fake_print(struct cw_ctx *ctx, const cJSON *tree, size_t *len)
{
	char *s = cJSON_PrintUnformatted(tree), *c = fake_copy(ctx, s);
	if (c && len)
		*len = strlen(c);
	free(s);
	return c;
}

static const struct cw_host host = {
	.abi_major = CW_PLUGIN_ABI_MAJOR,
	.struct_size = sizeof(struct cw_host),
	.alloc = fake_alloc,
	.copy_string = fake_copy,
	.issue = fake_issue,
	.config = fake_config,
	.make_reference = fake_reference,
	.make_coding = fake_coding,
	.make_identifier = fake_identifier,
	.parse_json = fake_parse,
	.print_json = fake_print,
};

static int reset(void **state)
{
	(void)state;
	for (size_t i = 0; i < n_blocks; i++)
		free(blocks[i]);
	n_blocks = 0;
	budget = (size_t)-1;
	issues[0] = '\0';
	cJSON_Delete(settings);
	settings = NULL;
	return 0;
}

static struct pk_reader reader(size_t where)
{
	return (struct pk_reader){.host = &host, .message = 512, .where = where, .root = "/", .is_text = pk_is_text,
				  .not_text = "not text"};
}

/* ---------------------------------------------------------------- tests */

static void values(void **state)
{
	(void)state;
	assert_true(pk_is_text("a b"));
	assert_false(pk_is_text(" a") || pk_is_text("a\n") || pk_is_text("") || pk_is_text(NULL));
	assert_true(pk_is_uri("urn:x", false) && pk_is_uri("http+x.y-z://h/p", false));
	assert_false(pk_is_uri("1x:y", false) || pk_is_uri("x:", false) || pk_is_uri("x y:z", false) ||
		     pk_is_uri("x:a b", false) || pk_is_uri("nocolon", false));
	assert_false(pk_is_uri("urn:a\x7f", false));
	assert_true(pk_is_uri("urn:a\x7f", true));
	assert_true(pk_npi_valid("1234567893"));
	assert_false(pk_npi_valid("1234567890") || pk_npi_valid("123456789") || pk_npi_valid("12345678x3"));
	assert_int_equal(pk_digits("2024x", 4), 2024);
	assert_int_equal(pk_digits("20x4", 4), -1);
	static const struct pk_code list[] = {{"a", "A"}, {"b", "B"}};
	assert_int_equal(pk_lookup(list, 2, "b"), 1);
	assert_int_equal(pk_lookup(list, 2, "c"), -1);
	assert_int_equal(pk_lookup(list, 2, NULL), -1);
	assert_true(pk_same(NULL, NULL) && pk_same("x", "x") && !pk_same("x", NULL));
	assert_false(pk_eq(NULL, NULL));
	struct pk_ident a = {"s", NULL}, b = {"s", NULL};
	assert_true(pk_same_ident(&a, &b));
	char name[16];
	cJSON *n = cJSON_Parse("{\"given\":[\"Ann\",7,\"Lee\"],\"family\":\"Doe\"}");
	pk_join_name(n, name, sizeof name);
	assert_string_equal(name, "Ann Lee Doe");
	pk_join_name(n, name, 6);
	assert_string_equal(name, "Ann L");
	cJSON_Delete(n);
}

static void pointers(void **state)
{
	(void)state;
	char out[64];
	pk_ptr(out, sizeof out, "/a", "b/c~d");
	assert_string_equal(out, "/a/b~1c~0d");
	pk_ptr(out, sizeof out, "", "x");
	assert_string_equal(out, "/x");
	pk_ptr(out, 10, "/abc", "defgh");
	assert_string_equal(out, "/abc/de"); /* cut with room left for an escape */
	pk_ptr(out, 4, "/abcdef", "x");
	assert_string_equal(out, "/ab");
}

static void arrays(void **state)
{
	(void)state;
	int *v = NULL;
	size_t n = 0, cap = 0;
	for (int i = 0; i < 20; i++) {
		int *x = pk_append(&host, NULL, &v, &n, &cap, sizeof *v);
		assert_non_null(x);
		assert_int_equal(*x, 0);
		*x = i;
	}
	assert_int_equal(n, 20);
	assert_int_equal(cap, 32);
	for (int i = 0; i < 20; i++)
		assert_int_equal(v[i], i);
	budget = 0;
	for (int i = 20; i < 32; i++)
		assert_non_null(pk_append(&host, NULL, &v, &n, &cap, sizeof *v)); /* room left */
	int *old = v;
	assert_null(pk_append(&host, NULL, &v, &n, &cap, sizeof *v));
	assert_ptr_equal(v, old);
	assert_int_equal(n, 32);
}

static void json_members(void **state)
{
	(void)state;
	struct pk_reader r = reader(16);
	static const char *const allowed[] = {"id", "item", "list", NULL};
	cJSON *o = cJSON_Parse("{\"id\":\" x\",\"item\":[],\"list\":[],\"a/b\":1,\"long-member-name\":2}");
	char where[16];
	pk_only_members(&r, o, "/doc", allowed);
	assert_string_equal(pk_string_member(&r, o, "id", "/doc", true), " x");
	assert_null(pk_string_member(&r, o, "nothing", "", true));
	assert_null(pk_object_member(&r, o, "item", "/doc", true, where, sizeof where));
	assert_null(pk_array_member(&r, o, "list", "/doc", true, false, where, sizeof where));
	assert_non_null(pk_array_member(&r, o, "list", "/doc", true, true, where, sizeof where));
	pk_check_version(&r, o, "");
	assert_string_equal(issues, "error structure @/doc/a~1b: unknown member 'a/b'\n"
				    "error structure @/doc/long-mem: unknown member 'long-member-name'\n"
				    "error value @/doc/id: not text\n"
				    "error required @/nothing: 'nothing' is required\n"
				    "error structure @/doc/item: 'item' must be an object\n"
				    "error structure @/doc/list: 'list' must be a non-empty array\n"
				    "error required @/version: 'version' is required\n");
	assert_int_equal(r.errors, 7);
	assert_int_equal(pk_finish(&r), CW_INVALID);
	cJSON_Delete(o);
}

static void no_space(struct pk_reader *r, const char *s, const char *where)
{
	if (strchr(s, ' '))
		pk_bad(r, "value", where, "a system has no space");
}

static void identifiers_and_codes(void **state)
{
	(void)state;
	struct pk_reader r = reader(64);
	cJSON *o = cJSON_Parse("{\"identifier\":{\"system\":\"a b\",\"value\":\"v\",\"x\":1},\"code\":\"z\"}");
	struct pk_ident id = {0};
	pk_read_ident(&r, o, "identifier", "", true, &id, no_space);
	assert_string_equal(id.system, "a b");
	assert_string_equal(id.value, "v");
	static const struct pk_code list[] = {{"a", "A"}, {"b", "B"}};
	assert_int_equal(pk_check_code(&r, list, 2, "z", "code", "/code"), -1);
	r.root = NULL;
	pk_bad(&r, "required", "", "the whole document");
	assert_string_equal(issues, "error structure @/identifier/x: unknown member 'x'\n"
				    "error value @/identifier/system: a system has no space\n"
				    "error code-invalid @/code: unknown code 'z' (one of: a, b)\n"
				    "error required @-: the whole document\n");
	cJSON_Delete(o);
}

/* A record format of "things", each {"id": text} or a CSV row
 * version,person_system,person_value,person_name,id. */
struct thing {
	struct pk_item it;
	const char *id;
};

static void read_thing(struct pk_reader *r, const cJSON *o, const char *base, void *item)
{
	((struct thing *)item)->id = pk_string_member(r, o, "id", base, true);
}

static void read_thing_row(struct pk_reader *r, const struct pk_csv_row *row, void *item)
{
	(void)r;
	((struct thing *)item)->id = pk_opt(row->cell[4]);
}

static void check_things(struct pk_reader *r, const struct pk_doc *doc, bool csv)
{
	(void)csv;
	if (doc->n > 2)
		pk_bad(r, "value", NULL, "at most two things");
}

static const struct thing *thing(const struct pk_doc *doc, size_t i)
{
	return (const struct thing *)(const void *)pk_doc_item(doc, sizeof(struct thing), i);
}

static cJSON *thing_json(const struct pk_doc *doc, size_t i)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "id", thing(doc, i)->id);
	return o;
}

static void thing_row(struct pk_buf *b, const struct pk_doc *doc, size_t i) { pk_csv_cell(b, thing(doc, i)->id, true); }

static enum cw_status things_to_bundle(struct cw_ctx *ctx, const struct pk_doc *doc, cJSON **out)
{
	(void)ctx;
	*out = cJSON_CreateObject();
	cJSON_AddNumberToObject(*out, "people", (double)doc->people.n);
	cJSON_AddNumberToObject(*out, "things", (double)doc->n);
	return CW_OK;
}

/* Whatever the Bundle: two people, a thing of the first. */
static enum cw_status things_from_bundle(struct cw_ctx *ctx, const cJSON *bundle, struct pk_doc *doc)
{
	(void)bundle;
	struct pk_person *p = pk_add_person(&host, ctx, &doc->people);
	*p = (struct pk_person){.id = {"s", "1"}, .name = "Ann"};
	p = pk_add_person(&host, ctx, &doc->people);
	*p = (struct pk_person){.id = {"s", "2"}};
	struct thing *t = pk_doc_add(&host, ctx, doc, sizeof *t);
	*t = (struct thing){.it = {.person = 0}, .id = "a=\"1\""};
	return CW_OK;
}

static const char *const thing_members[] = {"id", NULL};
static const char *const thing_header[] = {"version", "person_system", "person_value", "person_name", "id"};
static const bool thing_optional[5] = {[3] = true};
static const bool thing_lists[5] = {false};

static const struct pk_records things = {
	.message = 512, .where = 256, .is_text = pk_is_text, .not_text = "not text", .check_system = no_space,
	.kind = "thing", .noun = "list", .items = "things", .item = "a thing", .item_members = thing_members,
	.item_size = sizeof(struct thing), .read = read_thing, .check = check_things, .item_json = thing_json,
	.header = thing_header, .columns = 5, .optional = thing_optional, .lists = thing_lists,
	.no_rows = "no thing rows", .no_items = "without things", .read_row = read_thing_row, .write_row = thing_row,
	.to_bundle = things_to_bundle, .from_bundle = things_from_bundle, .report_nomem = true,
};

/* Reads text as a thing list: the verdict and the issues (then cleared)
 * must be these; the Bundle, if any. */
static cJSON *read_things(enum cw_media media, const char *text, enum cw_status status, const char *want)
{
	cJSON *out = NULL;
	assert_int_equal(pk_records_to_fhir(&things, &host, NULL, text, strlen(text), media, &out), status);
	assert_string_equal(issues, want);
	issues[0] = '\0';
	return out;
}

static void records(void **state)
{
	(void)state;
	read_things(CW_MEDIA_JSON,
		    "[{\"version\":1,\"person\":{\"identifier\":{\"system\":\"s\",\"value\":\"1\"}},"
		    "\"things\":[{\"id\":\"a\"},7]},"
		    "{\"version\":2,\"person\":{\"identifier\":{\"system\":\"s\",\"value\":\"1\"}},\"things\":{}}]",
		    CW_INVALID,
		    "error structure @/0/things/1: a thing must be an object\n"
		    "error not-supported @/1/version: this plugin reads version 1 of the format\n"
		    "error duplicate @/1/person: this person's list was already given at /0\n"
		    "error structure @/1/things: 'things' must be an array\n");
	read_things(CW_MEDIA_CSV,
		    "\xEF\xBB\xBFversion,person_system,person_value,person_name,id\r\n"
		    "1,s,1,Ann,a\r\n1,s,1,Bea,\"b,c\"\r\n2,s,2,,\"x\"y\n",
		    CW_INVALID,
		    "error conflict @line 3, column 4: person_name differs from the one at line 2\n"
		    "error structure @line 4: a quoted cell is malformed (RFC 4180)\n"
		    "error not-supported @line 4, column 1: this plugin reads version 1 of the format\n"
		    "error value @-: at most two things\n");
	read_things(CW_MEDIA_CSV, "x", CW_INVALID,
		    "error structure @line 1: the header has 1 columns, the format has 5\n"
		    "error structure @line 1, column 1: header 'x' where 'version' belongs\n"
		    "error required @line 2: no thing rows\n");
	cJSON *out = read_things(CW_MEDIA_CSV,
				 "version,person_system,person_value,person_name,id\n1,s,1,,a\n1,s,2,Bea,\"b,c\"\n",
				 CW_OK, "");
	char *text = cJSON_PrintUnformatted(out);
	assert_string_equal(text, "{\"people\":2,\"things\":2}");
	free(text);
	cJSON_Delete(out);
}

static void writing(void **state)
{
	(void)state;
	char *out;
	size_t len;
	assert_int_equal(pk_records_from_fhir(&things, &host, NULL, NULL, CW_MEDIA_JSON, &out, &len), CW_OK);
	assert_string_equal(out, "[{\"version\":1,\"person\":{\"identifier\":{\"system\":\"s\",\"value\":\"1\"},"
				 "\"name\":\"Ann\"},\"things\":[{\"id\":\"a=\\\"1\\\"\"}]},{\"version\":1,\"person\":"
				 "{\"identifier\":{\"system\":\"s\",\"value\":\"2\"}},\"things\":[]}]");
	assert_int_equal(pk_records_from_fhir(&things, &host, NULL, NULL, CW_MEDIA_CSV, &out, &len), CW_OK);
	assert_string_equal(out, "version,person_system,person_value,person_name,id\n1,s,1,Ann,\"a=\"\"1\"\"\"\n");
	assert_int_equal(len, strlen(out));
	assert_string_equal(issues, "warning not-supported @-: a person without things has no CSV row; person 2 left out\n");
	issues[0] = '\0';
	budget = 600; /* the document's arrays fit (items carry their version); its text does not */
	assert_int_equal(pk_records_from_fhir(&things, &host, NULL, NULL, CW_MEDIA_JSON, &out, &len), CW_NOMEM);
	assert_string_equal(issues, "error exception @-: out of memory\n");

	budget = (size_t)-1;
	struct pk_buf b = {.host = &host};
	pk_csv_cell(&b, "plain", false);
	const char *items[] = {"x", "y,z"};
	pk_csv_list(&b, items, 2, true);
	assert_true(pk_buf_finish(&b, &out, &len));
	assert_string_equal(out, "plain,\"x;y,z\"\n");
	assert_int_equal(len, 14);

	/* the guard against formula injection: an apostrophe before a cell a
	 * spreadsheet would run, inside the quotes when quoted; plain negative
	 * numbers and ordinary cells as they are */
	static const char *const cells[][2] = {
		{"plain text", "plain text"},   {"", ""},
		{"a=b", "a=b"},                 {"=1+1", "'=1+1"},
		{"+1", "'+1"},                  {"-x", "'-x"},
		{"@SUM(A1)", "'@SUM(A1)"},      {"\tx", "'\tx"},
		{"\rx", "\"'\rx\""},          {"=HYPERLINK(\"u\",\"v\")", "\"'=HYPERLINK(\"\"u\"\",\"\"v\"\")\""},
		{"-12", "-12"},                 {"-3.5", "-3.5"},
		{"-1e5", "'-1e5"},              {"-", "'-"},
		{"-3.", "'-3."},                {"'=x", "''=x"},
		{"'-12", "''-12"},              {"'plain", "'plain"},
		{"12", "12"},
	};
	for (size_t i = 0; i < sizeof cells / sizeof cells[0]; i++) {
		struct pk_buf c = {.host = &host};
		pk_csv_cell(&c, cells[i][0], true);
		assert_true(pk_buf_finish(&c, &out, &len));
		char want[128];
		snprintf(want, sizeof want, "%s\n", cells[i][1]);
		assert_string_equal(out, want);
		bool quoted = cells[i][1][0] == '"';
		assert_int_equal(pk_csv_guarded(cells[i][0]),
				 cells[i][1][quoted] == '\'' && strcmp(cells[i][0], cells[i][1]) != 0);
	}
	struct pk_buf a = {.host = &host, .in_arena = true};
	pk_put(&a, "abc", 3);
	assert_true(pk_buf_finish(&a, &out, &len));
	assert_string_equal(out, "abc");
	a = (struct pk_buf){.host = &host, .in_arena = true};
	budget = 100;
	pk_put(&a, "abc", 3); /* the first block is 4096 bytes */
	assert_false(pk_buf_finish(&a, &out, &len));
}

static void to_fhir(void **state)
{
	(void)state;
	struct pk_out o = {.host = &host};
	cJSON *b = pk_transaction(&o), *out = NULL;
	struct pk_ident ann = {"s", "1"}, goal = {"g", "G-1"};
	pk_patient(&o, "p1", "urn:profile", &ann, "Ann");
	assert_int_equal(pk_close(&o, b, &out), CW_OK);
	char *text = cJSON_PrintUnformatted(out);
	assert_string_equal(text, "{\"resourceType\":\"Bundle\",\"type\":\"transaction\",\"entry\":[{\"resource\":"
				  "{\"resourceType\":\"Patient\",\"id\":\"p1\",\"meta\":{\"profile\":[\"urn:profile\"]},"
				  "\"identifier\":[{\"system\":\"s\",\"value\":\"1\"}],\"name\":[{\"text\":\"Ann\"}]},"
				  "\"request\":{\"method\":\"PUT\",\"url\":\"Patient/p1\"}}]}");
	free(text);
	cJSON_Delete(out);
	cJSON *ext = cJSON_CreateArray();
	assert_true(pk_goal_link(&o, ext, "g1", &goal));
	text = cJSON_PrintUnformatted(ext);
	assert_string_equal(text, "[{\"url\":\"" PK_PERTAINS_TO_GOAL "\",\"valueReference\":{\"reference\":\"Goal/g1\","
				  "\"type\":\"Goal\",\"identifier\":{\"system\":\"g\",\"value\":\"G-1\"}}}]");
	free(text);
	cJSON_Delete(ext);
	o = (struct pk_out){.host = &host};
	b = pk_transaction(&o);
	struct pk_ident none = {NULL, "x"};
	pk_patient(&o, "p2", "urn:profile", &none, NULL);
	assert_true(o.failed);
	assert_int_equal(pk_close(&o, b, &out), CW_INVALID);
	assert_string_equal(issues, "error value @-: no system\n");
}

/* An entry of the tests below, with a member of its own. */
struct rec {
	struct pk_entry e;
	long mark;
};

static void from_fhir(void **state)
{
	(void)state;
	cJSON *bundle = cJSON_Parse(
		"{\"entry\":[{\"fullUrl\":\"urn:uuid:1\",\"resource\":{\"resourceType\":\"Patient\",\"id\":\"p\","
		"\"meta\":{\"profile\":[],\"tag\":[]},\"zz\":1}},"
		"{\"resource\":{\"resourceType\":\"Goal\",\"id\":\"g\",\"meta\":5}},{\"request\":{}}]}");
	struct pk_in in = {.host = &host, .format = "test", .message = 512, .path = 40, .sub = 12, .meta = 8};
	static const struct rec blank = {.mark = -1};
	assert_int_equal(pk_in_open(&in, bundle, &blank, sizeof blank), CW_OK);
	assert_int_equal(in.n, 3);
	const struct rec *v = in.entries;
	assert_int_equal(v[2].mark, -1);
	assert_string_equal(v[2].e.type, "");
	assert_string_equal(v[0].e.full, "urn:uuid:1");
	cJSON *ref = cJSON_Parse("{\"reference\":\"urn:uuid:1\"}");
	assert_int_equal(pk_resolve(&in, ref, "Patient"), 0);
	assert_int_equal(pk_resolve(&in, ref, "Goal"), -1);
	cJSON_Delete(ref);
	ref = cJSON_Parse("{\"reference\":\"http://h/fhir/Goal/g\"}");
	assert_int_equal(pk_resolve(&in, ref, "Goal"), 1);
	cJSON_Delete(ref);
	ref = cJSON_Parse("{\"reference\":\"XGoal/g\"}");
	assert_int_equal(pk_resolve(&in, ref, "Goal"), -1);
	cJSON_Delete(ref);
	assert_string_equal(pk_path(&in, 12, "%s", "abcdefghijklmnop"), "Bundle.entry[12].resource.abcdefghijk");
	static const char *const known[] = {NULL};
	pk_unmapped(&in, 0, known);
	in.meta_left_out = true;
	pk_unmapped(&in, 1, known);
	pk_entry(&in, 0)->used = true;
	assert_int_equal(pk_in_close(&in, "a test", false), CW_OK);
	assert_string_equal(issues, "warning not-supported @Bundle.entry[0].resource.meta.ta: Patient.meta.tag is not "
				    "carried by the test format\n"
				    "warning not-supported @Bundle.entry[0].resource.zz: Patient.zz has no place in the "
				    "test format; left out\n"
				    "warning not-supported @Bundle.entry[1].resource.meta: Goal.meta has no place in the "
				    "test format; left out\n"
				    "warning not-supported @Bundle.entry[1].resource: 1 Goal resource is not part of a "
				    "test; left out\n"
				    "warning not-supported @Bundle.entry[2].resource: 1 entry without a resource is not "
				    "part of a test; left out\n");
	cJSON_Delete(bundle);
}

/* Entries outside the format: one warning per type, at the first of each,
 * with the count; the entries used give none. */
static void left_out_by_type(void **state)
{
	(void)state;
	cJSON *bundle = cJSON_Parse("{\"entry\":[{\"resource\":{\"resourceType\":\"Encounter\",\"id\":\"e1\"}},"
				    "{\"resource\":{\"resourceType\":\"Patient\",\"id\":\"p\"}},"
				    "{\"resource\":{\"resourceType\":\"Goal\",\"id\":\"g\"}},"
				    "{\"resource\":{\"resourceType\":\"Encounter\",\"id\":\"e2\"}},"
				    "{\"resource\":{\"resourceType\":\"Encounter\"}}]}");
	struct pk_in in = {.host = &host, .format = "test", .message = 512, .path = 64, .sub = 12, .meta = 8};
	static const struct rec blank = {.mark = -1};
	assert_int_equal(pk_in_open(&in, bundle, &blank, sizeof blank), CW_OK);
	pk_entry(&in, 1)->used = true;
	assert_int_equal(pk_in_close(&in, "the test format", false), CW_OK);
	assert_string_equal(issues, "warning not-supported @Bundle.entry[0].resource: 3 Encounter resources are not "
				    "part of the test format; left out\n"
				    "warning not-supported @Bundle.entry[2].resource: 1 Goal resource is not part of the "
				    "test format; left out\n");
	cJSON_Delete(bundle);

	struct pk_tally t;
	memset(&t, 0, sizeof t);
	char name[PK_TALLY_TYPES + 1][16], buf[64];
	for (int i = 0; i <= PK_TALLY_TYPES; i++) {
		snprintf(name[i], sizeof name[i], "T%d", i);
		struct pk_tally_type *s = pk_tally_add(&t, name[i]);
		assert_true(i < PK_TALLY_TYPES ? s != NULL && s->count == 1 : s == NULL);
	}
	assert_int_equal(t.n, PK_TALLY_TYPES);
	assert_int_equal(t.more, 1);
	assert_int_equal(pk_tally_add(&t, "T0")->count, 2);
	pk_tally_subject(&t.by[0], buf, sizeof buf);
	assert_string_equal(buf, "2 T0 resources are");
}

static void plugin_settings(void **state)
{
	(void)state;
	settings = cJSON_Parse("{\"a\":\"x\",\"b\":1,\"c\":2}");
	static const char *const known[] = {"a", "b", NULL};
	assert_true(pk_settings(&host, NULL, "p", (const char *const[]){"a", "b", "c", NULL}, false));
	assert_false(pk_settings(&host, NULL, "p", known, true));
	assert_string_equal(issues, "error structure @plugins.p.b: must be a string\n"
				    "error not-supported @plugins.p: unknown setting 'c'\n");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(values, reset),
		cmocka_unit_test_teardown(pointers, reset),
		cmocka_unit_test_teardown(arrays, reset),
		cmocka_unit_test_teardown(json_members, reset),
		cmocka_unit_test_teardown(identifiers_and_codes, reset),
		cmocka_unit_test_teardown(records, reset),
		cmocka_unit_test_teardown(writing, reset),
		cmocka_unit_test_teardown(to_fhir, reset),
		cmocka_unit_test_teardown(from_fhir, reset),
		cmocka_unit_test_teardown(left_out_by_type, reset),
		cmocka_unit_test_teardown(plugin_settings, reset),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
