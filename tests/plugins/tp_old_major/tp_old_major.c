/* Test plugin: claims the ABI major before the core's → refused (an older
 * major is as foreign as a newer one). */
#include <crosswalk/plugin.h>

static const struct cw_plugin plugin = {
	.abi_major = CW_PLUGIN_ABI_MAJOR - 1,
	.struct_size = sizeof(struct cw_plugin),
	.name = "tp_old_major",
	.version = "0",
};

const struct cw_plugin *cw_plugin_entry(void) { return &plugin; }
