/* seclabel — security labels by rule (seclabel.h). */
#include "fhir/seclabel.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fhir/terminology.h"

enum pattern { PAT_EXACT, PAT_PREFIX, PAT_RANGE };

struct label {
	char *name, *system, *code, *display;
};

struct rule {
	char *system; /* normalised */
	char *lo, *hi;
	size_t lo_len;
	enum pattern kind;
	unsigned mask; /* 0: an exception, no label */
};

struct from {
	char *type, *sources; /* sources: ",A,B," or ",*," */
	bool to;              /* a "to" line: type passes its labels on to sources */
};

struct seclabel_rules {
	struct label label[SECLABEL_MAX_LABELS];
	size_t nlabel;
	struct rule *rule;
	size_t nrule, caprule;
	struct from *from;
	size_t nfrom, capfrom;
	unsigned part2;
};

void seclabel_free(struct seclabel_rules *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->nlabel; i++) {
		free(r->label[i].name);
		free(r->label[i].system);
		free(r->label[i].code);
		free(r->label[i].display);
	}
	for (size_t i = 0; i < r->nrule; i++) {
		free(r->rule[i].system);
		free(r->rule[i].lo);
		free(r->rule[i].hi);
	}
	for (size_t i = 0; i < r->nfrom; i++) {
		free(r->from[i].type);
		free(r->from[i].sources);
	}
	free(r->rule);
	free(r->from);
	free(r);
}

size_t seclabel_rule_count(const struct seclabel_rules *r) { return r ? r->nrule : 0; }

unsigned seclabel_part2_mask(const struct seclabel_rules *r) { return r ? r->part2 : 0; }

bool seclabel_label_at(const struct seclabel_rules *r, size_t i, const char **system, const char **code,
		       const char **display)
{
	if (!r || i >= r->nlabel)
		return false;
	*system = r->label[i].system;
	*code = r->label[i].code;
	*display = r->label[i].display;
	return true;
}

static bool fail(char *err, size_t errlen, const char *source, size_t line, const char *fmt, ...)
{
	char why[200];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
	snprintf(err, errlen, "%s: line %zu: %s", source, line, why);
	return false;
}

/* The mask of a comma-separated list of label names; "-" is 0. false when a
 * name is unknown (*bad names it). */
static bool names_mask(const struct seclabel_rules *r, const char *list, unsigned *mask, const char **bad)
{
	*mask = 0;
	if (!strcmp(list, "-"))
		return true;
	const char *p = list;
	while (*p) {
		const char *end = strchr(p, ',');
		size_t n = end ? (size_t)(end - p) : strlen(p);
		size_t i = 0;
		while (i < r->nlabel && !(strlen(r->label[i].name) == n && !strncmp(r->label[i].name, p, n)))
			i++;
		if (i == r->nlabel || !n) {
			*bad = p;
			return false;
		}
		*mask |= 1u << i;
		p += n + (end ? 1 : 0);
		if (end && !*p) {
			*bad = end;
			return false;
		}
	}
	return true;
}

static bool printable(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == ' ')
			return false;
	return true;
}

static bool parse_code_line(struct seclabel_rules *r, char **f, char *err, size_t errlen, const char *source,
			    size_t line)
{
	if (r->nrule == SECLABEL_MAX_RULES)
		return fail(err, errlen, source, line, "more than %d code lines", SECLABEL_MAX_RULES);
	const char *bad = NULL;
	unsigned mask;
	if (!names_mask(r, f[3], &mask, &bad))
		return fail(err, errlen, source, line, "unknown label name at '%.40s'", bad);
	struct rule ru = {0};
	const char *pat = f[2];
	size_t plen = strlen(pat);
	const char *dash = strchr(pat, '-');
	if (!plen || !printable(pat) || !printable(f[1]) || !*f[1])
		return fail(err, errlen, source, line, "a code line is: code, SYSTEM, PATTERN, NAMES");
	if (pat[plen - 1] == '*') {
		ru.kind = PAT_PREFIX;
		ru.lo = strndup(pat, plen - 1);
	} else if (dash && dash != pat && dash[1]) {
		ru.kind = PAT_RANGE;
		ru.lo = strndup(pat, (size_t)(dash - pat));
		ru.hi = strdup(dash + 1);
		if (ru.lo && ru.hi && (strlen(ru.lo) != strlen(ru.hi) || strcmp(ru.lo, ru.hi) > 0)) {
			free(ru.lo);
			free(ru.hi);
			return fail(err, errlen, source, line, "a range LOW-HIGH needs LOW <= HIGH of the same length");
		}
	} else {
		ru.kind = PAT_EXACT;
		ru.lo = strdup(pat);
	}
	ru.system = strdup(terminology_normalise_system(f[1]));
	ru.mask = mask;
	if (r->nrule == r->caprule) {
		size_t nc = r->caprule ? r->caprule * 2 : 16;
		struct rule *nr = realloc(r->rule, nc * sizeof *nr);
		if (nr) {
			r->rule = nr;
			r->caprule = nc;
		}
	}
	if (!ru.lo || !ru.system || (ru.kind == PAT_RANGE && !ru.hi) || r->nrule == r->caprule) {
		free(ru.lo);
		free(ru.hi);
		free(ru.system);
		return fail(err, errlen, source, line, "out of memory");
	}
	ru.lo_len = strlen(ru.lo);
	r->rule[r->nrule++] = ru;
	return true;
}

