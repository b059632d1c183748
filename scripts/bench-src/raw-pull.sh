#!/usr/bin/env bash
# The registry egress limit: GET every blob once with ONE curl process, CONCURRENCY transfers at a
# time (--parallel), into /dev/null.
#   raw-pull.sh BASE_URL LIST CONCURRENCY
# LIST: lines "REPOSITORY/blobs/DIGEST" (layers, configs) or "REPOSITORY/manifests/DIGEST" (manifests
# and indexes, which Distribution serves only under /manifests/).
set -euo pipefail
base="$1" list="$2" conc="$3"
cfg="$(mktemp)" codes="$(mktemp)"
trap 'rm -f "$cfg" "$codes"' EXIT
while read -r path; do
  printf 'url = "%s/v2/%s"\noutput = "/dev/null"\n' "$base" "$path"
done <"$list" >"$cfg"
curl -sS --no-progress-meter --parallel --parallel-max "$conc" \
  -H 'Accept: application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json' \
  -w '%{http_code}\n' -K "$cfg" >"$codes"
want=0 got=0
while read -r _; do want=$((want + 1)); done <"$list"
while read -r code; do [ "$code" != 200 ] || got=$((got + 1)); done <"$codes"
[ "$got" = "$want" ] || { echo "raw-pull: $got of $want transfers answered 200" >&2; sort "$codes" | uniq -c >&2; exit 1; }
