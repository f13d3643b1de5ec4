/* api_system — the gateway's own endpoints: GET /fhir/metadata (the
 * CapabilityStatement), GET /healthz and GET /metrics (Prometheus text). */
#ifndef CW_API_SYSTEM_H
#define CW_API_SYSTEM_H

#include "api/context.h"

int api_system_register(struct app *app);

#endif
