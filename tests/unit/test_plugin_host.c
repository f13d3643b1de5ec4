/* Unit tests of the plugin host and its services: arena, crypto ids, FHIR
 * helpers, terminology, descriptor checks, init/fini order, hook order at
 * every point, stop/change/replace semantics, the host table, and loading
 * the built test plugins with dlopen. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdalign.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/arena.h"
#include "base/crypto.h"
#include "fhir/fhir_helpers.h"
#include "plugin/plugin_host.h"
#include "fhir/terminology.h"

/* ---------------------------------------------------------------- arena */

static void arena_allocates_aligned_zeroed_and_bounded(void **state)
{
	(void)state;
	struct arena a;
	arena_init(&a, 64 * 1024);
	for (int i = 1; i < 200; i++) {
		unsigned char *p = arena_alloc(&a, (size_t)i);
		assert_non_null(p);
		assert_int_equal((uintptr_t)p % alignof(max_align_t), 0);
		for (int k = 0; k < i; k++)
			assert_int_equal(p[k], 0);
		memset(p, 0xab, (size_t)i);
	}
	assert_null(arena_alloc(&a, 1 << 20)); /* beyond the budget */
	assert_non_null(arena_alloc(&a, 16));  /* still usable */
	assert_string_equal(arena_strdup(&a, "hello"), "hello");
	assert_null(arena_strdup(&a, NULL));
	assert_string_equal(arena_strndup(&a, "hello", 3), "hel");
	arena_release(&a);
	assert_non_null(arena_alloc(&a, 100));
	arena_release(&a);
}

/* --------------------------------------------------------------- crypto */

static void crypto_known_vectors(void **state)
{
	(void)state;
	uint8_t d[32];
	assert_int_equal(crypto_sha256("abc", 3, d), 0);
	static const uint8_t abc256[4] = {0xba, 0x78, 0x16, 0xbf};
	assert_memory_equal(d, abc256, 4);
	assert_int_equal(crypto_sha1("abc", 3, d), 0);
	static const uint8_t abc1[4] = {0xa9, 0x99, 0x3e, 0x36};
	assert_memory_equal(d, abc1, 4);
	/* RFC 4122 / Python's uuid.uuid5(NAMESPACE_DNS, "python.org"). */
	uint8_t u[16];
	char text[CRYPTO_UUID_TEXT];
	assert_int_equal(crypto_uuid5(crypto_ns_dns, "python.org", 10, u), 0);
	crypto_uuid_format(u, text);
	assert_string_equal(text, "886313e1-3b8a-5372-9b90-0c9aee199e5d");
	uint8_t back[16];
	assert_true(crypto_uuid_parse("886313E1-3B8A-5372-9B90-0C9AEE199E5D", back));
	assert_memory_equal(back, u, 16);
	assert_false(crypto_uuid_parse("886313e1-3b8a-5372-9b90-0c9aee199e5", back));
	assert_false(crypto_uuid_parse("886313e1x3b8a-5372-9b90-0c9aee199e5d", back));
}

static void deterministic_ids(void **state)
{
	(void)state;
	char a[FHIR_ID_SIZE], b[FHIR_ID_SIZE];
	/* A UUID namespace is used as is. */
	assert_int_equal(fhir_make_id("6ba7b810-9dad-11d1-80b4-00c04fd430c8", "python.org", a), 0);
	assert_string_equal(a, "886313e1-3b8a-5372-9b90-0c9aee199e5d");
	/* Any other namespace is first turned into uuid5(NS_URL, ns). */
	assert_int_equal(fhir_make_id("urn:crosswalk:echo", "a1", a), 0);
	assert_string_equal(a, "fc48c23a-ef3e-5389-9da0-e01c5f8333b2");
	assert_int_equal(fhir_make_id("urn:crosswalk:echo", "a1", b), 0);
	assert_string_equal(a, b);
	assert_int_equal(fhir_make_id("urn:crosswalk:echo", "a2", b), 0);
	assert_string_not_equal(a, b);
	assert_true(fhir_is_id(a));
	assert_int_equal(fhir_make_id("", "k", a), -1);
	assert_int_equal(fhir_make_id("ns", NULL, a), -1);
}

/* ---------------------------------------------------------- FHIR helpers */

