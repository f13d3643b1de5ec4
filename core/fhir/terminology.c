#include "fhir/terminology.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/file.h"
#include "base/fjson.h"

#define MAX_FILE_BYTES ((size_t)64 << 20)
#define MAX_CONCEPT_DEPTH 32
#define MAX_DIR_DEPTH 4
#define MAX_HEADER_VALUE 1024

/* Concept flags. OWNED: code and display were strdup'd (CodeSystem
 * resources, terminology_add_code); otherwise they point into a pack's
 * buffer. */
enum { CF_OWNED = 1u << 0, CF_BILLABLE = 1u << 1, CF_INACTIVE = 1u << 2, CF_MODIFIER = 1u << 3 };

struct concept {
	const char *code, *display;
	unsigned flags;
};

struct system {
	char *url, *name, *version, *source;
	struct concept *c;
	size_t n, cap;
	char *buf; /* a pack's text, or NULL */
	bool sorted, billable_known, pack;
};

struct terminology {
	struct system *s;
	size_t n, cap;
};

/* Aliases seen in the wild → the URI HL7 prefers (THO CodeSystem
 * hcpcs-Level-II and US Core use the http://www.cms.gov form; CARIN uses
 * https://, older guides HCPCS-all-codes). */
static const struct {
	const char *alias, *preferred;
} system_aliases[] = {
	{"https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets", TERMINOLOGY_HCPCS},
	{"http://terminology.hl7.org/CodeSystem/HCPCS-all-codes", TERMINOLOGY_HCPCS},
};

const char *terminology_normalise_system(const char *system)
{
	if (!system)
		return NULL;
	for (size_t i = 0; i < sizeof system_aliases / sizeof system_aliases[0]; i++)
		if (strcmp(system, system_aliases[i].alias) == 0)
			return system_aliases[i].preferred;
	return system;
}

struct terminology *terminology_new(void) { return calloc(1, sizeof(struct terminology)); }

static void system_release(struct system *s)
{
	for (size_t k = 0; k < s->n; k++)
		if (s->c[k].flags & CF_OWNED) {
			free((char *)s->c[k].code);
			free((char *)s->c[k].display);
		}
	free(s->c);
	free(s->url);
	free(s->name);
	free(s->version);
	free(s->source);
	free(s->buf);
}

void terminology_free(struct terminology *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->n; i++)
		system_release(&t->s[i]);
	free(t->s);
	free(t);
}

static struct system *find_system(const struct terminology *t, const char *url)
{
	url = terminology_normalise_system(url);
	for (size_t i = 0; t && url && i < t->n; i++)
		if (strcmp(t->s[i].url, url) == 0)
			return &t->s[i];
	return NULL;
}

/* A new, empty slot at the end of t->s; NULL on OOM. */
static struct system *new_system(struct terminology *t)
{
	if (t->n == t->cap) {
		size_t ncap = t->cap ? t->cap * 2 : 8;
		struct system *ns = realloc(t->s, ncap * sizeof *ns);
		if (!ns)
			return NULL;
		t->s = ns;
		t->cap = ncap;
	}
	struct system *s = &t->s[t->n];
	memset(s, 0, sizeof *s);
	return s;
}

static struct system *get_system(struct terminology *t, const char *url)
{
	struct system *s = find_system(t, url);
	if (s)
		return s;
	if (!(s = new_system(t)))
		return NULL;
	s->url = strdup(terminology_normalise_system(url));
	if (!s->url)
		return NULL;
	s->sorted = true;
	t->n++;
	return s;
}

static int add_to(struct system *s, const char *code, const char *display)
{
	if (s->n == s->cap) {
		size_t ncap = s->cap ? s->cap * 2 : 16;
		struct concept *nc = realloc(s->c, ncap * sizeof *nc);
		if (!nc)
			return -1;
		s->c = nc;
		s->cap = ncap;
	}
	char *c = strdup(code), *d = strdup(display ? display : "");
	if (!c || !d) {
		free(c);
		free(d);
		return -1;
	}
	s->c[s->n++] = (struct concept){c, d, CF_OWNED};
	s->sorted = false;
	return 0;
}

int terminology_add_code(struct terminology *t, const char *system, const char *code, const char *display)
{
	if (!system || !*system || !code || !*code)
		return -1;
	struct system *s = get_system(t, system);
	return s ? add_to(s, code, display) : -1;
}

