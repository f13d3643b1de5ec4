/* profile — conformance resources (StructureDefinitions, ValueSets,
 * CodeSystems) and validation of a resource against a profile.
 *
 * Loading (profile_load_dir, profile_load_packages, profile_add): the
 * project's profiles/ folder and FHIR packages, unpacked (a folder holding
 * package/package.json, or package.json itself, as `tar -xzf package.tgz`
 * leaves it) or as the npm archive itself (NAME.tgz or NAME.tar.gz: gunzipped
 * through libxml2's I/O layer, read by the bounded tar reader, fhir/tar.h). Only StructureDefinition, ValueSet and
 * CodeSystem resources are kept; anything else in a package is skipped. The
 * R4 core definitions are not loaded from files: their structure is the
 * generated model (core/fhir/model.h) and their invariants the generated
 * table (core/fhir/invariants.h), which structural validation checks; a core
 * StructureDefinition with a snapshot (vitalsigns, bodyweight…) can be loaded
 * like any other.
 *
 * Snapshots (profile_seal): a StructureDefinition with a snapshot is used as
 * it is. One with only a differential gets a snapshot: the base profile's
 * elements (recursively generated; a core base contributes its root element)
 * with the differential applied element by element (by id): cardinality,
 * types with profile/targetProfile, fixed[x], pattern[x], binding,
 * constraints (added to the base's), slicing and slices; an element the base
 * does not list takes its cardinality from the R4 model. A base that is
 * missing or circular is a load error.
 *
 * Validation (profile_validate): cardinality as the profile constrains it,
 * fixed[x] (exact) and pattern[x] (the value holds at least the pattern),
 * types and Reference target profiles, slicing (discriminators value,
 * pattern, type, profile, exists, with paths through resolve() to contained
 * resources and, for a Bundle entry, other entries of its Bundle; rules
 * open, closed, openAtEnd; ordered; reslices "slice/reslice" at any depth),
 * bindings (required: error; extensible: warning; codes checked against the
 * ValueSet's expansion, its compose concept lists and whole included systems
 * known to the terminology registries, or, for an R4 core ValueSet no
 * package loads, the built-in one (fhir/valueset.h); a code of a system not
 * loaded is never guessed: an information issue says it was not checked; a
 * binding the core element itself has, to the same ValueSet at the same
 * strength, is left to structural validation, which reports it once), every constraint
 * of the snapshot evaluated with FHIRPath at its own severity, and every
 * extension in the resource: known definitions by URL (value type,
 * sub-extensions by the same element rules), context, and modifier
 * extensions only where the definition is a modifier. An unknown extension
 * or claimed profile is a warning. Structural validation (validate.h) is not
 * repeated here: callers run it first.
 *
 * Messages: every issue names the profile URL, the element path as FHIRPath
 * with indexes ("Observation.category[1].coding[0]") as its expression, and
 * carries a stable message id (outcome_add_id; the ids are listed in
 * docs/profiles.md).
 *
 * Threads: fill and seal from one thread; after profile_seal every lookup and
 * validation is read-only and safe from any number of threads at once.
 * Ownership: resources added are owned by the set (profile_add takes them).
 * Errors: loaders return -1 with "FILE: reason" in err. */
#ifndef CW_PROFILE_H
#define CW_PROFILE_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "fhir/outcome.h"
#include "fhir/terminology.h"

/* Largest conformance file read, and the most resources one set holds. */
#define PROFILE_MAX_FILE_BYTES ((size_t)32 << 20)
#define PROFILE_MAX_RESOURCES 20000
/* A package archive: the most entries, and bytes of content once gunzipped. */
#define PROFILE_MAX_PACKAGE_ENTRIES 50000
#define PROFILE_MAX_PACKAGE_BYTES ((size_t)512 << 20)

struct profile_set;

/* A new, empty set. terms (borrowed, may be NULL) is the registry of code
 * systems already loaded (the gateway's); CodeSystems loaded into the set
 * go to the set's own registry beside it. NULL on OOM. */
struct profile_set *profile_set_new(const struct terminology *terms);
void profile_set_free(struct profile_set *ps);

/* Takes res (freed on error too). Keeps StructureDefinitions, ValueSets and
 * CodeSystems; returns 1 when kept, 0 when skipped (another type), -1 with
 * a reason in err (a StructureDefinition or ValueSet without url, a url
 * already loaded with another content, too many resources, OOM). */
int profile_add(struct profile_set *ps, cJSON *res, const char *source, char *err, size_t errlen);
/* Loads every *.json file under dir (recursively, at most 4 levels; hidden
 * entries skipped). A file that does not parse, or a conformance resource
 * profile_add refuses, is an error. A missing dir is not an error. Returns
 * the number of resources kept, or -1. */
int profile_load_dir(struct profile_set *ps, const char *dir, char *err, size_t errlen);
/* Loads each FHIR package in dir: every subfolder holding
 * package/package.json or package.json, and every *.tgz / *.tar.gz archive
 * (dir may also name one archive): the *.json files of the package folder
 * itself (package/NAME.json in an archive; not examples/ or other
 * subfolders). An archive with an absolute or ".." entry name, a bad header,
 * a file over PROFILE_MAX_FILE_BYTES, more than PROFILE_MAX_PACKAGE_ENTRIES
 * entries or PROFILE_MAX_PACKAGE_BYTES of content is an error ("FILE:
 * reason"). A missing dir is not an error. Returns the number of resources
 * kept, or -1. */
int profile_load_packages(struct profile_set *ps, const char *dir, char *err, size_t errlen);
/* Generates the missing snapshots and indexes everything. Call once after
 * the last load, before sharing. -1 with "URL: reason" in err. */
int profile_seal(struct profile_set *ps, char *err, size_t errlen);

/* Profiles known (StructureDefinitions with derivation constraint, of a
 * resource type), for the CapabilityStatement: the i-th one's url and type;
 * false past the end. */
bool profile_at(const struct profile_set *ps, size_t i, const char **url, const char **type);
/* Whether a StructureDefinition with this canonical url (an optional
 * "|version" ignored) is loaded. */
bool profile_known(const struct profile_set *ps, const char *url);
/* The snapshot of the StructureDefinition url as a new
 * {"element": [...]} tree (as generated, or the one it came with); NULL when
 * unknown or on OOM. Caller frees. */
cJSON *profile_snapshot_json(const struct profile_set *ps, const char *url);

struct profile_stats {
	size_t constraints; /* FHIRPath constraints evaluated */
	size_t unchecked;   /* constraints the engine could not evaluate, bindings to unknown ValueSets */
};

/* Validates resource against the profile url; with url NULL, against every
 * profile its meta.profile claims (and the claims of contained and Bundle
 * entry resources). Issues go to oo (see above); returns the number of
 * error issues added. stats may be NULL. */
size_t profile_validate(const struct profile_set *ps, const cJSON *resource, const char *url, struct outcome *oo,
			struct profile_stats *stats);

#endif
