/* cmd — the commands of the crosswalk command line, one file each
 * (serve.c, plugins.c, map.c, convert.c, billing.c, check.c, version.c), and what
 * they share (common.c; loading the plugins in open_plugins.c, apart, since
 * convert and version are also linked without the gateway: see main.c).
 * main.c only looks a command up in its table and runs it.
 *
 * A command is int cmd_NAME(int argc, char **argv) with argv[0] the
 * command's name; it prints its own help on -h/--help (stdout, exit 0) and
 * returns the process's exit code: 0 success, EXIT_RUNTIME (1) a runtime
 * failure, EXIT_USAGE (2) a usage or configuration error, EXIT_CUT_OFF (3)
 * serve stopped with requests cut off. */
#ifndef CW_CMD_H
#define CW_CMD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "config/config.h"
#include "fhir/terminology.h"
#include "plugin/plugin_host.h"

#define EXIT_RUNTIME 1
#define EXIT_USAGE 2
#define EXIT_CUT_OFF 3 /* serve: stopped with requests still running (cut off) */

/* The commands (see the file comment). */
int cmd_serve(int argc, char **argv);
int cmd_plugins(int argc, char **argv);
int cmd_map(int argc, char **argv);
int cmd_convert(int argc, char **argv);
/* The billing extract of a period, from the store. It gathers with the
 * function GET /export uses (gather_bundle), which reads only
 * app->cfg and app->store: so a struct app with those two (and the plugin
 * host) is enough, without app_init's routes, listener or outbox worker. */
int cmd_billing(int argc, char **argv);
/* The full check of the store (store_check_sqlite) and, with --repair, the
 * rebuild of what is derived. Exit codes: 0 clean, EXIT_RUNTIME (1)
 * problems found or left, EXIT_USAGE (2) the check could not run (also a
 * store a running gateway holds). */
int cmd_check(int argc, char **argv);
int cmd_version(int argc, char **argv);
/* validate FILE...: structural and profile validation of files, as
 * $validate does; exit 1 when any file has an error. */
int cmd_validate(int argc, char **argv);
/* client new NAME: a key pair, the auth.clients entry, the next commands. */
int cmd_client(int argc, char **argv);
/* token: an access token by client credentials from a gateway's token
 * endpoint, printed on stdout. */
int cmd_token(int argc, char **argv);

/* -h or --help. */
bool cmd_is_help(const char *a);

/* Loads the configuration named by -c / $CROSSWALK_CONFIG / the default,
 * with --plugins DIR recorded in it. Returns 0 or EXIT_USAGE. */
int cmd_load_config(struct config *cfg, const char *path, const char *plugins_dir);

/* The configuration of a command that also runs without one (convert,
 * validate): the file -c names (path), else $CROSSWALK_CONFIG, else the
 * built-in defaults (config_defaults: no file is read). Returns 0,
 * EXIT_USAGE (a file that does not load; the reason is printed) or
 * EXIT_RUNTIME (out of memory). */
int cmd_config_for(const char *path, struct config *cfg);

/* Whether any argument after the command's name (argv[1..argc)) is -h or
 * --help: main.c then runs the command with its help only, so a command
 * never takes --help for a value or a name. */
bool cmd_wants_help(int argc, char **argv);

/* Loads code systems and plugins as serve does (open_plugins.c). Returns
 * NULL after printing why when the profiles cannot be loaded. */
struct plugin_host *cmd_open_plugins(const struct config *cfg, struct terminology **terms);

/* Reads f to its end, NUL-terminated (caller frees); *len the length.
 * NULL when it holds max bytes or more, or when out of memory. */
char *cmd_read_all(FILE *f, size_t max, size_t *len);

/* A whole input for reading, as cmd_read_all reads it (NUL-terminated,
 * NULL data when it holds max bytes or more or memory ran out), but a
 * regular file is mapped read-only instead of copied when it can be: its
 * pages come from the page cache as they are, with no copy and no fresh
 * memory (the bytes past its end up to the page boundary are zero, so a
 * file whose size is not a multiple of the page size is NUL-terminated;
 * one that is, is read). The data must not be written. Release with
 * cmd_input_release. */
struct cmd_input {
	const char *data;
	size_t len;
	bool mapped;
};
void cmd_input_read(FILE *f, size_t max, struct cmd_input *in);
void cmd_input_release(struct cmd_input *in);

/* The JSON limits for a local document of len bytes (the user's own file,
 * not a request): the configuration's, with the memory budget at least 8
 * times len and the members and repetitions at least len / 16, so what fits
 * limits.max_file_bytes is not refused for being large. */
struct fjson_limits;
void cmd_file_limits(const struct config *cfg, size_t len, struct fjson_limits *lim);

/* A progress line on standard error ("12,000 resources, 48,000/s") at most
 * twice a second, only when standard error is a terminal; silent in a pipe. */
struct cmd_progress {
	bool on;
	double start, last;
	const char *what;
};
void cmd_progress_start(struct cmd_progress *p, const char *what);
void cmd_progress_tick(struct cmd_progress *p, size_t done);
/* The last line, ended (nothing when silent). */
void cmd_progress_end(struct cmd_progress *p, size_t done);

#endif
