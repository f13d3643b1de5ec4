/* libFuzzer harness for the person_first plugin, through the real plugin
 * host. The input is used twice:
 *   - as a display: the cleaned display and the phrase must fit, and a phrase
 *     must start with "Person ";
 *   - as a FHIR resource or Bundle exported in each mode (through a built-in
 *     format that returns the Bundle): codes leaves it unchanged; person-first
 *     changes nothing but Condition.code.text; hidden leaves no diagnosis
 *     (Condition without the protective-factor category) and changes nothing
 *     else.
 * The plugin is linked in (its source is included); the mode is set in its
 * state after init, as a configuration would. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/fjson.h"
#include "plugin/plugin_host.h"

#include "../../plugins/person_first/person_first.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct cw_host *fz_host;

static enum cw_status fz_init(const struct cw_host *h, struct cw_ctx *ctx)
{
	(void)ctx;
	fz_host = h;
	return CW_OK;
}

static enum cw_status fz_out(struct cw_ctx *ctx, const cJSON *bundle, enum cw_media media, char **out, size_t *len)
{
	(void)media;
	*out = fz_host->print_json(ctx, bundle, len);
	return *out ? CW_OK : CW_NOMEM;
}

static const struct cw_format fz_formats[] = {{.name = "bundle", .media = CW_MEDIA_JSON, .from_fhir = fz_out}, {0}};
static const struct cw_plugin fz_plugin = {CW_PLUGIN_HEADER, .name = "fz_bundle", .version = "0",
					   .formats = fz_formats, .init = fz_init};

/* Removes code.text from every Condition entry; drops diagnoses when hidden. */
static void normalise(cJSON *bundle, bool drop_diagnoses)
{
	cJSON *entries = cJSON_GetObjectItemCaseSensitive(bundle, "entry");
	for (cJSON *e = cJSON_IsArray(entries) ? entries->child : NULL, *next; e; e = next) {
		next = e->next;
		cJSON *r = cJSON_GetObjectItemCaseSensitive(e, "resource");
		if (!is_condition(r) || !is_diagnosis(r))
			continue;
		if (drop_diagnoses)
			cJSON_Delete(cJSON_DetachItemViaPointer(entries, e));
		else
			cJSON_DeleteItemFromObjectCaseSensitive(cJSON_GetObjectItemCaseSensitive(r, "code"), "text");
	}
	cJSON_DeleteItemFromObjectCaseSensitive(bundle, "total");
}

static void check_export(struct plugin_host *h, const cJSON *input, enum pf_mode mode)
{
	const char *rt = str(input, "resourceType");
	const cJSON *entries = cJSON_GetObjectItemCaseSensitive(input, "entry");
	if (!rt || strcmp(rt, "Bundle") != 0 || !cJSON_IsArray(entries))
		return; /* the comparison below needs the Bundle as given */
	global_mode = mode;
	struct arena arena;
	struct outcome oo = OUTCOME_INIT;
	struct cw_ctx ctx;
	arena_init(&arena, 0);
	plugin_host_ctx(&ctx, h, &arena, &oo, NULL);
	char *out = NULL;
	size_t len = 0;
	int status = plugin_host_export(h, &ctx, "bundle", CW_MEDIA_JSON, cJSON_Duplicate(input, 1), "POST",
					"/export/bundle", &out, &len);
	if (status == 200) {
		cJSON *got = fjson_parse(out, len, NULL, NULL), *want = cJSON_Duplicate(input, 1);
		if (!got || !want)
			abort();
		if (mode == PF_CODES && !cJSON_Compare(got, want, 1))
			abort();
		normalise(want, mode == PF_HIDDEN);
		normalise(got, false);
		if (mode != PF_CODES && !cJSON_Compare(got, want, 1))
			abort(); /* something other than code.text changed */
		cJSON_Delete(got);
		cJSON_Delete(want);
	} else if (outcome_errors(&oo) == 0) {
		abort(); /* a failure must say why */
	}
	outcome_release(&oo);
	arena_release(&arena);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';

	char clean[PF_MAX_TEXT], phrase[PF_MAX_TEXT];
	size_t n = pf_clean_display(text, clean, sizeof clean);
	if (n >= sizeof clean || (n && strlen(clean) != n))
		abort();
	static const char *const codes[] = {"F20.9", "Z59.811", "Z65.9", "Z79.4", "22298006"};
	for (size_t i = 0; i < sizeof codes / sizeof *codes; i++) {
		n = pf_render(codes[i], text, i < 4, phrase, sizeof phrase);
		if (n >= sizeof phrase || (n && (strlen(phrase) != n || strncmp(phrase, "Person ", 7) != 0)))
			abort();
	}

	cJSON *input = fjson_parse(text, size, NULL, NULL); /* strict, as the gateway parses */
	if (input) {
		struct plugin_host *h = plugin_host_new(NULL, NULL);
		if (!h)
			abort();
		if (plugin_host_add_builtin(h, cw_plugin_entry(), "person_first (built in)") != 0 ||
		    plugin_host_add_builtin(h, &fz_plugin, "fz_bundle (built in)") != 0 || plugin_host_start(h) != 0)
			abort();
		for (int m = PF_CODES; m <= PF_HIDDEN; m++)
			check_export(h, input, (enum pf_mode)m);
		global_mode = PF_CODES;
		plugin_host_free(h);
		cJSON_Delete(input);
	}
	free(text);
	return 0;
}
