/* api_auth — the endpoints of identity and access (core/auth): POST
 * /auth/token (SMART Backend Services), GET /auth/jwks (the key of the
 * gateway's tokens) and GET /fhir/.well-known/smart-configuration. */
#ifndef CW_API_AUTH_H
#define CW_API_AUTH_H

#include "api/context.h"

int api_auth_register(struct app *app);

#endif
