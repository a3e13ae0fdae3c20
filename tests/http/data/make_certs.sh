#!/usr/bin/env bash
# Makes the TLS test files of tests/http/data (run once; the results are
# committed): a test CA (ca.crt; its key is thrown away) and a server
# certificate it signed for localhost and 127.0.0.1 (server.crt, server.key),
# valid for a hundred years. For tests only: the key is public.
set -euo pipefail
cd "$(dirname "$0")"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

openssl req -x509 -new -nodes -days 36500 -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
  -keyout "$work/ca.key" -out ca.crt -subj "/CN=wf test CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"

openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
  -keyout server.key -out "$work/server.csr" -subj "/CN=localhost"
cat >"$work/server.ext" <<'EXT'
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=DNS:localhost,IP:127.0.0.1
EXT
openssl x509 -req -in "$work/server.csr" -CA ca.crt -CAkey "$work/ca.key" -CAcreateserial -CAserial "$work/ca.srl" \
  -days 36500 -extfile "$work/server.ext" -out server.crt
