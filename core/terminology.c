#include "terminology.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fjson.h"

#define MAX_FILE_BYTES ((size_t)64 << 20)
#define MAX_CONCEPT_DEPTH 32
#define MAX_DIR_DEPTH 4

struct concept {
	char *code, *display;
};

struct system {
	char *url;
	struct concept *c;
	size_t n, cap;
	bool sorted;
};

struct terminology {
	struct system *s;
	size_t n, cap;
};

struct terminology *terminology_new(void) { return calloc(1, sizeof(struct terminology)); }

void terminology_free(struct terminology *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->n; i++) {
		for (size_t k = 0; k < t->s[i].n; k++) {
			free(t->s[i].c[k].code);
			free(t->s[i].c[k].display);
		}
		free(t->s[i].c);
		free(t->s[i].url);
	}
	free(t->s);
	free(t);
}

static struct system *find_system(const struct terminology *t, const char *url)
{
	for (size_t i = 0; i < t->n; i++)
		if (strcmp(t->s[i].url, url) == 0)
			return &t->s[i];
	return NULL;
}

static struct system *get_system(struct terminology *t, const char *url)
{
	struct system *s = find_system(t, url);
	if (s)
		return s;
	if (t->n == t->cap) {
		size_t ncap = t->cap ? t->cap * 2 : 8;
		struct system *ns = realloc(t->s, ncap * sizeof *ns);
		if (!ns)
			return NULL;
		t->s = ns;
		t->cap = ncap;
	}
	s = &t->s[t->n];
	memset(s, 0, sizeof *s);
	s->url = strdup(url);
	if (!s->url)
		return NULL;
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
	s->c[s->n++] = (struct concept){c, d};
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

int terminology_add(struct terminology *t, const cJSON *cs, char *err, size_t errlen)
{
	const cJSON *rt = cJSON_GetObjectItemCaseSensitive(cs, "resourceType");
	const cJSON *url = cJSON_GetObjectItemCaseSensitive(cs, "url");
	if (!cJSON_IsString(rt) || strcmp(rt->valuestring, "CodeSystem") != 0) {
		snprintf(err, errlen, "not a CodeSystem resource");
		return -1;
	}
	if (!cJSON_IsString(url) || !*url->valuestring) {
		snprintf(err, errlen, "CodeSystem has no url");
		return -1;
	}
	struct system *s = get_system(t, url->valuestring);
	if (!s) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return add_concepts(s, cJSON_GetObjectItemCaseSensitive(cs, "concept"), 0, err, errlen);
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

const char *terminology_lookup(const struct terminology *t, const char *system, const char *code)
{
	if (!t || !system || !code)
		return NULL;
	const struct system *s = find_system(t, system);
	if (!s)
		return NULL;
	if (s->sorted) {
		struct concept key = {(char *)code, NULL};
		const struct concept *c = bsearch(&key, s->c, s->n, sizeof *s->c, cmp_concept);
		return c ? c->display : NULL;
	}
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->c[i].code, code) == 0)
			return s->c[i].display;
	return NULL;
}

bool terminology_system_known(const struct terminology *t, const char *system)
{
	return t && system && find_system(t, system) != NULL;
}

size_t terminology_systems(const struct terminology *t) { return t ? t->n : 0; }

static char *slurp(const char *path, size_t *len, char *why, size_t whylen)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		snprintf(why, whylen, "%s", strerror(errno));
		return NULL;
	}
	struct stat st;
	if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode) || (size_t)st.st_size > MAX_FILE_BYTES) {
		snprintf(why, whylen, "not a regular file of at most %zu bytes", MAX_FILE_BYTES);
		fclose(f);
		return NULL;
	}
	char *buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		snprintf(why, whylen, "out of memory");
		fclose(f);
		return NULL;
	}
	*len = fread(buf, 1, (size_t)st.st_size, f);
	buf[*len] = '\0';
	fclose(f);
	return buf;
}

static int load_file(struct terminology *t, const char *path, bool must, char *err, size_t errlen)
{
	size_t len = 0;
	char why[256];
	char *text = slurp(path, &len, why, sizeof why);
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
