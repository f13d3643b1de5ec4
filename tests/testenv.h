/* What the test environment provides, for tests: inline functions, and
 * run_shell (tests/testenv.c, linked into the unit and end-to-end tests).
 *
 * Corpora: the public corpora the repository carries (tests/fixtures/corpus/
 * *.tar.xz, unpacked by the Makefile into build/corpus) are found in the
 * directory CW_CORPUS names, else build/corpus below the working directory
 * (the repository root, where tests run). Layout: fhir-r4/examples-json-xml/
 * {json,xml}, fhir-r4/synthea, fhir-r4/xsd, fhir-r4/fhirpath, codes. Nothing outside the clone.
 *
 * Optional tools: a test that needs a tool the suite does not require (xmllint,
 * node and npm, ...) asks have_tool() and, when it is missing, calls
 * skip_because(), which prints "# skipped: REASON" (tests/run.sh reports it)
 * and marks the cmocka test as skipped: neither passed nor failed. */
#ifndef CW_TESTS_TESTENV_H
#define CW_TESTS_TESTENV_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/file.h"

static inline const char *corpus_dir(void)
{
	const char *s = getenv("CW_CORPUS");
	return s && *s ? s : "build/corpus";
}

/* Writes corpus_dir()/rel into buf; returns buf. */
static inline char *corpus_path(char *buf, size_t size, const char *rel)
{
	snprintf(buf, size, "%s/%s", corpus_dir(), rel);
	return buf;
}

/* True when an executable called name is on PATH. */
static inline bool have_tool(const char *name)
{
	const char *path = getenv("PATH");
	if (!path)
		return false;
	char dir[1024], file[1280];
	for (const char *p = path; *p;) {
		size_t n = strcspn(p, ":");
		if (n > 0 && n < sizeof dir) {
			memcpy(dir, p, n);
			dir[n] = '\0';
			snprintf(file, sizeof file, "%s/%s", dir, name);
			if (access(file, X_OK) == 0)
				return true;
		}
		p += n + (p[n] == ':');
	}
	return false;
}

/* Reads the whole file at path into a NUL-terminated buffer the caller frees;
 * *len gets its length. NULL when the file cannot be opened or read
 * (base/file.h, shared with the benchmarks and the configuration). */
static inline char *read_whole_file(const char *path, size_t *len)
{
	return file_read_all(path, SIZE_MAX, len, NULL, 0);
}

/* Runs the shell command made from fmt and its arguments (system(3)) and
 * fails the running cmocka test, naming the command and the caller's file
 * and line, unless it exits 0. A command longer than 4 KiB fails the test
 * unrun. A macro: the failure points at the caller. */
#define run_shell(...) run_shell_at(__FILE__, __LINE__, __VA_ARGS__)
void run_shell_at(const char *file, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Prints the reason for tests/run.sh and skips the running cmocka test
 * (a macro: cmocka's skip() records the caller's file and line). */
#define skip_because(reason)                                                                                           \
	do {                                                                                                           \
		print_message("# skipped: %s\n", (reason));                                                           \
		skip();                                                                                                \
	} while (0)

#endif
