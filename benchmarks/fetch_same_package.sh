#!/usr/bin/env bash
# Real Go modules and Maven sources jars for benchmarks/bench_same_package.py, beside the ones
# ../shared/tools/fetch-real-packages puts in /work/real-packages. Pinned; fetched with the
# registries' own clients (go mod download, mvn dependency:get) into DIR (default
# bench-data/same-package), one folder per package. Never committed.
#
#     bash benchmarks/fetch_same_package.sh [DIR]      (then DIR/hamcrest-core-1.3.jar is
#                                                      bench_same_package's --classpath)
set -euo pipefail
DIR=${1:-bench-data/same-package}
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
GO_MODULES="github.com/spf13/pflag@v1.0.5 github.com/google/go-cmp@v0.6.0 github.com/google/uuid@v1.6.0"
MAVEN="com.google.code.gson:gson:2.11.0 commons-cli:commons-cli:1.8.0"
export GOMODCACHE="$DIR/.gomodcache" GOFLAGS=-modcacherw
for m in $GO_MODULES; do
  name="go-$(basename "${m%@*}")-${m#*@}"
  [ -d "$DIR/$name" ] && continue
  src=$(cd /tmp && go mod download -json "$m" | sed -n 's/.*"Dir": "\(.*\)",/\1/p')
  cp -r "$src" "$DIR/$name"
  chmod -R u+w "$DIR/$name"
done
for a in $MAVEN; do
  IFS=: read -r g n v <<<"$a"
  name="java-$n-$v"
  [ -d "$DIR/$name" ] && continue
  mvn -q dependency:get -Dartifact="$g:$n:$v:jar:sources" -Dtransitive=false
  jar="$HOME/.m2/repository/${g//.//}/$n/$v/$n-$v-sources.jar"
  mkdir -p "$DIR/$name" && (cd "$DIR/$name" && unzip -q -o "$jar")
done
# JUnit 4's one dependency, for the javac reference's classpath (--classpath): without it
# javac resolves `import org.hamcrest.TypeSafeMatcher` to nothing and the name to JUnit's own.
mvn -q dependency:get -Dartifact=org.hamcrest:hamcrest-core:1.3 -Dtransitive=false
cp "$HOME/.m2/repository/org/hamcrest/hamcrest-core/1.3/hamcrest-core-1.3.jar" "$DIR/"
rm -rf "$GOMODCACHE"
ls "$DIR"
