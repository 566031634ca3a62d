# The two commands a new user needs:  make demo  (set up, run the demo)  and  make test.
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: demo test setup dev system bench clean

demo: $(VENV)/.setup-run
	$(VENV)/bin/verity demo

test: $(VENV)/.setup-dev system
	$(PY) -m pytest

setup: $(VENV)/.setup-run
dev: $(VENV)/.setup-dev

$(VENV)/.setup-run: pyproject.toml deploy/setup.sh
	VERITY_VENV=$(VENV) deploy/setup.sh
	touch $@

$(VENV)/.setup-dev: pyproject.toml deploy/setup.sh
	VERITY_VENV=$(VENV) deploy/setup.sh --dev
	touch $@ $(VENV)/.setup-run

system:
	deploy/install-system-packages.sh

bench: $(VENV)/.setup-run
	$(VENV)/bin/verity bench

clean:
	rm -rf $(VENV) .pytest_cache
