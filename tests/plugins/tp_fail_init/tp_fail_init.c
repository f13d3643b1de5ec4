/* Test plugin: init fails with an issue → refused, and fini never runs. */
#include <stdlib.h>

#include <crosswalk/plugin.h>

static enum cw_status init(const struct cw_host *host, struct cw_ctx *ctx)
{
	host->issue(ctx, CW_SEV_ERROR, "exception", NULL, "cannot reach the thing it needs");
	return CW_INTERNAL;
}

static void fini(struct cw_ctx *ctx)
{
	(void)ctx;
	abort(); /* the host must not call fini after a failed init */
}

static const struct cw_plugin plugin = {
	CW_PLUGIN_HEADER,
	.name = "tp_fail_init",
	.version = "0",
	.init = init,
	.fini = fini,
};

const struct cw_plugin *cw_plugin_entry(void) { return &plugin; }
