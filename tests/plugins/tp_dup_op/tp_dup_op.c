/* Test plugin: claims the system operation $echo, which echo owns → refused. */
#include <crosswalk/plugin.h>

static enum cw_status op(struct cw_ctx *ctx, const char *type, const cJSON *in, cJSON **out)
{
	(void)ctx, (void)type, (void)in, (void)out;
	return CW_UNSUPPORTED;
}

static const struct cw_operation operations[] = {{.name = "echo", .invoke = op}, {0}};

static const struct cw_plugin plugin = {
	CW_PLUGIN_HEADER,
	.name = "tp_dup_op",
	.version = "0",
	.operations = operations,
};

const struct cw_plugin *cw_plugin_entry(void) { return &plugin; }