static void dates(void **state)
{
	(void)state;
	char d[FHIR_DATE_SIZE];
	assert_int_equal(fhir_iso_date("2024-02-29", d), 0);
	assert_string_equal(d, "2024-02-29");
	assert_int_equal(fhir_iso_date("20240315", d), 0);
	assert_string_equal(d, "2024-03-15");
	assert_int_equal(fhir_iso_date("03/15/2024", d), 0);
	assert_string_equal(d, "2024-03-15");
	assert_int_equal(fhir_iso_date("2023-02-29", d), -1);
	assert_int_equal(fhir_iso_date("1900-02-29", d), -1);
	assert_int_equal(fhir_iso_date("2000-02-29", d), 0);
	assert_int_equal(fhir_iso_date("2024-13-01", d), -1);
	assert_int_equal(fhir_iso_date("2024-1-01", d), -1);
	assert_int_equal(fhir_iso_date("0999-01-01", d), -1);
	assert_int_equal(fhir_iso_date("", d), -1);
	assert_int_equal(fhir_iso_date(NULL, d), 0);
	assert_int_equal(strlen(d), 10);
}

static void builders(void **state)
{
	(void)state;
	char why[128];
	cJSON *r = fhir_reference("Patient", "p-1", "A person", why, sizeof why);
	assert_non_null(r);
	assert_string_equal(cJSON_GetObjectItem(r, "reference")->valuestring, "Patient/p-1");
	assert_string_equal(cJSON_GetObjectItem(r, "display")->valuestring, "A person");
	cJSON_Delete(r);
	assert_null(fhir_reference("patient", "p-1", NULL, why, sizeof why));
	assert_null(fhir_reference("Patient", "bad id", NULL, why, sizeof why));
	assert_non_null(strstr(why, "id"));
	cJSON *c = fhir_coding("http://loinc.org", "44249-1", NULL, why, sizeof why);
	assert_non_null(c);
	assert_null(cJSON_GetObjectItem(c, "display"));
	cJSON_Delete(c);
	assert_null(fhir_coding("not a uri", "x", NULL, why, sizeof why));
	assert_null(fhir_coding("http://x", " x", NULL, why, sizeof why));
	cJSON *i = fhir_identifier("urn:oid:1.2.3", "42", why, sizeof why);
	assert_string_equal(cJSON_GetObjectItem(i, "value")->valuestring, "42");
	cJSON_Delete(i);
	assert_null(fhir_identifier("urn:oid:1.2.3", "", why, sizeof why));
	assert_true(fhir_is_absolute_uri("urn:x"));
	assert_false(fhir_is_absolute_uri("x y:z"));
	assert_false(fhir_is_id(""));
	assert_true(fhir_is_id("A-1.b"));
}

/* ----------------------------------------------------------- terminology */

static const char cs_json[] =
	"{\"resourceType\":\"CodeSystem\",\"url\":\"urn:test:dims\",\"concept\":["
	"{\"code\":\"health\",\"display\":\"Health\",\"concept\":[{\"code\":\"sleep\",\"display\":\"Sleep\"}]},"
	"{\"code\":\"home\",\"display\":\"Home\"},{\"code\":\"bare\"}]}";

static void terminology_registry(void **state)
{
	(void)state;
	struct terminology *t = terminology_new();
	char err[256];
	cJSON *cs = cJSON_Parse(cs_json);
	assert_int_equal(terminology_add(t, cs, err, sizeof err), 0);
	cJSON_Delete(cs);
	assert_int_equal(terminology_add_code(t, "urn:test:pack", "F32.A", "Depression, unspecified"), 0);
	terminology_seal(t);
	assert_true(terminology_system_known(t, "urn:test:dims"));
	assert_false(terminology_system_known(t, "urn:test:other"));
	assert_string_equal(terminology_lookup(t, "urn:test:dims", "sleep"), "Sleep");
	assert_string_equal(terminology_lookup(t, "urn:test:dims", "home"), "Home");
	assert_string_equal(terminology_lookup(t, "urn:test:dims", "bare"), "");
	assert_null(terminology_lookup(t, "urn:test:dims", "purpose"));
	assert_string_equal(terminology_lookup(t, "urn:test:pack", "F32.A"), "Depression, unspecified");
	cJSON *notcs = cJSON_Parse("{\"resourceType\":\"ValueSet\",\"url\":\"x\"}");
	assert_int_equal(terminology_add(t, notcs, err, sizeof err), -1);
	cJSON_Delete(notcs);
	terminology_free(t);
}

