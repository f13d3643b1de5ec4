/* libFuzzer harness for the billing plugin's FHIR → extract mapping,
 * through the real plugin host: any JSON input is exported as billing JSON
 * and CSV and run through Claim/$build. Each must succeed on a Bundle (or
 * fail with an error issue), and the JSON extract must parse back with
 * exactly as many lines and not-billed entries as the CSV has rows. The
 * plugin is linked in (its sources are included) as a built-in, with a small
 * code pack for ICD-10-CM and HCPCS and the payer rules of two payers
 * (NJ-MCD, NC-MCD: every rule of plugins.billing.payer_rules), so the same
 * harness runs under libFuzzer and in the corpus replay of `make test`. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/fjson.h"
#include "config/config.h"
#include "plugin/plugin_host.h"
#include "fhir/terminology.h"

#include "../../plugins/billing/billing.c"
#include "../../plugins/billing/bl_analyse.c"
#include "../../plugins/billing/bl_write.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char icd_pack[] = "#crosswalk-codes\t1\n#system\thttp://hl7.org/fhir/sid/icd-10-cm\n#billable\tyes\n"
			       "F33.1\tB\tMajor depressive disorder, recurrent, moderate\n"
			       "F41.1\tB\tGeneralized anxiety disorder\n"
			       "Z59.0\t-\tHomelessness\n"
			       "Z59.00\tB\tHomelessness unspecified\n";
static const char hcpcs_pack[] = "#crosswalk-codes\t1\n#system\thttp://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets\n"
				 "G0001\tI\tTerminated code\n"
				 "H0004\t-\tTimed code\n"
				 "H0034\t-\tTimed code\n"
				 "H0036\t-\tTimed code\n"
				 "H0038\t-\tTimed code\n"
				 "H0039\t-\tTimed code\n"
				 "H2011\t-\tTimed code\n"
				 "H2014\t-\tTimed code\n"
				 "H2015\t-\tTimed code\n"
				 "H2017\t-\tTimed code\n"
				 "H2019\t-\tTimed code\n"
				 "H2023\t-\tTimed code\n"
				 "H2025\t-\tTimed code\n"
				 "H2027\t-\tTimed code\n"
				 "HQ\tM\tGroup setting\n"
				 "T1016\t-\tTimed code\n"
				 "T1017\t-\tTimed code\n";

static struct terminology *terms(void)
{
	static struct terminology *t;
	if (t)
		return t;
	char err[256];
	t = terminology_new();
	if (!t || terminology_add_pack(t, icd_pack, sizeof icd_pack - 1, "icd", NULL, err, sizeof err) != 0 ||
	    terminology_add_pack(t, hcpcs_pack, sizeof hcpcs_pack - 1, "hcpcs", NULL, err, sizeof err) != 0)
		abort();
	terminology_seal(t);
	return t;
}

static char *export(struct plugin_host *h, enum cw_media media, const cJSON *in, size_t *len)
{
	struct arena arena;
	struct outcome oo = OUTCOME_INIT;
	struct cw_ctx ctx;
	arena_init(&arena, 0);
	plugin_host_ctx(&ctx, h, &arena, &oo, NULL);
	char *out = NULL, *copy = NULL;
	int st = plugin_host_export(h, &ctx, "billing", media, cJSON_Duplicate(in, 1), "GET", "/export/billing", &out,
				    len);
	if (st != 200 && outcome_errors(&oo) == 0)
		abort(); /* a failure must say why */
	if (st == 200) {
		if (!(copy = malloc(*len + 1)))
			abort();
		memcpy(copy, out, *len);
		copy[*len] = '\0';
	}
	outcome_release(&oo);
	arena_release(&arena);
	return copy;
}

static void run_build(struct plugin_host *h, const cJSON *in)
{
	const struct plugin *owner = NULL;
	const struct cw_operation *op = plugin_host_operation(h, "build", "Claim", &owner);
	if (!op)
		abort();
	struct arena arena;
	struct outcome oo = OUTCOME_INIT;
	struct cw_ctx ctx;
	arena_init(&arena, 0);
	plugin_host_ctx(&ctx, h, &arena, &oo, NULL);
	cJSON *out = NULL;
	int st = plugin_host_invoke(h, &ctx, op, owner, "Claim", in, &out);
	if ((st == 200) != (out != NULL) || (st != 200 && outcome_errors(&oo) == 0))
		abort();
	cJSON_Delete(out);
	outcome_release(&oo);
	arena_release(&arena);
}

/* Settings with payer rules; built once, kept. */
static const struct config *settings(void)
{
	static struct config cfg;
	static bool ready;
	if (ready)
		return &cfg;
	if (config_defaults(&cfg) != 0)
		abort();
	cJSON_Delete(cfg.plugins);
	cfg.plugins = cJSON_Parse("{\"billing\":{\"payer_rules\":{"
				  "\"NJ-MCD\":{\"supervisor_required\":true,\"credential_required\":true,"
				  "\"diagnosis_prefixes\":[\"F10\",\"F11\"],\"modifiers\":[\"HQ\"]},"
				  "\"NC-MCD\":{\"credential_required\":true,\"plan_of_care_required\":true,"
				  "\"units_before_authorization\":24,\"year_start\":\"07-01\"}}}}");
	if (!cfg.plugins)
		abort();
	ready = true;
	return &cfg;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fjson_limits lim;
	fjson_limits_default(&lim);
	struct fjson_error err;
	memset(&err, 0, sizeof err);
	cJSON *in = fjson_parse((const char *)data, size, &lim, &err);
	if (!in)
		return 0;
	struct plugin_host *h = plugin_host_new(settings(), terms());
	if (!h || plugin_host_add_builtin(h, cw_plugin_entry(), "billing (built in)") != 0 ||
	    plugin_host_start(h) != 0)
		abort();
	if (cJSON_IsObject(in)) {
		size_t jlen = 0, clen = 0;
		char *json = export(h, CW_MEDIA_JSON, in, &jlen), *csv = export(h, CW_MEDIA_CSV, in, &clen);
		if (!json != !csv)
			abort(); /* both media map the same input, or neither does */
		if (json) {
			cJSON *doc = cJSON_Parse(json);
			if (!doc)
				abort();
			size_t rows = 0;
			bool quoted = false;
			for (size_t i = 0; i < clen; i++) {
				quoted ^= csv[i] == '"';
				rows += csv[i] == '\n' && !quoted;
			}
			size_t n = (size_t)cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(doc, "lines")) +
				   (size_t)cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(doc, "not_billed"));
			if (rows != n + 1)
				abort(); /* the header and one row per encounter */
			cJSON_Delete(doc);
		}
		free(json);
		free(csv);
		run_build(h, in);
	}
	plugin_host_free(h);
	cJSON_Delete(in);
	return 0;
}
