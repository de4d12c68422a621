# Two commands do all set-up on a fresh machine:  make demo  |  make test
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
# The CPU wheel of torch (on local disk here); installed first so nothing pulls a CUDA build.
TORCH  := torch==2.13.0

.PHONY: demo test notebooks lint bench bench-full report peers peers-compare clean

$(VENV)/.core-installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH)
	$(PY) -m pip install --quiet -e ".[bm3d,onnx]"
	touch $@

$(VENV)/.dev-installed: $(VENV)/.core-installed
	$(PY) -m pip install --quiet -e ".[bm3d,onnx,distributed,psf,napari,bioimageio,formats,dev]"
	touch $@

demo: $(VENV)/.core-installed
	$(VENV)/bin/infocus demo --output demo-output --overwrite

test: $(VENV)/.dev-installed
	$(VENV)/bin/ruff check src tests benchmarks
	$(PY) -m pytest
	$(MAKE) notebooks

# The tutorial notebooks (docs/notebooks), executed top to bottom by nbmake in the venv's
# kernel; a cell that raises or runs past the timeout fails the target. Idle OpenMP threads
# sleep instead of spinning (the command line's default too): on a shared CPU this halved the
# CPU time the notebooks take.
notebooks: $(VENV)/.dev-installed
	OMP_WAIT_POLICY=PASSIVE $(PY) -m pytest --nbmake --nbmake-timeout=600 docs/notebooks

lint: $(VENV)/.dev-installed
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks

# Benchmarks (docs/benchmarks.md): quick profile < 30 min on 2 cores; full profile hours.
# CAREamics is measured beside us when its venv can be built; otherwise that suite says why.
bench: $(VENV)/.core-installed
	-$(MAKE) peers
	$(PY) -m benchmarks run --profile quick

bench-full: $(VENV)/.core-installed
	-$(MAKE) peers
	$(PY) -m benchmarks run --profile full --resume

report: $(VENV)/.core-installed
	$(PY) -m benchmarks report

# CAREamics in its own venv beside ours (same CPU torch), for side-by-side benchmarks.
.venv-peers/.installed:
	bash ../shared/peers/setup_venv.sh .venv-peers
	touch $@

peers: .venv-peers/.installed

peers-compare: peers $(VENV)/.core-installed
	$(PY) -m benchmarks.peers.compare

clean:
	rm -rf $(VENV) demo-output build dist src/*.egg-info