static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void terminology_loads_a_directory(void **state)
{
	(void)state;
	char dir[] = "/tmp/cw-terms-XXXXXX", path[300], sub[300];
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/CodeSystem-dims.json", dir);
	write_text(path, cs_json);
	snprintf(sub, sizeof sub, "%s/more", dir);
	assert_int_equal(mkdir(sub, 0755), 0);
	snprintf(path, sizeof path, "%s/more/other.json", dir);
	write_text(path, "{\"resourceType\":\"CodeSystem\",\"url\":\"urn:test:nested\",\"concept\":[{\"code\":\"a\"}]}");
	snprintf(path, sizeof path, "%s/StructureDefinition-x.json", dir);
	write_text(path, "{\"resourceType\":\"StructureDefinition\"}");
	struct terminology *t = terminology_new();
	char err[512];
	assert_int_equal(terminology_load_dir(t, dir, err, sizeof err), 2);
	terminology_seal(t);
	assert_string_equal(terminology_lookup(t, "urn:test:dims", "health"), "Health");
	assert_true(terminology_system_known(t, "urn:test:nested"));
	terminology_free(t);

	snprintf(path, sizeof path, "%s/CodeSystem-broken.json", dir);
	write_text(path, "{\"resourceType\":\"CodeSystem\",");
	t = terminology_new();
	assert_int_equal(terminology_load_dir(t, dir, err, sizeof err), -1);
	assert_non_null(strstr(err, "CodeSystem-broken.json"));
	terminology_free(t);

	t = terminology_new();
	assert_int_equal(terminology_load_dir(t, "/tmp/cw-no-such-profiles", err, sizeof err), 0);
	terminology_free(t);
}

/* ------------------------------------------------- built-in test plugins */

static char calls[256]; /* what the fake plugins did, in order */

static void note(const char *s)
{
	size_t n = strlen(calls);
	snprintf(calls + n, sizeof calls - n, "%s ", s);
}

static const struct cw_host *host_a, *host_b;

static enum cw_status init_a(const struct cw_host *h, struct cw_ctx *ctx)
{
	host_a = h;
	note("init-a");
	const char *v = h->config_string(ctx, "greeting", "none");
	note(v);
	return CW_OK;
}
static void fini_a(struct cw_ctx *ctx)
{
	(void)ctx;
	note("fini-a");
}
static enum cw_status init_b(const struct cw_host *h, struct cw_ctx *ctx)
{
	(void)ctx;
	host_b = h;
	note("init-b");
	return CW_OK;
}
static void fini_b(struct cw_ctx *ctx)
{
	(void)ctx;
	note("fini-b");
}

/* Each hook appends its label to the resource's "trail" array. */
static enum cw_hook_result trail(cJSON **res, const char *label)
{
	cJSON *t = cJSON_GetObjectItem(*res, "trail");
	if (!t)
		t = cJSON_AddArrayToObject(*res, "trail");
	cJSON_AddItemToArray(t, cJSON_CreateString(label));
	return CW_HOOK_CHANGED;
}

static enum cw_hook_result a_any_30(struct cw_ctx *c, const struct cw_hook_args *a, cJSON **r)
{
	(void)c, (void)a;
	return r && *r ? trail(r, "a30") : CW_HOOK_CONTINUE;
}
static enum cw_hook_result a_any_10(struct cw_ctx *c, const struct cw_hook_args *a, cJSON **r)
{
	(void)c, (void)a;
	return r && *r ? trail(r, "a10") : CW_HOOK_CONTINUE;
}
static enum cw_hook_result b_any_20(struct cw_ctx *c, const struct cw_hook_args *a, cJSON **r)
{
	(void)c;
	if (!r || !*r)
		return CW_HOOK_CONTINUE;
	if (cJSON_GetObjectItem(*r, "stop")) {
		host_b->set_status(c, 409);
		host_b->issue(c, CW_SEV_ERROR, "conflict", "Basic.stop", "stopped at %s", a->type);
		return CW_HOOK_STOP;
	}
	if (cJSON_GetObjectItem(*r, "replace")) {
		cJSON *n = cJSON_Parse("{\"resourceType\":\"Basic\",\"replaced\":true}");
		*r = n;
		return trail(r, "b20-replaced");
	}
	if (cJSON_GetObjectItem(*r, "error-only")) {
		host_b->issue(c, CW_SEV_ERROR, "invalid", NULL, "an error without stopping");
		return CW_HOOK_CONTINUE;
	}
	return trail(r, "b20");
}
static enum cw_hook_result a_ten_again(struct cw_ctx *c, const struct cw_hook_args *a, cJSON **r)
{
	(void)c, (void)a;
	return r && *r ? trail(r, "a10b") : CW_HOOK_CONTINUE;
}

#define ALL_POINTS(fn, order)                                                                             \
	{CW_HOOK_ON_REQUEST, order, fn}, {CW_HOOK_BEFORE_STORE, order, fn}, {CW_HOOK_BEFORE_UPSTREAM, order, fn}, \
		{CW_HOOK_AFTER_RESPONSE, order, fn}, {CW_HOOK_BEFORE_EXPORT, order, fn}, {CW_HOOK_EXPORT_BUNDLE, order, fn}

