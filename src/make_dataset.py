"""Build a dataset on disk: ``python src/make_dataset.py {textgame,webpage,pusht,rt1} [options]``."""

import importlib
import sys

# Each builder is ``module:function`` taking the remaining argv; imported lazily so one
# builder's heavy dependencies (gym-pusht, ...) never slow another down.
BUILDERS = {
    "textgame": "rlvr_world.data.textgame:main",
    "webpage": "rlvr_world.data.webpage:main",
    "pusht": "rlvr_world.data.pusht:main",
    "rt1": "rlvr_world.data.rt1:main",
}


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in BUILDERS:
        print(f"usage: make_dataset.py {{{','.join(BUILDERS)}}} [options]  (--help after the name for options)")
        return 2
    module, function = BUILDERS[argv[0]].split(":")
    getattr(importlib.import_module(module), function)(argv[1:])
    return 0


if __name__ == "__main__":
    sys.exit(main())
