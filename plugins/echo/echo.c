/* echo — the reference plugin, and the template for new ones (docs/plugins.md).
 * Native format "echo" (application/json): a record {"id", "text", "date"?}
 * maps to a FHIR Basic and back; an export is an array of records. Shows the
 * descriptor, init/fini, configuration ({"plugins":{"echo":{"system":URI}}}),
 * both mapping directions, a hook, an operation, issues and FHIR helpers. */
#include <string.h>

#include <crosswalk/plugin.h>

static const struct cw_host *host; /* set in init; read-only afterwards, as threads share it */
static const char *sys;            /* identifier system, from the configuration */

static enum cw_status init(const struct cw_host *h, struct cw_ctx *ctx)
{
	CW_HOST_REQUIRE(h, print_json); /* the newest host member it calls: ABI 1.0 */
	host = h;
	sys = host->config_string(ctx, "system", "urn:crosswalk:echo");
	if (!strchr(sys, ':')) {
		host->issue(ctx, CW_SEV_ERROR, "value", "plugins.echo.system", "must be an absolute URI");
		return CW_CONFIG;
	}
	return CW_OK;
}

static void fini(struct cw_ctx *ctx) { host->log(ctx, CW_LOG_DEBUG, "echo stopped"); }

static const char *str(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* native → FHIR: the tree in *out is handed over to the core. */
static enum cw_status to_fhir(struct cw_ctx *ctx, const char *data, size_t len, enum cw_media media, cJSON **out)
{
	(void)media; /* JSON only, as the format below declares */
	cJSON *in = host->parse_json(ctx, data, len); /* reports its own issue when invalid */
	const char *id = str(in, "id"), *text = str(in, "text"), *date = str(in, "date");
	char fid[CW_ID_SIZE], day[CW_DATE_SIZE];
	if (in && (!id || !*id || !text))
		host->issue(ctx, CW_SEV_ERROR, "required", !id || !*id ? "id" : "text", "missing or not a string");
	else if (in && date && host->iso_date(ctx, date, day) != CW_OK)
		host->issue(ctx, CW_SEV_ERROR, "value", "date", "not a date (YYYY-MM-DD)");
	else if (in && host->make_id(ctx, sys, id, fid) == CW_OK && (*out = cJSON_CreateObject())) {
		cJSON *r = *out, *ext = cJSON_CreateObject();
		cJSON_AddStringToObject(r, "resourceType", "Basic");
		cJSON_AddStringToObject(r, "id", fid); /* same record, same id: re-sending is idempotent */
		cJSON_AddItemToArray(cJSON_AddArrayToObject(r, "extension"), ext);
		cJSON_AddStringToObject(ext, "url", "urn:crosswalk:echo:text");
		cJSON_AddStringToObject(ext, "valueString", text);
		cJSON_AddItemToArray(cJSON_AddArrayToObject(r, "identifier"), host->make_identifier(ctx, sys, id));
		cJSON *code = cJSON_AddObjectToObject(r, "code");
		cJSON_AddItemToArray(cJSON_AddArrayToObject(code, "coding"), host->make_coding(ctx, sys, "echo", "Echo record"));
		if (date)
			cJSON_AddStringToObject(r, "created", day);
	}
	cJSON_Delete(in);
	return *out ? CW_OK : CW_INVALID;
}

/* FHIR → native: the text goes in the arena (host->print_json). */
static enum cw_status from_fhir(struct cw_ctx *ctx, const cJSON *bundle, enum cw_media media, char **out, size_t *len)
{
	(void)media;
	cJSON *arr = cJSON_CreateArray(), *e;
	cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(bundle, "entry")) {
		const cJSON *r = cJSON_GetObjectItemCaseSensitive(e, "resource");
		const cJSON *ident = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(r, "identifier"), 0);
		const char *text = str(cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(r, "extension"), 0), "valueString");
		if (!str(ident, "system") || strcmp(str(ident, "system"), sys) != 0 || !str(ident, "value") || !text)
			continue; /* not an echo record: an export carries only what it maps */
		cJSON *rec = cJSON_CreateObject();
		cJSON_AddItemToArray(arr, rec);
		cJSON_AddStringToObject(rec, "id", str(ident, "value"));
		cJSON_AddStringToObject(rec, "text", text);
		if (str(r, "created"))
			cJSON_AddStringToObject(rec, "date", str(r, "created"));
	}
	*out = arr ? host->print_json(ctx, arr, len) : NULL;
	cJSON_Delete(arr);
	return *out ? CW_OK : CW_NOMEM;
}

/* Before storing, tag the records this plugin made. */
static enum cw_hook_result tag(struct cw_ctx *ctx, const struct cw_hook_args *args, cJSON **res)
{
	const cJSON *ident = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(*res, "identifier"), 0);
	if (!args->type || strcmp(args->type, "Basic") != 0 || !str(ident, "system") || strcmp(str(ident, "system"), sys))
		return CW_HOOK_CONTINUE;
	cJSON *meta = cJSON_GetObjectItemCaseSensitive(*res, "meta"), *tags;
	if (!meta)
		meta = cJSON_AddObjectToObject(*res, "meta");
	if (!(tags = cJSON_GetObjectItemCaseSensitive(meta, "tag")))
		tags = cJSON_AddArrayToObject(meta, "tag");
	cJSON_AddItemToArray(tags, host->make_coding(ctx, sys, "echoed", NULL));
	return CW_HOOK_CHANGED;
}

/* $echo answers what it was given. */
static enum cw_status op_echo(struct cw_ctx *ctx, const char *type, const cJSON *in, cJSON **out)
{
	(void)ctx, (void)type;
	*out = in ? cJSON_Duplicate(in, 1) : cJSON_Parse("{\"resourceType\":\"Parameters\"}");
	return *out ? CW_OK : CW_NOMEM;
}

static const struct cw_format formats[] = {{.name = "echo", .summary = "a record {id, text, date} as FHIR Basic",
					    .media = CW_MEDIA_JSON, .to_fhir = to_fhir, .from_fhir = from_fhir}, {0}};
static const struct cw_hook hooks[] = {{.point = CW_HOOK_BEFORE_STORE, .order = 100, .fn = tag}, {0}};
static const struct cw_operation operations[] = {{.name = "echo", .type = NULL, .invoke = op_echo}, {0}};

static const struct cw_plugin plugin = {
	CW_PLUGIN_HEADER,
	.name = "echo",
	.version = "1.0.0",
	.summary = "Reference plugin: the echo format both ways, a hook and $echo",
	.formats = formats,
	.hooks = hooks,
	.operations = operations,
	.init = init,
	.fini = fini,
};

const struct cw_plugin *cw_plugin_entry(void) { return &plugin; }
