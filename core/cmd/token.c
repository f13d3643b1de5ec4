/* token — `crosswalk token`: an access token from a gateway's token endpoint
 * by SMART Backend Services client credentials (a client assertion signed
 * with the client's private key, RFC 7523). docs/security.md. */
#include "cmd/cmd.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "auth/jwt.h"
#include "base/crypto.h"
#include "base/fjson.h"
#include "base/strbuf.h"
#include "upstream/upstream.h"

#define TOKEN_TIMEOUT_MS 15000
#define TOKEN_MAX_ANSWER (256 * 1024)
#define TOKEN_ASSERTION_LIFE_S 60

static const char usage_token[] =
	"usage: crosswalk token --client ID --key FILE --url URL [--scope SCOPES] [--ca FILE]\n"
	"\n"
	"Gets an access token for client ID from the gateway at URL (its address,\n"
	"https://host:port, or its FHIR base ending in /fhir) and prints it on one line.\n"
	"The token endpoint is found in URL/fhir/.well-known/smart-configuration;\n"
	"the request carries a client assertion signed with the private key in\n"
	"FILE (as crosswalk client new writes it), valid for 60 seconds.\n"
	"\n"
	"  --scope SCOPES  the scopes asked for, space-separated (default: all the\n"
	"                  client may have)\n"
	"  --ca FILE       also trust this CA certificate (a self-signed gateway)\n"
	"\n"
	"http:// is allowed to a loopback address only.\n"
	"\n"
	"exit codes: 0 success, 1 no token (the reason on stderr), 2 usage error\n";

static int usage(const char *why)
{
	fprintf(stderr, "crosswalk token: %s\n\n%s", why, usage_token);
	return EXIT_USAGE;
}

/* Prints "crosswalk token: WHAT[: DETAIL]" and returns EXIT_RUNTIME. */
static int failed(const char *what, const char *detail)
{
	fprintf(stderr, "crosswalk token: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
	return EXIT_RUNTIME;
}

/* application/x-www-form-urlencoded value of s appended to b. */
static void form_value(struct strbuf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
		    c == '_' || c == '.' || c == '~') {
			strbuf_addc(b, (char)c);
		} else {
			char e[4] = {'%', hex[c >> 4], hex[c & 15], '\0'};
			strbuf_adds(b, e);
		}
	}
}

/* The token endpoint the gateway at origin announces. */
static int discover(const char *origin, const char *ca, char *out, size_t n)
{
	char url[2200];
	snprintf(url, sizeof url, "%s/fhir/.well-known/smart-configuration", origin);
	struct upstream_response r;
	int rc = upstream_fetch(url, ca, TOKEN_MAX_ANSWER, TOKEN_TIMEOUT_MS, &r);
	cJSON *doc = rc == 0 && r.body ? fjson_parse(r.body, r.len, NULL, NULL) : NULL;
	const cJSON *te = cJSON_GetObjectItemCaseSensitive(doc, "token_endpoint");
	int ok = cJSON_IsString(te) && strlen(te->valuestring) < n;
	if (ok)
		snprintf(out, n, "%s", te->valuestring);
	else if (r.error[0])
		failed(url, r.error);
	else
		failed(url, r.answered ? "no token endpoint in the answer" : "no answer");
	cJSON_Delete(doc);
	upstream_response_release(&r);
	return ok ? 0 : -1;
}

/* The client assertion: iss = sub = client, aud = the token endpoint. */
static char *assertion(const struct crypto_key *k, const char *client, const char *aud)
{
	char kid[44], jti[CRYPTO_UUID_TEXT];
	uint8_t rnd[16];
	if (crypto_key_thumbprint(k, kid) != 0 || crypto_random(rnd, sizeof rnd) != 0)
		return NULL;
	rnd[6] = (uint8_t)((rnd[6] & 0x0f) | 0x40);
	rnd[8] = (uint8_t)((rnd[8] & 0x3f) | 0x80);
	crypto_uuid_format(rnd, jti);
	long long now = (long long)time(NULL);
	cJSON *c = cJSON_CreateObject();
	cJSON_AddStringToObject(c, "iss", client);
	cJSON_AddStringToObject(c, "sub", client);
	cJSON_AddStringToObject(c, "aud", aud);
	cJSON_AddNumberToObject(c, "iat", (double)now);
	cJSON_AddNumberToObject(c, "exp", (double)(now + TOKEN_ASSERTION_LIFE_S));
	cJSON_AddStringToObject(c, "jti", jti);
	char *out = jwt_sign(k, crypto_key_default_alg(k, true), kid, "JWT", c);
	cJSON_Delete(c);
	return out;
}

