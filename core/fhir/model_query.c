#include "fhir/model_query.h"

#include "fhir/model.h"

int model_query_choice_types(const char *path, const char **types, size_t max)
{
	const struct model_type *owner = NULL, *chosen = NULL;
	const struct model_elem *e = model_resolve_path(path, &owner, &chosen);
	if (!e)
		return -1;
	if (!(e->flags & MODEL_F_CHOICE))
		return 0;
	for (size_t i = 0; i < e->ntypes && i < max; i++)
		types[i] = model_elem_type(e, i)->name;
	return e->ntypes;
}

int model_query_cardinality(const char *path, uint32_t *min, uint32_t *max)
{
	const struct model_elem *e = model_resolve_path(path, NULL, NULL);
	if (!e)
		return -1;
	*min = e->min;
	*max = e->max == MODEL_UNBOUNDED ? UINT32_MAX : e->max;
	return 0;
}

bool model_query_type_known(const char *type)
{
	const struct model_type *t = model_type(type);
	return t && t->kind != MODEL_BACKBONE;
}
