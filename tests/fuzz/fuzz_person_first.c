/* libFuzzer harness for the person_first plugin, through the real plugin
 * host. The input is used twice:
 *   - as a display: the cleaned display and the phrase must fit, and a phrase
 *     must start with "Person ";
 *   - as a FHIR resource or Bundle exported in each mode (through a built-in
 *     format that returns the Bundle): codes leaves it unchanged; person-first
 *     changes nothing but Condition.code.text, narratives and the carriers of
 *     diagnoses (addresses, Encounter.diagnosis, reasons); hidden leaves no
 *     diagnosis (Condition without the protective-factor category) and no
 *     reference or coded reason naming one, and changes nothing else.
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

/* What the modes may change, taken away: every narrative, Condition
 * code.text, and the carriers of diagnoses in other resources (addresses,
 * diagnosis, reasonReference, reasonCode); diagnoses dropped when hidden. */
static void normalise(cJSON *bundle, bool drop_diagnoses)
{
	static const char *const carriers_of[] = {"text", "addresses", "diagnosis", "reasonReference", "reasonCode"};
	cJSON *entries = cJSON_GetObjectItemCaseSensitive(bundle, "entry");
	for (cJSON *e = cJSON_IsArray(entries) ? entries->child : NULL, *next; e; e = next) {
		next = e->next;
		cJSON *r = cJSON_GetObjectItemCaseSensitive(e, "resource");
		if (!cJSON_IsObject(r))
			continue;
		if (is_condition(r) && is_diagnosis(r) && drop_diagnoses) {
			cJSON_Delete(cJSON_DetachItemViaPointer(entries, e));
			continue;
		}
		if (is_condition(r)) {
			cJSON_DeleteItemFromObjectCaseSensitive(r, "text");
			cJSON_DeleteItemFromObjectCaseSensitive(cJSON_GetObjectItemCaseSensitive(r, "code"), "text");
		} else {
			for (size_t k = 0; k < sizeof carriers_of / sizeof *carriers_of; k++)
				cJSON_DeleteItemFromObjectCaseSensitive(r, carriers_of[k]);
		}
	}
	cJSON_DeleteItemFromObjectCaseSensitive(bundle, "total");
}

/* Hidden: no reference in got's carriers points at a diagnosis of input,
 * and no reason is coded in a diagnosis code system. */
static void check_hidden(const cJSON *input, const cJSON *got)
{
	struct pf_export x = {.bundle = (cJSON *)input};
	static const char *const lists[] = {"addresses", "reasonReference", "diagnosis"};
	const cJSON *e, *it;
	cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(got, "entry"))
	{
		const cJSON *r = cJSON_GetObjectItemCaseSensitive(e, "resource");
		const char *t = str(r, "resourceType");
		if (!eq(t, "Goal") && !eq(t, "CarePlan") && !eq(t, "Encounter") && !eq(t, "Procedure"))
			continue;
		for (size_t k = 0; k < 3; k++) {
			if (k == 2 && !eq(t, "Encounter"))
				continue;
			if (k == 0 && !eq(t, "Goal") && !eq(t, "CarePlan"))
				continue;
			if (k == 1 && !eq(t, "Encounter") && !eq(t, "Procedure"))
				continue;
			cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(r, lists[k]))
			{
				const cJSON *ref = k == 2 ? cJSON_GetObjectItemCaseSensitive(it, "condition") : it;
				cJSON *target;
				if (cJSON_IsObject(ref) && diagnosis_ref(&x, ref, &target))
					abort();
			}
		}
		if (eq(t, "Encounter") || eq(t, "Procedure"))
			cJSON_ArrayForEach(it,
					   cJSON_GetObjectItemCaseSensitive(r, "reasonCode")) if (diagnosis_concept(it))
				abort();
	}
}

static void check_export(struct plugin_host *h, const cJSON *input, enum pf_mode mode)
{
	const char *rt = str(input, "resourceType");
	const cJSON *entries = cJSON_GetObjectItemCaseSensitive(input, "entry");
	if (!rt || strcmp(rt, "Bundle") != 0 || !cJSON_IsArray(entries))
		return; /* the comparison below needs the Bundle as given */
	global_mode = mode;
	global_set = true;
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
		if (mode == PF_HIDDEN)
			check_hidden(input, got);
		normalise(want, mode == PF_HIDDEN);
		normalise(got, false);
		if (mode != PF_CODES && !cJSON_Compare(got, want, 1))
			abort(); /* something other than a diagnosis or its carriers changed */
		cJSON_Delete(got);
		cJSON_Delete(want);
	} else if (outcome_errors(&oo) == 0) {
		abort(); /* a failure must say why */
	}
	outcome_release(&oo);
	arena_release(&arena);
}

/* A few rows of the table of profiles/. */
static const char *fz_row(void *ud, const char *code)
{
	(void)ud;
	if (!strcmp(code, "F10.1"))
		return "alcohol use disorder, mild";
	if (!strcmp(code, "Z59.81"))
		return "housing instability";
	return NULL;
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
	static const char *const codes[] = {"F20.9", "F10.11", "Z59.811", "Z65.9", "Z79.4", "R45.851", "22298006"};
	const struct pf_table table = {fz_row, NULL};
	for (size_t i = 0; i < sizeof codes / sizeof *codes; i++)
		for (int style = 0; style < 2; style++) {
			n = pf_render(codes[i], text, i < 6, (enum pf_style)style, &table, phrase, sizeof phrase);
			if (n >= sizeof phrase || (n && strlen(phrase) != n) || (n && pf_forbidden(phrase)))
				abort();
			if (n && style == PF_STYLE_PERSON_FIRST && strncmp(phrase, "Person ", 7) != 0)
				abort();
			if (n && (i == 4 || i == 5)) /* Z outside Z55-Z65, R: no template */
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
