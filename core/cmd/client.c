/* client — `crosswalk client new NAME`: a key pair for a new client, the
 * auth.clients entry that admits it, and the next two commands (a token,
 * a request). docs/security.md, "From zero to an authenticated request". */
#include "cmd/cmd.h"

#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "base/crypto.h"
#include "base/fjson.h"

static const char usage_client[] =
	"usage: crosswalk client new NAME [--dir DIR] [--scopes SCOPES] [--purpose PURPOSE] [--url URL] [--ca FILE]\n"
	"\n"
	"Makes a key pair for a new client NAME and writes its private key to\n"
	"DIR/NAME.pem (default: the current directory; mode 0600, never\n"
	"overwritten). Prints the auth.clients entry to add to the gateway's\n"
	"configuration (its public key inline as a JWK Set, SCOPES, PURPOSE),\n"
	"then the crosswalk token and curl commands that get a token and make a\n"
	"request with it at URL (the gateway's address, default\n"
	"https://localhost:8443).\n"
	"\n"
	"  --scopes SCOPES    the SMART scopes it may have (default \"system/*.rs\")\n"
	"  --purpose PURPOSE  treatment (default), operations, billing or recovery\n"
	"  --ca FILE          the CA certificate the gateway's certificate chains to, when the\n"
	"                     system does not trust it (a self-signed one): put in the commands\n"
	"\n"
	"exit codes: 0 success, 1 the key could not be written, 2 usage error\n";

static bool valid_name(const char *s)
{
	size_t n = strlen(s);
	if (n < 1 || n > 128)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') ||
		      s[i] == '-' || s[i] == '_' || s[i] == '.'))
			return false;
	return s[0] != '.';
}

static bool valid_text(const char *s) { return *s && strlen(s) <= 1024 && !strpbrk(s, "\r\n\t\"\\'"); }

static int usage(const char *why)
{
	fprintf(stderr, "crosswalk client: %s\n\n%s", why, usage_client);
	return EXIT_USAGE;
}

int cmd_client(int argc, char **argv)
{
	if (argc > 1 && cmd_is_help(argv[1])) {
		fputs(usage_client, stdout);
		return 0;
	}
	if (argc < 3 || strcmp(argv[1], "new") != 0)
		return usage("say 'client new NAME'");
	const char *name = argv[2], *dir = ".", *scopes = "system/*.rs", *purpose = "treatment",
		   *url = "https://localhost:8443", *ca = NULL;
	for (int i = 3; i < argc; i++) {
		const char **to = !strcmp(argv[i], "--dir")       ? &dir
				  : !strcmp(argv[i], "--scopes")  ? &scopes
				  : !strcmp(argv[i], "--purpose") ? &purpose
				  : !strcmp(argv[i], "--url")     ? &url
				  : !strcmp(argv[i], "--ca")      ? &ca
								  : NULL;
		if (cmd_is_help(argv[i])) {
			fputs(usage_client, stdout);
			return 0;
		}
		if (!to || i + 1 >= argc)
			return usage("unknown option or missing value");
		*to = argv[++i];
	}
	if (!valid_name(name) || name[0] == '-')
		return usage("NAME must be 1-128 letters, digits, '-', '_' or '.', not starting with '.' or '-'");
	if (strcmp(purpose, "treatment") && strcmp(purpose, "operations") && strcmp(purpose, "billing") &&
	    strcmp(purpose, "recovery"))
		return usage("--purpose must be treatment, operations, billing or recovery");
	if (!valid_text(scopes) || !valid_text(url) || !valid_text(dir) || (ca && !valid_text(ca)))
		return usage("a value holds quotes, backslashes or control characters");
	char path[4400], why[512], kid[44];
	snprintf(path, sizeof path, "%s/%s.pem", dir, name);
	if (crypto_init() != 0) {
		fprintf(stderr, "crosswalk client: the crypto library could not start\n");
		return EXIT_RUNTIME;
	}
	struct crypto_key *k = crypto_key_generate(path, why, sizeof why);
	if (!k) {
		fprintf(stderr, "crosswalk client: %s\n", why);
		return EXIT_RUNTIME;
	}
	enum crypto_alg alg = crypto_key_default_alg(k, true);
	cJSON *jwk = crypto_key_thumbprint(k, kid) == 0 ? crypto_key_to_jwk(k, kid, alg) : NULL;
	crypto_key_free(k);
	cJSON *entry = cJSON_CreateObject();
	cJSON_AddStringToObject(entry, "client_id", name);
	cJSON *keys = cJSON_AddArrayToObject(cJSON_AddObjectToObject(entry, "jwks"), "keys");
	cJSON_AddItemToArray(keys, jwk);
	cJSON_AddStringToObject(entry, "scopes", scopes);
	cJSON_AddStringToObject(entry, "purpose", purpose);
	char *text = jwk ? fjson_print(entry, false, NULL) : NULL;
	cJSON_Delete(entry);
	if (!text) {
		fprintf(stderr, "crosswalk client: out of memory\n");
		return EXIT_RUNTIME;
	}
	printf("Wrote the private key of client %s to %s (keep it secret; mode 0600).\n\n", name, path);
	printf("1. Add this entry to auth.clients in the gateway's configuration, then restart it:\n\n%s\n\n", text);
	char tca[1100] = "", cca[1100] = "";
	if (ca) {
		snprintf(tca, sizeof tca, " --ca '%s'", ca);
		snprintf(cca, sizeof cca, " --cacert '%s'", ca);
	}
	printf("2. Get an access token (it lasts auth.token_lifetime_s, 5 minutes by default):\n\n"
	       "   crosswalk token --client %s --key '%s' --url '%s'%s\n\n",
	       name, path, url, tca);
	printf("3. Call the gateway with it:\n\n"
	       "   curl%s -H \"Authorization: Bearer $(crosswalk token --client %s --key '%s' --url '%s'%s)\" "
	       "'%s/fhir/Patient?_count=1'\n",
	       cca, name, path, url, tca, url);
	free(text);
	return 0;
}