static int add_concepts(struct system *s, const cJSON *arr, int depth, char *err, size_t errlen)
{
	if (!arr)
		return 0;
	if (!cJSON_IsArray(arr) || depth > MAX_CONCEPT_DEPTH) {
		snprintf(err, errlen, "concept must be an array nested at most %d deep", MAX_CONCEPT_DEPTH);
		return -1;
	}
	for (const cJSON *c = arr->child; c; c = c->next) {
		const cJSON *code = cJSON_GetObjectItemCaseSensitive(c, "code");
		const cJSON *disp = cJSON_GetObjectItemCaseSensitive(c, "display");
		if (!cJSON_IsString(code) || !*code->valuestring) {
			snprintf(err, errlen, "a concept has no code");
			return -1;
		}
		if (add_to(s, code->valuestring, cJSON_IsString(disp) ? disp->valuestring : NULL) != 0) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		if (add_concepts(s, cJSON_GetObjectItemCaseSensitive(c, "concept"), depth + 1, err, errlen) != 0)
			return -1;
	}
	return 0;
}

static const char *json_string(const cJSON *obj, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
	return cJSON_IsString(v) && *v->valuestring ? v->valuestring : NULL;
}

int terminology_add(struct terminology *t, const cJSON *cs, char *err, size_t errlen)
{
	const cJSON *rt = cJSON_GetObjectItemCaseSensitive(cs, "resourceType");
	const char *url = json_string(cs, "url");
	if (!cJSON_IsString(rt) || strcmp(rt->valuestring, "CodeSystem") != 0) {
		snprintf(err, errlen, "not a CodeSystem resource");
		return -1;
	}
	if (!url) {
		snprintf(err, errlen, "CodeSystem has no url");
		return -1;
	}
	struct system *s = find_system(t, url);
	if (s && s->pack) {
		snprintf(err, errlen, "CodeSystem %.200s is already loaded from the code pack %.200s", s->url,
			 s->source);
		return -1;
	}
	if (!(s = get_system(t, url))) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	const char *name = json_string(cs, "title") ? json_string(cs, "title") : json_string(cs, "name");
	const char *version = json_string(cs, "version");
	if ((!s->name && name && !(s->name = strdup(name))) || (!s->version && version && !(s->version = strdup(version)))) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return add_concepts(s, cJSON_GetObjectItemCaseSensitive(cs, "concept"), 0, err, errlen);
}

/* ------------------------------------------------------------ code packs */

/* Length of the valid UTF-8 sequence at p (no overlongs, no surrogates, at
 * most U+10FFFF), or 0. */
static size_t utf8_seq(const unsigned char *p, const unsigned char *end)
{
	size_t n;
	uint32_t cp, min;
	if (p[0] < 0x80)
		return 1;
	if ((p[0] & 0xE0) == 0xC0)
		n = 2, cp = p[0] & 0x1Fu, min = 0x80;
	else if ((p[0] & 0xF0) == 0xE0)
		n = 3, cp = p[0] & 0x0Fu, min = 0x800;
	else if ((p[0] & 0xF8) == 0xF0)
		n = 4, cp = p[0] & 0x07u, min = 0x10000;
	else
		return 0;
	if ((size_t)(end - p) < n)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xC0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3Fu);
	}
	if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
		return 0;
	return n;
}

/* True when s is UTF-8 text without control characters. */
static bool clean_text(const char *s)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + strlen(s);
	while (p < end) {
		if (*p < 0x20 || *p == 0x7F)
			return false;
		size_t n = utf8_seq(p, end);
		if (!n)
			return false;
		p += n;
	}
	return true;
}

/* A code: 1..TERMINOLOGY_MAX_CODE printable ASCII characters, no space. */
static bool valid_code(const char *s)
{
	size_t n = 0;
	for (; s[n]; n++)
		if (s[n] <= 0x20 || s[n] >= 0x7F)
			return false;
	return n > 0 && n <= TERMINOLOGY_MAX_CODE && s[0] != '#';
}

struct pack {
	const char *source;
	char *buf;
	const char *system, *version, *name, *title, *count;
	bool billable_known, seen_billable, seen_source;
	struct concept *c;
	size_t n;
};

