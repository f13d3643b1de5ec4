/* The functions of tests/testenv.h that are not inline. */
#include "testenv.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

void run_shell_at(const char *file, int line, const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(cmd, sizeof cmd, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof cmd) {
		print_error("ERROR: command too long (%d bytes): %.200s...\n", n, cmd);
		_fail(file, line);
	}
	int st = system(cmd);
	if (st != 0) {
		print_error("ERROR: command failed (status %d): %s\n", st, cmd);
		_fail(file, line);
	}
}
