/* version — print the version. */
#include "cmd/cmd.h"

static const char usage_version[] =
	"usage: crosswalk version\n"
	"\n"
	"Prints the version of Crosswalk and the FHIR version it speaks.\n"
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
	printf("crosswalk %s (FHIR 4.0.1)\n", CW_VERSION);
	return 0;
}
