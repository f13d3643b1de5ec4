/* libFuzzer harness: the bounded tar reader (core/fhir/tar.h). The input is
 * the archive, read in pieces of varying size; every file handed over must
 * lie within the limits, carry a safe name and be NUL-terminated. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fhir/tar.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct src {
	const uint8_t *d;
	size_t n, pos, step;
};

static long src_read(void *ctx, void *buf, size_t n)
{
	struct src *s = ctx;
	size_t k = s->n - s->pos;
	if (k > n)
		k = n;
	if (k > s->step)
		k = s->step;
	memcpy(buf, s->d + s->pos, k);
	s->pos += k;
	s->step = s->step * 3 % 1021 + 1;
	return (long)k;
}

struct acc {
	size_t files, bytes;
	const struct tar_limits *lim;
};

/* Whether some '/'-separated segment of name is "..". */
static bool has_dotdot(const char *name)
{
	for (const char *s = name; *s;) {
		size_t l = strcspn(s, "/");
		if (l == 2 && !strncmp(s, "..", 2))
			return true;
		s += l + (s[l] == '/');
	}
	return false;
}

static int on_file(void *arg, const char *name, const char *data, size_t size)
{
	struct acc *a = arg;
	if (name[0] == '/' || has_dotdot(name) || data[size] != '\0' || size > a->lim->max_entry_bytes ||
	    strlen(name) > TAR_MAX_NAME)
		abort();
	a->files++;
	a->bytes += size;
	if (a->bytes > a->lim->max_total_bytes)
		abort();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct tar_limits lim = {64, 1 << 16, 1 << 18};
	struct src s = {data, size, 0, 512};
	struct acc a = {0, 0, &lim};
	char err[300];
	err[0] = '\0';
	int r = tar_each(src_read, &s, &lim, on_file, &a, err, sizeof err);
	if (r == -1 && !err[0])
		abort();
	if (r != 0 && r != -1)
		abort();
	return 0;
}
