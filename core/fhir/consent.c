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
		if (v == 1) {
			permitted = true;
			if (d.ncited < CONSENT_MAX_CITED)
				d.cited[d.ncited++] = i;
		} else if (v == 0)
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

const struct consent_wording consent_wording_default = {
	.scope = "Disclosed with the patient's consent ({consent}), which permits disclosure to {recipient}, for "
		 "{purpose}, {period}, of {classes} records ({labels}).",
	.any_recipient = "any recipient",
	.any_purpose = "any purpose",
	.any_period = "with no time limit",
	.any_class = "all kinds of",
	.any_label = "any sensitivity",
	.from = "from {start}",
	.until = "until {end}",
};

/* An output buffer that stops (and marks the cut) when full. */
struct out {
	char *p;
	size_t n, len;
	bool cut;
};

static void put(struct out *o, const char *s, size_t len)
{
	if (o->cut || o->n == 0)
		return;
	if (o->len + len + 1 > o->n) {
		size_t room = o->n - 1 - o->len;
		memcpy(o->p + o->len, s, room);
		o->len += room;
		if (o->n > 4)
			memcpy(o->p + o->n - 4, "...", 3);
		o->cut = true;
		o->p[o->n - 1] = '\0';
		return;
	}
	memcpy(o->p + o->len, s, len);
	o->len += len;
	o->p[o->len] = '\0';
}

static void puts_(struct out *o, const char *s) { put(o, s, strlen(s)); }

/* t with {name} replaced by value (one placeholder). */
static void put_with(struct out *o, const char *t, const char *name, const char *value)
{
	const char *at = strstr(t, name);
	if (!at) {
		puts_(o, t);
		return;
	}
	put(o, t, (size_t)(at - t));
	puts_(o, value);
	puts_(o, at + strlen(name));
}

/* The values of one member of the provision, "; "-separated. */
static void put_list(struct out *o, const cJSON *arr, const char *what, const char *none)
{
	size_t n = 0;
	const cJSON *e;
	cJSON_ArrayForEach(e, arr)
	{
		const char *v = NULL;
		if (!strcmp(what, "actor")) {
			const cJSON *ref = get(e, "reference");
			v = str(ref, "display") ? str(ref, "display") : str(ref, "reference");
		} else if (!strcmp(what, "purpose")) {
			v = str(e, "display") ? str(e, "display") : str(e, "code");
		} else {
			v = str(e, "code");
		}
		if (!v)
			continue;
		if (n++)
			puts_(o, "; ");
		puts_(o, v);
	}
	if (!n)
		puts_(o, none);
}

size_t consent_explain(const cJSON *consent, const struct consent_wording *w, char *out, size_t n)
{
	struct out o = {.p = out, .n = n};
	if (n)
		out[0] = '\0';
	const cJSON *prov = get(consent, "provision");
	const char *id = str(consent, "id");
	for (const char *t = w->scope; *t;) {
		const char *open = strchr(t, '{');
		const char *close = open ? strchr(open, '}') : NULL;
		if (!open || !close) {
			puts_(&o, t);
			break;
		}
		put(&o, t, (size_t)(open - t));
		size_t len = (size_t)(close - open + 1);
		if (len == 9 && !strncmp(open, "{consent}", len)) {
			puts_(&o, "Consent/");
			puts_(&o, id ? id : "?");
		} else if (len == 11 && !strncmp(open, "{recipient}", len)) {
			put_list(&o, get(prov, "actor"), "actor", w->any_recipient);
		} else if (len == 9 && !strncmp(open, "{purpose}", len)) {
			put_list(&o, get(prov, "purpose"), "purpose", w->any_purpose);
		} else if (len == 9 && !strncmp(open, "{classes}", len)) {
			put_list(&o, get(prov, "class"), "class", w->any_class);
		} else if (len == 8 && !strncmp(open, "{labels}", len)) {
			put_list(&o, get(prov, "securityLabel"), "label", w->any_label);
		} else if (len == 8 && !strncmp(open, "{period}", len)) {
			const char *start = str(get(prov, "period"), "start"), *end = str(get(prov, "period"), "end");
			if (start)
				put_with(&o, w->from, "{start}", start);
			if (start && end)
				puts_(&o, " ");
			if (end)
				put_with(&o, w->until, "{end}", end);
			if (!start && !end)
				puts_(&o, w->any_period);
		} else {
			put(&o, open, len); /* not a placeholder: as written */
		}
		t = close + 1;
	}
	return o.len;
}
