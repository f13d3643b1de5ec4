#!/usr/bin/env bash
# Makes a throw-away test PKI in DIR with the openssl command line tool
# (P-256 keys, valid 2 days, nothing encrypted):
#
#   ca.pem                   CA that signed the server certificate
#   server.pem               server certificate for IP 127.0.0.1 (subjectAltName IP:127.0.0.1)
#   client-ca.pem            CA that signed the client certificate
#   client.pem               client certificate (extendedKeyUsage clientAuth)
#   other-ca.pem             an unrelated CA, which signed nothing here
#   NAME.key                 the private key of each NAME.pem (PEM, unencrypted, mode 0600)
#   client-encrypted.key     client.key encrypted with the passphrase "secret"
#
# Usage: tests/upstream/pki.sh DIR    (made if missing; exits non-zero on any failure)
set -euo pipefail
dir=${1:?usage: pki.sh DIR}
mkdir -p "$dir"
cd "$dir"
command -v openssl >/dev/null || { echo "pki.sh: the openssl command is required" >&2; exit 1; }

key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

ca() { # name subject
    key "$1.key"
    openssl req -x509 -new -key "$1.key" -out "$1.pem" -days 2 -subj "$2" \
        -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
}

leaf() { # name subject issuer extensions
    key "$1.key"
    openssl req -new -key "$1.key" -out "$1.csr" -subj "$2" 2>/dev/null
    printf '%s\n' "$4" >"$1.ext"
    openssl x509 -req -in "$1.csr" -CA "$3.pem" -CAkey "$3.key" -set_serial "0x$(openssl rand -hex 8)" \
        -days 2 -extfile "$1.ext" -out "$1.pem" 2>/dev/null
    rm -f "$1.csr" "$1.ext"
}

ca ca "/CN=Crosswalk test server CA"
ca client-ca "/CN=Crosswalk test client CA"
ca other-ca "/CN=Crosswalk unrelated test CA"
leaf server "/CN=127.0.0.1" ca "$(printf '%s\n' 'basicConstraints=CA:FALSE' 'subjectAltName=IP:127.0.0.1' \
    'keyUsage=critical,digitalSignature' 'extendedKeyUsage=serverAuth')"
leaf client "/CN=crosswalk-gateway" client-ca "$(printf '%s\n' 'basicConstraints=CA:FALSE' \
    'keyUsage=critical,digitalSignature' 'extendedKeyUsage=clientAuth')"
openssl pkey -in client.key -aes256 -passout pass:secret -out client-encrypted.key 2>/dev/null
chmod 0600 ./*.key
