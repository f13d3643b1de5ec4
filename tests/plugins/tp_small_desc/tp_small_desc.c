/* Test plugin: a descriptor smaller than ABI 1.0's → refused. */
#include <crosswalk/plugin.h>

static const struct cw_plugin plugin = {
	.abi_major = CW_PLUGIN_ABI_MAJOR,
	.struct_size = 16,
	.name = "tp_small_desc",
	.version = "0",
};

const struct cw_plugin *cw_plugin_entry(void) { return &plugin; }
