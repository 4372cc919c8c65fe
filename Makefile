# The two commands of the README:  make demo  (train, evaluate, plot)  and  make test.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
OUT ?= runs/demo

.PHONY: demo test bench venv clean

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,oracle]'
	touch $@

demo: venv
	$(PY) -m handnet train --model cnn --out $(OUT)

test: venv
	$(PY) -m pytest -q

bench: venv
	mkdir -p runs
	cd benchmarks && $(abspath $(PY)) bench_train.py --models mlp --json ../runs/bench-mlp.json
	cd benchmarks && $(abspath $(PY)) bench_train.py --models cnn lenet --steps 80 --json ../runs/bench-cnn.json
	cd benchmarks && $(abspath $(PY)) bench_keras_import.py --json ../runs/bench-keras.json

clean:
	rm -rf $(VENV) runs .pytest_cache .hypothesis
