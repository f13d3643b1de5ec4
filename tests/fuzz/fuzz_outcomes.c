/* libFuzzer harness for the outcomes plugin, through the real plugin host
 * (the plugin's source is included and added as a built-in), so the same
 * harness runs under libFuzzer and in the corpus replay of `make test`.
 *
 * Native input: a failure must say why; a success must be a transaction
 * Bundle whose export is the document again without a single warning, and
 * mapping that export must give the same Bundle.
 * FHIR input (a JSON object with resourceType): the export must succeed, and
 * what it exports must ingest cleanly and export to itself (less its
 * "warnings"): an export never produces a document the format refuses. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/fjson.h"
#include "plugin/plugin_host.h"
#include "fuzz_upgrade.h"

#include "../../plugins/outcomes/outcomes.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static cJSON *ingest(struct plugin_host *h, const char *text, size_t len)
{
	struct arena arena;
	struct outcome oo = OUTCOME_INIT;
	struct cw_ctx ctx;
	arena_init(&arena, 0);
	plugin_host_ctx(&ctx, h, &arena, &oo, NULL);
	cJSON *bundle = NULL;
	int status = plugin_host_ingest(h, &ctx, "outcomes", CW_MEDIA_JSON, text, len, "POST", "/ingest/outcomes",
					&bundle);
	if ((status == 200) != (bundle != NULL) || (status != 200 && outcome_errors(&oo) == 0))
		abort(); /* a failure must say why; a success must give a Bundle */
	if (status != 200 && status != 422 && status != 400 && status != 413)
		abort();
	outcome_release(&oo);
	arena_release(&arena);
	return bundle;
}

/* Exports input (consumed); the native text, malloc'd, or NULL. *warnings
 * counts the issues reported. */
static char *export(struct plugin_host *h, cJSON *input, size_t *n_issues)
{
	struct arena arena;
	struct outcome oo = OUTCOME_INIT;
	struct cw_ctx ctx;
	arena_init(&arena, 0);
	plugin_host_ctx(&ctx, h, &arena, &oo, NULL);
	char *out = NULL, *copy = NULL;
	size_t len = 0;
	int status = plugin_host_export(h, &ctx, "outcomes", CW_MEDIA_JSON, input, "POST", "/export/outcomes", &out,
					&len);
	if (status == 200 && (copy = malloc(len + 1))) {
		memcpy(copy, out, len);
		copy[len] = '\0';
	}
	*n_issues = oo.n;
	if (outcome_errors(&oo) > 0)
		abort(); /* export reports what it cannot carry as warnings, never errors */
	outcome_release(&oo);
	arena_release(&arena);
	return copy;
}

static void native_round_trip(struct plugin_host *h, const char *text, size_t len)
{
	cJSON *first = ingest(h, text, len);
	if (!first)
		return;
	fuzz_upgrade_finds_nothing(h, first);
	size_t issues = 0;
	char *doc = export(h, cJSON_Duplicate(first, 1), &issues);
	if (!doc || issues != 0)
		abort(); /* our own Bundle exports cleanly */
	cJSON *second = ingest(h, doc, strlen(doc));
	if (!second || !cJSON_Compare(first, second, true))
		abort(); /* native → FHIR → native → FHIR must be stable */
	cJSON_Delete(second);
	free(doc);
	cJSON_Delete(first);
}

static void fhir_input(struct plugin_host *h, const char *text, size_t len)
{
	cJSON *in = fjson_parse(text, len, NULL, NULL); /* as the gateway reads a body */
	if (!cJSON_IsObject(in) || !cJSON_IsString(cJSON_GetObjectItemCaseSensitive(in, "resourceType"))) {
		cJSON_Delete(in);
		return;
	}
	size_t issues = 0;
	char *doc = export(h, in, &issues);
	if (!doc)
		abort(); /* anything FHIR exports, with warnings for what it cannot carry */
	cJSON *bundle = ingest(h, doc, strlen(doc));
	if (!bundle)
		abort(); /* and what it exports reads back */
	char *again = export(h, bundle, &issues);
	cJSON *a = cJSON_Parse(doc), *b = again ? cJSON_Parse(again) : NULL;
	cJSON_DeleteItemFromObjectCaseSensitive(a, "warnings");
	if (!a || !b || issues != 0 || !cJSON_Compare(a, b, true))
		abort();
	cJSON_Delete(a);
	cJSON_Delete(b);
	free(again);
	free(doc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct plugin_host *h = plugin_host_new(NULL, NULL);
	if (!h)
		return 0;
	if (plugin_host_add_builtin(h, cw_plugin_entry(), "outcomes (built in)") != 0 || plugin_host_start(h) != 0)
		abort();
	char *text = malloc(size + 1); /* the host hands mappers NUL-terminated bodies */
	if (text) {
		memcpy(text, data, size);
		text[size] = '\0';
		native_round_trip(h, text, size);
		fhir_input(h, text, size);
		free(text);
	}
	plugin_host_free(h);
	return 0;
}