static const struct cw_hook hooks_a[] = {ALL_POINTS(a_any_30, 30), ALL_POINTS(a_any_10, 10),
					 ALL_POINTS(a_ten_again, 10), {0}};
static const struct cw_hook hooks_b[] = {ALL_POINTS(b_any_20, 20), {0}};

static enum cw_status map_to(struct cw_ctx *ctx, const char *d, size_t n, enum cw_media m, cJSON **out)
{
	(void)m;
	*out = host_a->parse_json(ctx, d, n);
	return *out ? CW_OK : CW_INVALID;
}

static const struct cw_format formats_a[] = {{.name = "fa", .media = CW_MEDIA_JSON, .to_fhir = map_to}, {0}};

static enum cw_status op_noop(struct cw_ctx *c, const char *t, const cJSON *i, cJSON **o)
{
	(void)c, (void)t, (void)i, (void)o;
	return CW_OK;
}
static const struct cw_operation ops_b[] = {{.name = "noop", .type = "Patient", .invoke = op_noop}, {0}};

static const struct cw_plugin plug_a = {CW_PLUGIN_HEADER, .name = "a", .version = "1", .formats = formats_a,
					.hooks = hooks_a, .init = init_a, .fini = fini_a};
static const struct cw_plugin plug_b = {CW_PLUGIN_HEADER, .name = "b", .version = "1", .hooks = hooks_b,
					.operations = ops_b, .init = init_b, .fini = fini_b};

static struct plugin_host *two_plugins(struct config *cfg)
{
	struct plugin_host *h = plugin_host_new(cfg, NULL);
	assert_non_null(h);
	assert_int_equal(plugin_host_add_builtin(h, &plug_a, "a"), 0);
	assert_int_equal(plugin_host_add_builtin(h, &plug_b, "b"), 0);
	return h;
}

static void init_once_and_fini_in_reverse(void **state)
{
	(void)state;
	struct config cfg;
	assert_int_equal(config_defaults(&cfg), 0);
	cJSON *a = cJSON_AddObjectToObject(cfg.plugins, "a");
	cJSON_AddStringToObject(a, "greeting", "hi");
	calls[0] = '\0';
	struct plugin_host *h = two_plugins(&cfg);
	assert_int_equal(plugin_host_start(h), 0);
	assert_int_equal(plugin_host_start(h), 0); /* idempotent: init ran once */
	assert_string_equal(calls, "init-a hi init-b ");
	assert_int_equal(host_a->abi_major, CW_PLUGIN_ABI_MAJOR);
	assert_int_equal(host_a->struct_size, sizeof(struct cw_host));
	assert_true(CW_HOST_HAS(host_a, print_json));
	plugin_host_stop(h);
	plugin_host_stop(h);
	assert_string_equal(calls, "init-a hi init-b fini-b fini-a ");
	plugin_host_free(h);
	assert_string_equal(calls, "init-a hi init-b fini-b fini-a ");
	config_release(&cfg);
}

struct run {
	struct arena arena;
	struct outcome oo;
	struct cw_ctx ctx;
};

static void run_begin(struct run *r, const struct plugin_host *h)
{
	arena_init(&r->arena, 0);
	r->oo = (struct outcome)OUTCOME_INIT;
	plugin_host_ctx(&r->ctx, h, &r->arena, &r->oo, NULL);
}

static void run_end(struct run *r)
{
	outcome_release(&r->oo);
	arena_release(&r->arena);
}

static void hooks_run_in_order_at_every_point(void **state)
{
	(void)state;
	struct plugin_host *h = two_plugins(NULL);
	assert_int_equal(plugin_host_start(h), 0);
	for (int pt = 0; pt < CW_HOOK_POINT_COUNT; pt++) {
		assert_int_equal(plugin_host_hook_count(h, (enum cw_hook_point)pt), 4);
		struct run r;
		run_begin(&r, h);
		cJSON *res = cJSON_Parse("{\"resourceType\":\"Basic\"}");
		struct cw_hook_args args = {.point = (enum cw_hook_point)pt};
		assert_int_equal(plugin_host_run_hooks(h, &r.ctx, &args, &res), CW_HOOK_CHANGED);
		char *text = cJSON_PrintUnformatted(cJSON_GetObjectItem(res, "trail"));
		/* order 10 (two hooks of a, in declaration order), 20 (b), 30 (a) */
		assert_string_equal(text, "[\"a10\",\"a10b\",\"b20\",\"a30\"]");
		free(text);
		cJSON_Delete(res);
		assert_int_equal(r.oo.n, 0);
		run_end(&r);
	}
	plugin_host_free(h);
}

