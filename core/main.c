/* crosswalk — command-line entry point.
 *
 * Built twice from this file. The gateway binary (lib/crosswalk/
 * crosswalk-gateway) holds every command and links every library. The
 * program users run (bin/crosswalk, built with CW_FRONT) holds only the
 * commands that need no more than cJSON and libxml2 (convert, version), so
 * that they start without the dynamic loader mapping the server's libraries
 * (libmicrohttpd, GnuTLS, libcurl, SQLite, libpq, OpenSSL); for any other
 * command it executes the gateway binary in its place (same process, same
 * arguments), found beside it: BINDIR/../lib/crosswalk/crosswalk-gateway.
 *
 * Exit codes: 0 success; 1 runtime failure (also: the gateway binary cannot
 * be run); 2 usage or configuration error. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
	"  validate [--profile URL] FILE...    validate FHIR files (structure, profiles); a summary\n"
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
	{"convert", cmd_convert}, {"version", cmd_version}, {"--version", cmd_version},
#ifndef CW_FRONT
	{"serve", cmd_serve},     {"plugins", cmd_plugins}, {"map", cmd_map},           {"billing", cmd_billing},
	{"check", cmd_check},     {"client", cmd_client},   {"token", cmd_token},       {"validate", cmd_validate},
#endif
};

#ifdef CW_FRONT
/* Executes the gateway binary in place of this process with the same
 * arguments; returns only when it cannot be run. */
static int run_gateway(char **argv)
{
	static const char rel[] = "/../lib/crosswalk/crosswalk-gateway";
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - sizeof rel);
	char *slash = n > 0 ? memrchr(self, '/', (size_t)n) : NULL;
	if (!slash) {
		fprintf(stderr, "crosswalk: cannot find the gateway binary: /proc/self/exe: %s\n",
			n < 0 ? strerror(errno) : "name too long");
		return EXIT_RUNTIME;
	}
	memcpy(slash, rel, sizeof rel);
	execv(self, argv);
	fprintf(stderr, "crosswalk: cannot run %s: %s\n", self, strerror(errno));
	return EXIT_RUNTIME;
}
#endif

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
	/* -h or --help anywhere after the command is its help, never a value
	 * or a name (client new --help) */
	char *help[] = {argv[1], "--help", NULL};
	bool wants_help = cmd_wants_help(argc - 1, argv + 1);
	for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
		if (strcmp(cmd, commands[i].name) == 0)
			return wants_help ? commands[i].run(2, help) : commands[i].run(argc - 1, argv + 1);
#ifdef CW_FRONT
	return run_gateway(argv);
#else
	fprintf(stderr, "crosswalk: unknown command '%s'\n\n%s", cmd, usage_main);
	return EXIT_USAGE;
#endif
}
