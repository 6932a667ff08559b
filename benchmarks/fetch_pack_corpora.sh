#!/usr/bin/env bash
# The corpora besides the embedded one that bench_pack.py judges the partition methods on
# (BENCHMARKS.md, "Packing judged where it was not tuned"). Never committed.
#
#     bash benchmarks/fetch_pack_corpora.sh [DATA]          (DATA: bench-data)
#
# DATA/pack-sdists/: 13 pinned pure-Python sdists from PyPI (pip download), each archive one
#                    repository as fimpack ingests it.
# DATA/pack-real/:   a multi-registry sample: the packages ../shared/tools/fetch-real-packages
#                    fetches (crates, Go modules, Maven sources jars, npm tarballs; REAL, default
#                    /work/real-packages) plus benchmarks/fetch_same_package.sh's Go modules and
#                    Maven jars, one folder each.
set -euo pipefail
DATA=${1:-bench-data}
REAL=${REAL:-/work/real-packages}
HERE=$(cd "$(dirname "$0")" && pwd)
PY=${PYTHON:-$HERE/../.venv/bin/python}
SDISTS="requests==2.32.3 click==8.1.7 attrs==23.2.0 httpx==0.27.0 rich==13.7.1 flask==3.0.3
werkzeug==3.0.3 jinja2==3.1.4 marshmallow==3.21.3 isort==5.13.2 toolz==0.12.1
more-itertools==10.3.0 pluggy==1.5.0"
mkdir -p "$DATA/pack-sdists"
for spec in $SDISTS; do
  name=${spec%==*}; ver=${spec#*==}
  ls "$DATA/pack-sdists" | grep -qi "^${name//-/[-_]}-$ver\.tar\.gz$" && continue
  "$PY" -m pip download -q --no-deps --no-binary :all: -d "$DATA/pack-sdists" "$spec"
done
bash "$HERE/fetch_same_package.sh" "$DATA/same-package" >/dev/null
mkdir -p "$DATA/pack-real"
for d in "$REAL"/*/ "$DATA"/same-package/*/; do
  [ -d "$DATA/pack-real/$(basename "$d")" ] || cp -r "$d" "$DATA/pack-real/"
done
ls "$DATA/pack-sdists" "$DATA/pack-real"
