/* Test plugin: claims ABI major 0 (no released major) → refused. */
#include <crosswalk/plugin.h>

static const struct cw_plugin plugin = {
	.abi_major = 0,
	.struct_size = sizeof(struct cw_plugin),
	.name = "tp_zero_major",
	.version = "0",
};

const struct cw_plugin *cw_plugin_entry(void) { return &plugin; }
