import os

# No hub here: fail fast instead of a 45 s lookup; headless rendering for gym-pusht.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
