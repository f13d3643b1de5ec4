/* The conformance a gateway loads at start (app.h): its code systems and its
 * profile set. Apart from app.c so that a program (a command, a test) can
 * load them as the gateway does without linking the whole gateway. */
#include "app.h"

#include <stdio.h>

#include "fhir/profile.h"
#include "fhir/terminology.h"

struct terminology *app_load_terminology(const struct config *cfg, char *err, size_t errlen)
{
	struct terminology *t = terminology_new();
	if (!t) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	int rc = 0;
	if (cfg->profiles_dir) {
		char dir[4096];
		snprintf(dir, sizeof dir, "%s/codes", cfg->profiles_dir);
		rc = terminology_load_dir(t, cfg->profiles_dir, err, errlen) < 0 ||
		     terminology_load_packs(t, dir, err, errlen) < 0;
	}
	/* CPT is licensed: never shipped, loaded only from the site's own file. */
	if (!rc && cfg->cpt_file)
		rc = terminology_load_pack(t, cfg->cpt_file, TERMINOLOGY_CPT, err, errlen) != 0;
	if (rc) {
		terminology_free(t);
		return NULL;
	}
	terminology_seal(t);
	return t;
}

struct profile_set *app_load_profiles(const struct config *cfg, const struct terminology *terms, char *err,
				      size_t errlen)
{
	struct profile_set *ps = profile_set_new(terms);
	if (!ps) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (profile_load_dir(ps, cfg->profiles_dir, err, errlen) < 0 ||
	    profile_load_packages(ps, cfg->validation.packages_dir, err, errlen) < 0 ||
	    profile_seal(ps, err, errlen) != 0) {
		profile_set_free(ps);
		return NULL;
	}
	const cJSON *c;
	cJSON_ArrayForEach(c, cfg->validation.profiles)
	{
		if (!profile_known(ps, c->valuestring)) {
			snprintf(err, errlen, "validation.profiles.%s: profile %s is not loaded", c->string,
				 c->valuestring);
			profile_set_free(ps);
			return NULL;
		}
	}
	return ps;
}
