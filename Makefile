# The two set-up commands of the README:
#   make demo   installs the package and runs the main job on the embedded default (Reuters-21578)
#   make test   installs the test requirements and runs the whole test suite
# Both use the `python` on your PATH (activate a virtual environment first if you want one).

PYTHON ?= python
# On machines that carry an offline copy of the datasets beside the checkout (as CI does),
# read them from there instead of downloading.
ifeq ($(LCR_DATA_MIRROR),)
ifneq ($(wildcard ../shared/datasets),)
export LCR_DATA_MIRROR := $(abspath ../shared/datasets)
endif
endif

.PHONY: install install-test demo test

# torch is pinned and installed first: an unpinned torch pulls a multi-GB CUDA build on Linux.
install:
	$(PYTHON) -m pip install --disable-pip-version-check -q torch==2.13.0
	$(PYTHON) -m pip install --disable-pip-version-check -q -e .

install-test:
	$(PYTHON) -m pip install --disable-pip-version-check -q torch==2.13.0
	$(PYTHON) -m pip install --disable-pip-version-check -q -e ".[test,spark]"

demo: install
	$(PYTHON) -m lcr.cli profile demo
	$(PYTHON) -m lcr.cli repro
	$(PYTHON) -m lcr.cli stats reuters21578
	@echo "tables: tables/README.md; plots: tables/*.png, data/reuters21578/labels/label_distribution.png"
	@echo "MLflow: mlflow ui --backend-store-uri sqlite:///$(CURDIR)/mlflow.db"

test: install-test
	$(PYTHON) -m pytest -q
