/* access — scope decisions inside the handlers (access.h). */
#include "api/access.h"

#include <stdio.h>

#include "base/metrics.h"

static const struct auth_principal *who_of(const struct http_request *req) { return req ? req->principal : NULL; }

bool access_may(const struct http_request *req, const char *type, unsigned perms)
{
	return auth_may(who_of(req), type, perms);
}

bool access_checked(const struct http_request *req)
{
	const struct auth_principal *who = who_of(req);
	return who && who->client_id;
}

void access_refuse_issue(struct outcome *oo, const char *where, const char *type, unsigned perms)
{
	char name[200];
	auth_scope_name(name, sizeof name, type, perms);
	metrics_auth_refused(METRICS_AUTH_INSUFFICIENT_SCOPE);
	outcome_add(oo, OUTCOME_ERROR, "forbidden", where, "this request needs the scope %s", name);
}

void access_left_out(void) { metrics_auth_refused(METRICS_AUTH_LEFT_OUT); }

bool access_may_read_all(const struct http_request *req, const cJSON *bundle, char *type, size_t n)
{
	if (!access_checked(req))
		return true;
	const cJSON *e;
	cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(bundle, "entry"))
	{
		const cJSON *rt = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(e, "resource"),
								   "resourceType");
		const char *t = cJSON_IsString(rt) ? rt->valuestring : "*";
		if (!access_may(req, t, SCOPE_R | SCOPE_S)) {
			snprintf(type, n, "%s", t);
			return false;
		}
	}
	return true;
}

size_t access_granular(const struct http_request *req, const char *type, unsigned perms, const char **q, size_t *qlen,
		       size_t max)
{
	return auth_granular(who_of(req), type, perms, q, qlen, max);
}
