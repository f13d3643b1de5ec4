/* version — print the version and the paths compiled in. */
#include "cmd/cmd.h"

#include "config/paths.h"

static const char usage_version[] =
	"usage: crosswalk version\n"
	"\n"
	"Prints the version of Crosswalk, the FHIR version it speaks, and the\n"
	"defaults compiled in: the configuration file read when neither -c nor\n"
	"CROSSWALK_CONFIG names one, and the directories a configuration without\n"
	"plugin_dir, profiles_dir or data_dir uses.\n"
	"\n"
	"exit codes: 0 success, 2 usage error\n";

int cmd_version(int argc, char **argv)
{
	if (argc > 1) {
		if (cmd_is_help(argv[1])) {
			fputs(usage_version, stdout);
			return 0;
		}
		fputs(usage_version, stderr);
		return EXIT_USAGE;
	}
	const struct cw_paths *paths = paths_default();
	printf("crosswalk %s (FHIR 4.0.1)\n", CW_VERSION);
	printf("default configuration: %s\n", paths->config_file);
	printf("default plugin_dir: %s\ndefault profiles_dir: %s\ndefault data_dir: %s\n", paths->plugin_dir,
	       paths->profiles_dir, paths->data_dir);
	return 0;
}