static bool parse_line(struct seclabel_rules *r, char *s, char *err, size_t errlen, const char *source, size_t line)
{
	char *f[6] = {0};
	size_t n = 0;
	for (char *p = s; n < 6;) {
		f[n++] = p;
		char *tab = strchr(p, '\t');
		if (!tab)
			break;
		*tab = '\0';
		p = tab + 1;
	}
	if (!strcmp(f[0], "label")) {
		if (n != 5 || !*f[1] || !*f[2] || !*f[3] || !printable(f[1]) || !printable(f[2]) || !printable(f[3]))
			return fail(err, errlen, source, line, "a label line is: label, NAME, SYSTEM, CODE, DISPLAY");
		if (r->nlabel == SECLABEL_MAX_LABELS)
			return fail(err, errlen, source, line, "more than %d labels", SECLABEL_MAX_LABELS);
		for (size_t i = 0; i < r->nlabel; i++)
			if (!strcmp(r->label[i].name, f[1]))
				return fail(err, errlen, source, line, "the label '%.40s' is defined twice", f[1]);
		struct label *l = &r->label[r->nlabel];
		l->name = strdup(f[1]);
		l->system = strdup(f[2]);
		l->code = strdup(f[3]);
		l->display = *f[4] ? strdup(f[4]) : NULL;
		r->nlabel++; /* freed with the table either way */
		if (!l->name || !l->system || !l->code || (*f[4] && !l->display))
			return fail(err, errlen, source, line, "out of memory");
		return true;
	}
	if (!strcmp(f[0], "part2")) {
		const char *bad = NULL;
		if (n != 2)
			return fail(err, errlen, source, line, "a part2 line is: part2, NAMES");
		if (!names_mask(r, f[1], &r->part2, &bad))
			return fail(err, errlen, source, line, "unknown label name at '%.40s'", bad);
		return true;
	}
	if (!strcmp(f[0], "code")) {
		if (n != 4)
			return fail(err, errlen, source, line, "a code line is: code, SYSTEM, PATTERN, NAMES");
		return parse_code_line(r, f, err, errlen, source, line);
	}
	if (!strcmp(f[0], "from") || !strcmp(f[0], "to")) {
		if (n != 3 || !*f[1] || !*f[2] || !printable(f[1]) || !printable(f[2]))
			return fail(err, errlen, source, line, "a %s line is: %s, TYPE, TYPES", f[0], f[0]);
		if (r->nfrom == r->capfrom) {
			size_t nc = r->capfrom ? r->capfrom * 2 : 8;
			struct from *nf = realloc(r->from, nc * sizeof *nf);
			if (!nf)
				return fail(err, errlen, source, line, "out of memory");
			r->from = nf;
			r->capfrom = nc;
		}
		size_t sl = strlen(f[2]) + 3;
		char *src = malloc(sl);
		char *type = strdup(f[1]);
		if (!src || !type) {
			free(src);
			free(type);
			return fail(err, errlen, source, line, "out of memory");
		}
		snprintf(src, sl, ",%s,", f[2]);
		r->from[r->nfrom++] = (struct from){.type = type, .sources = src, .to = f[0][0] == 't'};
		return true;
	}
	return fail(err, errlen, source, line, "unknown line kind '%.20s' (label, part2, code, from or to)", f[0]);
}

