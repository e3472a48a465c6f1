# One command each: `make demo` runs the pipeline on the local sandbox, `make test` the suite.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: setup test demo bench lint clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

.kafka-libs/.complete: tools/kafka/pom.xml
	$(PY) tools/kafka/broker.py fetch

# Debian's Chromium for the browser test (skipped when already there)
.chromium:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }
	@touch $@

# openssl makes the test broker's TLS certificates (skipped when already there)
.openssl:
	@command -v openssl >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssl >/dev/null; }
	@touch $@

# Debian's Mosquitto for the MQTT tests (skipped when already there)
.mosquitto:
	@test -x /usr/sbin/mosquitto || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mosquitto >/dev/null; }
	@touch $@

setup: $(VENV)/.installed .kafka-libs/.complete .chromium .openssl .mosquitto

test: setup
	$(PY) -m ruff check src tests tools bench
	$(PY) -m mypy
	$(VENV)/bin/lint-imports
	$(PY) -m pytest

demo: $(VENV)/.installed .kafka-libs/.complete .openssl .mosquitto
	$(PY) tools/demo.py

bench: setup
	$(PY) bench/run.py

lint: $(VENV)/.installed
	$(PY) -m ruff check src tests tools bench
	$(PY) -m ruff format --check src tests tools bench
	$(PY) -m mypy
	$(VENV)/bin/lint-imports

clean:
	rm -rf $(VENV) .kafka-libs .chromium .openssl .mosquitto
