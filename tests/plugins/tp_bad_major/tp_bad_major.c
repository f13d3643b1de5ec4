/* Test plugin: claims an ABI major the core does not speak → refused. */
#include <crosswalk/plugin.h>

static const struct cw_plugin plugin = {
	.abi_major = CW_PLUGIN_ABI_MAJOR + 98,
	.struct_size = sizeof(struct cw_plugin),
	.name = "tp_bad_major",
	.version = "0",
};

const struct cw_plugin *cw_plugin_entry(void) { return &plugin; }
