import os

# No hub here: fail fast instead of a 45 s lookup; headless rendering for gym-pusht.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")


import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def fresh_accelerate_state():
    """Accelerate keeps one process-wide state; a run with another mixed precision (the tiny tokenizer
    recipes use bf16) must not inherit the previous test's."""
    yield
    from accelerate.state import AcceleratorState, GradientState

    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()


@pytest.fixture
def one_thread():
    """One torch thread: on 2 busy cores, 2 OpenMP threads made the training runs 3-30x slower."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
