# Two commands do all the set-up: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test faults install tools services clean

$(BIN)/stockflow: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(BIN)/stockflow

install: $(BIN)/stockflow

demo: install
	$(BIN)/stockflow demo

# Prometheus and promtool (Debian's `prometheus` package) for the observability tests, and
# redis-server for the drills that stop and restart a Redis of their own; a Kafka-protocol
# broker is started by the tests themselves.
tools:
	@command -v promtool >/dev/null && command -v prometheus >/dev/null && command -v redis-server >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus redis-server >/dev/null; \
	  else echo "make test needs promtool, prometheus and redis-server: apt-get install prometheus redis-server (as root)"; exit 1; fi; }

# Redis and PostgreSQL on this machine: started if installed and not answering. (The Kafka
# broker is started by the tests.) Tests that still cannot reach a server fail, loudly.
services:
	@redis-cli -h 127.0.0.1 ping >/dev/null 2>&1 || ! command -v redis-server >/dev/null || \
	  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
	@pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null || ! command -v pg_ctlcluster >/dev/null || \
	  pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql | head -1) main start || true

test: install tools services
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The fault drills in full: 50 kill points, a 20 s Redis outage, ... (`make test` runs them
# quick). The figures are printed and written to faults-results.json.
faults: install tools services
	$(BIN)/python -m pytest tests/faults --faults=full --faults-out faults-results.json $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
