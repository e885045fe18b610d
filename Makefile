# The two commands a newcomer needs: `make demo` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q
# llama.cpp builds for a generic x86-64 so a cached wheel runs on any machine.
export CMAKE_ARGS ?= -DGGML_NATIVE=OFF

.PHONY: install test demo lint typecheck clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install --upgrade pip
	# torch only for `guardstack train` and its tests; pinned so pip takes the CPU wheel.
	$(PIP) install torch==2.13.0
	$(PIP) install -e ".[gateway,offline,model,finetune,train,test]"
	touch $@

install: $(VENV)/.installed

test: install
	$(VENV)/bin/pytest

demo: install
	$(VENV)/bin/guardstack eval --examples
	$(VENV)/bin/guardstack check "What do mitochondria do in a cell?"; true
	$(VENV)/bin/guardstack check "How do I kill a Python process that hangs?"; true

lint: install
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache
