/* plugin_kit — see plugin_kit.h. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "e2e/plugin_kit.h"
#include "e2e/harness.h"
#include "testenv.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "fhir/terminology.h"

struct plugin_host *tk_host;
static struct config tk_cfg;
static bool tk_cfg_set;
static struct terminology *tk_terms;

const char *tk_env_or(const char *name, const char *dflt)
{
	const char *v = getenv(name);
	return v && *v ? v : dflt;
}

char *tk_slurp(const char *path, size_t *len)
{
	size_t n = 0;
	char *buf = read_whole_file(path, &n);
	if (!buf)
		fprintf(stderr, "# cannot open %s\n", path);
	assert_non_null(buf);
	if (len)
		*len = n;
	return buf;
}

int tk_host_up(const char *format, const char *settings)
{
	const struct config *cfg = NULL;
	if (settings) {
		if (config_defaults(&tk_cfg) != 0)
			return -1;
		tk_cfg_set = true;
		cJSON_Delete(tk_cfg.plugins);
		tk_cfg.plugins = cJSON_Parse(settings);
		cfg = &tk_cfg;
	}
	tk_host = plugin_host_new(cfg, tk_terms);
	if (!tk_host || plugin_host_scan(tk_host, tk_env_or("CW_PLUGIN_DIR", "lib/crosswalk/plugins")) != 0 ||
	    plugin_host_start(tk_host) != 0)
		return -1;
	return plugin_host_format(tk_host, format, NULL) ? 0 : -1;
}

int tk_host_up_codes(const char *format, const char *settings)
{
	char err[256];
	tk_terms = terminology_new();
	if (!tk_terms || terminology_load_packs(tk_terms, "profiles/codes", err, sizeof err) < 0) {
		fprintf(stderr, "# code packs: %s\n", err);
		return -1;
	}
	terminology_seal(tk_terms);
	return tk_host_up(format, settings);
}

void tk_host_down(void)
{
	plugin_host_free(tk_host);
	tk_host = NULL;
	terminology_free(tk_terms);
	tk_terms = NULL;
	if (tk_cfg_set)
		config_release(&tk_cfg);
	tk_cfg_set = false;
}

void tk_call_begin(struct tk_call *c)
{
	memset(c, 0, sizeof *c);
	arena_init(&c->arena, 0);
	plugin_host_ctx(&c->ctx, tk_host, &c->arena, &c->oo, NULL);
}

void tk_call_end(struct tk_call *c)
{
	outcome_release(&c->oo);
	arena_release(&c->arena);
}

cJSON *tk_to_fhir(struct tk_call *c, const char *format, enum cw_media media, const char *text)
{
	char path[128];
	snprintf(path, sizeof path, "/ingest/%s", format);
	cJSON *b = NULL;
	int st = plugin_host_ingest(tk_host, &c->ctx, format, media, text, strlen(text), "POST", path, &b);
	assert_int_equal(st == 200, b != NULL);
	return b;
}

char *tk_from_fhir(struct tk_call *c, const char *format, enum cw_media media, cJSON *in)
{
	char path[128];
	snprintf(path, sizeof path, "/export/%s", format);
	char *out = NULL;
	size_t len = 0;
	if (plugin_host_export(tk_host, &c->ctx, format, media, in, "POST", path, &out, &len) != 200)
		return NULL;
	char *copy = malloc(len + 1);
	assert_non_null(copy);
	memcpy(copy, out, len);
	copy[len] = '\0';
	return copy;
}

void tk_expect_same_document(const char *path, bool csv, const char *doc, const char *out)
{
	if (csv) {
		if (strcmp(out, doc) != 0)
			fprintf(stderr, "# %s came back as:\n%s\n", path, out);
		assert_string_equal(out, doc);
		return;
	}
	cJSON *want = cJSON_Parse(doc), *got = cJSON_Parse(out);
	assert_non_null(want);
	assert_non_null(got);
	if (!cJSON_Compare(want, got, true))
		fprintf(stderr, "# %s came back as:\n%s\n", path, out);
	assert_true(cJSON_Compare(want, got, true));
	cJSON_Delete(want);
	cJSON_Delete(got);
}

static bool is_example_of(const char *name, const char *format)
{
	size_t n = strlen(name), fl = strlen(format);
	return strncmp(name, format, fl) == 0 && name[fl] == '-' &&
	       ((n > 5 && strcmp(name + n - 5, ".json") == 0) || (n > 4 && strcmp(name + n - 4, ".csv") == 0));
}

int tk_round_trip_examples(const char *dir, const char *format, void (*check)(const cJSON *bundle))
{
	DIR *d = opendir(dir);
	assert_non_null(d);
	struct dirent *de;
	int seen = 0;
	while ((de = readdir(d)) != NULL) {
		if (!is_example_of(de->d_name, format))
			continue;
		char path[512];
		snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
		bool csv = strstr(de->d_name, ".csv") != NULL;
		enum cw_media media = csv ? CW_MEDIA_CSV : CW_MEDIA_JSON;
		char *doc = tk_slurp(path, NULL);
		struct tk_call c;
		tk_call_begin(&c);
		cJSON *b = tk_to_fhir(&c, format, media, doc);
		if (!b) {
			fprintf(stderr, "# %s refused:\n", path);
			tk_dump(&c.oo);
		}
		assert_non_null(b);
		if (check)
			check(b);
		cJSON *again = tk_to_fhir(&c, format, media, doc);
		assert_true(cJSON_Compare(b, again, true)); /* same document, same Bundle */
		cJSON_Delete(again);
		char *out = tk_from_fhir(&c, format, media, b);
		assert_non_null(out);
		if (c.oo.n) {
			fprintf(stderr, "# %s: issues on the way back\n", path);
			tk_dump(&c.oo);
		}
		assert_int_equal(c.oo.n, 0);
		tk_expect_same_document(path, csv, doc, out);
		free(out);
		tk_call_end(&c);
		free(doc);
		seen++;
	}
	closedir(d);
	return seen;
}

void tk_expect_csv_and_json_agree(const char *format, const char *csv_path)
{
	char *csv = tk_slurp(csv_path, NULL);
	struct tk_call c;
	tk_call_begin(&c);
	cJSON *b = tk_to_fhir(&c, format, CW_MEDIA_CSV, csv);
	assert_non_null(b);
	char *json = tk_from_fhir(&c, format, CW_MEDIA_JSON, cJSON_Duplicate(b, 1));
	assert_non_null(json);
	cJSON *b2 = tk_to_fhir(&c, format, CW_MEDIA_JSON, json);
	assert_non_null(b2);
	assert_int_equal(cJSON_GetArraySize(tk_get(b, "entry")), cJSON_GetArraySize(tk_get(b2, "entry")));
	const cJSON *e, *f;
	cJSON_ArrayForEach(e, tk_get(b, "entry"))
	{
		bool found = false;
		cJSON_ArrayForEach(f, tk_get(b2, "entry")) found |= cJSON_Compare(e, f, true);
		assert_true(found);
	}
	cJSON_Delete(b);
	cJSON_Delete(b2);
	free(json);
	free(csv);
	tk_call_end(&c);
}

void tk_dump(const struct outcome *oo)
{
	for (size_t i = 0; i < oo->n; i++)
		fprintf(stderr, "#   %s %s [%s] %s\n", outcome_severity_name(oo->issues[i].severity), oo->issues[i].code,
			oo->issues[i].expression ? oo->issues[i].expression : "", oo->issues[i].diagnostics);
}

bool tk_has_issue(const struct outcome *oo, enum outcome_severity sev, const char *code, const char *where,
		  const char *text)
{
	for (size_t i = 0; i < oo->n; i++) {
		const struct outcome_issue *is = &oo->issues[i];
		if (is->severity == sev && (!code || strcmp(is->code, code) == 0) &&
		    (!where || (is->expression && strcmp(is->expression, where) == 0)) &&
		    (!text || strstr(is->diagnostics, text)))
			return true;
	}
	return false;
}

