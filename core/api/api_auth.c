#include "api/api_auth.h"

static void post_token(void *ctx, struct http_request *req, struct http_response *resp)
{
	const struct app *app = ctx;
	auth_token(app->auth, req, resp);
}

static void get_jwks(void *ctx, struct http_request *req, struct http_response *resp)
{
	const struct app *app = ctx;
	auth_jwks(app->auth, req, resp);
}

static void get_smart_configuration(void *ctx, struct http_request *req, struct http_response *resp)
{
	const struct app *app = ctx;
	auth_smart_configuration(app->auth, req, resp);
}

int api_auth_register(struct app *app)
{
	int rc = 0;
	rc |= router_add(&app->router, "POST", "/auth/token", post_token, app);
	rc |= router_add(&app->router, "GET", "/auth/jwks", get_jwks, app);
	rc |= router_add(&app->router, "GET", "/fhir/.well-known/smart-configuration", get_smart_configuration, app);
	return rc;
}
