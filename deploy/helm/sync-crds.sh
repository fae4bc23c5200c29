#!/usr/bin/env bash
# Copy the CRDs from deploy/crds/ (the source of truth) into the chart, which renders them
# from files/crds/ with .Files.Get (templates/crds.yaml). Run after editing deploy/crds/.
#   sync-crds.sh          copy
#   sync-crds.sh --check  exit 1 (and say which) if the chart's copy differs; copies nothing
# tests/chart/test_chart.py runs the same comparison.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SRC="$HERE/../crds"
DST="$HERE/cast-gatekeeper/files/crds"

check=0
case "${1:-}" in
  --check) check=1 ;;
  "") ;;
  *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac

shopt -s nullglob
srcs=("$SRC"/*.yaml)
[ ${#srcs[@]} -gt 0 ] || { echo "no CRDs in $SRC" >&2; exit 1; }

rc=0
for src in "${srcs[@]}"; do
  dst="$DST/$(basename "$src")"
  if [ "$check" = 1 ]; then
    if ! cmp -s "$src" "$dst"; then
      echo "out of date: $dst (run $0)" >&2
      rc=1
    fi
  else
    mkdir -p "$DST"
    cp "$src" "$dst"
    echo "synced $(basename "$src")"
  fi
done
# A CRD removed from deploy/crds/ must go from the chart too.
for dst in "$DST"/*.yaml; do
  if [ ! -e "$SRC/$(basename "$dst")" ]; then
    if [ "$check" = 1 ]; then
      echo "stale: $dst (not in $SRC)" >&2
      rc=1
    else
      rm -f "$dst"
      echo "removed $(basename "$dst")"
    fi
  fi
done
exit "$rc"
