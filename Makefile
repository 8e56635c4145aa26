# make run: a working demo on this machine (SQLite file + embedded Redis).
# make test: the whole suite (PostgreSQL and Redis when reachable; required when CI=true).
VENV ?= .venv
PY := $(VENV)/bin/python
FLASK := $(PY) -m flask --app wsgi

.PHONY: install run test translations chromium deploy-tools bench clean

install: $(VENV)/.installed

$(VENV)/.installed: setup.cfg pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

translations: install
	$(VENV)/bin/pybabel compile -d translations 2>&1 | grep -v "^compiling" || true

run: install translations
	$(FLASK) init-db
	$(FLASK) demo seed
	$(FLASK) serve

# Browser tests drive Debian's Chromium (never a downloaded browser); Noto gives it Persian glyphs;
# poppler-utils turns the letters and certificates into pictures and text the tests check.
chromium:
	@dpkg -s chromium fonts-noto-core poppler-utils >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium, fonts-noto-core and poppler-utils for the browser and PDF tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-core poppler-utils >/dev/null; }

# `nginx -t` checks deploy/nginx/ (tests/test_ops_processes.py); Debian's nginx is only read, never started.
deploy-tools:
	@dpkg -s nginx openssl >/dev/null 2>&1 || { \
	  echo "installing Debian's nginx and openssl to check the example configuration in deploy/"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx openssl >/dev/null; }

test: install translations chromium deploy-tools
	$(PY) -m pytest -n 2 --dist loadfile

bench: install
	$(PY) bench/transitions.py

clean:
	rm -rf $(VENV) instance tests/artifacts
