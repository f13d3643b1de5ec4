/* compartment — the Patient compartment (compartment.h). */
#include "fhir/compartment.h"

#include <stdlib.h>
#include <string.h>

#include "fhir/search_params.h"

static int by_type(const void *key, const void *row)
{
	return strcmp(key, ((const struct compartment_type *)row)->type);
}

const struct compartment_type *compartment_patient_type(const char *type)
{
	if (!type)
		return NULL;
	return bsearch(type, compartment_patient_types, compartment_patient_count, sizeof *compartment_patient_types,
		       by_type);
}

bool compartment_patient_param(const char *type, size_t i, char *buf, size_t n)
{
	const struct compartment_type *t = compartment_patient_type(type);
	const char *p = t ? t->params : "";
	for (; *p && i; i--) {
		p += strcspn(p, "|");
		if (*p == '|')
			p++;
	}
	size_t len = strcspn(p, "|");
	if (!len || len >= n)
		return false;
	memcpy(buf, p, len);
	buf[len] = '\0';
	return true;
}

/* Whether name is one of the '|'-separated names of list. */
static bool listed(const char *list, const char *name)
{
	size_t n = strlen(name);
	for (const char *p = list; *p;) {
		size_t len = strcspn(p, "|");
		if (len == n && !memcmp(p, name, n))
			return true;
		p += len;
		if (*p == '|')
			p++;
	}
	return false;
}

struct membership {
	const char *params, *pid;
};

static int member_ref(void *ctx, const struct search_index_value *v)
{
	const struct membership *m = ctx;
	return v->kind == SEARCH_PARAM_REFERENCE && v->sys && !strcmp(v->sys, "Patient") && v->val &&
	       !strcmp(v->val, m->pid) && listed(m->params, v->param);
}

bool compartment_patient_has(const char *type, const cJSON *res, const char *pid)
{
	const struct compartment_type *t = compartment_patient_type(type);
	if (!t || !res || !pid || !*pid)
		return false;
	const cJSON *rt = cJSON_GetObjectItemCaseSensitive(res, "resourceType");
	if (!cJSON_IsString(rt) || strcmp(rt->valuestring, type) != 0)
		return false;
	if (!strcmp(type, "Patient")) {
		const cJSON *id = cJSON_GetObjectItemCaseSensitive(res, "id");
		if (cJSON_IsString(id) && !strcmp(id->valuestring, pid))
			return true;
	}
	struct membership m = {t->params, pid};
	return search_params_extract(type, res, member_ref, &m) == 1;
}
