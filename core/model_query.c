#include "model_query.h"

#include "fhir_helpers.h"

/* Until core/model lands these answer from the shape of the name only. */
int model_query_choice_types(const char *path, const char **types, size_t max)
{
	(void)path;
	(void)types;
	(void)max;
	return -1;
}

int model_query_cardinality(const char *path, uint32_t *min, uint32_t *max)
{
	(void)path;
	*min = 0;
	*max = 0;
	return -1;
}

bool model_query_type_known(const char *type) { return fhir_is_type_name(type); }
