/* plugins — list the plugins the configuration loads, or why they are refused. */
#include "cmd/cmd.h"

#include <stdlib.h>
#include <string.h>

#include "base/fjson.h"

static const char usage_plugins[] =
	"usage: crosswalk plugins [-c FILE] [--plugins DIR] [--json]\n"
	"\n"
	"Loads the plugins exactly as 'serve' would (plugin_dir, then --plugins DIR;\n"
	"init, then fini) and lists each one: name, version, file, formats, hooks\n"
	"and operations, or the reason it was refused.\n"
	"\n"
	"options:\n"
	"  -c, --config FILE   configuration file (as for serve)\n"
	"  --plugins DIR       also load the plugins in DIR\n"
	"  --json              print the list as JSON (as GET /plugins answers)\n"
	"  -h, --help          this help\n"
	"\n"
	"exit codes: 0 every plugin accepted, 2 usage or configuration error or a\n"
	"plugin refused\n";

static void print_list(const cJSON *o, const char *key, const char *label)
{
	const cJSON *arr = cJSON_GetObjectItemCaseSensitive(o, key), *x;
	printf("  %-11s", label);
	if (!cJSON_GetArraySize(arr))
		printf(" -");
	cJSON_ArrayForEach(x, arr) {
		const cJSON *name = cJSON_GetObjectItemCaseSensitive(x, "name");
		if (strcmp(key, "formats") == 0) {
			printf(" %s [", name->valuestring);
			const cJSON *m;
			bool first = true;
			cJSON_ArrayForEach(m, cJSON_GetObjectItemCaseSensitive(x, "media")) {
				printf("%s%s", first ? "" : " ", m->valuestring);
				first = false;
			}
			printf("]%s%s", cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(x, "to_fhir")) ? " to-fhir" : "",
			       cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(x, "from_fhir")) ? " from-fhir" : "");
		} else if (strcmp(key, "hooks") == 0) {
			printf(" %s(order %d)", cJSON_GetObjectItemCaseSensitive(x, "point")->valuestring,
			       cJSON_GetObjectItemCaseSensitive(x, "order")->valueint);
		} else {
			const cJSON *type = cJSON_GetObjectItemCaseSensitive(x, "type");
			printf(" %s(%s)", name->valuestring, cJSON_IsString(type) ? type->valuestring : "system");
		}
		printf("%s", x->next ? "," : "");
	}
	printf("\n");
}

int cmd_plugins(int argc, char **argv)
{
	const char *path = NULL, *plugins_dir = NULL;
	bool json = false;
	for (int i = 1; i < argc; i++) {
		if (cmd_is_help(argv[i])) {
			fputs(usage_plugins, stdout);
			return 0;
		} else if ((strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) && i + 1 < argc) {
			path = argv[++i];
		} else if (strcmp(argv[i], "--plugins") == 0 && i + 1 < argc && !plugins_dir) {
			plugins_dir = argv[++i];
		} else if (strcmp(argv[i], "--json") == 0) {
			json = true;
		} else {
			fprintf(stderr, "crosswalk plugins: unexpected argument '%s'\n\n%s", argv[i], usage_plugins);
			return EXIT_USAGE;
		}
	}
	struct config cfg;
	int rc = cmd_load_config(&cfg, path, plugins_dir);
	if (rc != 0)
		return rc;
	struct terminology *terms = NULL;
	struct plugin_host *h = cmd_open_plugins(&cfg, &terms);
	if (!h) {
		terminology_free(terms);
		config_release(&cfg);
		return EXIT_USAGE;
	}
	cJSON *list = plugin_host_describe(h);
	if (!list) {
		rc = EXIT_RUNTIME;
	} else if (json) {
		size_t tlen = 0;
		char *text = fjson_print(list, true, &tlen);
		if (text)
			printf("%.*s\n", (int)tlen, text);
		free(text);
	} else {
		const cJSON *p;
		cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(list, "plugins")) {
			const cJSON *name = cJSON_GetObjectItemCaseSensitive(p, "name");
			const cJSON *file = cJSON_GetObjectItemCaseSensitive(p, "file");
			const cJSON *refused = cJSON_GetObjectItemCaseSensitive(p, "refused");
			if (refused) {
				printf("%s REFUSED (%s): %s\n", cJSON_IsString(name) ? name->valuestring : "-",
				       file->valuestring, refused->valuestring);
				continue;
			}
			const cJSON *summary = cJSON_GetObjectItemCaseSensitive(p, "summary");
			printf("%s %s (%s)%s%s\n", name->valuestring,
			       cJSON_GetObjectItemCaseSensitive(p, "version")->valuestring, file->valuestring,
			       cJSON_IsString(summary) ? ": " : "", cJSON_IsString(summary) ? summary->valuestring : "");
			print_list(p, "formats", "formats:");
			print_list(p, "hooks", "hooks:");
			print_list(p, "operations", "operations:");
		}
		if (!cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(list, "plugins")))
			printf("no plugins in %s%s%s\n", cfg.plugin_dir, plugins_dir ? " or " : "",
			       plugins_dir ? plugins_dir : "");
	}
	cJSON_Delete(list);
	if (plugin_host_refusals(h)) {
		plugin_host_print_refusals(h, stderr);
		rc = EXIT_USAGE;
	}
	fflush(stdout);
	plugin_host_free(h);
	terminology_free(terms);
	config_release(&cfg);
	return rc;
}
