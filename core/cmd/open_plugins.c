/* open_plugins — loading code systems and plugins as serve does, for the
 * commands that map through plugins (a file of its own: common.c is linked
 * into the converter, which needs none of the gateway). */
#include "cmd/cmd.h"

#include "app.h"

struct plugin_host *cmd_open_plugins(const struct config *cfg, struct terminology **terms)
{
	char err[1024];
	if (!(*terms = app_load_terminology(cfg, err, sizeof err))) {
		fprintf(stderr, "crosswalk: configuration error: %s\n", err);
		return NULL;
	}
	struct plugin_host *h = plugin_host_new(cfg, *terms);
	if (!h) {
		fprintf(stderr, "crosswalk: out of memory\n");
		return NULL;
	}
	plugin_host_scan(h, cfg->plugin_dir);
	if (cfg->plugin_dir_extra)
		plugin_host_scan(h, cfg->plugin_dir_extra);
	plugin_host_start(h);
	return h;
}
