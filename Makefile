# Two commands do everything: `make train` and `make test`. Each sets up .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install train train-pair evaluate test test-fast lint serve benchmark benchmark-web robustness teach-benchmark screenshot clean

$(STAMP): requirements.txt requirements-bench.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

install: $(STAMP)  ## create .venv with the pinned requirements

train: $(STAMP)  ## train the CNN on the bundled MNIST data
	$(BIN)/python train_model.py

train-pair: $(STAMP)  ## train the touching-pair model into your models folder (about an hour on 2 cores; --out replaces the shipped one)
	$(BIN)/python -m mnist_cnn.pair --seed 0

evaluate: $(STAMP)  ## evaluate your latest model (else the shipped one) on the test set
	$(BIN)/python evaluate_model.py

test: $(STAMP)  ## the whole test suite, as CI runs it, on both cores (about 6 min on 2 cores)
	$(BIN)/python -m pytest -n 2

test-fast: $(STAMP)  ## every module's tests on small inputs, for everyday work (about 1 min)
	$(BIN)/python -m pytest -m "not slow" -n 2

lint: $(STAMP)  ## ruff, lint and format
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

serve: $(STAMP)  ## the draw-a-digit web app on http://127.0.0.1:8000 (flags: make serve ARGS="--port 8080")
	$(BIN)/python -m mnist_cnn.web $(ARGS)

benchmark: $(STAMP)  ## training speed against the reference pipeline
	$(BIN)/python -m benchmarks.train_speed

benchmark-web: $(STAMP)  ## server-side time per prediction of the web app (median, p95)
	$(BIN)/python -m benchmarks.web_latency

robustness: $(STAMP)  ## MNIST-C test error of the models and the product path (needs libmagickwand)
	$(BIN)/python -m benchmarks.robustness

teach-benchmark: $(STAMP)  ## teach made-up writers' hands to the shipped model: read right before and after
	$(BIN)/python -m benchmarks.teach

screenshot: $(STAMP)  ## re-take plots/web_app.png in headless Chromium with the shipped model
	UPDATE_SCREENSHOT=1 $(BIN)/python -m pytest tests/test_browser.py -k thirty_five

clean:  ## remove the virtual environment and caches
	rm -rf $(VENV) .pytest_cache .ruff_cache
