/* Unit tests: configuration loading, checking and overrides. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"

static char path[64];

static int write_tmp(const char *text)
{
	snprintf(path, sizeof path, "/tmp/cw-config-XXXXXX");
	int fd = mkstemp(path);
	if (fd < 0)
		return -1;
	ssize_t w = write(fd, text, strlen(text));
	close(fd);
	return w == (ssize_t)strlen(text) ? 0 : -1;
}

static int load(const char *text, struct config *cfg, char *err, size_t errlen)
{
	assert_int_equal(write_tmp(text), 0);
	int rc = config_load(cfg, path, err, errlen);
	unlink(path);
	return rc;
}

static void shipped_default_loads(void **state)
{
	(void)state;
	unsetenv("CROSSWALK_LISTEN");
	struct config cfg;
	char err[512];
	assert_int_equal(config_load(&cfg, "conf/crosswalk.json", err, sizeof err), 0);
	assert_string_equal(cfg.listen_host, "127.0.0.1");
	assert_int_equal(cfg.listen_port, 8080);
	assert_string_equal(cfg.data_dir, "var");
	assert_int_equal(cfg.limits.max_body_bytes, 16u << 20);
	assert_true(cJSON_IsObject(cfg.plugins));
	config_release(&cfg);
}

static void values_and_defaults(void **state)
{
	(void)state;
	unsetenv("CROSSWALK_LISTEN");
	struct config cfg;
	char err[512];
	assert_int_equal(load("{\"listen\":\"[::1]:0\",\"threads\":3,\"log_level\":\"warn\","
			      "\"limits\":{\"max_connections_per_ip\":7},\"plugins\":{\"echo\":{\"a\":1}}}",
			      &cfg, err, sizeof err),
			 0);
	assert_true(cfg.listen_ipv6);
	assert_string_equal(cfg.listen_host, "::1");
	assert_int_equal(cfg.listen_port, 0);
	assert_int_equal(cfg.threads, 3);
	assert_int_equal(cfg.log_level, LOG_WARN);
	assert_int_equal(cfg.limits.max_connections_per_ip, 7);
	assert_int_equal(cfg.limits.max_connections, 512); /* default kept */
	assert_non_null(cJSON_GetObjectItem(cfg.plugins, "echo"));
	assert_null(cfg.cpt_file);
	config_release(&cfg);
	assert_int_equal(load("{\"codes\":{\"cpt_file\":\"/srv/cpt-2025.tsv\"}}", &cfg, err, sizeof err), 0);
	assert_string_equal(cfg.cpt_file, "/srv/cpt-2025.tsv");
	config_release(&cfg);
}