void tk_expect_issue(const struct outcome *oo, enum outcome_severity sev, const char *code, const char *where,
		     const char *text)
{
	if (!tk_has_issue(oo, sev, code, where, text)) {
		fprintf(stderr, "# missing %s issue %s at [%s] (%s); got:\n", outcome_severity_name(sev),
			code ? code : "*", where ? where : "*", text ? text : "");
		tk_dump(oo);
		fail();
	}
}

size_t tk_count_severity(const struct outcome *oo, enum outcome_severity sev)
{
	size_t n = 0;
	for (size_t i = 0; i < oo->n; i++)
		n += oo->issues[i].severity == sev;
	return n;
}

static void expect_refused(const char *format, enum cw_media media, const char *doc, size_t n,
			   const char *const (*expected)[3])
{
	struct tk_call c;
	tk_call_begin(&c);
	assert_null(tk_to_fhir(&c, format, media, doc));
	for (size_t i = 0; i < n; i++)
		tk_expect_issue(&c.oo, OUTCOME_ERROR, expected[i][0], expected[i][1], expected[i][2]);
	if (tk_count_severity(&c.oo, OUTCOME_ERROR) != n) {
		tk_dump(&c.oo);
		fail_msg("%zu errors, expected %zu", tk_count_severity(&c.oo, OUTCOME_ERROR), n);
	}
	tk_call_end(&c);
}

void tk_expect_json_refused(const char *format, const char *doc, size_t n, const char *const (*expected)[3])
{
	expect_refused(format, CW_MEDIA_JSON, doc, n, expected);
}

void tk_expect_json_shapes_refused(const char *format, const char *list)
{
	static const char *const not_object[][3] = {{"structure", "/", "JSON object"}};
	static const char *const empty[][3] = {{"required", "/", "at least one"}};
	static const char *const twice[][3] = {{"duplicate", "/1/person", "already given at /0"}};
	tk_expect_json_refused(format, "\"text\"", 1, not_object);
	tk_expect_json_refused(format, "[]", 1, empty);
#define TK_ONE_PERSON "{\"version\":1,\"person\":{\"identifier\":{\"system\":\"urn:p\",\"value\":\"1\"}},\"%s\":[]}"
	char doc[512];
	snprintf(doc, sizeof doc, "[" TK_ONE_PERSON "," TK_ONE_PERSON "]", list, list);
#undef TK_ONE_PERSON
	tk_expect_json_refused(format, doc, 1, twice);
}

void tk_expect_csv_refused(const char *format, const char *doc, size_t n, const char *const (*expected)[3])
{
	expect_refused(format, CW_MEDIA_CSV, doc, n, expected);
}

void tk_expect_csv_shapes_refused(const char *format, const char *good_header, const char *no_rows)
{
	static const char *const short_header[][3] = {{"structure", "line 1", "2 columns"},
						      {"structure", "line 2", "2 columns"}};
	static const char *const empty[][3] = {{"required", "line 1", "header"}};
	const char *const header_alone[][3] = {{"required", "line 2", no_rows}};
	tk_expect_csv_refused(format, "version,person_system\n1,urn:p\n", 2, short_header);
	tk_expect_csv_refused(format, "", 1, empty);
	tk_expect_csv_refused(format, good_header, 1, header_alone);
}

void tk_http_preview_twice(const struct gw *g, const char *format, const char *content_type, const char *doc,
			   size_t len, struct resp *r)
{
	char path[128], ct[128];
	snprintf(path, sizeof path, "/ingest/%s?preview=true", format);
	snprintf(ct, sizeof ct, "Content-Type: %s", content_type);
	const char *headers[] = {ct, NULL};
	struct resp again;
	assert_int_equal(http_do(g, "POST", path, headers, doc, len, r), 0);
	if (r->status != 200)
		fprintf(stderr, "# %s\n", r->body);
	assert_int_equal(r->status, 200);
	assert_int_equal(http_do(g, "POST", path, headers, doc, len, &again), 0);
	assert_int_equal(again.status, 200);
	assert_string_equal(r->body, again.body); /* the same document twice changes nothing */
	resp_free(&again);
}

