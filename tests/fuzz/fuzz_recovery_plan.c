/* libFuzzer harness for the recovery_plan plugin, through the real plugin
 * host: native → FHIR (ingest), FHIR → native (export) and native → FHIR
 * again must give the same Bundle, the export must come without a warning
 * (our own Bundle maps back whole), and the second export must give the
 * same text as the first. Every resource of an accepted document must pass
 * the core's structural validation. A refusal must come with an error
 * issue. The same bytes, when they are a JSON object, are also exported as
 * FHIR: a success with a document must read back in. The plugin is linked in (its sources are included) as a built-in,
 * so the same harness runs under libFuzzer and in the corpus replay of
 * `make test`. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "plugin/plugin_host.h"
#include "base/fjson.h"
#include "fhir/validate.h"
#include "fuzz_upgrade.h"

#include "../../plugins/recovery_plan/recovery_plan.c"
#include "../../plugins/recovery_plan/rp_fhir.c"
#include "../../plugins/recovery_plan/rp_native.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static cJSON *ingest(struct plugin_host *h, const char *text, size_t len)
{
	struct arena arena;
	struct outcome oo = OUTCOME_INIT;
	struct cw_ctx ctx;
	arena_init(&arena, 0);
	plugin_host_ctx(&ctx, h, &arena, &oo, NULL);
	cJSON *bundle = NULL;
	int status = plugin_host_ingest(h, &ctx, "recovery-plan", CW_MEDIA_JSON, text, len, "POST",
					"/ingest/recovery-plan", &bundle);
	if ((status == 200) != (bundle != NULL) || (status != 200 && outcome_errors(&oo) == 0))
		abort(); /* a failure must say why; a success must give a Bundle */
	outcome_release(&oo);
	arena_release(&arena);
	return bundle;
}

static char *export(struct plugin_host *h, const cJSON *bundle, size_t *len)
{
	struct arena arena;
	struct outcome oo = OUTCOME_INIT;
	struct cw_ctx ctx;
	arena_init(&arena, 0);
	plugin_host_ctx(&ctx, h, &arena, &oo, NULL);
	char *out = NULL;
	if (plugin_host_export(h, &ctx, "recovery-plan", CW_MEDIA_JSON, cJSON_Duplicate(bundle, 1), "GET",
			       "/export/recovery-plan", &out, len) != 200)
		abort();
	if (oo.n != 0)
		abort();
	char *copy = malloc(*len + 1);
	if (!copy)
		abort();
	memcpy(copy, out, *len);
	copy[*len] = '\0';
	outcome_release(&oo);
	arena_release(&arena);
	return copy;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct plugin_host *h = plugin_host_new(NULL, NULL);
	if (!h)
		return 0;
	if (plugin_host_add_builtin(h, cw_plugin_entry(), "recovery_plan (built in)") != 0 || plugin_host_start(h) != 0)
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
		fuzz_upgrade_finds_nothing(h, first);
		struct outcome oo = OUTCOME_INIT;
		if (validate_resource(first, &oo) != 0)
			abort(); /* what the plugin emits is valid FHIR R4 structure */
		outcome_release(&oo);
		size_t len1 = 0, len2 = 0;
		char *native = export(h, first, &len1);
		cJSON *second = ingest(h, native, len1);
		if (!second || !cJSON_Compare(first, second, true))
			abort(); /* native → FHIR → native → FHIR must be stable */
		char *again = export(h, second, &len2);
		if (len1 != len2 || memcmp(native, again, len1) != 0)
			abort();
		free(again);
		free(native);
		cJSON_Delete(second);
		cJSON_Delete(first);
	}
	/* The same bytes as FHIR: any resource or Bundle maps out, or is
	 * refused with an error issue; never a crash. */
	cJSON *fhir = fjson_parse(text, size, NULL, NULL); /* as the gateway reads a body */
	if (cJSON_IsObject(fhir)) {
		struct arena arena;
		struct outcome oo = OUTCOME_INIT;
		struct cw_ctx ctx;
		arena_init(&arena, 0);
		plugin_host_ctx(&ctx, h, &arena, &oo, NULL);
		char *out = NULL;
		size_t len = 0;
		int status = plugin_host_export(h, &ctx, "recovery-plan", CW_MEDIA_JSON, fhir, "POST",
						"/export/recovery-plan", &out, &len);
		fhir = NULL; /* consumed */
		if ((status == 200) != (out != NULL) || (status != 200 && outcome_errors(&oo) == 0))
			abort();
		if (status == 200 && strcmp(out, "[]") != 0) {
			cJSON *again = ingest(h, out, len); /* what an export gives reads back in */
			if (!again)
				abort();
			cJSON_Delete(again);
		}
		outcome_release(&oo);
		arena_release(&arena);
	}
	cJSON_Delete(fhir);
	free(text);
	plugin_host_free(h);
	return 0;
}
