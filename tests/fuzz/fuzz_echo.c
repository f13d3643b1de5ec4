/* libFuzzer harness for the echo plugin's mapping, through the real plugin
 * host: native → FHIR (ingest, with the before-store hook), FHIR → native
 * (export), and native → FHIR again must give the same FHIR. The plugin is
 * linked in (its source is included) and added as a built-in, so the same
 * harness runs under libFuzzer and in the corpus replay of `make test`. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "plugin/plugin_host.h"

#include "../../plugins/echo/echo.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static cJSON *ingest(struct plugin_host *h, const char *text, size_t len)
{
	struct arena arena;
	struct outcome oo = OUTCOME_INIT;
	struct cw_ctx ctx;
	arena_init(&arena, 0);
	plugin_host_ctx(&ctx, h, &arena, &oo, NULL);
	cJSON *bundle = NULL;
	int status = plugin_host_ingest(h, &ctx, "echo", CW_MEDIA_JSON, text, len, "POST", "/ingest/echo", &bundle);
	if ((status == 200) != (bundle != NULL) || (status != 200 && outcome_errors(&oo) == 0))
		abort(); /* a failure must say why; a success must give a Bundle */
	outcome_release(&oo);
	arena_release(&arena);
	return bundle;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct plugin_host *h = plugin_host_new(NULL, NULL);
	if (!h)
		return 0;
	if (plugin_host_add_builtin(h, cw_plugin_entry(), "echo (built in)") != 0 || plugin_host_start(h) != 0)
		abort();
	char *text = malloc(size + 1); /* the host hands mappers NUL-terminated bodies */
	if (!text) {
		plugin_host_free(h);
		return 0;
	}
	memcpy(text, data, size);
	text[size] = '\0';
	cJSON *first = ingest(h, text, size);
	if (first) {
		struct arena arena;
		struct outcome oo = OUTCOME_INIT;
		struct cw_ctx ctx;
		arena_init(&arena, 0);
		plugin_host_ctx(&ctx, h, &arena, &oo, NULL);
		char *out = NULL;
		size_t len = 0;
		if (plugin_host_export(h, &ctx, "echo", CW_MEDIA_JSON, cJSON_Duplicate(first, 1), "GET", "/export/echo",
				       &out, &len) != 200)
			abort();
		/* The export is an array of one record; map that record again. */
		cJSON *arr = cJSON_ParseWithLength(out, len);
		char *record = arr && cJSON_GetArraySize(arr) == 1 ? cJSON_PrintUnformatted(arr->child) : NULL;
		if (!record)
			abort();
		cJSON *second = ingest(h, record, strlen(record));
		if (!second || !cJSON_Compare(first, second, true))
			abort(); /* native → FHIR → native → FHIR must be stable */
		cJSON_Delete(second);
		free(record);
		cJSON_Delete(arr);
		outcome_release(&oo);
		arena_release(&arena);
		cJSON_Delete(first);
	}
	free(text);
	plugin_host_free(h);
	return 0;
}
