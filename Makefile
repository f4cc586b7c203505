# aigen — `make run` starts everything on this machine; `make test` runs the whole suite.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: install run simulate test test-fast lint format proto bench constraints system-deps clean

$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

install: system-deps $(STAMP)

# ffmpeg and espeak-ng power the offline local provider, a CJK font lets images and storyboards
# show Chinese text, Chromium runs the admin web UI's browser test. Without them the system still
# starts (those models say they are unavailable, the browser test skips saying why), so a failure
# here is a warning, not an error.
system-deps:
	@if ! command -v ffmpeg >/dev/null || ! command -v ffprobe >/dev/null || ! command -v espeak-ng >/dev/null \
		|| ! ls /usr/share/fonts/truetype/wqy/wqy-microhei.ttc >/dev/null 2>&1; then \
		SUDO=$$( [ "$$(id -u)" = 0 ] && echo "" || echo "sudo -n" ); \
		( $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq \
			ffmpeg espeak-ng fonts-wqy-microhei >/dev/null ) \
		|| echo "warning: could not install ffmpeg/espeak-ng/fonts; the local video and speech models will be unavailable"; \
	fi
	@if ! command -v chromium >/dev/null; then \
		SUDO=$$( [ "$$(id -u)" = 0 ] && echo "" || echo "sudo -n" ); \
		( $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null ) \
		|| echo "warning: could not install chromium; the admin web UI's browser test will be skipped"; \
	fi

proto: $(STAMP)
	$(PY) -m aigen.devtools.protogen

run: install proto
	$(VENV)/bin/aigen run

simulate: install proto
	$(VENV)/bin/aigen run --simulate

test: install
	$(PY) -m pytest -q

test-fast: install
	$(PY) -m pytest -q -m "not e2e and not slow"

lint: install
	$(VENV)/bin/ruff check libs services tests
	$(VENV)/bin/ruff format --check libs services tests
	$(VENV)/bin/mypy libs/aigen services

format: install
	$(VENV)/bin/ruff check --fix libs services tests
	$(VENV)/bin/ruff format libs services tests

bench: install
	$(PY) -m aigen.devtools.bench

# Pin what is installed now as the reproducible set (after changing dependencies).
constraints:
	$(PY) -m pip freeze --exclude-editable | grep -v '^-e ' > constraints.txt

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
