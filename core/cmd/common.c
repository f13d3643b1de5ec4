/* common — what the commands share: help flags, loading the configuration,
 * reading a whole input, the progress line (loading the plugins is in
 * open_plugins.c: the converter links this file without the gateway). */
#include "cmd/cmd.h"

#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/fjson.h"

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

int cmd_config_for(const char *path, struct config *cfg)
{
	const char *env = getenv("CROSSWALK_CONFIG");
	if (path || (env && *env))
		return cmd_load_config(cfg, path, NULL);
	if (config_defaults(cfg) != 0) {
		fprintf(stderr, "crosswalk: out of memory\n");
		return EXIT_RUNTIME;
	}
	return 0;
}

bool cmd_wants_help(int argc, char **argv)
{
	for (int i = 1; i < argc; i++)
		if (cmd_is_help(argv[i]))
			return true;
	return false;
}

char *cmd_read_all(FILE *f, size_t max, size_t *len)
{
	/* a regular file is read into one buffer of its size (one byte more to
	 * see its end), not grown by doubling and copying */
	struct stat sb;
	size_t cap = 65536;
	if (fstat(fileno(f), &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_size > 0 && (uint64_t)sb.st_size < max)
		cap = (size_t)sb.st_size + 1;
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

void cmd_input_read(FILE *f, size_t max, struct cmd_input *in)
{
	struct stat sb;
	long page = sysconf(_SC_PAGESIZE);
	in->mapped = false;
	in->len = 0;
	if (page > 0 && fstat(fileno(f), &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_size > 0 &&
	    (uint64_t)sb.st_size < max && (uint64_t)sb.st_size <= SIZE_MAX && sb.st_size % page != 0 &&
	    ftello(f) == 0) {
		void *m = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fileno(f), 0);
		if (m != MAP_FAILED) {
			in->data = m;
			in->len = (size_t)sb.st_size;
			in->mapped = true;
			return;
		}
	}
	char *buf = cmd_read_all(f, max, &in->len);
	in->data = buf;
}

void cmd_input_release(struct cmd_input *in)
{
	if (in->mapped)
		munmap((void *)in->data, in->len);
	else
		free((void *)in->data);
	in->data = NULL;
	in->len = 0;
	in->mapped = false;
}

void cmd_file_limits(const struct config *cfg, size_t len, struct fjson_limits *lim)
{
	config_json_limits(cfg, lim);
	if (lim->memory_budget / 8 < len)
		lim->memory_budget = len > SIZE_MAX / 8 ? SIZE_MAX : len * 8;
	if (lim->max_members < len / 16)
		lim->max_members = len / 16;
	if (lim->max_array_items < len / 16)
		lim->max_array_items = len / 16;
}

static double seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void cmd_progress_start(struct cmd_progress *p, const char *what)
{
	p->on = isatty(STDERR_FILENO) != 0;
	p->start = p->last = seconds();
	p->what = what;
}

static void progress_line(struct cmd_progress *p, size_t done, double now)
{
	double dt = now - p->start;
	fprintf(stderr, "\r%zu %s, %.0f/s   ", done, p->what, dt > 0 ? (double)done / dt : 0.0);
	fflush(stderr);
}

void cmd_progress_tick(struct cmd_progress *p, size_t done)
{
	if (!p->on || (done & 255) != 0)
		return;
	double now = seconds();
	if (now - p->last < 0.5)
		return;
	p->last = now;
	progress_line(p, done, now);
}

void cmd_progress_end(struct cmd_progress *p, size_t done)
{
	if (!p->on)
		return;
	progress_line(p, done, seconds());
	fputc('\n', stderr);
}
