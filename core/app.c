#include "app.h"

#include <stdio.h>
#include <string.h>

#include "api_system.h"

int app_init(struct app *app, const struct config *cfg, char *err, size_t errlen)
{
	memset(app, 0, sizeof *app);
	app->cfg = cfg;
	capability_init(&app->cap, CW_VERSION);
	capability_add_format(&app->cap, "application/fhir+json");
	if (api_system_register(app) != 0) {
		snprintf(err, errlen, "cannot register the system endpoints");
		return -1;
	}
	return 0;
}

void app_dispatch(void *ctx, struct http_request *req, struct http_response *resp)
{
	const struct app *app = ctx;
	router_dispatch(&app->router, req, resp);
}

void app_release(struct app *app) { memset(app, 0, sizeof *app); }
