/* libFuzzer harness for the peer_support plugin, through the real plugin
 * host: native → FHIR (ingest), FHIR → native (export, same media type) and
 * native → FHIR again must give the same Bundle, and the second export the
 * same text as the first. An input that starts with '{' or '[' (after white
 * space) is JSON, anything else CSV. A refusal must come with an error
 * issue. The plugin is linked in (its sources are included) as a built-in,
 * so the same harness runs under libFuzzer and in the corpus replay of
 * `make test`. A few ICD-10-CM codes are loaded (F10.20, F11.20, F17.210,
 * F33.1) so that version 2 diagnoses map. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fhir/terminology.h"
#include "plugin/plugin_host.h"
#include "fuzz_upgrade.h"

#include "../../plugins/peer_support/peer_support.c"
#include "../../plugins/peer_support/ps_fhir.c"
#include "../../plugins/peer_support/ps_native.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static cJSON *ingest(struct plugin_host *h, enum cw_media media, const char *text, size_t len)
{
	struct arena arena;
	struct outcome oo = OUTCOME_INIT;
	struct cw_ctx ctx;
	arena_init(&arena, 0);
	plugin_host_ctx(&ctx, h, &arena, &oo, NULL);
	cJSON *bundle = NULL;
	int status = plugin_host_ingest(h, &ctx, "peer-support", media, text, len, "POST", "/ingest/peer-support",
					&bundle);
	if ((status == 200) != (bundle != NULL) || (status != 200 && outcome_errors(&oo) == 0))
		abort(); /* a failure must say why; a success must give a Bundle */
	outcome_release(&oo);
	arena_release(&arena);
	return bundle;
}

/* Exports bundle (borrowed) into a malloc'd NUL-terminated text. */
static char *export(struct plugin_host *h, enum cw_media media, const cJSON *bundle, size_t *len)
{
	struct arena arena;
	struct outcome oo = OUTCOME_INIT;
	struct cw_ctx ctx;
	arena_init(&arena, 0);
	plugin_host_ctx(&ctx, h, &arena, &oo, NULL);
	char *out = NULL;
	if (plugin_host_export(h, &ctx, "peer-support", media, cJSON_Duplicate(bundle, 1), "GET",
			       "/export/peer-support", &out, len) != 200)
		abort();
	if (oo.n != 0)
		abort(); /* our own Bundle maps back without a warning */
	char *copy = malloc(*len + 1);
	if (!copy)
		abort();
	memcpy(copy, out, *len);
	copy[*len] = '\0';
	outcome_release(&oo);
	arena_release(&arena);
	return copy;
}

/* The codes version 2 diagnoses may name here; built once, kept. */
static const struct terminology *codes(void)
{
	static struct terminology *t;
	if (t)
		return t;
	static const char *const icd[] = {"F10.20", "F11.20", "F17.210", "F33.1"};
	t = terminology_new();
	for (size_t i = 0; t && i < sizeof icd / sizeof icd[0]; i++)
		if (terminology_add_code(t, PS_ICD10CM, icd[i], "a diagnosis") != 0)
			abort();
	if (!t)
		abort();
	terminology_seal(t);
	return t;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct plugin_host *h = plugin_host_new(NULL, codes());
	if (!h)
		return 0;
	if (plugin_host_add_builtin(h, cw_plugin_entry(), "peer_support (built in)") != 0 ||
	    plugin_host_start(h) != 0)
		abort();
	char *text = malloc(size + 1); /* the host hands mappers NUL-terminated bodies */
	if (!text) {
		plugin_host_free(h);
		return 0;
	}
	memcpy(text, data, size);
	text[size] = '\0';
	size_t i = 0;
	while (i < size && (text[i] == ' ' || text[i] == '\n' || text[i] == '\r' || text[i] == '\t'))
		i++;
	enum cw_media media = i < size && (text[i] == '{' || text[i] == '[') ? CW_MEDIA_JSON : CW_MEDIA_CSV;
	cJSON *first = ingest(h, media, text, size);
	if (first) {
		fuzz_upgrade_finds_nothing(h, first);
		size_t len1 = 0, len2 = 0;
		char *native = export(h, media, first, &len1);
		cJSON *second = ingest(h, media, native, len1);
		if (!second || !cJSON_Compare(first, second, true))
			abort(); /* native → FHIR → native → FHIR must be stable */
		char *again = export(h, media, second, &len2);
		if (len1 != len2 || memcmp(native, again, len1) != 0)
			abort();
		free(again);
		free(native);
		cJSON_Delete(second);
		cJSON_Delete(first);
	}
	free(text);
	plugin_host_free(h);
	return 0;
}
