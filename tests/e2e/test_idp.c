/* End-to-end tests against a real, independent authorization server: the
 * oidc-provider package (tests/idp/server.mjs, started here on 127.0.0.1
 * and stopped by its PID) issues JWT access tokens by client credentials;
 * the gateway, configured with it in auth.issuers, verifies them through
 * the provider's JWKS URL. A token for another audience, a tampered one,
 * and one of an issuer it does not trust are refused, each counted by
 * reason. Skipped without node and npm. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "e2e/harness.h"

#define AUDIENCE "https://crosswalk.test/fhir"

static struct upstream_srv idp, idp2;

static int setup(void **state)
{
	(void)state;
	if (upstream_missing())
		return 0;
	const char *args[] = {"--client", "ops:s3cret:system/Patient.rs system/Observation.rs", NULL};
	if (idp_start(&idp, args) != 0)
		return -1;
	return idp_start(&idp2, args);
}

static int teardown(void **state)
{
	(void)state;
	upstream_stop(&idp);
	upstream_stop(&idp2);
	return 0;
}

static long get_with(const struct gw *g, const char *token, struct resp *r)
{
	return gw_call_bearer(g, token, "GET", "/fhir/Patient", NULL, NULL, r);
}

static long refused(const struct gw *g, const char *reason) { return gw_auth_refused(g, reason); }

static void tokens_of_an_independent_provider_are_verified(void **state)
{
	(void)state;
	UPSTREAM_NEEDED();
	char cfg[1024];
	snprintf(cfg, sizeof cfg,
		 "\"auth\":{\"issuers\":[{\"issuer\":\"%s\",\"jwks_url\":\"%s/jwks\",\"audience\":\"" AUDIENCE "\"}]}",
		 idp.base, idp.base);
	struct gw g;
	assert_int_equal(gw_start(&g, cfg), 0);
	struct resp r;

	char *tok = idp_token(&idp, "ops", "s3cret", "system%2FPatient.rs", AUDIENCE);
	assert_non_null(tok);
	assert_int_equal(get_with(&g, tok, &r), 200);
	resp_free(&r);

	/* tampered: one character of the payload changed */
	char *bad = strdup(tok);
	char *dot = strchr(bad, '.');
	dot[4] = dot[4] == 'A' ? 'B' : 'A';
	long before = refused(&g, "bad_signature") + refused(&g, "malformed");
	assert_int_equal(get_with(&g, bad, &r), 401);
	resp_free(&r);
	assert_int_equal(refused(&g, "bad_signature") + refused(&g, "malformed"), before + 1);
	free(bad);
	free(tok);

	/* issued for another resource server */
	tok = idp_token(&idp, "ops", "s3cret", "system%2FPatient.rs", "https%3A%2F%2Felsewhere.test%2Ffhir");
	assert_non_null(tok);
	before = refused(&g, "bad_audience");
	assert_int_equal(get_with(&g, tok, &r), 401);
	resp_free(&r);
	assert_int_equal(refused(&g, "bad_audience"), before + 1);
	free(tok);

	/* the same software on another address: an issuer nobody configured */
	tok = idp_token(&idp2, "ops", "s3cret", "system%2FPatient.rs", AUDIENCE);
	assert_non_null(tok);
	before = refused(&g, "bad_issuer");
	assert_int_equal(get_with(&g, tok, &r), 401);
	resp_free(&r);
	assert_int_equal(refused(&g, "bad_issuer"), before + 1);
	free(tok);

	char *log = gw_log(&g);
	assert_null(strstr(log, "eyJ"));
	free(log);
	assert_int_equal(gw_stop(&g, 5000), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(tokens_of_an_independent_provider_are_verified),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
