# Two commands on a fresh machine: `make demo` and `make test` (see README).
# Each bootstraps what it needs: a virtual environment, packages, weights, sample images.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.txt pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: setup weights images demo gallery course-demo test test-slow test-hosts test-fast bench-smoke clean serve

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -r requirements.txt
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	rm -f $(VENV)/.installed-* && touch $(STAMP)

setup: $(STAMP) weights images

weights: $(STAMP)
	$(BIN)/python -m nst.weights

images: $(STAMP)
	$(BIN)/python -m nst.io.images tubingen.jpg starry_night.jpg golden_gate.jpg

# The main job: stylise the sample pair with the defaults (512 px, coarse to fine), result in output/.
demo: setup
	$(BIN)/nst images/tubingen.jpg images/starry_night.jpg -o output/tubingen_starry_night.png --overwrite

# The README's gallery (docs/gallery/*.jpg): the defaults on four sample pairs, with the look measured.
gallery: setup
	$(BIN)/python bench/bench_look.py --runs now --gallery docs/gallery

# The web page on http://127.0.0.1:8000/ (README "Web page"); Ctrl-C stops it.
serve: setup
	$(BIN)/nst serve

# The default suite, the README's test command: every test not marked slow (kept under about 15 minutes on 2 cores).
test: setup
	$(BIN)/python -m pytest -q -ra -m "not slow"

# Only the tests marked slow (see the marker in pyproject.toml); .ci/run runs them after `make test`.
test-slow: setup
	$(BIN)/python -m pytest -q -ra -m slow

# The tests marked host (they depend on the kind of machine), run as each other kind of the project's
# machines in turn: oneDNN on or off and the CPU flags --precision auto reads (tests/host_profiles.py).
# `make test NST_HOST_PROFILE=zen3` runs the whole default suite as one of them.
HOST_PROFILES ?= $(shell $(PYTHON) tests/host_profiles.py)
test-hosts: setup
	@status=0; for profile in $(HOST_PROFILES); do \
	  echo "== tests marked host, as $$profile"; \
	  $(BIN)/python -m pytest -q -ra -m "host and not slow" --host-profile $$profile || status=1; \
	done; exit $$status

# The default suite's former name, kept so that older notes still work.
test-fast: test

clean:
	rm -rf $(VENV) output/*.png output/*.jpg
