/* profile — loading conformance resources, snapshots and ValueSet
 * membership (see profile.h). Validation is in profile_validate.c. */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/file.h"
#include "base/fjson.h"
#include "fhir/fhir_xml.h"
#include "fhir/model.h"
#include "fhir/profile_int.h"
#include "fhir/valueset.h"
#include "fhir/tar.h"

#define CORE_SD "http://hl7.org/fhir/StructureDefinition/"
#define MAX_DEPTH 4
#define MAX_VS_DEPTH 8
#define MAX_VS_VISITS 64 /* ValueSets looked into for one code */

struct profile_set *profile_set_new(const struct terminology *terms)
{
	struct profile_set *ps = calloc(1, sizeof *ps);
	if (!ps)
		return NULL;
	ps->terms = terms;
	if (!(ps->own = terminology_new())) {
		free(ps);
		return NULL;
	}
	return ps;
}

static void elems_free(struct pelem *el, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(el[i].id);
		free(el[i].path);
		free(el[i].name);
		free(el[i].slice);
		free(el[i].constraint);
	}
	free(el);
}

void profile_set_free(struct profile_set *ps)
{
	if (!ps)
		return;
	for (size_t i = 0; i < ps->np; i++) {
		free(ps->p[i].url);
		elems_free(ps->p[i].el, ps->p[i].nel);
	}
	for (size_t i = 0; i < ps->nvs; i++)
		free(ps->vs[i].url);
	for (size_t i = 0; i < ps->nres; i++) {
		cJSON_Delete(ps->res[i]);
		free(ps->res_source[i]);
	}
	free(ps->res);
	free(ps->res_source);
	free(ps->p);
	free(ps->vs);
	terminology_free(ps->own);
	free(ps);
}