struct seclabel_rules *seclabel_parse(const char *text, size_t len, const char *source, char *err, size_t errlen)
{
	struct seclabel_rules *r = calloc(1, sizeof *r);
	char *buf = malloc(len + 1);
	if (!r || !buf) {
		free(buf);
		free(r);
		snprintf(err, errlen, "%s: out of memory", source);
		return NULL;
	}
	memcpy(buf, text, len);
	buf[len] = '\0';
	bool ok = true;
	if (memchr(text, '\0', len))
		ok = fail(err, errlen, source, 1, "the table is text: it holds a NUL byte");
	size_t line = 0;
	for (char *p = buf; ok && *p;) {
		char *nl = strchr(p, '\n');
		if (nl)
			*nl = '\0';
		line++;
		size_t l = strlen(p);
		if (l && p[l - 1] == '\r')
			p[--l] = '\0';
		if (line == 1 && strncmp(p, "#crosswalk-labels\t1", 19) != 0)
			ok = fail(err, errlen, source, line, "the first line must be '#crosswalk-labels<TAB>1'");
		else if (l && p[0] != '#')
			ok = parse_line(r, p, err, errlen, source, line);
		p = nl ? nl + 1 : p + l;
	}
	free(buf);
	if (!ok) {
		seclabel_free(r);
		return NULL;
	}
	return r;
}

struct seclabel_rules *seclabel_load(const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		if (errno == ENOENT) {
			struct seclabel_rules *r = calloc(1, sizeof *r);
			if (!r)
				snprintf(err, errlen, "%s: out of memory", path);
			return r;
		}
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	char *buf = malloc(SECLABEL_MAX_BYTES + 1);
	size_t n = buf ? fread(buf, 1, SECLABEL_MAX_BYTES + 1, f) : 0;
	bool rerr = ferror(f);
	fclose(f);
	struct seclabel_rules *r = NULL;
	if (!buf)
		snprintf(err, errlen, "%s: out of memory", path);
	else if (rerr)
		snprintf(err, errlen, "%s: read error", path);
	else if (n > SECLABEL_MAX_BYTES)
		snprintf(err, errlen, "%s: larger than %u bytes", path, SECLABEL_MAX_BYTES);
	else
		r = seclabel_parse(buf, n, path, err, errlen);
	free(buf);
	return r;
}

unsigned seclabel_code_mask(const struct seclabel_rules *r, const char *system, const char *code)
{
	if (!r || !system || !code)
		return 0;
	system = terminology_normalise_system(system);
	for (size_t i = 0; i < r->nrule; i++) {
		const struct rule *ru = &r->rule[i];
		if (strcmp(ru->system, system) != 0)
			continue;
		bool hit;
		switch (ru->kind) {
		case PAT_EXACT:
			hit = !strcmp(code, ru->lo);
			break;
		case PAT_PREFIX:
			hit = !strncmp(code, ru->lo, ru->lo_len);
			break;
		default:
			hit = strlen(code) >= ru->lo_len && strncmp(code, ru->lo, ru->lo_len) >= 0 &&
			      strncmp(code, ru->hi, ru->lo_len) <= 0;
			break;
		}
		if (hit)
			return ru->mask;
	}
	return 0;
}

static unsigned scan(const struct seclabel_rules *r, const cJSON *node, size_t depth)
{
	unsigned mask = 0;
	if (depth > 256)
		return 0;
	if (cJSON_IsObject(node)) {
		const cJSON *sys = cJSON_GetObjectItemCaseSensitive(node, "system");
		const cJSON *code = cJSON_GetObjectItemCaseSensitive(node, "code");
		if (cJSON_IsString(sys) && cJSON_IsString(code))
			mask |= seclabel_code_mask(r, sys->valuestring, code->valuestring);
	}
	const cJSON *c;
	cJSON_ArrayForEach(c, node)
	{
		if (c->string && !strcmp(c->string, "meta"))
			continue;
		if (cJSON_IsObject(c) || cJSON_IsArray(c))
			mask |= scan(r, c, depth + 1);
	}
	return mask;
}

unsigned seclabel_scan(const struct seclabel_rules *r, const cJSON *res) { return r && r->nrule ? scan(r, res, 0) : 0; }

