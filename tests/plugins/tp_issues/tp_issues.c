/* Test plugin: a mapper reporting issues. Format "issues" (CSV, to FHIR
 * only): every document fails with an error at "line 2, column name" and a
 * warning, status CW_INVALID (→ 422). A document starting "ok" maps to a
 * Basic but reports an error issue anyway (→ still refused). $fail on
 * Patient answers CW_FORBIDDEN with no issue (the host adds one → 403). */
#include <string.h>

#include <crosswalk/plugin.h>

static const struct cw_host *host;

static enum cw_status init(const struct cw_host *h, struct cw_ctx *ctx)
{
	(void)ctx;
	host = h;
	return CW_OK;
}

static enum cw_status to_fhir(struct cw_ctx *ctx, const char *data, size_t len, enum cw_media media, cJSON **out)
{
	(void)media;
	if (len >= 2 && strncmp(data, "ok", 2) == 0) {
		*out = cJSON_CreateObject();
		cJSON_AddStringToObject(*out, "resourceType", "Basic");
		host->issue(ctx, CW_SEV_ERROR, "value", "line 1", "an error reported alongside a result");
		return CW_OK;
	}
	host->issue(ctx, CW_SEV_ERROR, "required", "line 2, column name", "name is required");
	host->issue(ctx, CW_SEV_WARNING, "value", "line 3, column date", "date looks odd");
	return CW_INVALID;
}

static enum cw_status fail(struct cw_ctx *ctx, const char *type, const cJSON *in, cJSON **out)
{
	(void)ctx, (void)type, (void)in, (void)out;
	return CW_FORBIDDEN;
}

static const struct cw_format formats[] = {{.name = "issues", .media = CW_MEDIA_CSV, .to_fhir = to_fhir}, {0}};
static const struct cw_operation operations[] = {
	{.name = "fail", .type = "Patient", .definition = "urn:test:OperationDefinition:fail", .invoke = fail},
	{0}};

static const struct cw_plugin plugin = {
	CW_PLUGIN_HEADER,
	.name = "tp_issues",
	.version = "0",
	.formats = formats,
	.operations = operations,
	.init = init,
};

const struct cw_plugin *cw_plugin_entry(void) { return &plugin; }
