/* Test plugin: hands the core what is not valid FHIR, so a test can see it
 * refused with this plugin named.
 *  before-store hook: with the request header "X-Test-Corrupt", adds an
 *    element no resource has and an impossible birthDate.
 *  format "corrupt" (JSON in): maps any body to a Patient with an element
 *    no resource has.
 *  operation $corrupt: answers JSON that is no FHIR resource. */
#include <crosswalk/plugin.h>

static const struct cw_host *host;

static enum cw_status init(const struct cw_host *h, struct cw_ctx *ctx)
{
	(void)ctx;
	host = h;
	return CW_OK;
}

static enum cw_hook_result corrupt(struct cw_ctx *ctx, const struct cw_hook_args *args, cJSON **res)
{
	(void)args;
	if (!host->request_header(ctx, "X-Test-Corrupt"))
		return CW_HOOK_CONTINUE;
	cJSON_AddBoolToObject(*res, "notAnElement", 1);
	cJSON_DeleteItemFromObjectCaseSensitive(*res, "birthDate");
	cJSON_AddStringToObject(*res, "birthDate", "2024-13-45");
	return CW_HOOK_CHANGED;
}

static enum cw_status to_fhir(struct cw_ctx *ctx, const char *data, size_t len, enum cw_media media, cJSON **out)
{
	(void)ctx, (void)data, (void)len, (void)media;
	cJSON *p = cJSON_CreateObject();
	cJSON_AddStringToObject(p, "resourceType", "Patient");
	cJSON_AddStringToObject(p, "notAnElement", "x");
	*out = p;
	return CW_OK;
}

static enum cw_status op(struct cw_ctx *ctx, const char *type, const cJSON *in, cJSON **out)
{
	(void)ctx, (void)type, (void)in;
	*out = cJSON_CreateObject();
	cJSON_AddStringToObject(*out, "answer", "not FHIR");
	return CW_OK;
}

static const struct cw_hook hooks[] = {{.point = CW_HOOK_BEFORE_STORE, .order = 50, .fn = corrupt}, {0}};
static const struct cw_format formats[] = {
	{.name = "corrupt", .summary = "maps to an invalid Patient", .media = CW_MEDIA_JSON, .to_fhir = to_fhir}, {0}};
static const struct cw_operation operations[] = {{.name = "corrupt", .invoke = op}, {0}};

static const struct cw_plugin plugin = {
	CW_PLUGIN_HEADER,
	.name = "tp_corrupt",
	.version = "0.0.1",
	.summary = "test: makes what is not valid FHIR",
	.hooks = hooks,
	.formats = formats,
	.operations = operations,
	.init = init,
};

const struct cw_plugin *cw_plugin_entry(void) { return &plugin; }
