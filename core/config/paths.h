/* paths — where Crosswalk looks for its files when nothing says otherwise.
 *
 * Two sets, chosen when the program is linked:
 * - built in the source tree (bin/crosswalk): relative to the working
 *   directory, for running from the repository — conf/crosswalk.json, var,
 *   lib/crosswalk/plugins, profiles;
 * - built by 'make install': absolute paths under its PREFIX (the Makefile
 *   compiles core/paths.c again with CW_CONFIG_FILE, CW_DATA_DIR,
 *   CW_PLUGIN_DIR and CW_PROFILES_DIR set), so the installed program works
 *   from any directory.
 * The configuration file (-c, CROSSWALK_CONFIG) overrides each of them.
 *
 * Threads: constant data, any thread. */
#ifndef CW_PATHS_H
#define CW_PATHS_H

struct cw_paths {
	const char *config_file;  /* used when neither -c nor CROSSWALK_CONFIG names one */
	const char *data_dir;     /* default of "data_dir" */
	const char *plugin_dir;   /* default of "plugin_dir" */
	const char *profiles_dir; /* default of "profiles_dir" */
};

/* The compiled-in defaults (static storage, never NULL). */
const struct cw_paths *paths_default(void);

#endif
