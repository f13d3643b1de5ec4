/* crosswalk — command-line entry point.
 *
 * Exit codes: 0 success; 1 runtime failure; 2 usage or configuration error. */
#include <string.h>

#include "cmd/cmd.h"

static const char usage_main[] =
	"usage: crosswalk COMMAND [OPTIONS]\n"
	"\n"
	"Crosswalk is a plugin-based HL7 FHIR R4 gateway.\n"
	"\n"
	"commands:\n"
	"  serve [-c FILE] [--plugins DIR]     run the gateway\n"
	"  plugins [-c FILE] [--plugins DIR]   list the plugins, or why they are refused\n"
	"  map --from|--to FORMAT [FILE|-]     map a document through a plugin\n"
	"  convert [--to json|xml] [FILE|-]    convert a FHIR resource between JSON and XML\n"
	"  billing --from DATE --to DATE [--csv]  print the billing extract of a period\n"
	"  check [--repair] [-c FILE]          check the store (gateway stopped); rebuild the index\n"
	"  client new NAME                     make a client's key pair and its auth.clients entry\n"
	"  token --client ID --key FILE --url URL  get an access token from a gateway\n"
	"  version                             print the version and the default paths\n"
	"\n"
	"Run 'crosswalk COMMAND --help' for a command's options.\n"
	"\n"
	"exit codes: 0 success, 1 runtime failure, 2 usage or configuration error\n";

/* The commands, one file each under cmd/. */
static const struct {
	const char *name;
	int (*run)(int argc, char **argv);
} commands[] = {
	{"serve", cmd_serve},     {"plugins", cmd_plugins}, {"convert", cmd_convert}, {"map", cmd_map},
	{"billing", cmd_billing}, {"check", cmd_check},     {"version", cmd_version}, {"--version", cmd_version},
	{"client", cmd_client},   {"token", cmd_token},
};

int main(int argc, char **argv)
{
	if (argc < 2) {
		fputs(usage_main, stderr);
		return EXIT_USAGE;
	}
	const char *cmd = argv[1];
	if (cmd_is_help(cmd)) {
		fputs(usage_main, stdout);
		return 0;
	}
	for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
		if (strcmp(cmd, commands[i].name) == 0)
			return commands[i].run(argc - 1, argv + 1);
	fprintf(stderr, "crosswalk: unknown command '%s'\n\n%s", cmd, usage_main);
	return EXIT_USAGE;
}
