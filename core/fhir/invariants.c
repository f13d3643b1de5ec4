/* invariants — the R4 core invariants evaluated with FHIRPath (see invariants.h). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "fhir/fhirpath.h"
#include "fhir/invariants.h"
#include "fhir/model.h"

/* Every constraint and path compiled once, on first use; NULL where the
 * engine refuses one (counted as unchecked). */
static const struct fp_expr **compiled, **paths;
static pthread_once_t compile_once = PTHREAD_ONCE_INIT;

static void compile_all(void)
{
	compiled = calloc(invariants_n ? invariants_n : 1, sizeof *compiled);
	paths = calloc(invariants_n ? invariants_n : 1, sizeof *paths);
	for (size_t i = 0; compiled && paths && i < invariants_n; i++) {
		struct fp_error err;
		compiled[i] = fp_cached(invariants[i].expr, &err);
		if (strchr(invariants[i].path, '.'))
			paths[i] = fp_cached(invariants[i].path, &err);
	}
}

static bool applies(const struct invariant *inv, const struct model_type *t)
{
	for (; t; t = t->base == MODEL_NONE ? NULL : &model_types[t->base])
		if (inv->type[0] == t->name[0] && !strcmp(inv->type, t->name))
			return true;
	return false;
}

size_t invariants_check(const cJSON *resource, struct outcome *oo, struct invariants_stats *stats)
{
	struct invariants_stats st = {0};
	const cJSON *rt = cJSON_GetObjectItemCaseSensitive(resource, "resourceType");
	const struct model_type *t = cJSON_IsString(rt) ? model_resource(rt->valuestring) : NULL;
	if (!t) {
		if (stats)
			*stats = st;
		return 0;
	}
	pthread_once(&compile_once, compile_all);
	if (!compiled || !paths) {
		if (stats)
			*stats = st;
		return 0;
	}
	struct arena a;
	arena_init(&a, 16u << 20);
	for (size_t i = 0; i < invariants_n; i++) {
		const struct invariant *inv = &invariants[i];
		if (!applies(inv, t))
			continue;
		struct fp_error err;
		const struct fp_expr *e = compiled[i];
		bool on_resource = !strchr(inv->path, '.');
		const struct fp_expr *where = paths[i];
		if (!e || (!on_resource && !where)) {
			st.unchecked++;
			continue;
		}
		struct fp_env env = {.resource = resource};
		struct fp_coll ctx = {0};
		arena_reset(&a);
		if (where) {
			if (fp_eval(where, &env, &a, &ctx, &err) != 0) {
				st.unchecked++;
				continue;
			}
		}
		size_t n = where ? ctx.n : 1;
		for (size_t k = 0; k < n; k++) {
			struct fp_env cenv = env;
			if (where) {
				if (ctx.v[k].kind != FP_NODE || !ctx.v[k].u.node.j)
					continue;
				cenv.context = ctx.v[k].u.node.j;
				cenv.context_type = ctx.v[k].u.node.t ? ctx.v[k].u.node.t->name : NULL;
			}
			/* the context list stays valid: the arena only grows here */
			int r = fp_eval_bool(e, &cenv, &a, &err);
			if (r < 0) {
				st.unchecked++;
				continue;
			}
			st.checked++;
			if (r == 0) {
				st.failed++;
				outcome_add(oo, OUTCOME_ERROR, "invariant", inv->path, "%s: %s (constraint %s: %s)",
					    inv->key, inv->human, inv->key, inv->expr);
			}
		}
	}
	arena_release(&a);
	if (stats)
		*stats = st;
	return st.failed;
}
