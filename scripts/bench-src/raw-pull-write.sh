#!/usr/bin/env bash
# The pull-and-write floor: GET every blob once with ONE curl process, CONCURRENCY transfers at a
# time (--parallel), each into its own file under DIR, then make the files durable (sync). What a
# build must do at least: every byte from the registry, written once, on disk.
#   raw-pull-write.sh BASE_URL LIST CONCURRENCY DIR
# LIST: as for raw-pull.sh.
set -euo pipefail
base="$1" list="$2" conc="$3" dir="$4"
cfg="$(mktemp)" codes="$(mktemp)"
trap 'rm -f "$cfg" "$codes"' EXIT
mkdir -p "$dir"
n=0
while read -r path; do
  n=$((n + 1))
  printf 'url = "%s/v2/%s"\noutput = "%s/%d"\n' "$base" "$path" "$dir" "$n"
done <"$list" >"$cfg"
curl -sS --no-progress-meter --parallel --parallel-max "$conc" \
  -H 'Accept: application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json' \
  -w '%{http_code}\n' -K "$cfg" >"$codes"
sync "$dir"/* "$dir"
want=0 got=0
while read -r _; do want=$((want + 1)); done <"$list"
while read -r code; do [ "$code" != 200 ] || got=$((got + 1)); done <"$codes"
[ "$got" = "$want" ] || { echo "raw-pull-write: $got of $want transfers answered 200" >&2; sort "$codes" | uniq -c >&2; exit 1; }
