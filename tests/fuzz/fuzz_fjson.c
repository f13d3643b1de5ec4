/* libFuzzer harness: strict JSON reader and writer. Anything accepted must
 * print, re-parse, and print again to the same bytes (compact and pretty). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/fjson.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fjson_limits lim;
	fjson_limits_default(&lim);
	lim.memory_budget = 8u << 20;
	struct fjson_error err;
	cJSON *a = fjson_parse((const char *)data, size, &lim, &err);
	if (!a) {
		if (err.status != 400 && err.status != 413)
			abort();
		return 0;
	}
	for (int pretty = 0; pretty < 2; pretty++) {
		size_t l1, l2;
		char *p1 = fjson_print(a, pretty, &l1);
		if (!p1)
			abort();
		cJSON *b = fjson_parse(p1, l1, &lim, &err);
		if (!b)
			abort();
		char *p2 = fjson_print(b, pretty, &l2);
		if (!p2 || l1 != l2 || memcmp(p1, p2, l1) != 0)
			abort();
		free(p1);
		free(p2);
		cJSON_Delete(b);
	}
	cJSON_Delete(a);
	return 0;
}
