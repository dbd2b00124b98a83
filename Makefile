# kihonet: `make run` serves the site, `make test` runs every check, `make bench` the benchmarks.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PORT ?= 8000
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: run test bench lint system-packages client-tool clean

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

# The public URL (printed, in the demo notice and in the certificates' CRL and OCSP addresses)
# follows PORT unless KIHONET_BASE_URL is set, e.g. to an https proxy in front of the server.
run: export KIHONET_BASE_URL ?= http://127.0.0.1:$(PORT)

# 「証明書取得クライアントツール」 as one executable for this system (PyInstaller; here the Linux
# one), into the folder the download page offers (KIHONET_CLIENT_TOOL_DIR). The Windows .exe and
# the macOS binary are built from the same spec on those systems (README, Client tool).
# KIHONET_CLIENT_TOOL_SERVER names the site the tool serves when opened without a command.
CLIENT_TOOL_DIR := $(or $(KIHONET_CLIENT_TOOL_DIR),$(DATA_DIR)/client-tool)
CLIENT_TOOL := $(CLIENT_TOOL_DIR)/kihonet_agent-linux
TOOL_SOURCES := issuance/client_tool/kihonet_agent.py $(wildcard issuance/client_tool/packaging/*)

client-tool: $(CLIENT_TOOL)

$(CLIENT_TOOL): $(STAMP) $(TOOL_SOURCES)
	$(PY) -m PyInstaller --noconfirm --log-level WARN --distpath $(CLIENT_TOOL_DIR) \
		--workpath build/pyinstaller issuance/client_tool/packaging/kihonet_agent.spec
	touch $@

run: $(STAMP) $(DATA_DIR)/ca-passphrase
	$(PY) manage.py migrate --noinput
	$(PY) manage.py init_ca --if-missing
	$(PY) manage.py seed_demo
	@echo "kihonet: $(KIHONET_BASE_URL)/ (served on http://127.0.0.1:$(PORT)/)"
	@echo "client tool: KIHONET_AGENT_HOME=var/agent $(PY) issuance/client_tool/kihonet_agent.py serve --server $(KIHONET_BASE_URL)"
	@echo "back office: $(KIHONET_BASE_URL)/admin/ (an account: $(PY) manage.py create_staff NAME --role superuser)"
	$(PY) manage.py runserver 127.0.0.1:$(PORT)

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) manage.py makemigrations --check --dry-run
	$(PY) -m mypy kihonet issuance notifications

test: $(STAMP) system-packages lint client-tool
	KIHONET_CLIENT_TOOL_DIR=$(abspath $(CLIENT_TOOL_DIR)) $(PY) -m pytest

bench: $(STAMP)
	$(PY) -m bench

clean:
	rm -rf $(VENV) var artifacts