static int pack_fail(char *err, size_t errlen, const struct pack *p, size_t line, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

static int pack_fail(char *err, size_t errlen, const struct pack *p, size_t line, const char *fmt, ...)
{
	char why[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
	if (line)
		snprintf(err, errlen, "%s: line %zu: %s", p->source, line, why);
	else
		snprintf(err, errlen, "%s: %s", p->source, why);
	return -1;
}

/* One "#key<TAB>value" line (key without '#'). */
static int pack_header(struct pack *p, char *key, size_t line, char *err, size_t errlen)
{
	char *tab = strchr(key, '\t');
	if (!tab)
		return pack_fail(err, errlen, p, line, "a header line is \"#key<TAB>value\"");
	*tab = '\0';
	const char *value = tab + 1;
	if (!*value || strlen(value) > MAX_HEADER_VALUE || strchr(value, '\t') || !clean_text(value))
		return pack_fail(err, errlen, p, line, "#%.40s: the value must be 1 to %d characters of UTF-8 text",
				 key, MAX_HEADER_VALUE);
	const char **slot = NULL;
	bool *seen = NULL;
	if (strcmp(key, "system") == 0)
		slot = &p->system;
	else if (strcmp(key, "version") == 0)
		slot = &p->version;
	else if (strcmp(key, "name") == 0)
		slot = &p->name;
	else if (strcmp(key, "title") == 0)
		slot = &p->title;
	else if (strcmp(key, "count") == 0)
		slot = &p->count;
	else if (strcmp(key, "billable") == 0)
		seen = &p->seen_billable;
	else if (strcmp(key, "source") == 0)
		seen = &p->seen_source;
	else
		return pack_fail(err, errlen, p, line,
				 "unknown header #%.40s (known: system, version, name, title, billable, source, count)",
				 key);
	if ((slot && *slot) || (seen && *seen))
		return pack_fail(err, errlen, p, line, "#%s given twice", key);
	if (slot)
		*slot = value;
	else
		*seen = true;
	if (strcmp(key, "billable") == 0) {
		if (strcmp(value, "yes") != 0 && strcmp(value, "no") != 0)
			return pack_fail(err, errlen, p, line, "#billable must be yes or no");
		p->billable_known = value[0] == 'y';
	}
	if (strcmp(key, "system") == 0 && (strchr(value, ' ') || !strchr(value, ':')))
		return pack_fail(err, errlen, p, line, "#system must be an absolute URI");
	return 0;
}

/* One "code<TAB>flags<TAB>display" line. */
static int pack_entry(struct pack *p, char *text, size_t line, char *err, size_t errlen)
{
	char *t1 = strchr(text, '\t');
	char *t2 = t1 ? strchr(t1 + 1, '\t') : NULL;
	if (!t1 || !t2 || strchr(t2 + 1, '\t'))
		return pack_fail(err, errlen, p, line, "a code line is \"code<TAB>flags<TAB>display\"");
	*t1 = *t2 = '\0';
	const char *code = text, *flags = t1 + 1, *display = t2 + 1;
	if (!valid_code(code))
		return pack_fail(err, errlen, p, line, "the code must be 1 to %d printable ASCII characters, no space, not starting with '#'",
				 TERMINOLOGY_MAX_CODE);
	if (p->n && strcmp(p->c[p->n - 1].code, code) >= 0)
		return pack_fail(err, errlen, p, line, "%s %s: codes must be unique and sorted in byte order",
				 p->c[p->n - 1].code, code);
	unsigned f = 0;
	if (strcmp(flags, "-") != 0) {
		if (!*flags)
			return pack_fail(err, errlen, p, line, "empty flags: write \"-\"");
		for (const char *q = flags; *q; q++) {
			if (*q == 'B' && p->billable_known)
				f |= CF_BILLABLE;
			else if (*q == 'I')
				f |= CF_INACTIVE;
			else if (*q == 'M')
				f |= CF_MODIFIER;
			else
				return pack_fail(err, errlen, p, line,
						 "flag '%c' is not one of B (with #billable yes), I, M, or \"-\"",
						 (unsigned char)*q >= 0x20 && (unsigned char)*q < 0x7F ? *q : '?');
		}
	}
	if (!clean_text(display))
		return pack_fail(err, errlen, p, line, "the display is not UTF-8 text without control characters");
	p->c[p->n++] = (struct concept){code, display, f};
	return 0;
}

static int pack_parse(struct pack *p, size_t len, char *err, size_t errlen)
{
	if (len == 0)
		return pack_fail(err, errlen, p, 0, "empty file");
	size_t lines = 1;
	for (size_t i = 0; i < len; i++) {
		if (p->buf[i] == '\0')
			return pack_fail(err, errlen, p, lines, "NUL byte");
		lines += p->buf[i] == '\n';
	}
	if (!(p->c = malloc(lines * sizeof *p->c)))
		return pack_fail(err, errlen, p, 0, "out of memory");
	char *s = p->buf, *end = p->buf + len;
	bool in_header = true;
	for (size_t line = 1; s < end; line++) {
		char *nl = memchr(s, '\n', (size_t)(end - s));
		char *stop = nl ? nl : end;
		if (stop > s && stop[-1] == '\r')
			stop--;
		*stop = '\0';
		if (line == 1 && strcmp(s, "#crosswalk-codes\t1") != 0)
			return pack_fail(err, errlen, p, line, "not a code pack: the first line must be \"#crosswalk-codes<TAB>1\"");
		if (line > 1) {
			if (!*s)
				return pack_fail(err, errlen, p, line, "empty line");
			int rc;
			if (*s == '#' && in_header)
				rc = pack_header(p, s + 1, line, err, errlen);
			else {
				in_header = false;
				rc = pack_entry(p, s, line, err, errlen);
			}
			if (rc)
				return -1;
		}
		s = nl ? nl + 1 : end;
	}
	if (p->n == 0)
		return pack_fail(err, errlen, p, 0, "no codes");
	if (p->count) {
		char *e;
		errno = 0;
		unsigned long long want = strtoull(p->count, &e, 10);
		if (*e || errno || p->count[0] < '0' || p->count[0] > '9' || want != p->n)
			return pack_fail(err, errlen, p, 0, "#count says %.40s, the pack has %zu codes (truncated?)", p->count,
					 p->n);
	}
	return 0;
}

int terminology_add_pack(struct terminology *t, const char *data, size_t len, const char *source,
			 const char *want_system, char *err, size_t errlen)
{
	struct pack p = {.source = source ? source : "(pack)"};
	if (!t || !data)
		return pack_fail(err, errlen, &p, 0, "no data");
	if (len > TERMINOLOGY_MAX_PACK_BYTES)
		return pack_fail(err, errlen, &p, 0, "larger than %zu bytes", TERMINOLOGY_MAX_PACK_BYTES);
	if (!(p.buf = malloc(len + 1)))
		return pack_fail(err, errlen, &p, 0, "out of memory");
	memcpy(p.buf, data, len);
	p.buf[len] = '\0';
	if (pack_parse(&p, len, err, errlen) != 0)
		goto fail;
	const char *want = terminology_normalise_system(want_system);
	const char *sys = p.system ? terminology_normalise_system(p.system) : want;
	if (!sys) {
		pack_fail(err, errlen, &p, 0, "no #system line");
		goto fail;
	}
	if (want && strcmp(sys, want) != 0) {
		pack_fail(err, errlen, &p, 0, "#system is %.200s; this file must be of %.200s", sys, want);
		goto fail;
	}
	const struct system *old = find_system(t, sys);
	if (old) {
		pack_fail(err, errlen, &p, 0, "%.200s is already loaded from %.200s", sys,
			  old->pack ? old->source : "a CodeSystem resource");
		goto fail;
	}
	struct system *s = new_system(t);
	if (!s) {
		pack_fail(err, errlen, &p, 0, "out of memory");
		goto fail;
	}
	s->url = strdup(sys);
	s->name = strdup(p.name ? p.name : p.title ? p.title : sys);
	s->version = p.version ? strdup(p.version) : NULL;
	s->source = strdup(p.source);
	s->c = p.c;
	s->n = s->cap = p.n;
	s->buf = p.buf;
	s->sorted = true; /* checked line by line */
	s->billable_known = p.billable_known;
	s->pack = true;
	if (!s->url || !s->name || (p.version && !s->version) || !s->source) {
		system_release(s);
		snprintf(err, errlen, "%s: out of memory", p.source);
		return -1;
	}
	t->n++;
	return 0;
fail:
	free(p.c);
	free(p.buf);
	return -1;
}

static int cmp_concept(const void *a, const void *b)
{
	return strcmp(((const struct concept *)a)->code, ((const struct concept *)b)->code);
}

void terminology_seal(struct terminology *t)
{
	for (size_t i = 0; i < t->n; i++) {
		struct system *s = &t->s[i];
		if (!s->sorted && s->n > 1)
			qsort(s->c, s->n, sizeof *s->c, cmp_concept);
		s->sorted = true;
	}
}

static const struct concept *find_concept(const struct system *s, const char *code)
{
	if (!s->n)
		return NULL; /* a CodeSystem without concepts: no array to search */
	if (s->sorted) {
		struct concept key = {code, NULL, 0};
		return bsearch(&key, s->c, s->n, sizeof *s->c, cmp_concept);
	}
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->c[i].code, code) == 0)
			return &s->c[i];
	return NULL;
}

