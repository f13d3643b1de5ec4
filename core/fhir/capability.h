/* capability — the server's CapabilityStatement, assembled from what is
 * configured and loaded rather than written by hand.
 *
 * Modules and the plugin host register what they provide (formats,
 * operations, resource interactions) before serving; capability_build renders
 * the statement on demand. Threads: registration before serving only;
 * building is read-only and safe from many threads. Strings passed in must
 * outlive the registry (literals, or plugin descriptors that stay loaded). */
#ifndef CW_CAPABILITY_H
#define CW_CAPABILITY_H

#include <cjson/cJSON.h>

#define CAPABILITY_MAX 256 /* R4 has 146 resource types */

struct capability_operation {
	const char *name;       /* without "$" */
	const char *definition; /* canonical URL of the OperationDefinition */
	const char *type;       /* resource type, or NULL for a system operation */
	const char *provider;   /* "core" or the plugin's name */
};

struct capability_resource {
	const char *type;
	const char *interactions[16]; /* read, vread, update, … NULL-terminated */
	const char *profile;          /* may be NULL */
};

/* Adds detail a module knows best to a rendered statement (e.g. the search
 * parameters of the types it serves); called at the end of capability_build
 * with the finished statement, which it may extend. */
struct capability_decorator {
	void (*fn)(void *ctx, cJSON *statement);
	void *ctx;
};

/* A system-level interaction (rest.interaction): transaction, batch,
 * search-system, history-system. */
struct capability_interaction {
	const char *code;
	const char *documentation; /* may be NULL */
};

struct capability {
	const char *software_version;
	char date[32]; /* ISO 8601, set by capability_init */
	const char *formats[8];
	size_t nformats;
	struct capability_operation ops[CAPABILITY_MAX];
	size_t nops;
	struct capability_resource resources[CAPABILITY_MAX];
	size_t nresources;
	struct capability_interaction system[8];
	size_t nsystem;
	const char *native_formats[CAPABILITY_MAX]; /* recovery-side formats from plugins */
	size_t nnative;
	struct capability_decorator decorators[8];
	size_t ndecorators;
};

void capability_init(struct capability *cap, const char *software_version);
int capability_add_format(struct capability *cap, const char *mime);
int capability_add_operation(struct capability *cap, struct capability_operation op);
int capability_add_resource(struct capability *cap, const struct capability_resource *res);
int capability_add_native_format(struct capability *cap, const char *name);
int capability_add_decorator(struct capability *cap, struct capability_decorator d);
int capability_add_system_interaction(struct capability *cap, const char *code, const char *documentation);

/* Renders a new CapabilityStatement (caller frees). NULL on OOM. */
cJSON *capability_build(const struct capability *cap);

#endif
