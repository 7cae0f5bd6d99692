# Two commands do all the set-up: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test install tools clean

$(BIN)/stockflow: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(BIN)/stockflow

install: $(BIN)/stockflow

demo: install
	$(BIN)/stockflow demo

# Prometheus and promtool (Debian's `prometheus` package) for the observability tests; Redis
# and a Kafka-protocol broker are found or started by the tests themselves.
tools:
	@command -v promtool >/dev/null && command -v prometheus >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null; \
	  else echo "make test needs promtool and prometheus: apt-get install prometheus (as root)"; exit 1; fi; }

test: install tools
	$(BIN)/python -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
