# kihonet: `make run` serves the site, `make test` runs every check, `make bench` the benchmarks.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PORT ?= 8000
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: run test bench lint system-packages clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Debian packages the checks use: Chromium for the browser tests, Japanese fonts for
# screenshots and PDFs, Pango for WeasyPrint, poppler for reading PDFs, openssl for the CA checks,
# SoftHSM2 for the CA keys in a PKCS#11 token.
system-packages:
	@sh .ci/system-packages

# The development CA passphrase, made once in the git-ignored data folder.
DATA_DIR := $(or $(KIHONET_DATA_DIR),var)
$(DATA_DIR)/ca-passphrase:
	mkdir -p $(DATA_DIR)
	umask 077 && $(PY) -c "import secrets; print(secrets.token_urlsafe(32))" > $@

run: $(STAMP) $(DATA_DIR)/ca-passphrase
	$(PY) manage.py migrate --noinput
	$(PY) manage.py init_ca --if-missing
	$(PY) manage.py seed_demo
	@echo "kihonet: http://127.0.0.1:$(PORT)/"
	@echo "back office: http://127.0.0.1:$(PORT)/admin/ (an account: $(PY) manage.py create_staff NAME --role supervisor)"
	$(PY) manage.py runserver 127.0.0.1:$(PORT)

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) manage.py makemigrations --check --dry-run

test: $(STAMP) system-packages lint
	$(PY) -m pytest

bench: $(STAMP)
	$(PY) -m bench

clean:
	rm -rf $(VENV) var artifacts
