/* tp_bundle — test plugin: exports the Bundle it is given, as JSON, so a test
 * can see what the before-export hooks made of it. Two formats, "bundle" and
 * "bundle-raw", with the same mapper (for per-format settings); no to_fhir. */
#include <crosswalk/plugin.h>

static const struct cw_host *host;

static enum cw_status init(const struct cw_host *h, struct cw_ctx *ctx)
{
	(void)ctx;
	host = h;
	return CW_OK;
}

static enum cw_status from_fhir(struct cw_ctx *ctx, const cJSON *bundle, enum cw_media media, char **out,
				size_t *len)
{
	(void)media;
	*out = host->print_json(ctx, bundle, len);
	return *out ? CW_OK : CW_NOMEM;
}

static const struct cw_format formats[] = {
	{.name = "bundle", .summary = "the exported Bundle as is", .media = CW_MEDIA_JSON, .from_fhir = from_fhir},
	{.name = "bundle-raw", .summary = "the exported Bundle as is", .media = CW_MEDIA_JSON, .from_fhir = from_fhir},
	{0}};

static const struct cw_plugin plugin = {
	CW_PLUGIN_HEADER,
	.name = "tp_bundle",
	.version = "0.0.1",
	.summary = "test: exports the Bundle as JSON",
	.formats = formats,
	.init = init,
};

const struct cw_plugin *cw_plugin_entry(void) { return &plugin; }