static void hooks_stop_replace_and_fail(void **state)
{
	(void)state;
	struct plugin_host *h = two_plugins(NULL);
	assert_int_equal(plugin_host_start(h), 0);
	struct cw_hook_args args = {.point = CW_HOOK_BEFORE_UPSTREAM};

	struct run r;
	run_begin(&r, h);
	cJSON *res = cJSON_Parse("{\"resourceType\":\"Basic\",\"stop\":1}");
	assert_int_equal(plugin_host_run_hooks(h, &r.ctx, &args, &res), CW_HOOK_STOP);
	assert_int_equal(r.ctx.status, 409);
	assert_int_equal(r.oo.n, 1);
	assert_string_equal(r.oo.issues[0].code, "conflict");
	assert_string_equal(r.oo.issues[0].diagnostics, "b: stopped at Basic");
	assert_string_equal(r.oo.issues[0].expression, "Basic.stop");
	/* stopped before a30 ran */
	char *text = cJSON_PrintUnformatted(cJSON_GetObjectItem(res, "trail"));
	assert_string_equal(text, "[\"a10\",\"a10b\"]");
	free(text);
	cJSON_Delete(res);
	assert_int_equal(plugin_host_http_status(&r.ctx, CW_INVALID), 409);
	run_end(&r);

	run_begin(&r, h);
	res = cJSON_Parse("{\"resourceType\":\"Basic\",\"replace\":1}");
	assert_int_equal(plugin_host_run_hooks(h, &r.ctx, &args, &res), CW_HOOK_CHANGED);
	assert_true(cJSON_IsTrue(cJSON_GetObjectItem(res, "replaced")));
	text = cJSON_PrintUnformatted(cJSON_GetObjectItem(res, "trail"));
	assert_string_equal(text, "[\"b20-replaced\",\"a30\"]");
	free(text);
	cJSON_Delete(res);
	run_end(&r);

	run_begin(&r, h);
	res = cJSON_Parse("{\"resourceType\":\"Basic\",\"error-only\":1}");
	assert_int_equal(plugin_host_run_hooks(h, &r.ctx, &args, &res), CW_HOOK_STOP);
	assert_int_equal(plugin_host_http_status(&r.ctx, CW_INVALID), 422);
	cJSON_Delete(res);
	run_end(&r);
	plugin_host_free(h);
}

static void host_table_services(void **state)
{
	(void)state;
	struct terminology *t = terminology_new();
	assert_int_equal(terminology_add_code(t, "urn:test:dims", "home", "Home"), 0);
	terminology_seal(t);
	struct plugin_host *h = plugin_host_new(NULL, t);
	assert_int_equal(plugin_host_add_builtin(h, &plug_a, "a"), 0);
	assert_int_equal(plugin_host_start(h), 0);
	const struct cw_host *x = plugin_host_table(h);
	struct run r;
	run_begin(&r, h);
	r.ctx.plugin = plugin_host_at(h, 0);
	assert_string_equal(x->code_display(&r.ctx, "urn:test:dims", "home"), "Home");
	assert_true(x->code_system_known(&r.ctx, "urn:test:dims"));
	cJSON *c = x->make_coding(&r.ctx, "urn:test:dims", "home", NULL);
	assert_string_equal(cJSON_GetObjectItem(c, "display")->valuestring, "Home");
	cJSON_Delete(c);
	assert_null(x->make_reference(&r.ctx, "Patient", "no spaces", NULL));
	assert_int_equal(r.oo.n, 1);
	assert_string_equal(r.oo.issues[0].code, "value");
	x->issue(&r.ctx, CW_SEV_WARNING, "made-up-code", NULL, "n=%d", 3);
	assert_string_equal(r.oo.issues[1].code, "processing");
	assert_string_equal(r.oo.issues[1].diagnostics, "a: n=3");
	x->set_status(&r.ctx, 200); /* ignored: not an error status */
	assert_int_equal(r.ctx.status, 0);
	x->set_status(&r.ctx, 503);
	assert_int_equal(r.ctx.status, 503);
	assert_string_equal(x->config_string(&r.ctx, "missing", "dflt"), "dflt");
	assert_true(cJSON_IsObject(x->config(&r.ctx)));
	char id[CW_ID_SIZE], day[CW_DATE_SIZE];
	assert_int_equal(x->make_id(&r.ctx, "urn:crosswalk:echo", "a1", id), CW_OK);
	assert_string_equal(id, "fc48c23a-ef3e-5389-9da0-e01c5f8333b2");
	assert_int_equal(x->iso_date(&r.ctx, "02/30/2024", day), CW_INVALID);
	assert_null(x->parse_json(&r.ctx, "{\"a\":", 5));
	cJSON *j = x->parse_json(&r.ctx, "{\"a\":[1,2]}", 11);
	size_t len = 0;
	assert_string_equal(x->print_json(&r.ctx, j, &len), "{\"a\":[1,2]}");
	assert_int_equal(len, 11);
	cJSON_Delete(j);
	assert_null(x->request_header(&r.ctx, "Accept"));
	void *p = x->alloc(&r.ctx, 100);
	assert_non_null(p);
	assert_string_equal(x->copy_string(&r.ctx, "kept"), "kept");
	run_end(&r);
	plugin_host_free(h);
	terminology_free(t);
}