void tk_http_export(const struct gw *g, const char *format, const char *accept, const char *bundle, size_t len,
		    struct resp *r)
{
	char path[128], acc[128];
	snprintf(path, sizeof path, "/export/%s", format);
	snprintf(acc, sizeof acc, "Accept: %s", accept);
	const char *headers[] = {"Content-Type: application/fhir+json", acc, NULL};
	assert_int_equal(http_do(g, "POST", path, headers, bundle, len, r), 0);
	assert_int_equal(r->status, 200);
}

void tk_http_export_json_is(const struct gw *g, const char *format, const char *bundle, size_t len, const char *doc)
{
	struct resp r;
	tk_http_export(g, format, "application/json", bundle, len, &r);
	cJSON *want = cJSON_Parse(doc), *got = cJSON_Parse(r.body);
	assert_true(cJSON_Compare(want, got, true));
	cJSON_Delete(want);
	cJSON_Delete(got);
	resp_free(&r);
}

void tk_http_csv_round_trip(const struct gw *g, const char *format, const char *csv_path)
{
	size_t len;
	char *doc = tk_slurp(csv_path, &len);
	char path[128];
	snprintf(path, sizeof path, "/ingest/%s?preview=true", format);
	const char *csv[] = {"Content-Type: text/csv; charset=utf-8", NULL};
	struct resp in, out;
	assert_int_equal(http_do(g, "POST", path, csv, doc, len, &in), 0);
	assert_int_equal(in.status, 200);
	tk_http_export(g, format, "text/csv", in.body, in.len, &out);
	assert_string_equal(out.body, doc);
	resp_free(&in);
	resp_free(&out);
	free(doc);
}

void tk_http_expect_refused(const struct gw *g, const char *format, const char *content_type, const char *doc, size_t n,
			    const char *const *exprs)
{
	char path[128], ct[128];
	snprintf(path, sizeof path, "/ingest/%s", format);
	snprintf(ct, sizeof ct, "Content-Type: %s", content_type);
	const char *headers[] = {ct, NULL};
	struct resp r;
	assert_int_equal(http_do(g, "POST", path, headers, doc, strlen(doc), &r), 0);
	assert_int_equal(r.status, 422);
	cJSON *oo = cJSON_Parse(r.body);
	assert_string_equal(tk_sget(oo, "resourceType"), "OperationOutcome");
	const cJSON *issues = tk_get(oo, "issue");
	assert_int_equal(cJSON_GetArraySize(issues), (int)n);
	for (size_t i = 0; i < n; i++)
		assert_string_equal(
			cJSON_GetArrayItem(tk_get(cJSON_GetArrayItem(issues, (int)i), "expression"), 0)->valuestring,
			exprs[i]);
	cJSON_Delete(oo);
	resp_free(&r);
}

const cJSON *tk_get(const cJSON *o, const char *key) { return cJSON_GetObjectItemCaseSensitive(o, key); }

const char *tk_sget(const cJSON *o, const char *key)
{
	const cJSON *v = tk_get(o, key);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

const cJSON *tk_nth(const cJSON *bundle, const char *type, int n)
{
	const cJSON *e;
	cJSON_ArrayForEach(e, tk_get(bundle, "entry"))
	{
		const cJSON *r = tk_get(e, "resource");
		const char *rt = tk_sget(r, "resourceType");
		if (rt && strcmp(rt, type) == 0 && n-- == 0)
			return r;
	}
	return NULL;
}

int tk_count_type(const cJSON *bundle, const char *type)
{
	int n = 0;
	while (tk_nth(bundle, type, n))
		n++;
	return n;
}
