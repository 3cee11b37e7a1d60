"""rlvr-world."""
