/* profile_int — what profile.c (loading, snapshots, ValueSets) shares with
 * profile_validate.c. Not a public interface. */
#ifndef CW_PROFILE_INT_H
#define CW_PROFILE_INT_H

#include "fhir/profile.h"

/* One element of a snapshot. Pointers into the set's resources (cJSON
 * members); strings owned by the profile. */
struct pelem {
	char *id;                 /* "Observation.category:social.coding" */
	char *path;               /* "Observation.category.coding" */
	char *name;               /* last path segment: "coding", "value[x]", "valueQuantity" */
	char *slice;              /* sliceName of this element, or NULL */
	long min;                 /* -1: not known */
	long max;                 /* -1: "*" */
	const cJSON *types;       /* element.type, or NULL */
	const cJSON *fixed;       /* the fixed[x] value, or NULL */
	const cJSON *pattern;     /* the pattern[x] value, or NULL */
	const cJSON *binding;     /* element.binding, or NULL */
	const cJSON **constraint; /* element.constraint arrays (base's, then the profile's) */
	size_t nconstraint;
	const cJSON *slicing; /* element.slicing, or NULL */
	bool modifier;        /* isModifier */
	/* the tree: parent element index (SIZE_MAX for the root), first child
	 * and next sibling (SIZE_MAX: none); name_first: no earlier sibling has
	 * this name (the element that leads its slices) */
	size_t parent, first_child, next_sibling;
	bool name_first;
	/* the R4 model's cardinality of path (-2: not in the model): a limit
	 * the model sets is reported by structural validation, not again */
	long model_min, model_max;
};

struct profile {
	char *url;
	const char *type;   /* StructureDefinition.type */
	const char *kind;   /* "resource", "complex-type"… */
	const cJSON *sd;    /* the StructureDefinition (owned by the set) */
	const char *source; /* the file it came from */
	bool constraint;    /* derivation constraint */
	bool sealed, sealing;
	struct pelem *el;
	size_t nel;
	bool generated; /* the snapshot was generated here */
	/* extension definitions: context expressions, and whether a modifier */
	bool is_extension, ext_modifier;
};

struct pvalueset {
	char *url;
	const cJSON *vs;
};

struct profile_set {
	const struct terminology *terms; /* borrowed */
	struct terminology *own;         /* CodeSystems loaded here */
	cJSON **res;                     /* every resource kept */
	char **res_source;
	size_t nres, capres, capres_src;
	struct profile *p;
	size_t np, capp;
	struct pvalueset *vs;
	size_t nvs, capvs;
	bool sealed;
};

const struct profile *profile_find(const struct profile_set *ps, const char *url);
const cJSON *profile_valueset(const struct profile_set *ps, const char *url);

/* Membership of code (system may be NULL for a bare code) in the ValueSet
 * url: 1 in, 0 not in, -1 the ValueSet is unknown, -2 not decidable (a
 * system not loaded, a filter). */
int profile_vs_contains(const struct profile_set *ps, const char *url, const char *system, const char *code);

/* The element whose id is id, or NULL. */
const struct pelem *profile_elem(const struct profile *p, const char *id);

#endif
