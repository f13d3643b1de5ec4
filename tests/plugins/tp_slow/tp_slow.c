/* Test plugin: a slow mapper, for concurrency. Format "slow":
 *   JSON {"key": K} or CSV "key\nK" → Basic with the deterministic id of K
 *   (namespace "urn:test:slow") after sleeping a millisecond;
 *   back: CSV "id\n<id>\n…" or JSON ["<id>", …], built in the arena.
 * A key "hang:PATH" makes the mapping wait until the file PATH exists (a
 * request stuck in a plugin, for the shutdown tests).
 * Also $ping on Patient, answering a Parameters with the request id header. */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <crosswalk/plugin.h>

static const struct cw_host *host;

static enum cw_status init(const struct cw_host *h, struct cw_ctx *ctx)
{
	(void)ctx;
	host = h;
	return CW_OK;
}

static void nap(void)
{
	struct timespec ts = {0, 1000000};
	nanosleep(&ts, NULL);
}

static enum cw_status to_fhir(struct cw_ctx *ctx, const char *data, size_t len, enum cw_media media, cJSON **out)
{
	nap();
	char key[128];
	if (media == CW_MEDIA_JSON) {
		cJSON *in = host->parse_json(ctx, data, len);
		const cJSON *k = cJSON_GetObjectItemCaseSensitive(in, "key");
		if (!cJSON_IsString(k) || strlen(k->valuestring) >= sizeof key) {
			cJSON_Delete(in);
			host->issue(ctx, CW_SEV_ERROR, "required", "key", "missing");
			return CW_INVALID;
		}
		memcpy(key, k->valuestring, strlen(k->valuestring) + 1);
		cJSON_Delete(in);
	} else {
		if (len < 5 || strncmp(data, "key\n", 4) != 0 || len - 4 >= sizeof key) {
			host->issue(ctx, CW_SEV_ERROR, "structure", "line 1", "expected a header row 'key'");
			return CW_INVALID;
		}
		memcpy(key, data + 4, len - 4);
		key[len - 4] = '\0';
		key[strcspn(key, "\r\n")] = '\0';
	}
	if (strncmp(key, "hang:", 5) == 0)
		while (access(key + 5, F_OK) != 0)
			nap();
	char id[CW_ID_SIZE];
	if (host->make_id(ctx, "urn:test:slow", key, id) != CW_OK)
		return CW_INTERNAL;
	cJSON *r = cJSON_CreateObject();
	cJSON_AddStringToObject(r, "resourceType", "Basic");
	cJSON_AddStringToObject(r, "id", id);
	cJSON_AddItemToArray(cJSON_AddArrayToObject(r, "identifier"), host->make_identifier(ctx, "urn:test:slow", key));
	cJSON_AddStringToObject(cJSON_AddObjectToObject(r, "code"), "text", "slow"); /* Basic.code is required */
	*out = r;
	return r ? CW_OK : CW_NOMEM;
}

static enum cw_status from_fhir(struct cw_ctx *ctx, const cJSON *bundle, enum cw_media media, char **out,
				size_t *len)
{
	nap();
	const cJSON *entries = cJSON_GetObjectItemCaseSensitive(bundle, "entry"), *e;
	size_t cap = 16 + (size_t)cJSON_GetArraySize(entries) * 48, n = 0;
	char *buf = host->alloc(ctx, cap);
	if (!buf)
		return CW_NOMEM;
	n += (size_t)snprintf(buf, cap, "%s", media == CW_MEDIA_CSV ? "id\n" : "[");
	cJSON_ArrayForEach(e, entries) {
		const cJSON *id = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(e, "resource"), "id");
		if (cJSON_IsString(id) && strlen(id->valuestring) < 40)
			n += (size_t)snprintf(buf + n, cap - n, media == CW_MEDIA_CSV ? "%s\n" : "%s\"%s\"",
					      media == CW_MEDIA_CSV ? id->valuestring : (n > 1 ? "," : ""),
					      id->valuestring);
	}
	if (media == CW_MEDIA_JSON)
		n += (size_t)snprintf(buf + n, cap - n, "]");
	*out = buf;
	*len = n;
	return CW_OK;
}

static enum cw_status ping(struct cw_ctx *ctx, const char *type, const cJSON *in, cJSON **out)
{
	(void)in;
	cJSON *p = cJSON_CreateObject();
	cJSON_AddStringToObject(p, "resourceType", "Parameters");
	cJSON *param = cJSON_CreateObject();
	cJSON_AddStringToObject(param, "name", "type");
	cJSON_AddStringToObject(param, "valueString", type ? type : "");
	cJSON_AddItemToArray(cJSON_AddArrayToObject(p, "parameter"), param);
	const char *rid = host->request_header(ctx, "X-Request-Id");
	if (rid)
		cJSON_AddStringToObject(param, "valueId", rid);
	*out = p;
	return p ? CW_OK : CW_NOMEM;
}

static const struct cw_format formats[] = {
	{.name = "slow", .media = CW_MEDIA_JSON | CW_MEDIA_CSV, .to_fhir = to_fhir, .from_fhir = from_fhir}, {0}};
static const struct cw_operation operations[] = {{.name = "ping", .type = "Patient", .invoke = ping}, {0}};

static const struct cw_plugin plugin = {
	CW_PLUGIN_HEADER,
	.name = "tp_slow",
	.version = "0",
	.formats = formats,
	.operations = operations,
	.init = init,
};

const struct cw_plugin *cw_plugin_entry(void) { return &plugin; }
