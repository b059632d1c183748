#!/usr/bin/env bash
# The registry ingest limit: upload every blob once as a monolithic upload — POST
# /v2/REPO/blobs/uploads/, then PUT LOCATION?digest=… with the file as the body — with curl,
# CONCURRENCY transfers at a time (--parallel; one curl process per phase).
#   raw-upload.sh BASE_URL REPOSITORY LIST CONCURRENCY      LIST: lines "DIGEST FILE"
set -euo pipefail
base="$1" repo="$2" list="$3" conc="$4"
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
n=0
while read -r digest file; do
  n=$((n + 1))
  [ "$n" = 1 ] || echo next
  printf 'silent\nshow-error\nurl = "%s/v2/%s/blobs/uploads/"\nrequest = "POST"\noutput = "/dev/null"\ndump-header = "%s/h%d"\n' \
    "$base" "$repo" "$dir" "$n"
done <"$list" >"$dir/post.cfg"
curl -sS --no-progress-meter --parallel --parallel-max "$conc" -K "$dir/post.cfg" >/dev/null
n=0
while read -r digest file; do
  n=$((n + 1))
  loc=''
  while IFS= read -r line; do # bash builtins only: no process per blob in the measured time
    line="${line%$'\r'}"
    case "$line" in [Ll]ocation:\ *) loc="${line#*: }" ;; esac
  done <"$dir/h$n"
  [ -n "$loc" ] || { echo "raw-upload: no Location for upload $n" >&2; exit 1; }
  case "$loc" in http*) ;; *) loc="$base$loc" ;; esac
  case "$loc" in *\?*) sep='&' ;; *) sep='?' ;; esac
  [ "$n" = 1 ] || echo next
  printf 'silent\nshow-error\nurl = "%s%sdigest=%s"\nupload-file = "%s"\nheader = "Content-Type: application/octet-stream"\noutput = "/dev/null"\nwrite-out = "%%{http_code}\\n"\n' \
    "$loc" "$sep" "$digest" "$file"
done <"$list" >"$dir/put.cfg"
curl -sS --no-progress-meter --parallel --parallel-max "$conc" -K "$dir/put.cfg" >"$dir/codes"
got=0
while read -r code; do [ "$code" != 201 ] || got=$((got + 1)); done <"$dir/codes"
[ "$got" = "$n" ] || { echo "raw-upload: $got of $n uploads answered 201" >&2; sort "$dir/codes" | uniq -c >&2; exit 1; }