/* Descriptors the host must refuse. */
static const struct cw_format bad_format_name[] = {{.name = "Bad", .media = CW_MEDIA_JSON, .to_fhir = map_to},
						   {0}};
static const struct cw_format no_direction[] = {{.name = "x", .media = CW_MEDIA_JSON}, {0}};
static const struct cw_format bad_media[] = {{.name = "x", .media = 4, .to_fhir = map_to}, {0}};
static const struct cw_hook bad_point[] = {{.point = (enum cw_hook_point)9, .order = 0, .fn = a_any_10}, {0}};
static const struct cw_operation bad_op_type[] = {{.name = "x", .type = "patient", .invoke = op_noop}, {0}};
static const struct cw_operation no_invoke[] = {{.name = "x"}, {0}};

static void refuse_one(const struct cw_plugin *p, const char *label, const char *reason)
{
	struct plugin_host *h = plugin_host_new(NULL, NULL);
	assert_int_equal(plugin_host_add_builtin(h, p, label), -1);
	const struct plugin *e = plugin_host_at(h, 0);
	assert_non_null(e->refused);
	if (!strstr(e->refused, reason))
		fprintf(stderr, "# refused: %s\n", e->refused);
	assert_non_null(strstr(e->refused, reason));
	assert_int_equal(plugin_host_start(h), 1);
	plugin_host_free(h);
}

static void refuses_bad_descriptors(void **state)
{
	(void)state;
	struct cw_plugin p = {CW_PLUGIN_HEADER, .name = "x", .version = "1"};
	p.abi_major = 2;
	refuse_one(&p, "x", "ABI major 2");
	p.abi_major = CW_PLUGIN_ABI_MAJOR;
	p.struct_size = (uint32_t)CW_PLUGIN_SIZE_1_0 - 1;
	refuse_one(&p, "x", "smaller than");
	p.struct_size = sizeof p;
	p.name = "X";
	refuse_one(&p, "x", "descriptor name is not");
	p.name = "x";
	p.version = NULL;
	refuse_one(&p, "x", "no version");
	p.version = "1";
	p.formats = bad_format_name;
	refuse_one(&p, "x", "format name 'Bad'");
	p.formats = no_direction;
	refuse_one(&p, "x", "maps in neither direction");
	p.formats = bad_media;
	refuse_one(&p, "x", "media must be JSON and/or CSV");
	p.formats = NULL;
	p.hooks = bad_point;
	refuse_one(&p, "x", "hook point 9 is unknown");
	p.hooks = NULL;
	p.operations = bad_op_type;
	refuse_one(&p, "x", "is not a resource type");
	p.operations = no_invoke;
	refuse_one(&p, "x", "has no invoke function");
	refuse_one(NULL, "x", "no descriptor");
}

static enum cw_status upgrade_to_array(struct cw_ctx *ctx, const cJSON *resource, cJSON **out, cJSON **moved)
{
	(void)ctx;
	(void)moved;
	*out = strcmp(cJSON_GetObjectItem(resource, "id")->valuestring, "array") == 0 ? cJSON_CreateArray() : cJSON_Duplicate(resource, 1);
	return CW_OK;
}

