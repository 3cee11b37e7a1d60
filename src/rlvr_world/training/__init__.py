"""Training stack: recipe parsing, task registry, dataset builders, tiny model, callbacks.

Entry points: `src/sft.py`, `src/grpo.py`, `src/merge_lora.py`, `src/build_tiny_model.py`.
"""
