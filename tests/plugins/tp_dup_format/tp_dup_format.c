/* Test plugin: claims the format "echo", which echo already owns → refused. */
#include <crosswalk/plugin.h>

static enum cw_status to_fhir(struct cw_ctx *ctx, const char *data, size_t len, enum cw_media media, cJSON **out)
{
	(void)ctx, (void)data, (void)len, (void)media, (void)out;
	return CW_UNSUPPORTED;
}

static const struct cw_format formats[] = {{.name = "echo", .media = CW_MEDIA_JSON, .to_fhir = to_fhir}, {0}};

static const struct cw_plugin plugin = {
	CW_PLUGIN_HEADER,
	.name = "tp_dup_format",
	.version = "0",
	.formats = formats,
};

const struct cw_plugin *cw_plugin_entry(void) { return &plugin; }