/* The ABI 1.3 members are read only from a descriptor that has them. */
static void upgrade_is_read_from_1_3_descriptors(void **state)
{
	(void)state;
	struct cw_plugin p = {CW_PLUGIN_HEADER, .name = "u", .version = "1", .id_rule = 2, .upgrade = upgrade_to_array};
	for (int old = 0; old < 2; old++) {
		p.struct_size = old ? (uint32_t)offsetof(struct cw_plugin, id_rule) : (uint32_t)sizeof p;
		struct plugin_host *h = plugin_host_new(NULL, NULL);
		assert_int_equal(plugin_host_add_builtin(h, &p, "u"), 0);
		assert_int_equal(plugin_host_id_rule(plugin_host_at(h, 0)), 0); /* not initialised yet */
		assert_int_equal(plugin_host_start(h), 0);
		assert_int_equal(plugin_host_id_rule(plugin_host_at(h, 0)), old ? 0 : 2);
		struct arena arena;
		struct outcome oo = OUTCOME_INIT;
		struct cw_ctx ctx;
		arena_init(&arena, 0);
		plugin_host_ctx(&ctx, h, &arena, &oo, NULL);
		cJSON *r = cJSON_Parse("{\"resourceType\":\"Basic\",\"id\":\"x\"}"), *out = NULL, *moved = NULL;
		assert_int_equal(plugin_host_upgrade(&ctx, plugin_host_at(h, 0), r, &out, &moved), CW_OK);
		assert_true(old ? out == NULL : cJSON_Compare(out, r, 1));
		cJSON_Delete(out);
		cJSON_ReplaceItemInObject(r, "id", cJSON_CreateString("array"));
		assert_int_equal(plugin_host_upgrade(&ctx, plugin_host_at(h, 0), r, &out, &moved), old ? CW_OK : CW_INTERNAL);
		assert_null(out); /* what is not a resource is refused */
		cJSON_Delete(r);
		outcome_release(&oo);
		arena_release(&arena);
		plugin_host_free(h);
	}
}

static void refuses_conflicts_and_unknown_configuration(void **state)
{
	(void)state;
	struct plugin_host *h = two_plugins(NULL);
	assert_int_equal(plugin_host_add_builtin(h, &plug_a, "again"), -1);
	assert_non_null(strstr(plugin_host_at(h, 2)->refused, "plugin name 'a' is already taken"));
	struct cw_plugin c = {CW_PLUGIN_HEADER, .name = "c", .version = "1", .formats = formats_a};
	assert_int_equal(plugin_host_add_builtin(h, &c, "c"), -1);
	assert_non_null(strstr(plugin_host_at(h, 3)->refused, "format 'fa' is already claimed by plugin 'a'"));
	struct cw_plugin d = {CW_PLUGIN_HEADER, .name = "d", .version = "1", .operations = ops_b};
	assert_int_equal(plugin_host_add_builtin(h, &d, "d"), -1);
	assert_non_null(strstr(plugin_host_at(h, 4)->refused, "operation $noop on Patient is already claimed"));
	calls[0] = '\0';
	assert_int_equal(plugin_host_start(h), 3);
	/* the accepted ones were still initialised (and are finalised) */
	assert_string_equal(calls, "init-a none init-b ");
	plugin_host_free(h);

	struct config cfg;
	assert_int_equal(config_defaults(&cfg), 0);
	cJSON_AddObjectToObject(cfg.plugins, "ghost");
	h = two_plugins(&cfg);
	assert_int_equal(plugin_host_start(h), 1);
	cJSON *list = plugin_host_describe(h);
	char *text = cJSON_PrintUnformatted(list);
	assert_non_null(strstr(text, "plugins.ghost: no plugin named 'ghost'"));
	free(text);
	cJSON_Delete(list);
	plugin_host_free(h);
	config_release(&cfg);
}

static void ingest_wraps_and_runs_store_hooks(void **state)
{
	(void)state;
	struct plugin_host *h = two_plugins(NULL);
	assert_int_equal(plugin_host_start(h), 0);
	struct run r;
	run_begin(&r, h);
	const char *doc = "{\"resourceType\":\"Basic\",\"id\":\"b1\"}";
	cJSON *b = NULL;
	assert_int_equal(plugin_host_ingest(h, &r.ctx, "fa", CW_MEDIA_JSON, doc, strlen(doc), NULL, NULL, &b), 200);
	cJSON *e = cJSON_GetArrayItem(cJSON_GetObjectItem(b, "entry"), 0);
	assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(e, "request"), "url")->valuestring, "Basic/b1");
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(cJSON_GetObjectItem(e, "resource"), "trail")), 4);
	cJSON_Delete(b);
	assert_int_equal(plugin_host_ingest(h, &r.ctx, "fa", CW_MEDIA_CSV, "x", 1, NULL, NULL, &b), 415);
	assert_int_equal(plugin_host_ingest(h, &r.ctx, "nope", CW_MEDIA_JSON, "x", 1, NULL, NULL, &b), 404);
	assert_int_equal(plugin_host_ingest(h, &r.ctx, "fa", CW_MEDIA_JSON, "{", 1, NULL, NULL, &b), 400); /* malformed JSON: 400 */
	assert_null(b);
	char *out = NULL;
	size_t len = 0;
	assert_int_equal(plugin_host_export(h, &r.ctx, "fa", CW_MEDIA_JSON, cJSON_Parse(doc), NULL, NULL, &out, &len),
			 405);
	run_end(&r);
	plugin_host_free(h);
}

