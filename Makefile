# Two commands do all the set-up: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test install tools services clean

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

# Redis and PostgreSQL on this machine: started if installed and not answering. (The Kafka
# broker is started by the tests.) Tests that still cannot reach a server fail, loudly.
services:
	@redis-cli -h 127.0.0.1 ping >/dev/null 2>&1 || ! command -v redis-server >/dev/null || \
	  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
	@pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null || ! command -v pg_ctlcluster >/dev/null || \
	  pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql | head -1) main start || true

test: install tools services
	$(BIN)/python -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
