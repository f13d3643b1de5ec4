/* rest_confine — confining a client to part of a type (rest_int.h). */
#include "api/rest_int.h"
#include "api/access.h"

#include <stdio.h>
#include <string.h>

#include "fhir/compartment.h"

bool rest_confined(const struct http_request *req, const char *type, unsigned perms)
{
	const char *gq[1];
	size_t gl[1];
	return access_compartment(req, type, perms) || access_granular(req, type, perms, gq, gl, 1);
}

bool rest_confine_local(const struct app *app, const struct http_request *req, struct http_response *resp,
			const char *type, unsigned perms)
{
	if (!rest_confined(req, type, perms) || !rest_routed_upstream(app, type))
		return true;
	return auth_forbid(resp, type, perms);
}

bool rest_confined_stored(const struct app *app, const struct http_request *req, const char *type, const char *id,
			  const char *vid, unsigned perms)
{
	if (!rest_confined(req, type, perms))
		return true;
	cJSON *res = NULL;
	struct store_error err = {0};
	enum store_status st =
		vid ? store_vread(app->store, type, id, vid, &res, &err) : store_read(app->store, type, id, &res, &err);
	bool within = false;
	if (st == STORE_OK) {
		const char *pid = access_compartment(req, type, perms);
		if (!pid || compartment_patient_has(type, res, pid))
			within = perms == SCOPE_R && !vid ? rest_granular_match(app, req, type, id)
							  : access_holds(req, type, perms, res);
	}
	cJSON_Delete(res);
	return within;
}

int rest_write_reach(const struct app *app, const struct http_request *req, const char *type, const char *id,
		     const cJSON *res)
{
	unsigned perms = id ? SCOPE_U : SCOPE_C;
	if (!rest_confined(req, type, perms))
		return 0;
	if (!access_holds(req, type, perms, res))
		return 403;
	cJSON *old = NULL;
	struct store_error err = {0};
	enum store_status st = id ? store_read(app->store, type, id, &old, &err) : STORE_NOT_FOUND;
	bool within = st != STORE_OK || access_holds(req, type, perms, old);
	cJSON_Delete(old);
	return within ? 0 : 404;
}

void rest_answer_not_found(const struct http_request *req, struct http_response *resp, const char *type, const char *id)
{
	struct store_error nf = {.status = STORE_NOT_FOUND};
	snprintf(nf.message, sizeof nf.message, "no %s with id %s", type, id);
	rest_store_answer(req, resp, STORE_NOT_FOUND, &nf);
}

bool rest_compartment_confine(const struct http_request *req, const char *type, struct query *q)
{
	const char *pid = access_compartment(req, type, SCOPE_S);
	if (!pid)
		return true;
	if (!rest_valid_id(pid))
		return false;
	char ref[128], name[80];
	snprintf(ref, sizeof ref, "Patient/%s", pid);
	bool patient = !strcmp(type, "Patient");
	for (size_t i = 0; i < q->n; i++) {
		const struct store_search_param *p = &q->params[i];
		if (p->modifier && *p->modifier)
			continue;
		if (patient && !strcmp(p->name, "_id") && !strcmp(p->value, pid))
			return true;
		for (size_t k = 0; !patient && compartment_patient_param(type, k, name, sizeof name); k++)
			if (!strcmp(p->name, name) && !strcmp(p->value, ref))
				return true;
	}
	char qs[256];
	if (patient)
		snprintf(qs, sizeof qs, "_id=%s", pid);
	else if (compartment_patient_param(type, 0, name, sizeof name))
		snprintf(qs, sizeof qs, "%s=Patient/%s", name, pid);
	else
		return false;
	return rest_query_from_string(q, qs) == 0;
}