static const char *str_of(const cJSON *o, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* url without a "|version" suffix, compared over its length. */
static bool url_eq(const char *canon, const char *url)
{
	size_t n = strcspn(url, "|");
	return strlen(canon) == n && !strncmp(canon, url, n);
}

const struct profile *profile_find(const struct profile_set *ps, const char *url)
{
	for (size_t i = 0; url && i < ps->np; i++)
		if (url_eq(ps->p[i].url, url))
			return &ps->p[i];
	return NULL;
}

const cJSON *profile_valueset(const struct profile_set *ps, const char *url)
{
	for (size_t i = 0; url && i < ps->nvs; i++)
		if (url_eq(ps->vs[i].url, url))
			return ps->vs[i].vs;
	return NULL;
}

bool profile_known(const struct profile_set *ps, const char *url) { return profile_find(ps, url) != NULL; }

static bool grow(void **arr, size_t *cap, size_t n, size_t size)
{
	if (n < *cap)
		return true;
	size_t nc = *cap ? *cap * 2 : 16;
	void *na = realloc(*arr, nc * size);
	if (!na)
		return false;
	*arr = na;
	*cap = nc;
	return true;
}

int profile_add(struct profile_set *ps, cJSON *res, const char *source, char *err, size_t errlen)
{
	const char *rt = str_of(res, "resourceType");
	bool sd = rt && !strcmp(rt, "StructureDefinition"), vs = rt && !strcmp(rt, "ValueSet"),
	     cs = rt && !strcmp(rt, "CodeSystem");
	if (!sd && !vs && !cs) {
		cJSON_Delete(res);
		return 0;
	}
	const char *url = str_of(res, "url");
	if (!url || !*url || strchr(url, '|')) {
		snprintf(err, errlen, "%s: a %s without url, or with '|' in it (a version goes in version)", source,
			 rt);
		cJSON_Delete(res);
		return -1;
	}
	if (sd && !str_of(res, "type")) {
		snprintf(err, errlen, "%s: StructureDefinition %s has no type", source, url);
		cJSON_Delete(res);
		return -1;
	}
	if (ps->sealed || ps->nres >= PROFILE_MAX_RESOURCES) {
		snprintf(err, errlen, "%s: more than %d conformance resources", source, PROFILE_MAX_RESOURCES);
		cJSON_Delete(res);
		return -1;
	}
	if (cs) {
		if (terminology_system_known(ps->own, url) || (ps->terms && terminology_system_known(ps->terms, url))) {
			cJSON_Delete(res); /* already known (the gateway's registry loaded profiles/ too) */
			return 1;
		}
		if (terminology_add(ps->own, res, err, errlen) != 0) {
			cJSON_Delete(res);
			return -1;
		}
	}
	if ((sd && profile_find(ps, url)) || (vs && profile_valueset(ps, url))) {
		/* the same resource twice (a package loaded as a folder too) is
		 * tolerated; another content under one url is not */
		const cJSON *old = sd ? profile_find(ps, url)->sd : profile_valueset(ps, url);
		bool same = cJSON_Compare(old, res, true);
		if (!same)
			snprintf(err, errlen, "%s: %s %s is loaded twice with different content", source, rt, url);
		cJSON_Delete(res);
		return same ? 1 : -1;
	}
	char *src = strdup(source ? source : "");
	if (!src || !grow((void **)&ps->res, &ps->capres, ps->nres, sizeof *ps->res) ||
	    !grow((void **)&ps->res_source, &ps->capres_src, ps->nres, sizeof *ps->res_source)) {
		free(src);
		cJSON_Delete(res);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	ps->res[ps->nres] = res;
	ps->res_source[ps->nres++] = src;
	if (sd) {
		char *u = strdup(url);
		if (!u || !grow((void **)&ps->p, &ps->capp, ps->np, sizeof *ps->p)) {
			free(u);
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		struct profile *p = &ps->p[ps->np++];
		memset(p, 0, sizeof *p);
		p->url = u;
		p->sd = res;
		p->source = src;
		p->type = str_of(res, "type");
		p->kind = str_of(res, "kind");
		const char *der = str_of(res, "derivation");
		p->constraint = der && !strcmp(der, "constraint");
		p->is_extension = p->type && !strcmp(p->type, "Extension") && p->constraint;
	} else if (vs) {
		char *u = strdup(url);
		if (!u || !grow((void **)&ps->vs, &ps->capvs, ps->nvs, sizeof *ps->vs)) {
			free(u);
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		ps->vs[ps->nvs].url = u;
		ps->vs[ps->nvs++].vs = res;
	}
	return 1;
}

static cJSON *read_json(const char *path, char *err, size_t errlen)
{
	size_t len = 0;
	char why[200];
	char *buf = file_read_all(path, PROFILE_MAX_FILE_BYTES, &len, why, sizeof why);
	if (!buf) {
		snprintf(err, errlen, "%s: %s", path, why);
		return NULL;
	}
	struct fjson_limits lim;
	fjson_limits_default(&lim);
	struct fjson_error fe = {0};
	cJSON *j = fjson_parse(buf, len, &lim, &fe);
	free(buf);
	if (!j)
		snprintf(err, errlen, "%s: not JSON: %s", path, fe.message);
	return j;
}

static bool ends_with(const char *s, const char *suf)
{
	size_t a = strlen(s), b = strlen(suf);
	return a >= b && !strcmp(s + a - b, suf);
}

static int names_cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* The entries of dir in name order (hidden ones skipped); NULL on error. */
static char **list_dir(const char *dir, size_t *n)
{
	DIR *d = opendir(dir);
	*n = 0;
	if (!d)
		return NULL;
	char **names = NULL;
	size_t cap = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		char *s = strdup(de->d_name);
		if (!s || !grow((void **)&names, &cap, *n, sizeof *names)) {
			free(s);
			break;
		}
		names[(*n)++] = s;
	}
	closedir(d);
	if (*n)
		qsort(names, *n, sizeof *names, names_cmp);
	return names;
}

static void free_names(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

/* Loads the *.json files of dir; into subfolders while depth > 0. */
static int load_tree(struct profile_set *ps, const char *dir, int depth, bool skip_package_json, char *err,
		     size_t errlen)
{
	size_t n;
	char **names = list_dir(dir, &n);
	int kept = 0;
	for (size_t i = 0; i < n && kept >= 0; i++) {
		char path[4096];
		if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, names[i]) >= sizeof path)
			continue;
		struct stat sb;
		if (stat(path, &sb) != 0)
			continue;
		if (S_ISDIR(sb.st_mode)) {
			if (depth > 0) {
				int r = load_tree(ps, path, depth - 1, skip_package_json, err, errlen);
				kept = r < 0 ? -1 : kept + r;
			}
			continue;
		}
		if (!S_ISREG(sb.st_mode) || !ends_with(names[i], ".json"))
			continue;
		if (skip_package_json && (!strcmp(names[i], "package.json") || !strcmp(names[i], ".index.json")))
			continue;
		cJSON *j = read_json(path, err, errlen);
		if (!j) {
			kept = -1;
			break;
		}
		int r = profile_add(ps, j, path, err, errlen);
		kept = r < 0 ? -1 : kept + r;
	}
	free_names(names, n);
	return kept;
}

int profile_load_dir(struct profile_set *ps, const char *dir, char *err, size_t errlen)
{
	struct stat sb;
	if (!dir || stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
		return 0;
	return load_tree(ps, dir, MAX_DEPTH, false, err, errlen);
}

struct tgz_load {
	struct profile_set *ps;
	const char *path;
	int kept;
	char *err;
	size_t errlen;
};

/* One file of a package archive: package/NAME.json (not package.json, not
 * .index.json, not in a subfolder) is a conformance resource. */
static int tgz_file(void *arg, const char *name, const char *data, size_t size)
{
	struct tgz_load *t = arg;
	if (strncmp(name, "package/", 8) != 0 || strchr(name + 8, '/') || !ends_with(name, ".json") ||
	    !strcmp(name + 8, "package.json") || !strcmp(name + 8, ".index.json"))
		return 0;
	struct fjson_limits lim;
	fjson_limits_default(&lim);
	struct fjson_error fe = {0};
	cJSON *j = fjson_parse(data, size, &lim, &fe);
	if (!j) {
		snprintf(t->err, t->errlen, "%s: %s: not JSON: %s", t->path, name, fe.message);
		return -1;
	}
	char source[4600];
	snprintf(source, sizeof source, "%s:%s", t->path, name);
	int r = profile_add(t->ps, j, source, t->err, t->errlen);
	if (r < 0)
		return -1;
	t->kept += r;
	return 0;
}

/* Loads a package archive (package.tgz: a gzipped tar, gunzipped by
 * libxml2's I/O layer, read by the bounded tar reader). */
static int load_tgz(struct profile_set *ps, const char *path, char *err, size_t errlen)
{
	struct fhir_xml_file *f = fhir_xml_file_open(path, err, errlen);
	if (!f)
		return -1;
	struct tar_limits lim = {PROFILE_MAX_PACKAGE_ENTRIES, PROFILE_MAX_FILE_BYTES, PROFILE_MAX_PACKAGE_BYTES};
	struct tgz_load t = {ps, path, 0, err, errlen};
	char why[300] = "";
	int r = tar_each(fhir_xml_file_read, f, &lim, tgz_file, &t, why, sizeof why);
	fhir_xml_file_close(f);
	if (r == -1 && why[0])
		snprintf(err, errlen, "%s: %s", path, why);
	return r ? -1 : t.kept;
}

static bool is_tgz(const char *name) { return ends_with(name, ".tgz") || ends_with(name, ".tar.gz"); }

int profile_load_packages(struct profile_set *ps, const char *dir, char *err, size_t errlen)
{
	struct stat sb;
	if (dir && stat(dir, &sb) == 0 && S_ISREG(sb.st_mode) && is_tgz(dir))
		return load_tgz(ps, dir, err, errlen);
	if (!dir || stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
		return 0;
	size_t n;
	char **names = list_dir(dir, &n);
	int kept = 0;
	for (size_t i = 0; i < n && kept >= 0; i++) {
		char pkg[4096], probe[4200];
		if (is_tgz(names[i])) {
			snprintf(pkg, sizeof pkg, "%s/%s", dir, names[i]);
			if (stat(pkg, &sb) == 0 && S_ISREG(sb.st_mode)) {
				int r = load_tgz(ps, pkg, err, errlen);
				kept = r < 0 ? -1 : kept + r;
				continue;
			}
		}
		snprintf(pkg, sizeof pkg, "%s/%s/package", dir, names[i]);
		snprintf(probe, sizeof probe, "%s/package.json", pkg);
		if (stat(probe, &sb) != 0) {
			snprintf(pkg, sizeof pkg, "%s/%s", dir, names[i]);
			snprintf(probe, sizeof probe, "%s/package.json", pkg);
			if (stat(probe, &sb) != 0)
				continue;
		}
		int r = load_tree(ps, pkg, 0, true, err, errlen);
		kept = r < 0 ? -1 : kept + r;
	}
	free_names(names, n);
	return kept;
}

/* ---- snapshots ---- */

const struct pelem *profile_elem(const struct profile *p, const char *id)
{
	for (size_t i = 0; i < p->nel; i++)
		if (!strcmp(p->el[i].id, id))
			return &p->el[i];
	return NULL;
}

static long parse_max(const cJSON *m)
{
	if (!cJSON_IsString(m))
		return -2;
	if (!strcmp(m->valuestring, "*"))
		return -1;
	char *end;
	long v = strtol(m->valuestring, &end, 10);
	return *end || v < 0 ? -2 : v;
}

/* The last segment of id ("a.b:s.c" → "c"), and the slice name of it. */
static const char *last_dot(const char *id)
{
	const char *d = NULL;
	int depth = 0;
	for (const char *s = id; *s; s++) {
		if (*s == '[')
			depth++;
		else if (*s == ']')
			depth--;
		else if (*s == '.' && depth == 0)
			d = s;
	}
	return d;
}

static int set_names(struct pelem *e, const char *id, const char *path)
{
	e->id = strdup(id);
	e->path = strdup(path);
	const char *d = last_dot(path);
	e->name = strdup(d ? d + 1 : path);
	const char *ld = last_dot(id);
	const char *colon = strchr(ld ? ld + 1 : id, ':');
	e->slice = colon ? strdup(colon + 1) : NULL;
	return e->id && e->path && e->name && (!colon || e->slice) ? 0 : -1;
}

static int add_constraints(struct pelem *e, const cJSON *arr)
{
	if (!cJSON_IsArray(arr) || !cJSON_GetArraySize(arr))
		return 0;
	for (size_t i = 0; i < e->nconstraint; i++)
		if (e->constraint[i] == arr)
			return 0;
	const cJSON **nc = realloc(e->constraint, (e->nconstraint + 1) * sizeof *nc);
	if (!nc)
		return -1;
	e->constraint = nc;
	e->constraint[e->nconstraint++] = arr;
	return 0;
}

/* Applies what element definition ed states to e. */
static int fill_from(struct pelem *e, const cJSON *ed)
{
	const cJSON *min = cJSON_GetObjectItemCaseSensitive(ed, "min");
	if (cJSON_IsNumber(min))
		e->min = (long)min->valuedouble;
	long max = parse_max(cJSON_GetObjectItemCaseSensitive(ed, "max"));
	if (max != -2)
		e->max = max;
	const cJSON *v;
	if ((v = cJSON_GetObjectItemCaseSensitive(ed, "type")) && cJSON_IsArray(v))
		e->types = v;
	if ((v = cJSON_GetObjectItemCaseSensitive(ed, "binding")) && cJSON_IsObject(v))
		e->binding = v;
	if ((v = cJSON_GetObjectItemCaseSensitive(ed, "slicing")) && cJSON_IsObject(v))
		e->slicing = v;
	if ((v = cJSON_GetObjectItemCaseSensitive(ed, "isModifier")) && cJSON_IsBool(v))
		e->modifier = cJSON_IsTrue(v);
	cJSON_ArrayForEach(v, ed)
	{
		if (!v->string)
			continue;
		if (!strncmp(v->string, "fixed", 5) && v->string[5] >= 'A' && v->string[5] <= 'Z')
			e->fixed = v;
		else if (!strncmp(v->string, "pattern", 7) && v->string[7] >= 'A' && v->string[7] <= 'Z')
			e->pattern = v;
	}
	return add_constraints(e, cJSON_GetObjectItemCaseSensitive(ed, "constraint"));
}

/* The id of an element definition: its id, or its path with ":sliceName". */
static int elem_id(const cJSON *ed, char *buf, size_t n)
{
	const char *id = str_of(ed, "id"), *path = str_of(ed, "path"), *sn = str_of(ed, "sliceName");
	if (id)
		return (size_t)snprintf(buf, n, "%s", id) < n ? 0 : -1;
	if (!path)
		return -1;
	if (sn)
		return (size_t)snprintf(buf, n, "%s:%s", path, sn) < n ? 0 : -1;
	return (size_t)snprintf(buf, n, "%s", path) < n ? 0 : -1;
}

static bool elems_grow(struct profile *p, size_t *cap) { return grow((void **)&p->el, cap, p->nel, sizeof *p->el); }

/* The path of an element id: slice names dropped. */
static void id_to_path(const char *id, char *out, size_t n)
{
	size_t o = 0;
	bool skip = false;
	for (const char *s = id; *s && o + 1 < n; s++) {
		if (*s == ':')
			skip = true;
		else if (*s == '.')
			skip = false;
		if (!skip)
			out[o++] = *s;
	}
	out[o] = '\0';
}

/* Cardinality of path from the R4 model when nothing else says it. */
static void model_card(const char *path, long *min, long *max)
{
	const struct model_type *owner, *chosen;
	char p[1024];
	snprintf(p, sizeof p, "%s", path);
	const struct model_elem *me = model_resolve_path(p, &owner, &chosen);
	if (!me && strchr(path, '.') == NULL && model_type(path)) {
		*min = 0;
		*max = -1;
		return;
	}
	if (!me)
		return;
	*min = me->min;
	*max = me->max == MODEL_UNBOUNDED ? -1 : me->max;
}

/* Inserts an element for id (and its missing ancestors) into the generated
 * list; returns its index, or SIZE_MAX on OOM or a bad id. */
static size_t ensure_elem(struct profile *p, size_t *cap, const char *id)
{
	for (size_t i = 0; i < p->nel; i++)
		if (!strcmp(p->el[i].id, id))
			return i;
	const char *d = last_dot(id);
	size_t at = p->nel;
	if (d) {
		char parent[1024];
		size_t pl = (size_t)(d - id);
		if (pl >= sizeof parent)
			return SIZE_MAX;
		memcpy(parent, id, pl);
		parent[pl] = '\0';
		size_t pi = ensure_elem(p, cap, parent);
		if (pi == SIZE_MAX)
			return SIZE_MAX;
		/* after the parent's last descendant */
		at = pi + 1;
		while (at < p->nel && !strncmp(p->el[at].id, parent, pl) &&
		       (p->el[at].id[pl] == '.' || p->el[at].id[pl] == ':'))
			at++;
		/* a new slice goes after its unsliced element's descendants too */
	}
	if (!elems_grow(p, cap))
		return SIZE_MAX;
	memmove(&p->el[at + 1], &p->el[at], (p->nel - at) * sizeof *p->el);
	p->nel++;
	struct pelem *e = &p->el[at];
	memset(e, 0, sizeof *e);
	e->min = -1;
	e->max = -2;
	char path[1024];
	id_to_path(id, path, sizeof path);
	if (set_names(e, id, path) != 0)
		return SIZE_MAX;
	/* a slice starts as a copy of the element it slices; a reslice
	 * ("a/b") as a copy of its slice ("a") */
	const char *ld = last_dot(id);
	const char *colon = strrchr(ld ? ld : id, ':');
	if (colon) {
		const char *cut = strrchr(colon, '/');
		char base[1024];
		snprintf(base, sizeof base, "%.*s", (int)((cut ? cut : colon) - id), id);
		for (size_t i = 0; i < p->nel; i++) {
			if (i == at || strcmp(p->el[i].id, base) != 0)
				continue;
			const struct pelem *b = &p->el[i];
			e->min = b->min;
			e->max = b->max;
			e->types = b->types;
			e->binding = b->binding;
			e->modifier = b->modifier;
			for (size_t k = 0; k < b->nconstraint; k++)
				if (add_constraints(e, b->constraint[k]) != 0)
					return SIZE_MAX;
			break;
		}
	}
	if (e->min < 0 || e->max == -2) {
		long mn = 0, mx = -1;
		model_card(path, &mn, &mx);
		if (e->min < 0)
			e->min = mn;
		if (e->max == -2)
			e->max = mx;
	}
	return at;
}

static int copy_elems(struct profile *to, size_t *cap, const struct profile *from)
{
	for (size_t i = 0; i < from->nel; i++) {
		if (!elems_grow(to, cap))
			return -1;
		const struct pelem *s = &from->el[i];
		struct pelem *e = &to->el[to->nel++];
		*e = *s;
		e->constraint = NULL;
		e->nconstraint = 0;
		e->slice = NULL;
		e->name = e->path = NULL;
		if (set_names(e, s->id, s->path) != 0)
			return -1;
		for (size_t k = 0; k < s->nconstraint; k++)
			if (add_constraints(e, s->constraint[k]) != 0)
				return -1;
	}
	return 0;
}

static void link_parents(struct profile *p)
{
	for (size_t i = 0; i < p->nel; i++) {
		p->el[i].parent = SIZE_MAX;
		p->el[i].model_min = p->el[i].model_max = -2;
		model_card(p->el[i].path, &p->el[i].model_min, &p->el[i].model_max);
		const char *d = last_dot(p->el[i].id);
		if (!d)
			continue;
		size_t pl = (size_t)(d - p->el[i].id);
		for (size_t k = i; k-- > 0;)
			if (strlen(p->el[k].id) == pl && !strncmp(p->el[k].id, p->el[i].id, pl)) {
				p->el[i].parent = k;
				break;
			}
	}
	for (size_t i = 0; i < p->nel; i++)
		p->el[i].first_child = p->el[i].next_sibling = SIZE_MAX;
	for (size_t i = p->nel; i-- > 0;) {
		size_t par = p->el[i].parent;
		if (par == SIZE_MAX)
			continue;
		p->el[i].next_sibling = p->el[par].first_child;
		p->el[par].first_child = i;
	}
	for (size_t i = 0; i < p->nel; i++) {
		p->el[i].name_first = true;
		size_t par = p->el[i].parent;
		for (size_t k = par == SIZE_MAX ? SIZE_MAX : p->el[par].first_child; k != SIZE_MAX && k != i;
		     k = p->el[k].next_sibling)
			if (!strcmp(p->el[k].name, p->el[i].name)) {
				p->el[i].name_first = false;
				break;
			}
	}
}

static int seal_one(struct profile_set *ps, struct profile *p, char *err, size_t errlen);

static int from_list(struct profile *p, const cJSON *list, bool merge, char *err, size_t errlen)
{
	size_t cap = p->nel;
	const cJSON *ed;
	cJSON_ArrayForEach(ed, list)
	{
		char id[1024];
		if (elem_id(ed, id, sizeof id) != 0) {
			snprintf(err, errlen, "%s: an element without id or path", p->url);
			return -1;
		}
		size_t i;
		if (merge) {
			if ((i = ensure_elem(p, &cap, id)) == SIZE_MAX) {
				snprintf(err, errlen, "%s: element %s: out of memory", p->url, id);
				return -1;
			}
		} else {
			if (!elems_grow(p, &cap)) {
				snprintf(err, errlen, "out of memory");
				return -1;
			}
			i = p->nel++;
			memset(&p->el[i], 0, sizeof p->el[i]);
			p->el[i].min = 0;
			p->el[i].max = -1;
			const char *path = str_of(ed, "path");
			if (!path || set_names(&p->el[i], id, path) != 0) {
				snprintf(err, errlen, "%s: element %s has no path", p->url, id);
				return -1;
			}
		}
		if (fill_from(&p->el[i], ed) != 0) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
	}
	return 0;
}

static int seal_one(struct profile_set *ps, struct profile *p, char *err, size_t errlen)
{
	if (p->sealed)
		return 0;
	if (p->sealing) {
		snprintf(err, errlen, "%s: its base definitions form a cycle", p->url);
		return -1;
	}
	p->sealing = true;
	const cJSON *snap =
		cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(p->sd, "snapshot"), "element");
	const cJSON *diff =
		cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(p->sd, "differential"), "element");
	int rc = 0;
	if (cJSON_IsArray(snap) && cJSON_GetArraySize(snap) > 0) {
		rc = from_list(p, snap, false, err, errlen);
	} else if (!cJSON_IsArray(diff)) {
		snprintf(err, errlen, "%s: neither a snapshot nor a differential", p->url);
		rc = -1;
	} else {
		p->generated = true;
		const char *base = str_of(p->sd, "baseDefinition");
		struct profile *bp = base ? (struct profile *)profile_find(ps, base) : NULL;
		size_t cap = 0;
		if (bp) {
			rc = seal_one(ps, bp, err, errlen);
			if (!rc && copy_elems(p, &cap, bp) != 0) {
				snprintf(err, errlen, "out of memory");
				rc = -1;
			}
		} else if (base && !strncmp(base, CORE_SD, strlen(CORE_SD)) && model_type(base + strlen(CORE_SD)) &&
			   !strcmp(base + strlen(CORE_SD), p->type)) {
			/* a core base: its root; the model holds the rest */
			if (ensure_elem(p, &cap, p->type) == SIZE_MAX) {
				snprintf(err, errlen, "out of memory");
				rc = -1;
			}
		} else {
			snprintf(err, errlen, "%s: base definition %s is not loaded", p->url, base ? base : "(none)");
			rc = -1;
		}
		if (!rc)
			rc = from_list(p, diff, true, err, errlen);
	}
	if (!rc) {
		link_parents(p);
		if (!p->nel || strcmp(p->el[0].path, p->type) != 0) {
			snprintf(err, errlen, "%s: the first element is not %s", p->url, p->type);
			rc = -1;
		}
	}
	if (!rc && p->is_extension)
		p->ext_modifier = p->el[0].modifier;
	p->sealing = false;
	p->sealed = rc == 0;
	return rc;
}

int profile_seal(struct profile_set *ps, char *err, size_t errlen)
{
	terminology_seal(ps->own);
	for (size_t i = 0; i < ps->np; i++)
		if (seal_one(ps, &ps->p[i], err, errlen) != 0)
			return -1;
	ps->sealed = true;
	return 0;
}

bool profile_at(const struct profile_set *ps, size_t i, const char **url, const char **type)
{
	for (size_t k = 0; k < ps->np; k++) {
		const struct profile *p = &ps->p[k];
		if (!p->constraint || !p->kind || strcmp(p->kind, "resource") != 0)
			continue;
		if (i-- == 0) {
			*url = p->url;
			*type = p->type;
			return true;
		}
	}
	return false;
}

static const char *max_text(long max, char *buf, size_t n)
{
	if (max < 0)
		return "*";
	snprintf(buf, n, "%ld", max);
	return buf;
}

cJSON *profile_snapshot_json(const struct profile_set *ps, const char *url)
{
	const struct profile *p = profile_find(ps, url);
	if (!p || !p->sealed)
		return NULL;
	cJSON *root = cJSON_CreateObject();
	cJSON *arr = root ? cJSON_AddArrayToObject(root, "element") : NULL;
	bool ok = arr != NULL;
	for (size_t i = 0; ok && i < p->nel; i++) {
		const struct pelem *e = &p->el[i];
		cJSON *o = cJSON_CreateObject();
		char mb[24];
		ok = o && cJSON_AddItemToArray(arr, o) && cJSON_AddStringToObject(o, "id", e->id) &&
		     cJSON_AddStringToObject(o, "path", e->path) &&
		     (!e->slice || cJSON_AddStringToObject(o, "sliceName", e->slice)) &&
		     (!e->slicing || cJSON_AddItemToObject(o, "slicing", cJSON_Duplicate(e->slicing, true))) &&
		     cJSON_AddNumberToObject(o, "min", (double)(e->min < 0 ? 0 : e->min)) &&
		     cJSON_AddStringToObject(o, "max", max_text(e->max, mb, sizeof mb)) &&
		     (!e->types || cJSON_AddItemToObject(o, "type", cJSON_Duplicate(e->types, true))) &&
		     (!e->fixed || cJSON_AddItemToObject(o, e->fixed->string, cJSON_Duplicate(e->fixed, true))) &&
		     (!e->pattern || cJSON_AddItemToObject(o, e->pattern->string, cJSON_Duplicate(e->pattern, true)));
		if (ok && e->nconstraint) {
			cJSON *c = cJSON_AddArrayToObject(o, "constraint");
			for (size_t k = 0; ok && c && k < e->nconstraint; k++) {
				const cJSON *x;
				cJSON_ArrayForEach(x, e->constraint[k]) ok =
					ok && cJSON_AddItemToArray(c, cJSON_Duplicate(x, true));
			}
			ok = ok && c;
		}
		if (ok && e->modifier)
			ok = cJSON_AddBoolToObject(o, "isModifier", true) != NULL;
		if (ok && e->binding)
			ok = cJSON_AddItemToObject(o, "binding", cJSON_Duplicate(e->binding, true));
	}
	if (!ok) {
		cJSON_Delete(root);
		return NULL;
	}
	return root;
}

/* ---- ValueSets ---- */

static bool in_contains(const cJSON *contains, const char *system, const char *code)
{
	const cJSON *c;
	cJSON_ArrayForEach(c, contains)
	{
		const char *cs = str_of(c, "system"), *cc = str_of(c, "code");
		if (cc && !strcmp(cc, code) && (!system || (cs && !strcmp(cs, system))))
			return true;
		if (in_contains(cJSON_GetObjectItemCaseSensitive(c, "contains"), system, code))
			return true;
	}
	return false;
}

static bool in_concepts(const cJSON *concepts, const char *code)
{
	const cJSON *c;
	cJSON_ArrayForEach(c, concepts)
	{
		const char *cc = str_of(c, "code");
		if (cc && !strcmp(cc, code))
			return true;
	}
	return false;
}

static int vs_contains(const struct profile_set *ps, const char *url, const char *system, const char *code, int depth,
		       int *budget);

/* 1 in, 0 not, -2 not decidable. */
static int include_has(const struct profile_set *ps, const cJSON *inc, const char *system, const char *code, int depth,
		       int *budget)
{
	const char *is = str_of(inc, "system");
	if (is)
		is = terminology_normalise_system(is);
	if (system && is && strcmp(is, system) != 0)
		return 0;
	int r = 1;
	const cJSON *vsu;
	cJSON_ArrayForEach(vsu, cJSON_GetObjectItemCaseSensitive(inc, "valueSet"))
	{
		if (!cJSON_IsString(vsu))
			continue;
		int x = vs_contains(ps, vsu->valuestring, system, code, depth + 1, budget);
		if (x == 0)
			return 0;
		if (x < 0)
			r = -2;
	}
	if (!is)
		return r;
	const cJSON *concepts = cJSON_GetObjectItemCaseSensitive(inc, "concept");
	if (cJSON_IsArray(concepts))
		return in_concepts(concepts, code) ? r : 0;
	if (cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(inc, "filter")) > 0)
		return -2;
	enum terminology_result tr = terminology_find(ps->own, is, code, NULL);
	if (tr == TERMINOLOGY_NO_SYSTEM && ps->terms)
		tr = terminology_find(ps->terms, is, code, NULL);
	if (tr == TERMINOLOGY_FOUND)
		return r;
	return tr == TERMINOLOGY_NO_SYSTEM ? -2 : 0;
}

static int vs_contains(const struct profile_set *ps, const char *url, const char *system, const char *code, int depth,
		       int *budget)
{
	const cJSON *vs = profile_valueset(ps, url);
	if (!vs) {
		/* one of the R4 core ValueSets built in (a loaded one comes first) */
		const struct valueset_def *core = valueset_core(url);
		if (!core)
			return -1;
		return valueset_contains(core, system, code) ? 1 : 0;
	}
	if (depth > MAX_VS_DEPTH || --*budget < 0)
		return -2; /* nested too deep, or too many ValueSets visited: not decided */
	const cJSON *exp = cJSON_GetObjectItemCaseSensitive(vs, "expansion");
	const cJSON *contains = cJSON_GetObjectItemCaseSensitive(exp, "contains");
	if (exp && in_contains(contains, system, code))
		return 1;
	if (cJSON_GetArraySize(contains) > 0)
		return 0; /* an expansion is the ValueSet's list of codes */
	const cJSON *compose = cJSON_GetObjectItemCaseSensitive(vs, "compose");
	if (!compose)
		return exp ? 0 : -2;
	int found = 0;
	const cJSON *inc;
	cJSON_ArrayForEach(inc, cJSON_GetObjectItemCaseSensitive(compose, "include"))
	{
		int r = include_has(ps, inc, system, code, depth, budget);
		if (r == 1) {
			found = 1;
			break;
		}
		if (r < 0)
			found = -2;
	}
	if (found == 1) {
		cJSON_ArrayForEach(inc, cJSON_GetObjectItemCaseSensitive(compose, "exclude"))
		{
			const char *is = str_of(inc, "system");
			if ((!system || !is || !strcmp(terminology_normalise_system(is), system)) &&
			    in_concepts(cJSON_GetObjectItemCaseSensitive(inc, "concept"), code))
				return 0;
		}
	}
	return found;
}

int profile_vs_contains(const struct profile_set *ps, const char *url, const char *system, const char *code)
{
	if (!code)
		return 0;
	int budget = MAX_VS_VISITS;
	return vs_contains(ps, url, system ? terminology_normalise_system(system) : NULL, code, 0, &budget);
}
