# The two commands of the README: `make dashboard` and `make test`. Each creates .venv on a fresh machine.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: dashboard test setup bench fuzz docs screenshots clean

$(STAMP): requirements.txt pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "Python 3.11 is needed (set PYTHON=/path/to/python3.11)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip>=24"
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

setup: $(STAMP)

dashboard: $(STAMP)
	$(PY) -m streamlit run dashboard --browser.gatherUsageStats false

test: $(STAMP)
	$(PY) -m pytest -q -ra tests

fuzz: $(STAMP)
	KIT_FUZZ_EXAMPLES=$${KIT_FUZZ_EXAMPLES:-5000} $(PY) -m pytest -q -x tests/test_fuzz.py

docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict

bench: $(STAMP)
	for script in embed cluster inspection dashboard faces adapt curate plot quality; do $(PY) bench/$$script.py || exit 1; done

screenshots: $(STAMP)
	$(PY) docs/screenshots.py

clean:
	rm -rf $(VENV)
