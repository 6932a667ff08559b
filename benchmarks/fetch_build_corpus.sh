#!/usr/bin/env bash
# The corpus of issue 24's scaling targets where one repository holds at least a third of
# the bytes: seven pinned sdists from PyPI (pip download), each archive one repository as
# fimpack ingests it (Django is about a third of what the build reads). Never committed.
#
#     bash benchmarks/fetch_build_corpus.sh [DIR]          (DIR: bench-data/build-sdists;
#                                                          also DIR-merged, below)
#
# Then: python benchmarks/bench_build.py --input DIR --name sdists ... (BENCHMARKS.md,
# "Every core, every byte once").
set -euo pipefail
DIR=${1:-bench-data/build-sdists}
HERE=$(cd "$(dirname "$0")" && pwd)
PY=${PYTHON:-$HERE/../.venv/bin/python}
SDISTS="Django==5.0.6 sympy==1.12 Pygments==2.18.0 docutils==0.21.2 pip==24.0 networkx==3.3
rich==13.7.1"
mkdir -p "$DIR"
for spec in $SDISTS; do
  name=${spec%==*}; ver=${spec#*==}
  ls "$DIR" | grep -qi "^${name//-/[-_]}-$ver\.tar\.gz$" && continue
  "$PY" -m pip download -q --no-deps --no-binary :all: -d "$DIR" "$spec"
done
ls -l "$DIR"

# The same bytes with the largest repository doubled (issue 24: "the largest worker's peak
# must not grow when the largest repository doubles"): sympy and Django in one archive, one
# repository of ~65% of the kept bytes, the other five as they are. Next to DIR, as DIR-merged.
MERGED="$DIR-merged"
if [ ! -f "$MERGED/sympy-django.tar.gz" ]; then
  mkdir -p "$MERGED"
  tmp=$(mktemp -d)
  tar -xzf "$DIR/sympy-1.12.tar.gz" -C "$tmp"
  tar -xzf "$DIR/Django-5.0.6.tar.gz" -C "$tmp"
  tar -czf "$MERGED/sympy-django.tar.gz" -C "$tmp" sympy-1.12 Django-5.0.6
  rm -rf "$tmp"
  for f in "$DIR"/*.tar.gz; do
    case $(basename "$f") in sympy-1.12.tar.gz|Django-5.0.6.tar.gz) ;; *) cp "$f" "$MERGED/" ;; esac
  done
fi
ls -l "$MERGED"
