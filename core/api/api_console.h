/* api_console — the operator console in a browser.
 *
 * GET /console answers the console's page, GET /console/NAME
 * its other files (compiled into the binary: console/assets.h), each with a
 * strict Content-Security-Policy (script-src 'self', no inline script or
 * style attribute, connections to this origin only) and nosniff. The page
 * holds no data: everything it shows comes from the gateway's public APIs
 * (FHIR REST, /outbox, /plugins, /export/billing) and from
 * GET /console/api/series, the gateway's own counters sampled every few
 * seconds (base/series.h) as JSON. The files are public; /console/api/ needs
 * what /metrics needs (loopback, or the admin scope).
 *
 * Threads: handlers run on worker threads; the series is thread-safe. */
#ifndef CW_API_CONSOLE_H
#define CW_API_CONSOLE_H

#include "api/context.h"

/* Starts the sampler (app->series) and registers the routes; -1 on failure. */
int api_console_register(struct app *app);

#endif
