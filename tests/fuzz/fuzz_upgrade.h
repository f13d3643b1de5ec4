/* What the plugin fuzz harnesses share about ids (docs/plugins.md,
 * "Deterministic ids"): the upgrade of an older id rule must recognise
 * nothing the current mapping writes — run over every resource of a Bundle
 * the plugin just made, it succeeds and changes nothing. Aborts otherwise. */
#ifndef CW_FUZZ_UPGRADE_H
#define CW_FUZZ_UPGRADE_H

#include <stdlib.h>

#include <cjson/cJSON.h>

#include "base/arena.h"
#include "fhir/outcome.h"
#include "plugin/plugin_host.h"

static inline void fuzz_upgrade_finds_nothing(struct plugin_host *h, const cJSON *bundle)
{
	const struct plugin *p = plugin_host_at(h, 0);
	if (!plugin_host_id_rule(p))
		abort(); /* the bundled record plugins all have an upgrade */
	const cJSON *e;
	cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(bundle, "entry")) {
		struct arena arena;
		struct outcome oo = OUTCOME_INIT;
		struct cw_ctx ctx;
		arena_init(&arena, 0);
		plugin_host_ctx(&ctx, h, &arena, &oo, NULL);
		cJSON *out = NULL, *moved = NULL;
		if (plugin_host_upgrade(&ctx, p, cJSON_GetObjectItemCaseSensitive(e, "resource"), &out, &moved) != CW_OK ||
		    out || moved)
			abort();
		outcome_release(&oo);
		arena_release(&arena);
	}
}

#endif
