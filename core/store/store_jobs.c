/* The shared bulk export jobs' entry points (store.h): which backend keeps
 * them, and the release of what they give. */
#include <stdlib.h>

#include "store/store.h"

bool store_jobs_shared(const struct store *s) { return s && s->ops->jobs != NULL; }

const struct store_job_ops *store_jobs(const struct store *s) { return s ? s->ops->jobs : NULL; }

void store_job_release(struct store_job *j)
{
	if (j) {
		free(j->rec);
		j->rec = NULL;
	}
}