/* ------------------------------------------------------- real .so files */

static void loads_the_built_test_plugins(void **state)
{
	(void)state;
	const char *dir = getenv("CW_TEST_PLUGIN_DIR");
	if (!dir || !*dir)
		dir = "build/default/test-plugins";
	struct plugin_host *h = plugin_host_new(NULL, NULL);
	int refused = plugin_host_scan(h, dir);
	plugin_host_start(h);
	bool slow = false, bad_major = false, old_major = false, zero_major = false, small = false, fail_init = false;
	for (size_t i = 0; i < plugin_host_count(h); i++) {
		const struct plugin *p = plugin_host_at(h, i);
		if (strcmp(p->name, "tp_slow") == 0)
			slow = p->refused == NULL && p->initialised;
		if (strcmp(p->name, "tp_bad_major") == 0)
			bad_major = p->refused && strstr(p->refused, "ABI major");
		if (strcmp(p->name, "tp_old_major") == 0)
			old_major = p->refused && strstr(p->refused, "ABI major") && !p->initialised;
		if (strcmp(p->name, "tp_zero_major") == 0)
			zero_major = p->refused && strstr(p->refused, "ABI major 0,") && !p->initialised;
		if (strcmp(p->name, "tp_small_desc") == 0)
			small = p->refused && strstr(p->refused, "smaller than");
		if (strcmp(p->name, "tp_fail_init") == 0)
			fail_init = p->refused && strstr(p->refused, "init failed") && !p->initialised;
	}
	assert_true(refused >= 4); /* the majors and the small descriptor; init fails later */
	assert_true(slow);
	assert_true(bad_major);
	assert_true(old_major);
	assert_true(zero_major);
	assert_true(small);
	assert_true(fail_init);
	assert_non_null(plugin_host_format(h, "slow", NULL));
	assert_non_null(plugin_host_operation(h, "ping", "Patient", NULL));
	assert_null(plugin_host_operation(h, "ping", NULL, NULL));
	plugin_host_free(h);
}

/* A plugin checks the host per member (CW_HOST_REQUIRE), so one that needs
 * only ABI 1.0 members loads on a 1.0 host whatever header it was built
 * with, and one that needs a 1.1 member is refused there. */
static enum cw_status needs_1_0(const struct cw_host *h)
{
	CW_HOST_REQUIRE(h, print_json);
	return CW_OK;
}

static enum cw_status needs_1_1(const struct cw_host *h)
{
	CW_HOST_REQUIRE(h, code_flags);
	return CW_OK;
}

static void host_checked_per_member(void **state)
{
	(void)state;
	struct cw_host older = {.abi_major = CW_PLUGIN_ABI_MAJOR, .struct_size = (uint32_t)CW_HOST_SIZE_1_0};
	assert_true(CW_HOST_SIZE_1_0 < sizeof(struct cw_host));
	assert_int_equal(needs_1_0(&older), CW_OK);
	assert_int_equal(needs_1_1(&older), CW_UNSUPPORTED);
	older.struct_size = (uint32_t)CW_HOST_SIZE_1_0 - 1;
	assert_int_equal(needs_1_0(&older), CW_UNSUPPORTED);
	struct cw_host now = {.abi_major = CW_PLUGIN_ABI_MAJOR, .struct_size = sizeof(struct cw_host)};
	assert_int_equal(needs_1_0(&now), CW_OK);
	assert_int_equal(needs_1_1(&now), CW_OK);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(arena_allocates_aligned_zeroed_and_bounded),
		cmocka_unit_test(crypto_known_vectors),
		cmocka_unit_test(deterministic_ids),
		cmocka_unit_test(dates),
		cmocka_unit_test(builders),
		cmocka_unit_test(terminology_registry),
		cmocka_unit_test(terminology_loads_a_directory),
		cmocka_unit_test(init_once_and_fini_in_reverse),
		cmocka_unit_test(host_checked_per_member),
		cmocka_unit_test(hooks_run_in_order_at_every_point),
		cmocka_unit_test(hooks_stop_replace_and_fail),
		cmocka_unit_test(host_table_services),
		cmocka_unit_test(refuses_bad_descriptors),
		cmocka_unit_test(upgrade_is_read_from_1_3_descriptors),
		cmocka_unit_test(refuses_conflicts_and_unknown_configuration),
		cmocka_unit_test(ingest_wraps_and_runs_store_hooks),
		cmocka_unit_test(loads_the_built_test_plugins),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
