#include "fhir/fhir_io.h"

#include <stdint.h>
#include <string.h>

#include "fhir/fhir_xml.h"
#include "fhir/model.h"

/* a: build the tree in this arena (NULL: malloc'd, for cJSON_Delete) */
static cJSON *read_json(struct arena *a, const char *buf, size_t len, const struct fjson_limits *lim,
			struct outcome *oo, int *status)
{
	struct fjson_error err;
	memset(&err, 0, sizeof err);
	cJSON *t = a ? fjson_parse_in(a, buf, len, lim, &err) : fjson_parse(buf, len, lim, &err);
	if (!t) {
		*status = err.status == 413 ? 413 : 400;
		outcome_add(oo, OUTCOME_ERROR, err.status == 413 ? "too-costly" : "structure",
			    err.path[0] ? err.path : NULL, "body is not valid JSON: %s", err.message);
		return NULL;
	}
	const cJSON *rt = cJSON_IsObject(t) ? cJSON_GetObjectItemCaseSensitive(t, "resourceType") : NULL;
	if (!cJSON_IsObject(t)) {
		outcome_add(oo, OUTCOME_ERROR, "structure", NULL, "a FHIR resource is a JSON object");
	} else if (!cJSON_IsString(rt)) {
		outcome_add(oo, OUTCOME_ERROR, "required", NULL, "the resource has no resourceType");
	} else if (!model_resource(rt->valuestring)) {
		outcome_add(oo, OUTCOME_ERROR, "not-supported", "resourceType",
			    "\"%.64s\" is not a FHIR R4 resource type", rt->valuestring);
	} else {
		return t;
	}
	if (!a)
		cJSON_Delete(t);
	*status = 400;
	return NULL;
}

cJSON *fhir_io_read(enum format f, const char *buf, size_t len, const struct fjson_limits *lim,
		    struct outcome *oo, int *status)
{
	int st = 400;
	cJSON *t = NULL;
	if (f == FORMAT_XML)
		t = fhir_xml_to_json(buf, len, lim, oo, &st);
	else if (f == FORMAT_JSON)
		t = read_json(NULL, buf, len, lim, oo, &st);
	else
		outcome_add(oo, OUTCOME_ERROR, "not-supported", NULL, "unsupported format");
	if (!t && status)
		*status = st;
	return t;
}

char *fhir_io_write(enum format f, const cJSON *resource, bool pretty, size_t *out_len, struct outcome *oo,
		    int *status)
{
	int st = 500;
	char *out = NULL;
	if (f == FORMAT_XML) {
		out = fhir_json_to_xml(resource, pretty, out_len, oo, &st);
	} else if (f == FORMAT_JSON) {
		out = fjson_print(resource, pretty, out_len);
		if (!out)
			outcome_add(oo, OUTCOME_ERROR, "exception", NULL, "out of memory writing JSON");
	} else {
		st = 406;
		outcome_add(oo, OUTCOME_ERROR, "not-supported", NULL, "unsupported format");
	}
	if (!out && status)
		*status = st;
	return out;
}

char *fhir_io_convert(enum format from, enum format to, const char *buf, size_t len, bool pretty,
		      const struct fjson_limits *lim, size_t *out_len, struct outcome *oo, int *status)
{
	return fhir_io_convert_in(NULL, from, to, buf, len, pretty, lim, out_len, oo, status);
}

char *fhir_io_convert_in(struct arena *scratch, enum format from, enum format to, const char *buf, size_t len,
			 bool pretty, const struct fjson_limits *lim, size_t *out_len, struct outcome *oo, int *status)
{
	if (from == FORMAT_XML && to == FORMAT_JSON && !pretty)
		return fhir_xml_to_json_text(buf, len, lim, out_len, oo, status);
	if (from == FORMAT_JSON) {
		/* the tree is only read: built in an arena, it costs no malloc
		 * and no free per node; fjson still charges lim's budget, the
		 * arena's own is the same budget with room for its rounding
		 * (and for what a scratch arena holds already) */
		struct fjson_limits dl;
		if (!lim) {
			fjson_limits_default(&dl);
			lim = &dl;
		}
		size_t budget = lim->memory_budget > SIZE_MAX / 4 ? SIZE_MAX / 4 : lim->memory_budget * 2;
		struct arena own, *a = scratch;
		if (a) {
			a->budget = arena_held(a) + budget + (1u << 20);
		} else {
			arena_init(&own, budget + (1u << 20));
			a = &own;
		}
		int st = 400;
		cJSON *t = read_json(a, buf, len, lim, oo, &st);
		char *out = t ? fhir_io_write(to, t, pretty, out_len, oo, status) : NULL;
		if (!t && status)
			*status = st;
		if (a == &own)
			arena_release(&own);
		return out;
	}
	cJSON *t = fhir_io_read(from, buf, len, lim, oo, status);
	if (!t)
		return NULL;
	char *out = fhir_io_write(to, t, pretty, out_len, oo, status);
	cJSON_Delete(t);
	return out;
}
