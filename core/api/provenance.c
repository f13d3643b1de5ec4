/* provenance — the Provenance of a transaction (provenance.h). */
#include "api/provenance.h"

#include <stdio.h>
#include <string.h>

void provenance_ni(const uint8_t sha256[CRYPTO_SHA256_LEN], char out[PROVENANCE_NI_SIZE])
{
	static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	size_t o = (size_t)snprintf(out, PROVENANCE_NI_SIZE, "ni:///sha-256;");
	for (size_t i = 0; i < CRYPTO_SHA256_LEN; i += 3) {
		uint32_t v = (uint32_t)sha256[i] << 16;
		size_t left = CRYPTO_SHA256_LEN - i;
		if (left > 1)
			v |= (uint32_t)sha256[i + 1] << 8;
		if (left > 2)
			v |= sha256[i + 2];
		size_t chars = left >= 3 ? 4 : left + 1;
		for (size_t k = 0; k < chars; k++)
			out[o++] = b64[(v >> (18 - 6 * k)) & 63];
	}
	out[o] = '\0';
}

static cJSON *coding(const char *system, const char *code, const char *display)
{
	cJSON *cc = cJSON_CreateObject();
	cJSON *c = cJSON_CreateObject();
	cJSON *arr = cJSON_AddArrayToObject(cc, "coding");
	cJSON_AddStringToObject(c, "system", system);
	cJSON_AddStringToObject(c, "code", code);
	cJSON_AddStringToObject(c, "display", display);
	cJSON_AddItemToArray(arr, c);
	return cc;
}

static cJSON *agent(const char *code, const char *display, const char *value, const char *name)
{
	cJSON *a = cJSON_CreateObject();
	cJSON_AddItemToObject(
		a, "type", coding("http://terminology.hl7.org/CodeSystem/provenance-participant-type", code, display));
	cJSON *who = cJSON_AddObjectToObject(a, "who");
	cJSON *ident = cJSON_AddObjectToObject(who, "identifier");
	cJSON_AddStringToObject(ident, "system", PROVENANCE_CLIENT_SYSTEM);
	cJSON_AddStringToObject(ident, "value", value);
	cJSON_AddStringToObject(who, "display", name);
	return a;
}

cJSON *provenance_new(const struct privacy_writer *w, const struct provenance_target *t, size_t n,
		      const struct provenance_source *src, const char *recorded)
{
	cJSON *p = cJSON_CreateObject();
	cJSON_AddStringToObject(p, "resourceType", "Provenance");
	cJSON *targets = cJSON_AddArrayToObject(p, "target");
	for (size_t i = 0; i < n; i++) {
		char ref[STORE_TYPE_SIZE + STORE_ID_SIZE + 40];
		snprintf(ref, sizeof ref, "%s/%s/_history/%lld", t[i].type, t[i].id, (long long)t[i].version);
		cJSON *r = cJSON_CreateObject();
		cJSON_AddStringToObject(r, "reference", ref);
		cJSON_AddItemToArray(targets, r);
	}
	cJSON_AddStringToObject(p, "recorded", recorded);
	cJSON_AddItemToObject(p, "activity",
			      coding("http://terminology.hl7.org/CodeSystem/v3-DataOperation", "UPDATE", "revise"));
	cJSON *agents = cJSON_AddArrayToObject(p, "agent");
	const char *client = w && w->client_id ? w->client_id : PRIVACY_LOCAL_OPERATOR;
	cJSON_AddItemToArray(agents, agent("author", "Author", client, client));
	cJSON_AddItemToArray(agents, agent("assembler", "Assembler", "crosswalk", "Crosswalk gateway"));
	if (src) {
		char ni[PROVENANCE_NI_SIZE];
		provenance_ni(src->sha256, ni);
		cJSON *e = cJSON_CreateObject();
		cJSON_AddStringToObject(e, "role", "source");
		cJSON *what = cJSON_AddObjectToObject(e, "what");
		cJSON *ident = cJSON_AddObjectToObject(what, "identifier");
		cJSON_AddStringToObject(ident, "system", "urn:ietf:rfc:3986");
		cJSON_AddStringToObject(ident, "value", ni);
		char disp[160];
		snprintf(disp, sizeof disp, "%.64s document, SHA-256", src->format ? src->format : "source");
		cJSON_AddStringToObject(what, "display", disp);
		cJSON_AddItemToArray(cJSON_AddArrayToObject(p, "entity"), e);
	}
	/* every call above that failed for want of memory left a hole: refuse it whole */
	char *text = cJSON_PrintUnformatted(p);
	bool whole = text && cJSON_GetArraySize(targets) == (int)n && strstr(text, "\"recorded\"") &&
		     strstr(text, "\"assembler\"") && (!src || strstr(text, "ni:///sha-256;"));
	cJSON_free(text);
	if (!whole) {
		cJSON_Delete(p);
		return NULL;
	}
	return p;
}
