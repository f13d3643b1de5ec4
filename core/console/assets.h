/* console assets — the operator console's files (core/console/www/),
 * compiled into the binary by core/console/assets.S so the console works on a
 * machine with no network and no files beside the executable.
 *
 * The table is constant and lives as long as the process; lookups are
 * read-only and safe from any thread. */
#ifndef CW_CONSOLE_ASSETS_H
#define CW_CONSOLE_ASSETS_H

#include <stdbool.h>
#include <stddef.h>

struct console_asset {
	const char *name;         /* the file name under www/, served at /console/NAME */
	const char *content_type; /* with charset for text */
	const unsigned char *data;
	size_t len;
};

/* Fills *out with the asset called name; false when there is none. */
bool console_asset(const char *name, struct console_asset *out);
/* How many assets there are, and the i-th (0 <= i < count). */
size_t console_asset_count(void);
void console_asset_at(size_t i, struct console_asset *out);

#endif
