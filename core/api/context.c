#include "api/context.h"

#include <stdlib.h>

void *app_keep(struct app *app, void *p)
{
	if (!p)
		return NULL;
	void **n = realloc(app->owned, (app->nowned + 1) * sizeof *n);
	if (!n) {
		free(p);
		return NULL;
	}
	app->owned = n;
	app->owned[app->nowned++] = p;
	return p;
}
