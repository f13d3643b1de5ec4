#include "fhir/capability.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

void capability_init(struct capability *cap, const char *software_version)
{
	memset(cap, 0, sizeof *cap);
	cap->software_version = software_version;
	time_t t = time(NULL);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(cap->date, sizeof cap->date, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int capability_add_format(struct capability *cap, const char *mime)
{
	if (cap->nformats >= sizeof cap->formats / sizeof cap->formats[0])
		return -1;
	cap->formats[cap->nformats++] = mime;
	return 0;
}

int capability_add_operation(struct capability *cap, struct capability_operation op)
{
	if (cap->nops >= CAPABILITY_MAX)
		return -1;
	cap->ops[cap->nops++] = op;
	return 0;
}

int capability_add_resource(struct capability *cap, const struct capability_resource *res)
{
	if (cap->nresources >= CAPABILITY_MAX)
		return -1;
	cap->resources[cap->nresources++] = *res;
	return 0;
}

int capability_add_native_format(struct capability *cap, const char *name)
{
	if (cap->nnative >= CAPABILITY_MAX)
		return -1;
	cap->native_formats[cap->nnative++] = name;
	return 0;
}

int capability_add_decorator(struct capability *cap, struct capability_decorator d)
{
	if (cap->ndecorators >= sizeof cap->decorators / sizeof cap->decorators[0])
		return -1;
	cap->decorators[cap->ndecorators++] = d;
	return 0;
}

int capability_add_system_interaction(struct capability *cap, const char *code, const char *documentation)
{
	if (cap->nsystem >= sizeof cap->system / sizeof cap->system[0])
		return -1;
	cap->system[cap->nsystem++] = (struct capability_interaction){code, documentation};
	return 0;
}

static cJSON *operation_json(const struct capability_operation *op)
{
	cJSON *o = cJSON_CreateObject();
	if (!o)
		return NULL;
	cJSON_AddStringToObject(o, "name", op->name);
	cJSON_AddStringToObject(o, "definition", op->definition);
	if (op->provider) {
		char doc[160];
		snprintf(doc, sizeof doc, "Provided by %s.", op->provider);
		cJSON_AddStringToObject(o, "documentation", doc);
	}
	return o;
}

static bool resource_listed(const struct capability *cap, const char *type)
{
	for (size_t i = 0; i < cap->nresources; i++)
		if (strcmp(cap->resources[i].type, type) == 0)
			return true;
	return false;
}

static size_t first_op_of_type(const struct capability *cap, size_t k)
{
	for (size_t i = 0; i < k; i++)
		if (cap->ops[i].type && strcmp(cap->ops[i].type, cap->ops[k].type) == 0)
			return i;
	return k;
}

static bool has_unlisted_type_ops(const struct capability *cap)
{
	for (size_t k = 0; k < cap->nops; k++)
		if (cap->ops[k].type && !resource_listed(cap, cap->ops[k].type))
			return true;
	return false;
}

static void add_type_ops(const struct capability *cap, cJSON *o, const char *type)
{
	cJSON *ops = NULL;
	for (size_t k = 0; k < cap->nops; k++) {
		if (!cap->ops[k].type || strcmp(cap->ops[k].type, type) != 0)
			continue;
		if (!ops)
			ops = cJSON_AddArrayToObject(o, "operation");
		if (ops)
			cJSON_AddItemToArray(ops, operation_json(&cap->ops[k]));
	}
}

cJSON *capability_build(const struct capability *cap)
{
	cJSON *cs = cJSON_CreateObject();
	if (!cs)
		return NULL;
	cJSON_AddStringToObject(cs, "resourceType", "CapabilityStatement");
	cJSON_AddStringToObject(cs, "status", "active");
	cJSON_AddStringToObject(cs, "date", cap->date);
	cJSON_AddStringToObject(cs, "publisher", "Crosswalk");
	cJSON_AddStringToObject(cs, "kind", "instance");
	cJSON *sw = cJSON_AddObjectToObject(cs, "software");
	if (sw) {
		cJSON_AddStringToObject(sw, "name", "Crosswalk");
		cJSON_AddStringToObject(sw, "version", cap->software_version);
	}
	cJSON *impl = cJSON_AddObjectToObject(cs, "implementation");
	if (impl) {
		char desc[512];
		size_t pos = (size_t)snprintf(desc, sizeof desc, "Crosswalk FHIR R4 gateway");
		for (size_t i = 0; i < cap->nnative && pos < sizeof desc; i++)
			pos += (size_t)snprintf(desc + pos, sizeof desc - pos, "%s%s", i ? ", " : "; native formats: ",
						cap->native_formats[i]);
		cJSON_AddStringToObject(impl, "description", desc);
	}
	cJSON_AddStringToObject(cs, "fhirVersion", "4.0.1");
	cJSON *formats = cJSON_AddArrayToObject(cs, "format");
	for (size_t i = 0; formats && i < cap->nformats; i++)
		cJSON_AddItemToArray(formats, cJSON_CreateString(cap->formats[i]));
	cJSON *rest = cJSON_AddArrayToObject(cs, "rest");
	cJSON *server = cJSON_CreateObject();
	if (!rest || !server) {
		cJSON_Delete(server);
		cJSON_Delete(cs);
		return NULL;
	}
	cJSON_AddItemToArray(rest, server);
	cJSON_AddStringToObject(server, "mode", "server");
	if (cap->nresources || has_unlisted_type_ops(cap)) {
		cJSON *res = cJSON_AddArrayToObject(server, "resource");
		for (size_t i = 0; res && i < cap->nresources; i++) {
			const struct capability_resource *r = &cap->resources[i];
			cJSON *o = cJSON_CreateObject();
			if (!o)
				break;
			cJSON_AddItemToArray(res, o);
			cJSON_AddStringToObject(o, "type", r->type);
			if (r->profile)
				cJSON_AddStringToObject(o, "profile", r->profile);
			cJSON *inter = cJSON_AddArrayToObject(o, "interaction");
			for (size_t k = 0; inter && k < 16 && r->interactions[k]; k++) {
				cJSON *it = cJSON_CreateObject();
				if (!it)
					break;
				cJSON_AddStringToObject(it, "code", r->interactions[k]);
				cJSON_AddItemToArray(inter, it);
			}
			add_type_ops(cap, o, r->type);
		}
		/* Operations on types no module lists as a resource (e.g. from plugins). */
		for (size_t k = 0; res && k < cap->nops; k++) {
			const char *t = cap->ops[k].type;
			if (!t || resource_listed(cap, t) || first_op_of_type(cap, k) != k)
				continue;
			cJSON *o = cJSON_CreateObject();
			if (!o)
				break;
			cJSON_AddItemToArray(res, o);
			cJSON_AddStringToObject(o, "type", t);
			add_type_ops(cap, o, t);
		}
	}
	cJSON *inter = cap->nsystem ? cJSON_AddArrayToObject(server, "interaction") : NULL;
	for (size_t k = 0; inter && k < cap->nsystem; k++) {
		cJSON *it = cJSON_CreateObject();
		if (!it)
			break;
		cJSON_AddStringToObject(it, "code", cap->system[k].code);
		if (cap->system[k].documentation)
			cJSON_AddStringToObject(it, "documentation", cap->system[k].documentation);
		cJSON_AddItemToArray(inter, it);
	}
	cJSON *ops = NULL;
	for (size_t k = 0; k < cap->nops; k++) {
		if (cap->ops[k].type)
			continue;
		if (!ops)
			ops = cJSON_AddArrayToObject(server, "operation");
		if (ops)
			cJSON_AddItemToArray(ops, operation_json(&cap->ops[k]));
	}
	for (size_t k = 0; k < cap->ndecorators; k++)
		cap->decorators[k].fn(cap->decorators[k].ctx, cs);
	return cs;
}
