/* The console's files, included verbatim (see assets.h); each is followed by
 * a NUL so text can be read as a string. The list here and the table in
 * assets.c name the same files: tests/e2e/test_console.c fetches every file
 * of www/ through the gateway. */
	.section .rodata
	.global cw_console_index_html
	.global cw_console_index_html_end
	.balign 16
cw_console_index_html:
	.incbin "core/console/www/index.html"
cw_console_index_html_end:
	.byte 0
	.global cw_console_console_css
	.global cw_console_console_css_end
	.balign 16
cw_console_console_css:
	.incbin "core/console/www/console.css"
cw_console_console_css_end:
	.byte 0
	.global cw_console_app_js
	.global cw_console_app_js_end
	.balign 16
cw_console_app_js:
	.incbin "core/console/www/app.js"
cw_console_app_js_end:
	.byte 0
	.global cw_console_api_js
	.global cw_console_api_js_end
	.balign 16
cw_console_api_js:
	.incbin "core/console/www/api.js"
cw_console_api_js_end:
	.byte 0
	.global cw_console_plot_js
	.global cw_console_plot_js_end
	.balign 16
cw_console_plot_js:
	.incbin "core/console/www/plot.js"
cw_console_plot_js_end:
	.byte 0
	.global cw_console_traffic_js
	.global cw_console_traffic_js_end
	.balign 16
cw_console_traffic_js:
	.incbin "core/console/www/traffic.js"
cw_console_traffic_js_end:
	.byte 0
	.global cw_console_plugins_js
	.global cw_console_plugins_js_end
	.balign 16
cw_console_plugins_js:
	.incbin "core/console/www/plugins.js"
cw_console_plugins_js_end:
	.byte 0
	.global cw_console_delivery_js
	.global cw_console_delivery_js_end
	.balign 16
cw_console_delivery_js:
	.incbin "core/console/www/delivery.js"
cw_console_delivery_js_end:
	.byte 0
	.global cw_console_billing_js
	.global cw_console_billing_js_end
	.balign 16
cw_console_billing_js:
	.incbin "core/console/www/billing.js"
cw_console_billing_js_end:
	.byte 0
	.global cw_console_recovery_js
	.global cw_console_recovery_js_end
	.balign 16
cw_console_recovery_js:
	.incbin "core/console/www/recovery.js"
cw_console_recovery_js_end:
	.byte 0
	.global cw_console_audit_js
	.global cw_console_audit_js_end
	.balign 16
cw_console_audit_js:
	.incbin "core/console/www/audit.js"
cw_console_audit_js_end:
	.byte 0
	.global cw_console_uplot_iife_min_js
	.global cw_console_uplot_iife_min_js_end
	.balign 16
cw_console_uplot_iife_min_js:
	.incbin "core/console/www/uplot.iife.min.js"
cw_console_uplot_iife_min_js_end:
	.byte 0
	.global cw_console_uplot_min_css
	.global cw_console_uplot_min_css_end
	.balign 16
cw_console_uplot_min_css:
	.incbin "core/console/www/uplot.min.css"
cw_console_uplot_min_css_end:
	.byte 0
	.global cw_console_uplot_LICENSE
	.global cw_console_uplot_LICENSE_end
	.balign 16
cw_console_uplot_LICENSE:
	.incbin "core/console/www/uplot.LICENSE"
cw_console_uplot_LICENSE_end:
	.byte 0
	.section .note.GNU-stack,"",@progbits
