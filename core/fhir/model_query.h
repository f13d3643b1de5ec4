/* model_query — the few questions about the FHIR R4 model that plugins may
 * ask through the host table, answered from core/model.
 *
 * Pure lookups over static data: safe from any thread. */
#ifndef CW_MODEL_QUERY_H
#define CW_MODEL_QUERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* path: "Type.element[.element…]"; a trailing "[x]" is optional for a choice.
 * Stores up to max type codes (static strings) and returns how many types the
 * choice allows; 0 when path is not a choice; -1 when path is unknown. */
int model_query_choice_types(const char *path, const char **types, size_t max);

/* min and max cardinality (max UINT32_MAX for "*"); -1 when path is unknown. */
int model_query_cardinality(const char *path, uint32_t *min, uint32_t *max);

/* A FHIR R4 resource or data type name. */
bool model_query_type_known(const char *type);

#endif
