# sojourn: `make run` sets up and runs on embedded defaults; `make test` runs the whole suite.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# Extra pip arguments for the CPU build of torch (e.g. an index URL), used when there is no GPU.
TORCH_CPU_ARGS ?=

.PHONY: install compiler run test test-dates fuzz lint bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	@if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then \
		echo "GPU found: installing the CUDA build of torch"; $(PIP) install -q torch; \
	else \
		echo "no GPU: installing the CPU build of torch"; $(PIP) install -q torch==2.13.0 $(TORCH_CPU_ARGS); \
	fi
	$(PIP) install -q -e '.[dev]'
	touch $@

run: install
	$(VENV)/bin/sojourn run

# torch.compile on the CPU (tests/inference/test_performance_settings.py) builds C++ with g++.
compiler:
	command -v g++ >/dev/null || { SUDO=$$( [ "$$(id -u)" -eq 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq g++; }

test: install compiler
	scripts/with-services.sh $(PY) -m pytest -q

# The whole suite with every process's clock moved a day, then a year ahead (Debian's faketime;
# the servers keep the real time): no test may depend on the day it runs.
test-dates: install compiler
	command -v faketime >/dev/null || $$( [ "$$(id -u)" -eq 0 ] || echo sudo ) apt-get install -y -qq faketime
	for shift in +1d +366d; do scripts/with-services.sh faketime -f $$shift $(PY) -m pytest -q || exit 1; done

# The fuzz suite at full strength: 100,000 generated inputs per property, a fresh random search
# each run (failures are saved in .hypothesis/ and replayed first). It needs no database.
fuzz: install
	SOJOURN_FUZZ_EXAMPLES=100000 $(PY) -m pytest -q tests/fuzz

lint: install
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check . && $(VENV)/bin/mypy

bench: install
	scripts/with-services.sh sh -c '$(PY) bench/submit.py && $(PY) bench/worker_overhead.py && $(PY) bench/embedded_latency.py && $(PY) bench/tiny_render.py && $(PY) bench/discord_latency.py'

clean:
	rm -rf $(VENV) .sojourn