static cJSON *security_of(cJSON *res)
{
	if (!cJSON_IsObject(res))
		return NULL;
	cJSON *meta = cJSON_GetObjectItemCaseSensitive(res, "meta");
	if (!meta)
		meta = cJSON_AddObjectToObject(res, "meta");
	if (!cJSON_IsObject(meta))
		return NULL;
	cJSON *sec = cJSON_GetObjectItemCaseSensitive(meta, "security");
	if (!sec)
		sec = cJSON_AddArrayToObject(meta, "security");
	return cJSON_IsArray(sec) ? sec : NULL;
}

bool seclabel_has(const cJSON *res, const char *system, const char *code)
{
	const cJSON *meta = cJSON_GetObjectItemCaseSensitive(res, "meta");
	const cJSON *c;
	cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(meta, "security"))
	{
		const cJSON *s = cJSON_GetObjectItemCaseSensitive(c, "system");
		const cJSON *k = cJSON_GetObjectItemCaseSensitive(c, "code");
		if (cJSON_IsString(s) && cJSON_IsString(k) && !strcmp(s->valuestring, system) &&
		    !strcmp(k->valuestring, code))
			return true;
	}
	return false;
}

int seclabel_add(cJSON *res, const char *system, const char *code, const char *display)
{
	if (!system || !code)
		return -1;
	if (seclabel_has(res, system, code))
		return 0;
	cJSON *sec = security_of(res);
	cJSON *c = sec ? cJSON_CreateObject() : NULL;
	if (!c || !cJSON_AddStringToObject(c, "system", system) || !cJSON_AddStringToObject(c, "code", code) ||
	    (display && !cJSON_AddStringToObject(c, "display", display))) {
		cJSON_Delete(c);
		return -1;
	}
	cJSON_AddItemToArray(sec, c);
	return 1;
}

int seclabel_add_mask(const struct seclabel_rules *r, cJSON *res, unsigned mask)
{
	int added = 0;
	for (size_t i = 0; r && i < r->nlabel; i++) {
		if (!(mask & (1u << i)))
			continue;
		int a = seclabel_add(res, r->label[i].system, r->label[i].code, r->label[i].display);
		if (a < 0)
			return -1;
		added += a;
	}
	return added;
}

int seclabel_merge(cJSON *dst, const cJSON *src)
{
	int added = 0;
	const cJSON *meta = cJSON_GetObjectItemCaseSensitive(src, "meta");
	const cJSON *c;
	cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(meta, "security"))
	{
		const cJSON *s = cJSON_GetObjectItemCaseSensitive(c, "system");
		const cJSON *k = cJSON_GetObjectItemCaseSensitive(c, "code");
		if (!cJSON_IsString(s) || !cJSON_IsString(k) || seclabel_has(dst, s->valuestring, k->valuestring))
			continue;
		cJSON *sec = security_of(dst);
		cJSON *copy = sec ? cJSON_Duplicate(c, true) : NULL;
		if (!copy)
			return -1;
		cJSON_AddItemToArray(sec, copy);
		added++;
	}
	return added;
}

static bool linked(const struct seclabel_rules *r, bool to, const char *type, const char *source_type)
{
	if (!r || !type || !source_type)
		return false;
	size_t sl = strlen(source_type);
	for (size_t i = 0; i < r->nfrom; i++) {
		const struct from *f = &r->from[i];
		if (f->to != to || (strcmp(f->type, "*") != 0 && strcmp(f->type, type) != 0))
			continue;
		if (!*source_type)
			return true;
		if (strstr(f->sources, ",*,"))
			return true;
		for (const char *p = strstr(f->sources, source_type); p; p = strstr(p + 1, source_type))
			if (p[-1] == ',' && p[sl] == ',')
				return true;
	}
	return false;
}

bool seclabel_inherits(const struct seclabel_rules *r, const char *type, const char *source_type)
{
	return linked(r, false, type, source_type);
}

bool seclabel_passes(const struct seclabel_rules *r, const char *type, const char *target_type)
{
	return linked(r, true, type, target_type);
}

int seclabel_apply(const struct seclabel_rules *r, cJSON *res, bool part2)
{
	unsigned mask = seclabel_scan(r, res) | (part2 ? seclabel_part2_mask(r) : 0);
	return mask ? seclabel_add_mask(r, res, mask) : 0;
}
