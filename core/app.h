/* app — assembles the gateway: configuration, routes, capability statement,
 * and the dispatch function the HTTP front door calls.
 *
 * Lifetime: app_init once before serving, app_release once after the server
 * has stopped. Threads: app_dispatch runs on many worker threads at once and
 * only reads the app. */
#ifndef CW_APP_H
#define CW_APP_H

#include <stdatomic.h>

#include "capability.h"
#include "config.h"
#include "http.h"
#include "router.h"

struct app {
	const struct config *cfg;
	struct router router;
	struct capability cap;
	atomic_bool draining; /* set on SIGTERM: /healthz then answers 503 */
};

/* Returns 0, or -1 with a reason in err. */
int app_init(struct app *app, const struct config *cfg, char *err, size_t errlen);
void app_dispatch(void *ctx, struct http_request *req, struct http_response *resp);
void app_release(struct app *app);

#endif
