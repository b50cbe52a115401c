#!/usr/bin/env bash
# Makes the certificates of a ward cluster with openssl (docs/OPERATIONS.md "Certificates"):
#   deploy/make-certs.sh DIR ca                      CA (DIR/ca.crt, DIR/ca.key), 10 years
#   deploy/make-certs.sh DIR member NAME IP[,IP...]  etcd member: server + peer, SANs = the IPs
#   deploy/make-certs.sh DIR node NAME               ward node (client), CN = NAME
# Idempotent: an existing certificate is kept (delete it to renew). Keys are mode 0600.
# Keep DIR/ca.key off the hosts.
set -euo pipefail

usage() { sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
[ $# -ge 2 ] || usage
DIR=$1 KIND=$2
NAME_RE='^[a-z0-9]([a-z0-9.-]{0,61}[a-z0-9])?$'
mkdir -p "$DIR"
cd "$DIR"
umask 077

ec_key_csr() { # NAME -> NAME.key, NAME.csr
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=$1" -keyout "$1.key" -out "$1.csr" 2>/dev/null
}
sign() { # NAME EXTENSIONS
  [ -f ca.crt ] && [ -f ca.key ] || { echo "make-certs: no CA in $DIR (run: $0 $DIR ca)" >&2; exit 1; }
  openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 825 -out "$1.crt" -extfile <(printf '%b' "$2") 2>/dev/null
  rm -f "$1.csr"
  chmod 0644 "$1.crt"
  echo "make-certs: $DIR/$1.crt"
}

case "$KIND" in
  ca)
    [ $# -eq 2 ] || usage
    if [ -f ca.crt ]; then echo "make-certs: $DIR/ca.crt exists"; exit 0; fi
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
      -subj "/CN=ward-etcd-ca" -keyout ca.key -out ca.crt 2>/dev/null
    chmod 0644 ca.crt
    echo "make-certs: $DIR/ca.crt"
    ;;
  member)
    [ $# -eq 4 ] || usage
    name=$3
    [[ $name =~ $NAME_RE ]] || { echo "make-certs: bad member name $name" >&2; exit 2; }
    san=""
    IFS=, read -ra ips <<<"$4"
    for ip in "${ips[@]}"; do
      [[ $ip =~ ^[0-9]{1,3}(\.[0-9]{1,3}){3}$ ]] || { echo "make-certs: bad IPv4 address $ip" >&2; exit 2; }
      san+="IP:$ip,"
    done
    if [ -f "$name.crt" ]; then echo "make-certs: $DIR/$name.crt exists"; exit 0; fi
    ec_key_csr "$name"
    sign "$name" "subjectAltName=${san}IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\nkeyUsage=digitalSignature,keyEncipherment\n"
    ;;
  node)
    [ $# -eq 3 ] || usage
    name=$3
    [[ $name =~ $NAME_RE ]] || { echo "make-certs: bad node name $name" >&2; exit 2; }
    if [ -f "$name.crt" ]; then echo "make-certs: $DIR/$name.crt exists"; exit 0; fi
    ec_key_csr "$name"
    sign "$name" "extendedKeyUsage=clientAuth\nkeyUsage=digitalSignature\n"
    ;;
  *) usage ;;
esac
