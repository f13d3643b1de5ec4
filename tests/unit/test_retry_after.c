/* Unit tests: Retry-After values (RFC 9110 §10.2.3) read as delta-seconds or
 * an HTTP-date in any of its three forms, clamped to the cap, never
 * overflowing; anything else counts as absent. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "upstream/upstream.h"

#define CAP 300000           /* ms, as retry_max_ms */
#define NOV6_1994 784111777  /* Sun, 06 Nov 1994 08:49:37 GMT */

static int64_t ra(const char *v) { return upstream_retry_after_ms(v, NOV6_1994 - 10, CAP); }

static void delta_seconds(void **state)
{
	(void)state;
	assert_int_equal(ra("0"), 0);
	assert_int_equal(ra("1"), 1000);
	assert_int_equal(ra("120"), 120000);
	assert_int_equal(ra(" 120 "), 120000);
	assert_int_equal(ra("300"), CAP);
	assert_int_equal(ra("301"), CAP);
	assert_int_equal(ra("0000000000000000000000000000000000000007"), 7000);
}

static void huge_values_are_clamped(void **state)
{
	(void)state;
	assert_int_equal(ra("1000000000000"), CAP);
	assert_int_equal(ra("100000000000000000000"), CAP);           /* 10^20: beyond 64 bits */
	assert_int_equal(ra("9223372036854775807"), CAP);              /* INT64_MAX */
	assert_int_equal(ra("9223372036854775808"), CAP);              /* one more */
	assert_int_equal(ra("18446744073709551616"), CAP);             /* 2^64 */
	char many[65];
	memset(many, '9', 64);
	many[64] = '\0';
	assert_int_equal(ra(many), CAP);
	/* a cap of 0 keeps everything at 0 */
	assert_int_equal(upstream_retry_after_ms("100000000000000000000", 0, 0), 0);
	assert_int_equal(upstream_retry_after_ms("5", 0, INT64_MAX), 5000);
	assert_int_equal(upstream_retry_after_ms("100000000000000000000", 0, INT64_MAX), INT64_MAX);
}

static void http_dates(void **state)
{
	(void)state;
	assert_int_equal(ra("Sun, 06 Nov 1994 08:49:37 GMT"), 10000);   /* IMF-fixdate */
	assert_int_equal(ra("Sunday, 06-Nov-94 08:49:37 GMT"), 10000);  /* RFC 850 */
	assert_int_equal(ra("Sun Nov  6 08:49:37 1994"), 10000);        /* asctime */
	assert_int_equal(ra("Sun, 06 Nov 1994 08:49:27 GMT"), 0);       /* now */
	assert_int_equal(ra("Sat, 05 Nov 1994 08:49:37 GMT"), 0);       /* past: at once */
	assert_int_equal(ra("Thu, 01 Jan 1970 00:00:00 GMT"), 0);
	assert_int_equal(ra("Fri, 31 Dec 9999 23:59:59 GMT"), CAP);     /* far future: the cap */
	assert_int_equal(ra("Tue, 29 Feb 2000 00:00:00 GMT"), CAP);     /* a leap day */
	assert_int_equal(upstream_retry_after_ms("Tue, 29 Feb 2000 00:00:00 GMT", 951782400 - 2, CAP), 2000);
}

static void unreadable_values_are_absent(void **state)
{
	(void)state;
	const char *bad[] = {
		"", " ", "-1", "+5", "1.5", "1e3", "abc", "12a", "0x10", "Sun, 06 Nov 1994 08:49:37",
		"Sun, 06 Nov 1994 08:49:37 UTC", "Sun, 31 Feb 1994 08:49:37 GMT", "Sun, 29 Feb 1900 08:49:37 GMT",
		"Sun, 06 Nov 1994 24:49:37 GMT", "Sun, 06 Foo 1994 08:49:37 GMT", "Xyz, 06 Nov 1994 08:49:37 GMT",
		"Sun, 6 Nov 1994 08:49:37 GMT", "Sunday, 06-Nov-1994 08:49:37 GMT", "Sun Nov 6 08:49:37 1994",
		"Sun Nov  6 08:49:37 1994 x", "Sun,",
		NULL,
	};
	for (size_t i = 0; bad[i]; i++) {
		if (ra(bad[i]) != -1)
			fail_msg("'%s' was read as %lld", bad[i], (long long)ra(bad[i]));
	}
	assert_int_equal(ra(NULL), -1);
	char long_value[200];
	memset(long_value, '1', sizeof long_value - 1);
	long_value[sizeof long_value - 1] = '\0';
	assert_int_equal(ra(long_value), -1); /* longer than any real value */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(delta_seconds),
		cmocka_unit_test(huge_values_are_clamped),
		cmocka_unit_test(http_dates),
		cmocka_unit_test(unreadable_values_are_absent),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