static void refusals_name_file_key_reason(void **state)
{
	(void)state;
	unsetenv("CROSSWALK_LISTEN");
	static const struct {
		const char *text, *expect;
	} cases[] = {
		{"{\"colour\":1}", "colour: unknown key"},
		{"{\"limits\":{\"max_body\":1}}", "limits.max_body: unknown key"},
		{"{\"limits\":{\"max_body_bytes\":\"1\"}}", "limits.max_body_bytes: must be a whole number"},
		{"{\"limits\":{\"max_body_bytes\":10}}", "limits.max_body_bytes: must be a whole number from 1024"},
		{"{\"limits\":{\"max_body_bytes\":2048.5}}", "limits.max_body_bytes"},
		{"{\"limits\":{\"max_body_bytes\":-5}}", "limits.max_body_bytes"},
		{"{\"limits\":{\"max_body_bytes\":99999999999999999999999}}", "limits.max_body_bytes"},
		{"{\"threads\":true}", "threads"},
		{"{\"log_level\":\"loud\"}", "log_level: must be one of"},
		{"{\"listen\":\"127.0.0.1\"}", "listen: expected"},
		{"{\"listen\":\"127.0.0.1:70000\"}", "listen: port"},
		{"{\"listen\":\"example.org:80\"}", "listen:"},
		{"{\"data_dir\":\"\"}", "data_dir: must be 1 to"},
		{"{\"plugins\":{\"echo\":3}}", "plugins.echo: must be an object"},
		{"{\"plugins\":[]}", "plugins: must be an object"},
		{"{\"codes\":{\"cpt_file\":\"\"}}", "codes.cpt_file: must be 1 to"},
		{"{\"codes\":{\"cpt_file\":7}}", "codes.cpt_file: must be a string"},
		{"{\"codes\":{\"icd_file\":\"x\"}}", "codes.icd_file: unknown key"},
		{"{\"codes\":\"x\"}", "codes: must be an object"},
		{"{\"upstream\":{\"match_identifier_systems\":\"urn:a\"}}",
		 "upstream.match_identifier_systems: must be an array of 1 to 16"},
		{"{\"upstream\":{\"match_identifier_systems\":[]}}",
		 "upstream.match_identifier_systems: must be an array"},
		{"{\"upstream\":{\"match_identifier_systems\":[\"not a uri\"]}}",
		 "upstream.match_identifier_systems: each entry must be an absolute URI"},
		{"{\"upstream\":{\"match_identifier_systems\":[\"urn:a|b\"]}}",
		 "upstream.match_identifier_systems: each entry must be an absolute URI"},
		{"{\"upstream\":{\"match_identifier_systems\":[\"urn:a\",\"urn:a\"]}}",
		 "upstream.match_identifier_systems: \"urn:a\" is given twice"},
		{"[]", "must be a JSON object"},
		{"{\"threads\":1,\"threads\":2}", "line 1"},
		{"{\"threads\":1", "line 1"},
		{"{\"tls\":{\"cert\":\"x\"}}", "tls.cert: unknown key"},
		{"{\"tls\":{\"cert_file\":\"a.pem\"}}", "tls.key_file: is required with tls.cert_file"},
		{"{\"tls\":{\"key_file\":\"a.key\"}}", "tls.cert_file: is required with tls.key_file"},
		{"{\"tls\":{\"client_ca_file\":\"ca.pem\"}}", "tls.client_ca_file: needs tls.cert_file"},
		{"{\"auth\":{\"token_endpoint\":1}}", "auth.token_endpoint: must be true or false"},
		{"{\"auth\":{\"token_lifetime_s\":5}}", "auth.token_lifetime_s: must be a whole number from 10"},
		{"{\"auth\":{\"clients\":{}}}", "auth.clients: must be an array"},
		{"{\"auth\":{\"clients\":[{\"scopes\":\"system/*.rs\",\"tls_subject\":\"CN=a\"}]}}",
		 "auth.clients[0].client_id: is required"},
		{"{\"auth\":{\"clients\":[{\"client_id\":\"a\",\"colour\":\"x\"}]}}",
		 "auth.clients[0].colour: unknown key"},
		{"{\"auth\":{\"clients\":[{\"client_id\":\"a\"}]}}", "auth.clients[0]: needs a way to authenticate"},
		{"{\"auth\":{\"clients\":[{\"client_id\":\"a\",\"tls_fingerprint\":\"ab:cd\"}]}}",
		 "auth.clients[0].tls_fingerprint: must be the SHA-256 fingerprint"},
		{"{\"auth\":{\"clients\":[{\"client_id\":\"a\",\"tls_subject\":\"CN=a\",\"purpose\":\"fun\"}]}}",
		 "auth.clients[0].purpose: must be treatment"},
		{"{\"auth\":{\"clients\":[{\"client_id\":\"a\",\"tls_subject\":\"CN=a\",\"patient\":\"Patient/p1\"}]}}",
		 "auth.clients[0].patient: is not a Patient id"},
		{"{\"auth\":{\"clients\":[{\"client_id\":\"a\",\"tls_subject\":\"CN=a\",\"patient\":\"\"}]}}",
		 "auth.clients[0].patient: must be a non-empty string"},
		{"{\"auth\":{\"clients\":[{\"client_id\":\"a\",\"tls_subject\":\"CN=a\"},"
		 "{\"client_id\":\"a\",\"tls_subject\":\"CN=b\"}]}}",
		 "auth.clients[1].client_id: \"a\" is given twice"},
		{"{\"auth\":{\"clients\":[{\"client_id\":\"a\",\"jwks_url\":\"http://example.org/jwks\"}]}}",
		 "auth.clients[0].jwks_url: must be an https:// URL"},
		{"{\"auth\":{\"clients\":[{\"client_id\":\"a\",\"jwks\":{\"keys\":[]}}]}}",
		 "auth.clients[0].jwks: must be a JWK Set"},
		{"{\"auth\":{\"clients\":[{\"client_id\":\"a\",\"jwks\":{\"keys\":[{}]},\"jwks_url\":\"https://x/"
		 "j\"}]}}",
		 "auth.clients[0]: give jwks or jwks_url, not both"},
		{"{\"auth\":{\"issuers\":[{\"issuer\":\"https://idp.example.org\",\"audience\":\"x\"}]}}",
		 "auth.issuers[0]: jwks_url is required"},
		{"{\"auth\":{\"issuers\":[{\"issuer\":\"https://idp.example.org\",\"jwks_url\":\"https://idp/j\"}]}}",
		 "auth.issuers[0]: audience is required"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct config cfg;
		char err[512] = "";
		assert_int_equal(load(cases[i].text, &cfg, err, sizeof err), -1);
		if (!strstr(err, cases[i].expect) || !strstr(err, "/tmp/cw-config-"))
			fail_msg("case %zu: '%s' does not mention '%s'", i, err, cases[i].expect);
	}
}

/* Beyond loopback: auth and TLS, both; loopback: neither needed. */
static void exposure_rule(void **state)
{
	(void)state;
	unsetenv("CROSSWALK_LISTEN");
	static const struct {
		const char *text;
		int rc;
		const char *expect;
	} cases[] = {
		{"{\"listen\":\"127.0.0.1:0\"}", 0, NULL},
		{"{\"listen\":\"0.0.0.0:0\"}", -1, "requires authentication (auth.clients or auth.issuers) and TLS"},
		{"{\"listen\":\"0.0.0.0:0\",\"tls\":{\"cert_file\":\"c\",\"key_file\":\"k\"}}", -1,
		 "requires authentication"},
		{"{\"listen\":\"0.0.0.0:0\",\"auth\":{\"clients\":[{\"client_id\":\"a\",\"tls_subject\":\"CN=a\"}]}}",
		 -1, "requires TLS"},
		{"{\"listen\":\"0.0.0.0:0\",\"tls\":{\"cert_file\":\"c\",\"key_file\":\"k\"},"
		 "\"auth\":{\"clients\":[{\"client_id\":\"a\",\"tls_subject\":\"CN=a\"}]}}",
		 0, NULL},
		{"{\"listen\":\"0.0.0.0:0\",\"tls\":{\"cert_file\":\"c\",\"key_file\":\"k\"},\"auth\":{\"clients\":[]}"
		 "}",
		 -1, "requires authentication"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct config cfg;
		char err[512] = "";
		assert_int_equal(load(cases[i].text, &cfg, err, sizeof err), 0);
		int rc = config_check_exposure(&cfg, err, sizeof err);
		if (rc != cases[i].rc || (cases[i].expect && !strstr(err, cases[i].expect)))
			fail_msg("case %zu: %d '%s'", i, rc, err);
		config_release(&cfg);
	}
}

static void missing_file(void **state)
{
	(void)state;
	struct config cfg;
	char err[512];
	assert_int_equal(config_load(&cfg, "/nonexistent/cw.json", err, sizeof err), -1);
	assert_non_null(strstr(err, "/nonexistent/cw.json: cannot read"));
}

static void environment_overrides_listen(void **state)
{
	(void)state;
	struct config cfg;
	char err[512];
	setenv("CROSSWALK_LISTEN", "127.0.0.5:9000", 1);
	assert_int_equal(load("{\"listen\":\"127.0.0.1:8080\"}", &cfg, err, sizeof err), 0);
	assert_string_equal(cfg.listen_host, "127.0.0.5");
	assert_int_equal(cfg.listen_port, 9000);
	config_release(&cfg);
	setenv("CROSSWALK_LISTEN", "nonsense", 1);
	assert_int_equal(load("{}", &cfg, err, sizeof err), -1);
	assert_non_null(strstr(err, "CROSSWALK_LISTEN"));
	unsetenv("CROSSWALK_LISTEN");
}

static void loopback_detection(void **state)
{
	(void)state;
	assert_true(config_host_is_loopback("127.0.0.1"));
	assert_true(config_host_is_loopback("127.255.1.2"));
	assert_true(config_host_is_loopback("::1"));
	assert_true(config_host_is_loopback("localhost"));
	assert_false(config_host_is_loopback("0.0.0.0"));
	assert_false(config_host_is_loopback("10.0.0.1"));
	assert_false(config_host_is_loopback("::"));
	assert_false(config_host_is_loopback("128.0.0.1"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(shipped_default_loads),
		cmocka_unit_test(values_and_defaults),
		cmocka_unit_test(refusals_name_file_key_reason),
		cmocka_unit_test(missing_file),
		cmocka_unit_test(environment_overrides_listen),
		cmocka_unit_test(loopback_detection),
		cmocka_unit_test(exposure_rule),
	};
	return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