enum terminology_result terminology_find(const struct terminology *t, const char *system, const char *code,
					 struct terminology_concept *out)
{
	const struct system *s = find_system(t, system);
	if (!s)
		return TERMINOLOGY_NO_SYSTEM;
	const struct concept *c = code ? find_concept(s, code) : NULL;
	if (!c)
		return TERMINOLOGY_NO_CODE;
	if (out)
		*out = (struct terminology_concept){
			.system = s->url,
			.version = s->version ? s->version : "",
			.code = c->code,
			.display = c->display,
			.billable_known = s->billable_known,
			.billable = (c->flags & CF_BILLABLE) != 0,
			.inactive = (c->flags & CF_INACTIVE) != 0,
			.modifier = (c->flags & CF_MODIFIER) != 0,
		};
	return TERMINOLOGY_FOUND;
}

const char *terminology_lookup(const struct terminology *t, const char *system, const char *code)
{
	struct terminology_concept c;
	return terminology_find(t, system, code, &c) == TERMINOLOGY_FOUND ? c.display : NULL;
}

bool terminology_system_known(const struct terminology *t, const char *system)
{
	return find_system(t, system) != NULL;
}

static void fill_info(const struct system *s, struct terminology_system_info *out)
{
	*out = (struct terminology_system_info){
		.url = s->url,
		.name = s->name ? s->name : s->url,
		.version = s->version ? s->version : "",
		.source = s->source ? s->source : "",
		.count = s->n,
		.billable_known = s->billable_known,
		.pack = s->pack,
	};
}

