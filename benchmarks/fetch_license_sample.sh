#!/usr/bin/env bash
# Fetch the licence benchmark's sample: the pinned packages of benchmarks/license_sample.tsv
# from five registries (PyPI sdists, npm tarballs, crates, Maven sources jars, Go modules), each
# unpacked into DIR/<repository>/ as its registry ships it. The table's truth is what each
# package declares (package.json "license", Cargo.toml "license", PKG-INFO License-Expression /
# License / classifiers, the pom's <licenses> (inherited from a parent pom for some), the pom and
# its parent poms placed at META-INF/maven/G/A/pom.xml as a binary jar carries its own; for Go,
# which has no licence metadata, the licence text as pkg.go.dev reports it). After fetching,
# DIR/declared.tsv lists the raw field each package declares next to the table's SPDX value, to
# check the table by eye (a Maven package's own pom; an inherited licence is in its parent's).
# Usage: benchmarks/fetch_license_sample.sh DIR    (needs pip, npm, cargo, go, mvn, unzip)
# Small packages only (the whole sample is ~25 MB unpacked); nothing here is committed.
set -u
DIR=${1:?usage: fetch_license_sample.sh DIR}
HERE=$(cd "$(dirname "$0")" && pwd)
TABLE="$HERE/license_sample.tsv"
mkdir -p "$DIR"; DIR=$(cd "$DIR" && pwd)
TMP=$(mktemp -d); trap 'rm -rf "$TMP"' EXIT
PIP=${PIP:-$(command -v pip || command -v pip3)}
RAW="$DIR/declared.tsv"
printf 'repository\tregistry\ttable\traw_declared\n' >"$RAW"

rows() { awk -F'\t' -v r="$1" 'NR > 1 && $2 == r {print $1 "\t" $3 "\t" $4}' "$TABLE"; }
fresh() { rm -rf "$DIR/$1"; mkdir -p "$DIR/$1"; }

# PyPI sdists (repository = name-version)
if [ -n "$PIP" ]; then
  rows pypi | while IFS=$'\t' read -r repo spec want; do
    [ -d "$DIR/$repo" ] && continue
    rm -rf "$TMP/py"; mkdir -p "$TMP/py"
    "$PIP" download -q --no-deps --no-binary :all: -d "$TMP/py" "$spec" \
      >/dev/null 2>&1 || { echo "pypi: could not fetch $spec" >&2; continue; }
    f=$(ls "$TMP"/py/* | head -1); fresh "$repo"
    case "$f" in
      *.zip) (cd "$TMP/py" && unzip -q "$f" -d x) && cp -r "$TMP"/py/x/*/. "$DIR/$repo/" ;;
      *) tar xzf "$f" -C "$DIR/$repo" --strip-components=1 ;;
    esac
    raw=$(grep -m1 -E '^License-Expression:' "$DIR/$repo/PKG-INFO" || grep -m1 -E '^License:' "$DIR/$repo/PKG-INFO"; grep -E '^Classifier: License' "$DIR/$repo/PKG-INFO" | tr '\n' ' ')
    printf '%s\tpypi\t%s\t%s\n' "$repo" "$want" "$(echo $raw)" >>"$RAW"
  done
fi

