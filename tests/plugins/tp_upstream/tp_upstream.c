/* Test plugin: the upstream hook points.
 *  before-upstream (order 1): tags "tp_upstream:before"; stops a resource
 *    whose first identifier value is "block-upstream" (status 451).
 *  after-response (order 1): tags "tp_upstream:after" on each resource that
 *    came back from the upstream. */
#include <string.h>

#include <crosswalk/plugin.h>

static const struct cw_host *host;

static enum cw_status init(const struct cw_host *h, struct cw_ctx *ctx)
{
	(void)ctx;
	host = h;
	return CW_OK;
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

static enum cw_hook_result before(struct cw_ctx *ctx, const struct cw_hook_args *args, cJSON **res)
{
	(void)args;
	const cJSON *id0 = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(*res, "identifier"), 0);
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(id0, "value");
	if (cJSON_IsString(v) && !strcmp(v->valuestring, "block-upstream")) {
		host->set_status(ctx, 451);
		host->issue(ctx, CW_SEV_ERROR, "business-rule", "identifier[0].value", "tp_upstream: may not leave");
		return CW_HOOK_STOP;
	}
	add_tag(*res, "tp_upstream:before");
	return CW_HOOK_CHANGED;
}

static enum cw_hook_result after(struct cw_ctx *ctx, const struct cw_hook_args *args, cJSON **res)
{
	(void)ctx, (void)args;
	add_tag(*res, "tp_upstream:after");
	return CW_HOOK_CHANGED;
}

static const struct cw_hook hooks[] = {
	{.point = CW_HOOK_BEFORE_UPSTREAM, .order = 1, .fn = before},
	{.point = CW_HOOK_AFTER_RESPONSE, .order = 1, .fn = after},
	{0}};

static const struct cw_plugin plugin = {
	CW_PLUGIN_HEADER,
	.name = "tp_upstream",
	.version = "0",
	.summary = "test: before-upstream and after-response hooks",
	.hooks = hooks,
	.init = init,
};

const struct cw_plugin *cw_plugin_entry(void) { return &plugin; }
