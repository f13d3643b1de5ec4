#include "store/store_schema.h"

#include <stdio.h>

int sschema_setup(const struct sschema_ops *ops, void *conn, int current, char *err, size_t errlen)
{
	int have = ops->exists(conn, err, errlen);
	if (have <= 0)
		return have == 0 ? ops->create(conn, err, errlen) : -1;
	int64_t v = ops->version(conn, err, errlen);
	if (v < 0)
		return -1;
	if (v == 0) {
		snprintf(err, errlen, "the database's schema version table is empty");
		return -1;
	}
	if (v > current) {
		snprintf(err, errlen,
			 "the database has schema version %lld, written by a newer Crosswalk (this build reads up to "
			 "version %d): upgrade the gateway",
			 (long long)v, current);
		return -1;
	}
	return v < current ? ops->upgrade(conn, v, err, errlen) : 0;
}
