/* libFuzzer harness: strict JSON reader and writer. Anything accepted must
 * print, re-parse, and print again to the same bytes (compact and pretty);
 * the arena reader (fjson_parse_in) must accept and refuse the same, print
 * the same and refuse with the same code at the same offset. */
#include <stdbool.h>
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
	struct arena ar;
	arena_init(&ar, 64u << 20);
	struct fjson_error aerr;
	cJSON *t = fjson_parse_in(&ar, (const char *)data, size, &lim, &aerr);
	/* the arena's own budget running out is no reader difference */
	bool arena_ran_out = a && !t && aerr.code == FJSON_NO_MEMORY;
	if (!arena_ran_out && (!a != !t || (!a && (aerr.code != err.code || aerr.offset != err.offset))))
		abort();
	if (a && t) {
		size_t la, lt;
		char *pa = fjson_print(a, false, &la), *pt = fjson_print(t, false, &lt);
		if (!pa || !pt || la != lt || memcmp(pa, pt, la) != 0)
			abort();
		free(pa);
		free(pt);
	}
	arena_release(&ar);
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
