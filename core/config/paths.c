#include "config/paths.h"

/* Set by the Makefile for the installed program; these are the source tree's. */
#ifndef CW_CONFIG_FILE
#define CW_CONFIG_FILE "conf/crosswalk.json"
#endif
#ifndef CW_DATA_DIR
#define CW_DATA_DIR "var"
#endif
#ifndef CW_PLUGIN_DIR
#define CW_PLUGIN_DIR "lib/crosswalk/plugins"
#endif
#ifndef CW_PROFILES_DIR
#define CW_PROFILES_DIR "profiles"
#endif

static const struct cw_paths defaults = {
	.config_file = CW_CONFIG_FILE,
	.data_dir = CW_DATA_DIR,
	.plugin_dir = CW_PLUGIN_DIR,
	.profiles_dir = CW_PROFILES_DIR,
};

const struct cw_paths *paths_default(void) { return &defaults; }
