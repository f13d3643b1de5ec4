/* Test plugin: hooks that stop.
 *  on-request (order 1): a request with "X-Test-Stop: NNN" is refused with
 *    HTTP status NNN and a "forbidden" issue.
 *  before-store (order 10): tags the resource "tp_stop:10"; a resource whose
 *    first identifier value is "stop-me" stops the ingest (no status set:
 *    the core's default applies).
 *  before-export (order 10): appends ".s10" to the resource id. */
#include <stdlib.h>
#include <string.h>

#include <crosswalk/plugin.h>

static const struct cw_host *host;

static enum cw_status init(const struct cw_host *h, struct cw_ctx *ctx)
{
	(void)ctx;
	host = h;
	return CW_OK;
}

static enum cw_hook_result on_request(struct cw_ctx *ctx, const struct cw_hook_args *args, cJSON **res)
{
	(void)res;
	const char *v = host->request_header(ctx, "X-Test-Stop");
	if (!v)
		return CW_HOOK_CONTINUE;
	host->set_status(ctx, (int)strtol(v, NULL, 10));
	host->issue(ctx, CW_SEV_ERROR, "forbidden", NULL, "request to %s refused by test hook", args->path);
	return CW_HOOK_STOP;
}

static void add_tag(cJSON *res, const char *code)
{
	cJSON *meta = cJSON_GetObjectItemCaseSensitive(res, "meta");
	if (!meta)
		meta = cJSON_AddObjectToObject(res, "meta");
	cJSON *tags = cJSON_GetObjectItemCaseSensitive(meta, "tag");
	if (!tags)
		tags = cJSON_AddArrayToObject(meta, "tag");
	cJSON *t = cJSON_CreateObject();
	cJSON_AddStringToObject(t, "system", "urn:test:hooks");
	cJSON_AddStringToObject(t, "code", code);
	cJSON_AddItemToArray(tags, t);
}

static enum cw_hook_result before_store(struct cw_ctx *ctx, const struct cw_hook_args *args, cJSON **res)
{
	(void)args;
	const cJSON *id = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(*res, "identifier"), 0);
	const cJSON *value = cJSON_GetObjectItemCaseSensitive(id, "value");
	if (cJSON_IsString(value) && strcmp(value->valuestring, "stop-me") == 0) {
		host->issue(ctx, CW_SEV_ERROR, "business-rule", "Basic.identifier[0].value", "this record may not be stored");
		return CW_HOOK_STOP;
	}
	add_tag(*res, "tp_stop:10");
	return CW_HOOK_CHANGED;
}

static enum cw_hook_result before_export(struct cw_ctx *ctx, const struct cw_hook_args *args, cJSON **res)
{
	(void)args;
	const cJSON *id = cJSON_GetObjectItemCaseSensitive(*res, "id");
	if (!cJSON_IsString(id))
		return CW_HOOK_CONTINUE;
	char *next = host->alloc(ctx, strlen(id->valuestring) + 5);
	if (!next)
		return CW_HOOK_CONTINUE;
	memcpy(next, id->valuestring, strlen(id->valuestring));
	memcpy(next + strlen(id->valuestring), ".s10", 5);
	cJSON_ReplaceItemInObjectCaseSensitive(*res, "id", cJSON_CreateString(next));
	return CW_HOOK_CHANGED;
}

static const struct cw_hook hooks[] = {
	{.point = CW_HOOK_ON_REQUEST, .order = 1, .fn = on_request},
	{.point = CW_HOOK_BEFORE_STORE, .order = 10, .fn = before_store},
	{.point = CW_HOOK_BEFORE_EXPORT, .order = 10, .fn = before_export},
	{0}};

static const struct cw_plugin plugin = {
	CW_PLUGIN_HEADER,
	.name = "tp_stop",
	.version = "0",
	.summary = "test: hooks that stop",
	.hooks = hooks,
	.init = init,
};

const struct cw_plugin *cw_plugin_entry(void) { return &plugin; }
