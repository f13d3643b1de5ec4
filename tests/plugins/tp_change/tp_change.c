/* Test plugin: hooks that change resources, interleaved by order with
 * tp_stop's (which loads after this one, so only the orders decide):
 *  on-request (order 5): "X-Test-Stop" or "X-Test-Stop-Late" → 429; runs
 *    after tp_stop's order-1 hook, so only the second header reaches it.
 *  before-store (order 5 and 20): tags "tp_change:5" and "tp_change:20".
 *  before-export (order 5): replaces the resource with a copy whose id has
 *    ".c5" appended (the host frees the old tree). */
#include <stdio.h>

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
	(void)args, (void)res;
	if (!host->request_header(ctx, "X-Test-Stop") && !host->request_header(ctx, "X-Test-Stop-Late"))
		return CW_HOOK_CONTINUE;
	host->set_status(ctx, 429);
	host->issue(ctx, CW_SEV_ERROR, "throttled", NULL, "refused by tp_change");
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

static enum cw_hook_result store5(struct cw_ctx *ctx, const struct cw_hook_args *args, cJSON **res)
{
	(void)ctx, (void)args;
	add_tag(*res, "tp_change:5");
	return CW_HOOK_CHANGED;
}

static enum cw_hook_result store20(struct cw_ctx *ctx, const struct cw_hook_args *args, cJSON **res)
{
	(void)ctx, (void)args;
	add_tag(*res, "tp_change:20");
	return CW_HOOK_CHANGED;
}

static enum cw_hook_result export5(struct cw_ctx *ctx, const struct cw_hook_args *args, cJSON **res)
{
	(void)ctx, (void)args;
	const cJSON *id = cJSON_GetObjectItemCaseSensitive(*res, "id");
	cJSON *copy = cJSON_IsString(id) ? cJSON_Duplicate(*res, 1) : NULL;
	if (!copy)
		return CW_HOOK_CONTINUE;
	char next[128];
	snprintf(next, sizeof next, "%.100s.c5", id->valuestring);
	cJSON_ReplaceItemInObjectCaseSensitive(copy, "id", cJSON_CreateString(next));
	*res = copy;
	return CW_HOOK_CHANGED;
}

static const struct cw_hook hooks[] = {
	{.point = CW_HOOK_ON_REQUEST, .order = 5, .fn = on_request},
	{.point = CW_HOOK_BEFORE_STORE, .order = 20, .fn = store20},
	{.point = CW_HOOK_BEFORE_STORE, .order = 5, .fn = store5},
	{.point = CW_HOOK_BEFORE_EXPORT, .order = 5, .fn = export5},
	{0}};

static const struct cw_plugin plugin = {
	CW_PLUGIN_HEADER,
	.name = "tp_change",
	.version = "0",
	.summary = "test: hooks that change resources",
	.hooks = hooks,
	.init = init,
};

const struct cw_plugin *cw_plugin_entry(void) { return &plugin; }