bool terminology_system_info(const struct terminology *t, const char *system, struct terminology_system_info *out)
{
	const struct system *s = find_system(t, system);
	if (s && out)
		fill_info(s, out);
	return s != NULL;
}

size_t terminology_systems(const struct terminology *t) { return t ? t->n : 0; }

bool terminology_system_at(const struct terminology *t, size_t i, struct terminology_system_info *out)
{
	if (!t || i >= t->n)
		return false;
	if (out)
		fill_info(&t->s[i], out);
	return true;
}

static int load_file(struct terminology *t, const char *path, bool must, char *err, size_t errlen)
{
	size_t len = 0;
	char why[256];
	char *text = file_read_all(path, MAX_FILE_BYTES, &len, why, sizeof why);
	if (!text) {
		snprintf(err, errlen, "%s: cannot read: %s", path, why);
		return -1;
	}
	/* Cheap test first: most profile files are not CodeSystems. */
	if (!must && !strstr(text, "\"CodeSystem\"")) {
		free(text);
		return 0;
	}
	struct fjson_limits lim;
	fjson_limits_default(&lim);
	struct fjson_error jerr;
	cJSON *root = fjson_parse(text, len, &lim, &jerr);
	free(text);
	if (!root) {
		if (!must)
			return 0;
		snprintf(err, errlen, "%s: line %d column %d: %s", path, jerr.line, jerr.column, jerr.message);
		return -1;
	}
	const cJSON *rt = cJSON_GetObjectItemCaseSensitive(root, "resourceType");
	int rc = 0;
	if (must || (cJSON_IsString(rt) && strcmp(rt->valuestring, "CodeSystem") == 0)) {
		if (terminology_add(t, root, why, sizeof why) != 0) {
			snprintf(err, errlen, "%s: %s", path, why);
			rc = -1;
		} else {
			rc = 1;
		}
	}
	cJSON_Delete(root);
	return rc;
}

