/* libFuzzer harness: JSON Patch. The input is a JSON array [document,
 * patch]. A patch that fails must leave the document byte-for-byte as it
 * was; one that applies must leave a document that prints and parses again. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/fjson.h"
#include "base/json_patch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fjson_limits lim;
	fjson_limits_default(&lim);
	lim.memory_budget = 8u << 20;
	struct fjson_error err;
	cJSON *in = fjson_parse((const char *)data, size, &lim, &err);
	if (!in)
		return 0;
	cJSON *doc = cJSON_GetArrayItem(in, 0), *patch = cJSON_GetArrayItem(in, 1);
	if (!cJSON_IsArray(in) || !cJSON_IsObject(doc) || !patch) {
		cJSON_Delete(in);
		return 0;
	}
	char *before = fjson_print(doc, false, NULL);
	char msg[256];
	enum json_patch_status st = json_patch_apply(doc, patch, msg, sizeof msg);
	char *after = fjson_print(doc, false, NULL);
	if (!before || !after)
		abort();
	if (st != JSON_PATCH_OK) {
		if (strcmp(before, after) != 0 || !strstr(msg, "operation "))
			abort();
	} else {
		cJSON *again = fjson_parse(after, strlen(after), NULL, &err);
		if (!again)
			abort();
		cJSON_Delete(again);
	}
	free(before);
	free(after);
	cJSON_Delete(in);
	return 0;
}
