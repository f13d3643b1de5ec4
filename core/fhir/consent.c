/* consent — the consent decision (consent.h). */
#include "fhir/consent.h"

#include <string.h>

#include "fhir/seclabel.h"

#define CONSENT_SCOPE "http://terminology.hl7.org/CodeSystem/consentscope"
#define MAX_DEPTH 16

static const cJSON *get(const cJSON *o, const char *k) { return cJSON_GetObjectItemCaseSensitive(o, k); }

static const char *str(const cJSON *o, const char *k)
{
	const cJSON *v = get(o, k);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* a vs b on the precision both have: <0, 0, >0 */
static int date_cmp(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	return strncmp(a, b, la < lb ? la : lb);
}

static bool period_holds(const cJSON *period, const char *when)
{
	const char *start = str(period, "start"), *end = str(period, "end");
	if (!when)
		return false;
	return (!start || date_cmp(when, start) >= 0) && (!end || date_cmp(when, end) <= 0);
}

static bool has_coding(const cJSON *cc, const char *system, const char *code)
{
	const cJSON *c;
	cJSON_ArrayForEach(c, get(cc, "coding"))
	{
		if ((!system || (str(c, "system") && !strcmp(str(c, "system"), system))) && str(c, "code") &&
		    !strcmp(str(c, "code"), code))
			return true;
	}
	return false;
}

static bool actor_matches(const cJSON *actors, const struct consent_recipient *r)
{
	const cJSON *a;
	cJSON_ArrayForEach(a, actors)
	{
		const char *ref = str(get(a, "reference"), "reference");
		if (ref && ((r->actor && !strcmp(ref, r->actor)) || (r->organization && !strcmp(ref, r->organization))))
			return true;
	}
	return false;
}

static bool purpose_matches(const cJSON *purposes, const char *purpose)
{
	const cJSON *p;
	cJSON_ArrayForEach(p, purposes)
	{
		if (purpose && str(p, "code") && !strcmp(str(p, "code"), purpose))
			return true;
	}
	return false;
}

static bool label_matches(const cJSON *labels, const cJSON *resource)
{
	const cJSON *l;
	cJSON_ArrayForEach(l, labels)
	{
		const char *s = str(l, "system"), *c = str(l, "code");
		if (s && c && seclabel_has(resource, s, c))
			return true;
	}
	return false;
}

static bool class_matches(const cJSON *classes, const char *type)
{
	const cJSON *c;
	cJSON_ArrayForEach(c, classes)
	{
		if (type && str(c, "code") && !strcmp(str(c, "code"), type))
			return true;
	}
	return false;
}

/* Present and non-empty: a constraint to check. */
static bool given(const cJSON *o, const char *k)
{
	const cJSON *v = get(o, k);
	return v && (!cJSON_IsArray(v) || cJSON_GetArraySize(v) > 0);
}

static bool provision_matches(const cJSON *p, const struct consent_recipient *r, const char *when,
			      const cJSON *resource, const char *type)
{
	if (!cJSON_IsObject(p) || given(p, "data") || given(p, "dataPeriod"))
		return false;
	if (given(p, "period") && !period_holds(get(p, "period"), when))
		return false;
	if (given(p, "actor") && !actor_matches(get(p, "actor"), r))
		return false;
	if (given(p, "purpose") && !purpose_matches(get(p, "purpose"), r->purpose))
		return false;
	if (given(p, "securityLabel") && !label_matches(get(p, "securityLabel"), resource))
		return false;
	if (given(p, "class") && !class_matches(get(p, "class"), type))
		return false;
	return true;
}

/* The type of the deepest matching provision under p (which matches), p's
 * own (inherited when absent) otherwise: 1 permit, 0 deny, -1 none. */
static int deepest(const cJSON *p, int inherited, const struct consent_recipient *r, const char *when,
		   const cJSON *resource, const char *type, int depth)
{
	const char *t = str(p, "type");
	int own = t && !strcmp(t, "permit") ? 1 : t && !strcmp(t, "deny") ? 0 : inherited;
	if (depth >= MAX_DEPTH)
		return own;
	const cJSON *child;
	bool any = false, deny = false, permit = false;
	cJSON_ArrayForEach(child, get(p, "provision"))
	{
		if (!provision_matches(child, r, when, resource, type))
			continue;
		int v = deepest(child, own, r, when, resource, type, depth + 1);
		any = true;
		deny |= v == 0;
		permit |= v == 1;
	}
	/* sibling exceptions that disagree: deny overrides */
	if (!any)
		return own;
	return deny ? 0 : permit ? 1 : -1;
}

struct consent_decision consent_decide(const struct consent_policy *policy, const struct consent_recipient *r,
				       const char *when, const cJSON *resource, const char *writer,
				       const cJSON *const *consents, size_t n)
{
	struct consent_decision d = {.permit = true, .reason = CONSENT_NOT_LABELLED};
	d.part2 = seclabel_has(resource, SECLABEL_ACTCODE, SECLABEL_PART2);
	bool restricted = seclabel_has(resource, SECLABEL_CONFIDENTIALITY, "R") ||
			  seclabel_has(resource, SECLABEL_CONFIDENTIALITY, "V");
	if (!d.part2 && !restricted)
		return d;
	if (d.part2 && writer && r->client && !strcmp(writer, r->client)) {
		d.reason = CONSENT_WRITER;
		return d;
	}
	const char *type = str(resource, "resourceType");
	bool permitted = false, denied = false;
	for (size_t i = 0; i < n; i++) {
		const cJSON *c = consents[i];
		const char *rt = str(c, "resourceType"), *status = str(c, "status");
		if (!rt || strcmp(rt, "Consent") != 0 || !status || strcmp(status, "active") != 0 ||
		    !has_coding(get(c, "scope"), CONSENT_SCOPE, "patient-privacy"))
			continue;
		const cJSON *root = get(c, "provision");
		if (!provision_matches(root, r, when, resource, type))
			continue;
		int v = deepest(root, -1, r, when, resource, type, 0);
		if (v == 1)
			permitted = true;
		else if (v == 0)
			denied = true;
	}
	if (denied) {
		d.permit = false;
		d.reason = CONSENT_DENIED;
	} else if (permitted) {
		d.reason = CONSENT_PERMITTED;
	} else {
		d.reason = CONSENT_DEFAULT;
		d.permit = (d.part2 ? policy->part2 : policy->restricted) == CONSENT_DEFAULT_PERMIT;
	}
	return d;
}
