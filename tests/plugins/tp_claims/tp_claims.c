/* tp_claims — test plugin: a mapper whose output claims profiles. Format
 * "claims" (JSON, to FHIR only). The document names what to make:
 *   "good"    a Basic and a Patient, no claims;
 *   "bad"     a Basic, then an Observation that claims recovery-strength but
 *             breaks it (valueInteger where the profile wants valueString),
 *             valid R4 otherwise;
 *   "unknown" a Basic that claims a profile no one loaded (a warning).
 * Every resource has a fixed id, so a test can look for it afterwards. */
#include <stdio.h>
#include <string.h>

#include <crosswalk/plugin.h>

#define STRENGTH "https://crosswalk.example.org/fhir/StructureDefinition/recovery-strength"

static enum cw_status init(const struct cw_host *h, struct cw_ctx *ctx)
{
	(void)h, (void)ctx;
	return CW_OK;
}

static void add(cJSON *bundle, const char *text)
{
	cJSON *e = cJSON_CreateObject();
	cJSON *res = cJSON_Parse(text);
	cJSON_AddItemToObject(e, "resource", res);
	cJSON *rq = cJSON_AddObjectToObject(e, "request");
	char url[128];
	snprintf(url, sizeof url, "%s/%s", cJSON_GetObjectItem(res, "resourceType")->valuestring,
		 cJSON_GetObjectItem(res, "id")->valuestring);
	cJSON_AddStringToObject(rq, "method", "PUT");
	cJSON_AddStringToObject(rq, "url", url);
	cJSON_AddItemToArray(cJSON_GetObjectItem(bundle, "entry"), e);
}

static enum cw_status to_fhir(struct cw_ctx *ctx, const char *data, size_t len, enum cw_media media, cJSON **out)
{
	(void)ctx, (void)media;
	bool bad = len >= 5 && !memcmp(data, "\"bad\"", 5);
	bool unknown = len >= 9 && !memcmp(data, "\"unknown\"", 9);
	cJSON *b = cJSON_CreateObject();
	cJSON_AddStringToObject(b, "resourceType", "Bundle");
	cJSON_AddStringToObject(b, "type", "transaction");
	cJSON_AddArrayToObject(b, "entry");
	if (unknown)
		add(b, "{\"resourceType\":\"Basic\",\"id\":\"claims-b\",\"meta\":{\"profile\":[\"urn:test:no-such-"
		       "profile\"]},"
		       "\"code\":{\"text\":\"b\"}}");
	else
		add(b, "{\"resourceType\":\"Basic\",\"id\":\"claims-b\",\"code\":{\"text\":\"b\"}}");
	if (bad)
		add(b,
		    "{\"resourceType\":\"Observation\",\"id\":\"claims-o\",\"meta\":{\"profile\":[\"" STRENGTH "\"]},"
		    "\"status\":\"final\",\"code\":{\"text\":\"strength\"},\"valueInteger\":3}");
	else if (!unknown)
		add(b, "{\"resourceType\":\"Patient\",\"id\":\"claims-p\",\"active\":true}");
	*out = b;
	return CW_OK;
}

static const struct cw_format formats[] = {
	{.name = "claims", .summary = "test: output claiming profiles", .media = CW_MEDIA_JSON, .to_fhir = to_fhir},
	{0}};

static const struct cw_plugin plugin = {
	CW_PLUGIN_HEADER,   .name = "tp_claims",
	.version = "0.0.1", .summary = "test: a mapper whose output claims profiles",
	.formats = formats, .init = init,
};

const struct cw_plugin *cw_plugin_entry(void) { return &plugin; }