# npm tarballs (repository = npm-name-version)
if command -v npm >/dev/null; then
  rows npm | while IFS=$'\t' read -r repo spec want; do
    [ -d "$DIR/$repo" ] && continue
    rm -rf "$TMP/npm"; mkdir -p "$TMP/npm"
    (cd "$TMP/npm" && npm pack -q "$spec" >/dev/null 2>&1) || { echo "npm: could not fetch $spec" >&2; continue; }
    fresh "$repo"; tar xzf "$TMP"/npm/*.tgz -C "$DIR/$repo" --strip-components=1
    raw=$(node -e "const p=require('$DIR/$repo/package.json');console.log(JSON.stringify(p.license||p.licenses))")
    printf '%s\tnpm\t%s\t%s\n' "$repo" "$want" "$raw" >>"$RAW"
  done
fi

# crates via cargo vendor (dependency-free crates; repository = crate-name-version)
if command -v cargo >/dev/null; then
  mkdir -p "$TMP/c/src" && echo 'fn main() {}' >"$TMP/c/src/main.rs"
  { printf '[package]\nname = "fetch"\nversion = "0.0.0"\nedition = "2021"\n[dependencies]\n'
    rows crates | while IFS=$'\t' read -r repo spec want; do
      n=${spec%@*}; printf '%s = "=%s"\n' "$n" "${spec#*@}"; done; } >"$TMP/c/Cargo.toml"
  if (cd "$TMP/c" && cargo vendor -q "$TMP/v" >/dev/null 2>&1); then
    rows crates | while IFS=$'\t' read -r repo spec want; do
      n=${spec%@*}; v=${spec#*@}; d="$TMP/v/$n"; [ -d "$TMP/v/$n-$v" ] && d="$TMP/v/$n-$v"
      [ -d "$d" ] || { echo "crates: $spec not vendored" >&2; continue; }
      fresh "$repo"; cp -r "$d"/. "$DIR/$repo/"; rm -f "$DIR/$repo/.cargo-checksum.json"
      printf '%s\tcrates\t%s\t%s\n' "$repo" "$want" "$(grep -m1 -E '^license' "$d/Cargo.toml")" >>"$RAW"
    done
  else echo "cargo: vendor failed" >&2; fi
fi

# Go modules (licence text only; repository = go-name-version)
if command -v go >/dev/null; then
  export GOPATH="$TMP/gopath" GOFLAGS=-modcacherw
  rows go | while IFS=$'\t' read -r repo spec want; do
    [ -d "$DIR/$repo" ] && continue
    d=$(go mod download -json "$spec" 2>/dev/null | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
    [ -n "$d" ] || { echo "go: could not fetch $spec" >&2; continue; }
    fresh "$repo"; cp -r "$d"/. "$DIR/$repo/"; chmod -R u+w "$DIR/$repo"
    printf '%s\tgo\t%s\t%s\n' "$repo" "$want" "(licence text)" >>"$RAW"
  done
fi

# Maven sources jars with their pom (repository = java-artifact-version)
if command -v mvn >/dev/null; then
  rows maven | while IFS=$'\t' read -r repo spec want; do
    [ -d "$DIR/$repo" ] && continue
    IFS=: read -r g a v <<<"$spec"
    mvn -q dependency:get -Dartifact="$g:$a:$v:jar:sources" -Dtransitive=false >/dev/null 2>&1 \
      || { echo "maven: could not fetch $spec" >&2; continue; }
    mvn -q dependency:get -Dartifact="$g:$a:$v:pom" -Dtransitive=false >/dev/null 2>&1
    base="$HOME/.m2/repository/${g//.//}/$a/$v"
    fresh "$repo"; (cd "$DIR/$repo" && unzip -q -o "$base/$a-$v-sources.jar")
    # the pom it is published with, where a binary jar carries it (META-INF/maven/G/A/), and
    # the parent poms Maven resolved for it (a licence is often inherited), beside it
    python3 - "$base/$a-$v.pom" "$DIR/$repo" "$HOME/.m2/repository" <<'PY'
import os, re, shutil, subprocess, sys
import xml.etree.ElementTree as ET
pom, dest, m2 = sys.argv[1:]
for _ in range(8):
    root = ET.parse(pom).getroot()
    ns = re.match(r"\{[^}]*\}", root.tag)
    ns = ns.group(0) if ns else ""
    parent = root.find(f"{ns}parent")
    pg = parent.findtext(f"{ns}groupId") if parent is not None else None
    g = root.findtext(f"{ns}groupId") or pg
    folder = os.path.join(dest, "META-INF", "maven", g, root.findtext(f"{ns}artifactId"))
    os.makedirs(folder, exist_ok=True)
    shutil.copy(pom, os.path.join(folder, "pom.xml"))
    if parent is None:
        break
    pa, pv = parent.findtext(f"{ns}artifactId"), parent.findtext(f"{ns}version")
    pom = os.path.join(m2, *pg.split("."), pa, pv, f"{pa}-{pv}.pom")
    if not os.path.exists(pom):
        subprocess.run(["mvn", "-q", "dependency:get", f"-Dartifact={pg}:{pa}:{pv}:pom",
                        "-Dtransitive=false"], stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if not os.path.exists(pom):
        break
PY
    raw=$(tr '\n' ' ' <"$base/$a-$v.pom" | grep -o '<licenses>.*</licenses>' | sed 's/  */ /g' | head -c 300)
    printf '%s\tmaven\t%s\t%s\n' "$repo" "$want" "$raw" >>"$RAW"
  done
fi
echo "fetched $(find "$DIR" -mindepth 1 -maxdepth 1 -type d | wc -l) repositories into $DIR (raw fields: $RAW)"
