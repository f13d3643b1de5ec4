#include "console/assets.h"

#include <string.h>

extern const unsigned char cw_console_index_html[], cw_console_index_html_end[];
extern const unsigned char cw_console_console_css[], cw_console_console_css_end[];
extern const unsigned char cw_console_app_js[], cw_console_app_js_end[];
extern const unsigned char cw_console_api_js[], cw_console_api_js_end[];
extern const unsigned char cw_console_plot_js[], cw_console_plot_js_end[];
extern const unsigned char cw_console_traffic_js[], cw_console_traffic_js_end[];
extern const unsigned char cw_console_plugins_js[], cw_console_plugins_js_end[];
extern const unsigned char cw_console_delivery_js[], cw_console_delivery_js_end[];
extern const unsigned char cw_console_billing_js[], cw_console_billing_js_end[];
extern const unsigned char cw_console_recovery_js[], cw_console_recovery_js_end[];
extern const unsigned char cw_console_audit_js[], cw_console_audit_js_end[];
extern const unsigned char cw_console_uplot_iife_min_js[], cw_console_uplot_iife_min_js_end[];
extern const unsigned char cw_console_uplot_min_css[], cw_console_uplot_min_css_end[];
extern const unsigned char cw_console_uplot_LICENSE[], cw_console_uplot_LICENSE_end[];

struct entry {
	const char *name, *content_type;
	const unsigned char *start, *end;
};

static const struct entry table[] = {
	{"index.html", "text/html; charset=utf-8", cw_console_index_html, cw_console_index_html_end},
	{"console.css", "text/css; charset=utf-8", cw_console_console_css, cw_console_console_css_end},
	{"app.js", "text/javascript; charset=utf-8", cw_console_app_js, cw_console_app_js_end},
	{"api.js", "text/javascript; charset=utf-8", cw_console_api_js, cw_console_api_js_end},
	{"plot.js", "text/javascript; charset=utf-8", cw_console_plot_js, cw_console_plot_js_end},
	{"traffic.js", "text/javascript; charset=utf-8", cw_console_traffic_js, cw_console_traffic_js_end},
	{"plugins.js", "text/javascript; charset=utf-8", cw_console_plugins_js, cw_console_plugins_js_end},
	{"delivery.js", "text/javascript; charset=utf-8", cw_console_delivery_js, cw_console_delivery_js_end},
	{"billing.js", "text/javascript; charset=utf-8", cw_console_billing_js, cw_console_billing_js_end},
	{"recovery.js", "text/javascript; charset=utf-8", cw_console_recovery_js, cw_console_recovery_js_end},
	{"audit.js", "text/javascript; charset=utf-8", cw_console_audit_js, cw_console_audit_js_end},
	{"uplot.iife.min.js", "text/javascript; charset=utf-8", cw_console_uplot_iife_min_js,
	 cw_console_uplot_iife_min_js_end},
	{"uplot.min.css", "text/css; charset=utf-8", cw_console_uplot_min_css, cw_console_uplot_min_css_end},
	{"uplot.LICENSE", "text/plain; charset=utf-8", cw_console_uplot_LICENSE, cw_console_uplot_LICENSE_end},
};

#define N_ASSETS (sizeof table / sizeof table[0])

static struct console_asset asset_of(const struct entry *e)
{
	return (struct console_asset){e->name, e->content_type, e->start, (size_t)(e->end - e->start)};
}

bool console_asset(const char *name, struct console_asset *out)
{
	for (size_t i = 0; i < N_ASSETS; i++)
		if (!strcmp(table[i].name, name)) {
			*out = asset_of(&table[i]);
			return true;
		}
	return false;
}

size_t console_asset_count(void) { return N_ASSETS; }

void console_asset_at(size_t i, struct console_asset *out) { *out = asset_of(&table[i < N_ASSETS ? i : 0]); }
