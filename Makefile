# Two commands do everything on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NOTEBOOK := Face_Recognition.ipynb
# Quiet TensorFlow's C++ start-up logging everywhere (see fr_utils._stderr_filtered for the rest).
export TF_CPP_MIN_LOG_LEVEL := 2
export PYTHONHASHSEED := 0

.PHONY: install assets browser run test lab bench notebook lock clean student grade

install: $(STAMP)

$(STAMP): requirements.txt constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	@touch $@

assets: $(STAMP)
	$(BIN)/python tools/fetch_assets.py

## Debian's Chromium for the browser test (CI runs as root; no browser download).
browser:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

## The main job: enrol one photo per person, verify and identify every val photo; then run the
## whole notebook headless into build/ (the committed notebook is left untouched).
run: assets
	$(BIN)/python tools/demo.py
	$(BIN)/jupyter nbconvert --to notebook --execute --output-dir build --log-level WARN \
		--ExecutePreprocessor.timeout=600 --ExecutePreprocessor.record_timing=False $(NOTEBOOK)
	@echo "Executed notebook: build/$(NOTEBOOK)"

NBVAL := --nbval --nbval-current-env --nbval-sanitize-with nbval_sanitize.cfg --nbval-cell-timeout=600

## Every test: unit and integration tests on the real model, then the notebook under strict nbval.
test: assets browser
	$(BIN)/python -m pytest tests
	$(BIN)/python -m pytest $(NBVAL) $(NOTEBOOK)

## JupyterLab on the notebook.
lab: assets
	$(BIN)/jupyter lab $(NOTEBOOK)

## Re-pin every package from the current environment (maintainers).
lock: $(STAMP)
	$(BIN)/python -m pip freeze --exclude-editable > constraints.txt

clean:
	rm -rf build .pytest_cache

## Re-generate the notebook from tools/build_notebook.py and store fresh outputs (the nbval reference).
notebook: assets
	$(BIN)/python tools/build_notebook.py
	cd $(CURDIR) && $(BIN)/jupyter nbconvert --to notebook --execute --inplace \
		--ExecutePreprocessor.timeout=600 --ExecutePreprocessor.record_timing=False $(NOTEBOOK)

## The student edition: build/student/Face_Recognition.ipynb (solutions blanked, checked against the reference).
student: $(STAMP)
	$(BIN)/python tools/make_student.py --reference $(NOTEBOOK) --out build/student/$(NOTEBOOK)

## Grade a folder of submitted notebooks: make grade SUBMISSIONS=dir/ (writes build/grades/).
grade: assets
	@test -n "$(SUBMISSIONS)" || { echo "usage: make grade SUBMISSIONS=dir/"; exit 2; }
	$(BIN)/python tools/grade.py $(SUBMISSIONS) --reference $(NOTEBOOK) --out build/grades

TORCH_VENV := benchmarks/.venv-torch

## Benchmarks (not part of `make test`): prints tables, writes benchmarks/results.md and plots.
bench: assets $(TORCH_VENV)/.installed
	$(BIN)/python benchmarks/run_all.py

$(TORCH_VENV)/.installed:
	@test -x $(TORCH_VENV)/bin/python || $(PYTHON) -m venv $(TORCH_VENV)
	$(TORCH_VENV)/bin/python -m pip install --quiet torch==2.13.0 numpy==2.4.6 requests==2.34.2
	$(TORCH_VENV)/bin/python -m pip install --quiet --no-deps facenet-pytorch==2.6.0
	@touch $@
