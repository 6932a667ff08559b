#!/usr/bin/env bash
# The corpus of issue 24's scaling targets where one repository holds at least a third of
# the bytes: seven pinned sdists from PyPI (pip download), each archive one repository as
# fimpack ingests it (Django is about a third of what the build reads). Never committed.
#
#     bash benchmarks/fetch_build_corpus.sh [DIR]          (DIR: bench-data/build-sdists)
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