int cmd_token(int argc, char **argv)
{
	const char *client = NULL, *key = NULL, *url = NULL, *scope = NULL, *ca = NULL;
	for (int i = 1; i < argc; i++) {
		if (cmd_is_help(argv[i])) {
			fputs(usage_token, stdout);
			return 0;
		}
		const char **to = !strcmp(argv[i], "--client")  ? &client
				  : !strcmp(argv[i], "--key")   ? &key
				  : !strcmp(argv[i], "--url")   ? &url
				  : !strcmp(argv[i], "--scope") ? &scope
				  : !strcmp(argv[i], "--ca")    ? &ca
								: NULL;
		if (!to || i + 1 >= argc)
			return usage("unknown option or missing value");
		*to = argv[++i];
	}
	if (!client || !key || !url)
		return usage("--client, --key and --url are required");
	char origin[2048];
	if (strlen(url) >= sizeof origin)
		return usage("--url is too long");
	snprintf(origin, sizeof origin, "%s", url);
	size_t n = strlen(origin);
	while (n && origin[n - 1] == '/')
		origin[--n] = '\0';
	if (n >= 5 && !strcmp(origin + n - 5, "/fhir"))
		origin[n - 5] = '\0';
	if (crypto_init() != 0)
		return failed("the crypto library could not start", NULL);
	char why[512], endpoint[2048];
	struct crypto_key *k = crypto_key_load_private(key, why, sizeof why);
	if (!k)
		return failed(why, NULL);
	if (discover(origin, ca, endpoint, sizeof endpoint) != 0) {
		crypto_key_free(k);
		return EXIT_RUNTIME;
	}
	char *a = assertion(k, client, endpoint);
	crypto_key_free(k);
	if (!a)
		return failed("the client assertion could not be signed", NULL);
	struct strbuf form = STRBUF_INIT;
	strbuf_adds(&form, "grant_type=client_credentials&client_assertion_type=");
	form_value(&form, "urn:ietf:params:oauth:client-assertion-type:jwt-bearer");
	strbuf_adds(&form, "&client_assertion=");
	strbuf_adds(&form, a);
	if (scope) {
		strbuf_adds(&form, "&scope=");
		form_value(&form, scope);
	}
	free(a);
	char *body = strbuf_take(&form, NULL);
	if (!body)
		return failed("out of memory", NULL);
	/* posted to the address the operator reached, at the path announced */
	char post[4200];
	snprintf(post, sizeof post, "%s/auth/token", origin);
	struct upstream_response r;
	upstream_post_form(post, ca, body, TOKEN_MAX_ANSWER, TOKEN_TIMEOUT_MS, &r);
	free(body);
	cJSON *doc = r.body ? fjson_parse(r.body, r.len, NULL, NULL) : NULL;
	const cJSON *tok = cJSON_GetObjectItemCaseSensitive(doc, "access_token");
	int rc = 0;
	if (r.answered && r.status == 200 && cJSON_IsString(tok)) {
		printf("%s\n", tok->valuestring);
	} else if (!r.answered) {
		rc = failed(post, r.error);
	} else {
		const cJSON *err = cJSON_GetObjectItemCaseSensitive(doc, "error");
		const cJSON *desc = cJSON_GetObjectItemCaseSensitive(doc, "error_description");
		fprintf(stderr, "crosswalk token: %s answered %ld: %s%s%s\n", post, r.status,
			cJSON_IsString(err) ? err->valuestring : "no token", cJSON_IsString(desc) ? ": " : "",
			cJSON_IsString(desc) ? desc->valuestring : "");
		rc = EXIT_RUNTIME;
	}
	cJSON_Delete(doc);
	upstream_response_release(&r);
	return rc;
}
