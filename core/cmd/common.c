/* common — what the commands share: help flags, loading the configuration
 * and the plugins, reading a whole input. */
#include "cmd/cmd.h"

#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "config/paths.h"

bool cmd_is_help(const char *a) { return strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0; }
/* Loads the configuration named by -c / $CROSSWALK_CONFIG / the default,
 * with --plugins DIR recorded in it. Returns 0 or EXIT_USAGE. */
int cmd_load_config(struct config *cfg, const char *path, const char *plugins_dir)
{
	if (!path)
		path = getenv("CROSSWALK_CONFIG");
	if (!path || !*path)
		path = paths_default()->config_file;
	char err[1024];
	if (config_load(cfg, path, err, sizeof err) != 0) {
		fprintf(stderr, "crosswalk: configuration error: %s\n", err);
		return EXIT_USAGE;
	}
	if (plugins_dir && !(cfg->plugin_dir_extra = strdup(plugins_dir))) {
		fprintf(stderr, "crosswalk: out of memory\n");
		config_release(cfg);
		return EXIT_RUNTIME;
	}
	log_set_level(cfg->log_level);
	return 0;
}

/* Loads code systems and plugins as serve does. Returns NULL after printing
 * why when the profiles cannot be loaded. */
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

char *cmd_read_all(FILE *f, size_t max, size_t *len)
{
	size_t cap = 65536;
	char *buf = malloc(cap + 1);
	*len = 0;
	size_t r;
	while (buf && (r = fread(buf + *len, 1, cap - *len, f)) > 0) {
		*len += r;
		if (*len == cap) {
			if (cap >= max) {
				free(buf);
				return NULL;
			}
			char *nb = realloc(buf, cap * 2 + 1);
			if (!nb) {
				free(buf);
				return NULL;
			}
			buf = nb;
			cap *= 2;
		}
	}
	if (buf)
		buf[*len] = '\0';
	return buf;
}