static int cmp_names(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int load_dir(struct terminology *t, const char *dir, int depth, char *err, size_t errlen)
{
	DIR *d = opendir(dir);
	if (!d) {
		if (errno == ENOENT && depth == 0)
			return 0;
		snprintf(err, errlen, "%s: cannot open: %s", dir, strerror(errno));
		return -1;
	}
	char **names = NULL;
	size_t n = 0, cap = 0;
	int rc = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 32;
			char **nn = realloc(names, ncap * sizeof *nn);
			if (!nn) {
				rc = -1;
				break;
			}
			names = nn;
			cap = ncap;
		}
		if (!(names[n] = strdup(e->d_name))) {
			rc = -1;
			break;
		}
		n++;
	}
	closedir(d);
	if (rc != 0)
		snprintf(err, errlen, "%s: out of memory", dir);
	if (n)
		qsort(names, n, sizeof *names, cmp_names);
	int count = 0;
	for (size_t i = 0; i < n && rc == 0; i++) {
		char path[4096];
		if (snprintf(path, sizeof path, "%s/%s", dir, names[i]) >= (int)sizeof path)
			continue;
		struct stat st;
		if (stat(path, &st) != 0)
			continue;
		int r = 0;
		size_t nl = strlen(names[i]);
		if (S_ISDIR(st.st_mode) && depth < MAX_DIR_DEPTH)
			r = load_dir(t, path, depth + 1, err, errlen);
		else if (S_ISREG(st.st_mode) && nl > 5 && strcmp(names[i] + nl - 5, ".json") == 0)
			r = load_file(t, path, strncmp(names[i], "CodeSystem-", 11) == 0, err, errlen);
		if (r < 0)
			rc = -1;
		else
			count += r;
	}
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return rc < 0 ? -1 : count;
}

int terminology_load_dir(struct terminology *t, const char *dir, char *err, size_t errlen)
{
	return load_dir(t, dir, 0, err, errlen);
}

int terminology_load_pack(struct terminology *t, const char *path, const char *want_system, char *err,
			  size_t errlen)
{
	size_t len = 0;
	char why[256];
	char *text = file_read_all(path, MAX_FILE_BYTES, &len, why, sizeof why);
	if (!text) {
		snprintf(err, errlen, "%s: cannot read: %s", path, why);
		return -1;
	}
	int rc = terminology_add_pack(t, text, len, path, want_system, err, errlen);
	free(text);
	return rc;
}

int terminology_load_packs(struct terminology *t, const char *dir, char *err, size_t errlen)
{
	DIR *d = opendir(dir);
	if (!d) {
		if (errno == ENOENT)
			return 0;
		snprintf(err, errlen, "%s: cannot open: %s", dir, strerror(errno));
		return -1;
	}
	char **names = NULL;
	size_t n = 0, cap = 0;
	int rc = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		size_t nl = strlen(e->d_name);
		if (e->d_name[0] == '.' || nl <= 4 || strcmp(e->d_name + nl - 4, ".tsv") != 0)
			continue;
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 8;
			char **nn = realloc(names, ncap * sizeof *nn);
			if (!nn) {
				rc = -1;
				break;
			}
			names = nn;
			cap = ncap;
		}
		if (!(names[n] = strdup(e->d_name))) {
			rc = -1;
			break;
		}
		n++;
	}
	closedir(d);
	if (rc != 0)
		snprintf(err, errlen, "%s: out of memory", dir);
	if (n)
		qsort(names, n, sizeof *names, cmp_names);
	int count = 0;
	for (size_t i = 0; i < n && rc == 0; i++) {
		char path[4096];
		if (snprintf(path, sizeof path, "%s/%s", dir, names[i]) >= (int)sizeof path) {
			snprintf(err, errlen, "%s/%s: path too long", dir, names[i]);
			rc = -1;
		} else if (terminology_load_pack(t, path, NULL, err, errlen) != 0) {
			rc = -1;
		} else {
			count++;
		}
	}
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return rc < 0 ? -1 : count;
}
