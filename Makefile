# xqg: `make reproduce` runs the study headless, `make test` runs the tests.
# Each creates the environment (.venv) it needs on first use.

PROFILE ?= mini
TORCH_INDEX ?=   # e.g. https://download.pytorch.org/whl/cu126 for a chosen CUDA build (see README)
PYTHON  := .venv/bin/python
VENV    := .venv/.installed
DATA    := data/raw/MANIFEST.json
WORK    := work/$(PROFILE)
RUNS    := runs/$(PROFILE)
STEPS   := 01_data 02_train_generator 03_generate 04_train_retriever 05_retrieve 05b_ceiling 06_qa 07_robustness 08_analysis

.DEFAULT_GOAL := help
.PHONY: help venv data reproduce figures lab test lint clean params-ok FORCE $(STEPS)
FORCE:
.PRECIOUS: $(WORK)/.fingerprint/%

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  \033[1m%-20s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)
	@echo "  $(STEPS): one pipeline step (and what it needs)"
	@echo "  PROFILE=$(PROFILE) (smoke | mini | mini-gate | paper | paper-tuned | paper-xlmr | paper-released | paper-dryrun)"

$(VENV): pyproject.toml
	test -x $(PYTHON) || python3 -m venv .venv
	$(PYTHON) -m pip install -q torch==2.13.0 $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(PYTHON) -m pip install -q -e ".[dev,notebooks]"
	$(PYTHON) -m ipykernel install --user --name xqg --display-name "Python (xqg)" > /dev/null
	touch $@

venv: $(VENV) ## create the environment (.venv, torch 2.13.0 CPU, xqg editable, Jupyter kernel "xqg")

$(DATA): xqg/data/fetch.py | $(VENV)
	$(PYTHON) -m xqg.data.fetch

data: $(VENV) ## fetch MLQA, XQuAD, XOR-TyDi, SQuAD dev and SQuAD-es dev (from the XQG_DATA_MIRROR folder if set) and verify them
	$(PYTHON) -m xqg.data.fetch

# One file target per pipeline step: a step reruns when its notebook, an earlier step, or the hash
# in $(WORK)/.fingerprint/<step> changed. That file holds the hash of the code the step runs (its
# xqg modules, found statically) and of its parameter values in PROFILE (inherited ones
# included); it is recomputed on every run but rewritten only when it differs, so a code or
# parameter edit reruns exactly the steps it can change. A killed run resumes at its step.
$(WORK)/01_data.done:            $(DATA)
$(WORK)/02_train_generator.done: $(WORK)/01_data.done
$(WORK)/03_generate.done:        $(WORK)/02_train_generator.done
$(WORK)/04_train_retriever.done: $(WORK)/01_data.done
$(WORK)/05_retrieve.done:        $(WORK)/03_generate.done $(WORK)/04_train_retriever.done
$(WORK)/05b_ceiling.done:        $(WORK)/03_generate.done
$(WORK)/06_qa.done:              $(WORK)/05_retrieve.done
$(WORK)/07_robustness.done:      $(WORK)/06_qa.done
$(WORK)/08_analysis.done:        $(WORK)/05_retrieve.done $(WORK)/05b_ceiling.done $(WORK)/06_qa.done $(WORK)/07_robustness.done

# paper-dryrun reads a tiny XOR-TyDi world in the published formats, written from the mirror's text
DRYRUN_DATA := data/dryrun/MANIFEST.json
$(DRYRUN_DATA): xqg/data/dryrun.py $(DATA) | $(VENV)
	$(PYTHON) -m xqg.data.dryrun
$(WORK)/01_data.done: $(if $(filter paper-dryrun,$(PROFILE)),$(DRYRUN_DATA))

$(WORK)/.fingerprint/%: FORCE | $(VENV)
	+@$(PYTHON) -m xqg.pipeline fingerprint $* --profile $(PROFILE) --out $@

# Every step's parameters are checked before the first step runs (a typo in 05's file must not
# cost a rerun of 01-04 first).
params-ok: | $(VENV)
	@$(PYTHON) -m xqg.pipeline check-params $(PROFILE)

$(WORK)/%.done: notebooks/%.ipynb $(WORK)/.fingerprint/% | $(VENV) params-ok
	@echo "== $* [$(PROFILE)] $$(date +%T)"; start=$$(date +%s); \
	mkdir -p $(RUNS) $(WORK); \
	$(PYTHON) -m xqg.pipeline run $* --profile $(PROFILE) && \
	touch $@ && echo "== $* done in $$(( $$(date +%s) - start )) s"

$(STEPS): %: $(WORK)/%.done

reproduce: params/$(PROFILE)/common.yml $(WORK)/08_analysis.done ## run the whole study for PROFILE (default mini)

params/%/common.yml:
	@echo "unknown profile '$*': params/$*/common.yml does not exist (profiles: $$(ls params | tr '\n' ' '))" >&2; exit 2

figures: $(VENV) ## redraw tables and figures from cached results
	$(PYTHON) -m xqg.pipeline run 08_analysis --profile $(PROFILE)

lab: $(VENV) ## JupyterLab on notebooks/, with the project's kernel "Python (xqg)"
	.venv/bin/jupyter lab notebooks/ $$([ "$$(id -u)" = 0 ] && echo --allow-root)

test: $(VENV) $(DATA) ## run the test suite (the smoke pipeline included)
	$(PYTHON) -m pytest

lint: $(VENV) ## ruff, and a check that source notebooks carry no outputs
	.venv/bin/ruff check .
	$(PYTHON) -m xqg.pipeline check-notebooks

clean: ## remove runs, work and results of PROFILE (keeps data, models and .venv)
	rm -rf $(WORK) $(RUNS) results/$(PROFILE)
