/* check — the full check of the store, and the repair of what is derived. */
#include "cmd/cmd.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"

static const char usage_check[] = "usage: crosswalk check [--repair] [-c FILE]\n"
				  "\n"
				  "Checks the store under the configured data_dir, with the gateway stopped\n"
				  "(a store a running gateway holds is refused): SQLite's full integrity\n"
				  "check, every stored version against its checksum, every resource row\n"
				  "against its versions, and the search index against what the stored\n"
				  "resources index. Prints one line per finding and a summary.\n"
				  "\n"
				  "With store.backend postgresql it checks that database instead, in one\n"
				  "read-only snapshot (gateways may keep running): every version against\n"
				  "its checksum, version and index rows of no resource, resources without\n"
				  "their current version, and the chain of access records (every link,\n"
				  "every AuditEvent on it); it prints the chain's head to note elsewhere.\n"
				  "--repair there removes the index rows of no resource.\n"
				  "\n"
				  "With --repair, rebuilds what is derived from the stored versions (the\n"
				  "search index, the resource rows, SQLite's own indexes) into a fresh file\n"
				  "that takes the store's place; the damaged file is kept beside it as\n"
				  "store.db.before-repair-TIME. Damaged stored versions cannot be rebuilt:\n"
				  "they are named, to be restored from a backup.\n"
				  "\n"
				  "options:\n"
				  "  --repair                 rebuild what can be rebuilt\n"
				  "  -c, --config FILE        configuration file (as for serve)\n"
				  "  -h, --help               this help\n"
				  "\n"
				  "exit codes: 0 the store is clean (after the repair, with --repair),\n"
				  "1 problems found (or left: with --repair, what cannot be rebuilt),\n"
				  "2 the check could not run (usage, configuration, no store, the store\n"
				  "in use by a running gateway)\n";

static void print_line(void *ctx, const char *line)
{
	(void)ctx;
	printf("%s\n", line);
}

int cmd_check(int argc, char **argv)
{
	const char *path = NULL;
	unsigned flags = 0;
	for (int i = 1; i < argc; i++) {
		if (cmd_is_help(argv[i])) {
			fputs(usage_check, stdout);
			return 0;
		} else if ((strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) && i + 1 < argc) {
			path = argv[++i];
		} else if (strcmp(argv[i], "--repair") == 0) {
			flags |= STORE_CHECK_REPAIR;
		} else {
			fprintf(stderr, "crosswalk check: unexpected argument '%s'\n\n%s", argv[i], usage_check);
			return EXIT_USAGE;
		}
	}
	struct config cfg;
	int rc = cmd_load_config(&cfg, path, NULL);
	if (rc != 0)
		return EXIT_USAGE;
	char err[4608];
	bool pg = cfg.store.backend && strcmp(cfg.store.backend, "postgresql") == 0;
	int r;
	if (pg) {
		printf("checking the store on PostgreSQL\n"); /* the connection string may hold a password */
		fflush(stdout);
		r = store_check_pg(cfg.store.pg_conninfo, flags, print_line, NULL, err, sizeof err);
	} else {
		printf("checking the store in %s\n", cfg.data_dir);
		fflush(stdout);
		r = store_check_sqlite(cfg.data_dir, flags, print_line, NULL, err, sizeof err);
	}
	fflush(stdout);
	config_release(&cfg);
	if (r < 0) {
		fprintf(stderr, "crosswalk check: %s\n", err);
		return EXIT_USAGE;
	}
	return r == 0 ? 0 : EXIT_RUNTIME;
}
