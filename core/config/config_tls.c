/* config_tls — the check of the TLS files a configuration names, apart
 * from config.c so that what reads a configuration without serving (the
 * converter) does not link the certificate code (base/crypto, OpenSSL). */
#include "config/config.h"

#include <stdio.h>

#include "base/crypto.h"

int config_check_tls_files(const struct config *cfg, char *err, size_t errlen)
{
	const struct config_tls *t = &cfg->tls;
	char why[1024];
	const char *key = NULL;
	if (t->cert_file && crypto_check_certificate(t->cert_file, why, sizeof why) != 0)
		key = "tls.cert_file";
	else if (t->key_file && crypto_check_private_key(t->cert_file, t->key_file, why, sizeof why) != 0)
		key = "tls.key_file";
	else if (t->client_ca_file && crypto_check_certificate(t->client_ca_file, why, sizeof why) != 0)
		key = "tls.client_ca_file";
	if (!key)
		return 0;
	snprintf(err, errlen, "%s: %s: %s", cfg->source ? cfg->source : "(defaults)", key, why);
	return -1;
}
