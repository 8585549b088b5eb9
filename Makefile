# Two commands on a fresh machine: `make demo` and `make test` (see README).
# Each bootstraps what it needs: a virtual environment, packages, weights, sample images.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.txt pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: setup weights images demo gallery course-demo test test-fast bench-smoke clean serve

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -r requirements.txt
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	rm -f $(VENV)/.installed-* && touch $(STAMP)

setup: $(STAMP) weights images

weights: $(STAMP)
	$(BIN)/python -m nst.weights

images: $(STAMP)
	$(BIN)/python -m nst.images tubingen.jpg starry_night.jpg golden_gate.jpg

# The main job: stylise the sample pair with the defaults (512 px, coarse to fine), result in output/.
demo: setup
	$(BIN)/nst images/tubingen.jpg images/starry_night.jpg -o output/tubingen_starry_night.png --overwrite

# The README's gallery (docs/gallery/*.jpg): the defaults on four sample pairs, with the look measured.
gallery: setup
	$(BIN)/python bench/bench_look.py --runs now --gallery docs/gallery

# The web page on http://127.0.0.1:8000/ (README "Web page"); Ctrl-C stops it.
serve: setup
	$(BIN)/nst serve

test: setup
	$(BIN)/python -m pytest -q -ra

test-fast: setup
	$(BIN)/python -m pytest -q -m "not slow"

clean:
	rm -rf $(VENV) output/*.png output/*.jpg
