/* libFuzzer harness: Retry-After values. Whatever the bytes, the result is
 * -1 or within 0..cap, for a small cap and the largest; a value of digits
 * alone (up to the length a value may have) is always read. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "upstream/upstream.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *v = malloc(size + 1);
	if (!v)
		return 0;
	memcpy(v, data, size);
	v[size] = '\0';
	static const int64_t caps[] = {0, 1, 999, 300000, INT64_MAX};
	static const int64_t nows[] = {0, 784111777, 253402300799LL, -1};
	bool digits = size > 0 && size <= 64 && strlen(v) == size;
	for (size_t i = 0; digits && i < size; i++)
		digits = v[i] >= '0' && v[i] <= '9';
	for (size_t c = 0; c < sizeof caps / sizeof caps[0]; c++)
		for (size_t n = 0; n < sizeof nows / sizeof nows[0]; n++) {
			int64_t ms = upstream_retry_after_ms(v, nows[n], caps[c]);
			if (ms < -1 || ms > caps[c] || (digits && ms < 0))
				abort();
		}
	free(v);
	return 0;
}
