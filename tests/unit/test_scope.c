/* Unit tests of the SMART scope decisions bulk export takes type by type
 * (auth/scope.h, scope_reach): system/ and user/ scopes reach every
 * resource of their type, patient/ scopes only their patient's compartment
 * and only when the token names that patient, granular scopes nothing. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "auth/scope.h"

static const unsigned rs = SCOPE_R | SCOPE_S;

static void system_and_user_scopes_reach_all(void **state)
{
	(void)state;
	assert_int_equal(scope_reach("system/*.rs", "Claim", rs, false), SCOPE_REACH_ALL);
	assert_int_equal(scope_reach("system/*.read", "Claim", rs, false), SCOPE_REACH_ALL);
	assert_int_equal(scope_reach("user/Claim.cruds", "Claim", rs, false), SCOPE_REACH_ALL);
	assert_int_equal(scope_reach("system/Patient.rs system/Claim.rs", "Claim", rs, false), SCOPE_REACH_ALL);
	/* the widest reach wins, whichever scope comes first */
	assert_int_equal(scope_reach("patient/*.rs system/Claim.rs", "Claim", rs, true), SCOPE_REACH_ALL);
	assert_int_equal(scope_reach("system/Claim.rs", NULL, rs, false), SCOPE_REACH_ALL);
}

static void too_little_reaches_nothing(void **state)
{
	(void)state;
	assert_int_equal(scope_reach("system/Claim.rs", "Observation", rs, false), SCOPE_REACH_NONE);
	assert_int_equal(scope_reach("system/Claim.r", "Claim", rs, false), SCOPE_REACH_NONE); /* no search */
	assert_int_equal(scope_reach("system/Claim.cu", NULL, rs, false), SCOPE_REACH_NONE);   /* no read */
	assert_int_equal(scope_reach("system/Claim.rs?use=claim", "Claim", rs, false), SCOPE_REACH_NONE);
	assert_int_equal(scope_reach("system/crosswalk.admin openid", NULL, rs, false), SCOPE_REACH_NONE);
	assert_int_equal(scope_reach("", NULL, rs, false), SCOPE_REACH_NONE);
	assert_int_equal(scope_reach("system/Claim.rsx", "Claim", rs, false), SCOPE_REACH_NONE); /* malformed */
}

static void patient_scopes_reach_their_patient_only(void **state)
{
	(void)state;
	assert_int_equal(scope_reach("patient/*.rs", "Observation", rs, true), SCOPE_REACH_PATIENT);
	assert_int_equal(scope_reach("patient/Observation.read", NULL, rs, true), SCOPE_REACH_PATIENT);
	/* without the patient the token is for, a patient/ scope grants nothing */
	assert_int_equal(scope_reach("patient/*.rs", "Observation", rs, false), SCOPE_REACH_NONE);
	assert_int_equal(scope_reach("patient/Claim.rs", "Observation", rs, true), SCOPE_REACH_NONE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(system_and_user_scopes_reach_all),
		cmocka_unit_test(too_little_reaches_nothing),
		cmocka_unit_test(patient_scopes_reach_their_patient_only),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
