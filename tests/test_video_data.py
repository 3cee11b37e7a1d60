"""Video data: PushT generation, RT-1 npz conversion, action binning, frame datasets."""

import json
import math

import datasets
import numpy as np
import pytest
import torch

from rlvr_world.data import pusht, rt1
from rlvr_world.data.frames import (
    EpisodeReader,
    FrameSequenceDataset,
    SingleFrameDataset,
    episode_actions,
    frames_to_tensor,
    sample_frames,
    split_counts,
    tensor_to_frames,
)
from rlvr_world.video.actions import ACTION_BINNER_FILE, ActionBinner

# ---------------------------------------------------------------------------------------- PushT


@pytest.fixture(scope="module")
def pusht_dir(tmp_path_factory):
    output_dir = tmp_path_factory.mktemp("pusht")
    pusht.main(["--output_dir", str(output_dir), "--num_episodes", "5", "--episode_length", "6", "--image_size", "64", "--seed", "3"])
    return output_dir


def test_pusht_dataset_splits_and_columns(pusht_dir):
    dataset = datasets.load_from_disk(str(pusht_dir))
    assert {name: len(split) for name, split in dataset.items()} == {"train": 3, "validation": 1, "test": 1}
    # Split by episode: every episode index once, test last.
    assert sorted(i for split in dataset.values() for i in split["episode_index"]) == list(range(5))
    assert list(dataset["test"]["episode_index"]) == [4]
    train = dataset["train"]
    assert train.features["frames"].dtype == "uint8"
    reader = EpisodeReader(train)
    for episode in range(len(train)):
        frames = reader.read(episode)
        assert frames.shape == (6, 64, 64, 3) and frames.dtype == np.uint8
        assert reader.read_column("actions", episode).shape == (6, 2)
        assert reader.read_column("agent_pos", episode).shape == (6, 2)
        assert reader.read_column("block_pose", episode).shape == (6, 3)
        coverage = reader.read_column("coverage", episode)
        success = reader.read_column("success", episode)
        assert coverage.shape == (6,) and np.all((coverage >= 0) & (coverage <= 1))
        assert success.dtype == bool and np.array_equal(success, coverage > 0.95)
        # Frames show motion: the agent moves between the first and last frame.
        assert np.abs(frames[0].astype(int) - frames[-1].astype(int)).sum() > 0
    actions = np.concatenate(episode_actions(train))
    assert actions.dtype == np.float32 and actions.min() >= 0 and actions.max() <= 512
    angles = np.concatenate([reader.read_column("block_pose", e)[:, 2] for e in range(len(train))])
    assert np.all((angles >= 0) & (angles < 2 * math.pi))


def test_pusht_dataset_card(pusht_dir):
    card = (pusht_dir / "README.md").read_text()
    assert card.startswith("---\n") and "license: mit" in card
    assert "| train | 3 | 18 |" in card and "| test | 1 | 6 |" in card
    assert "--num_episodes 5" in card and "`coverage`" in card and "`success`" in card


def test_pusht_frames_match_the_simulator_state(pusht_dir):
    from rlvr_world.metrics.pusht import parse_frames, sim_to_pixel

    dataset = datasets.load_from_disk(str(pusht_dir))
    reader = EpisodeReader(dataset["train"])
    frames = frames_to_tensor(np.concatenate([reader.read(e) for e in range(len(reader))]))
    agent = torch.from_numpy(np.concatenate([reader.read_column("agent_pos", e) for e in range(len(reader))]))
    parsed = parse_frames(frames)
    assert torch.nanquantile((parsed.agent_xy - sim_to_pixel(agent, 64)).norm(dim=-1), 0.5) < 0.5


def test_pusht_generation_is_seeded_and_non_square():
    a = pusht.generate_episode(seed=11, episode_length=4, image_size=(48, 64))
    b = pusht.generate_episode(seed=11, episode_length=4, image_size=(48, 64))
    assert a.frames.shape == (4, 48, 64, 3)
    np.testing.assert_array_equal(a.frames, b.frames)
    np.testing.assert_array_equal(a.actions, b.actions)
    assert pusht.episode_seed(0, 1) != pusht.episode_seed(1, 0)


def test_pusht_policy_reaches_and_pushes_the_block():
    episodes = [pusht.generate_episode(pusht.episode_seed(0, i), 32, (32, 32)) for i in range(6)]
    moved = [np.linalg.norm(np.diff(e.block_pose[:, :2], axis=0), axis=1).sum() for e in episodes]
    # Most episodes push the T somewhere (not only agent jitter), none pushes it out of the table.
    assert sum(m > 10 for m in moved) >= 4
    for e in episodes:
        assert np.all((e.block_pose[:, :2] > 0) & (e.block_pose[:, :2] < 512))
        assert np.all((e.actions >= 30) & (e.actions <= 482))
        speed = np.linalg.norm(np.diff(e.agent_pos, axis=0), axis=1)
        assert speed.mean() > 3  # the agent travels, at a few pixels per frame at 64x64


def test_split_counts():
    assert split_counts(5, 0.1, 0.1) == (3, 1, 1)
    assert split_counts(100, 0.1, 0.2) == (70, 10, 20)
    assert split_counts(2, 0.1, 0.1) == (2, 0, 0)
    assert split_counts(10, 0.0, 0.1) == (9, 0, 1)
    with pytest.raises(ValueError):
        split_counts(3, 0.5, 0.5)


# ---------------------------------------------------------------------------------------- RT-1


def _write_npz(directory, name, num_frames, marker, size=(8, 10), action_dim=13):
    image = np.full((num_frames, *size, 3), marker % 256, dtype=np.uint8)
    image[:, 0, 0, 0] = np.arange(num_frames)  # frame t is recognisable
    action = np.full((num_frames, action_dim), float(marker), dtype=np.float64)
    action[:, 1] = np.arange(num_frames)
    np.savez(directory / name, image=image, action=action)


@pytest.fixture(scope="module")
def rt1_dirs(tmp_path_factory):
    input_dir = tmp_path_factory.mktemp("rt1_npz")
    # Written in reverse so that the sorted order differs from the creation order.
    for index in reversed(range(102)):
        _write_npz(input_dir, f"episode_{index:04d}.npz", num_frames=3 + index % 4, marker=index)
    output_dir = tmp_path_factory.mktemp("rt1_out")
    rt1.main(["--input_dir", str(input_dir), "--output_dir", str(output_dir)])
    return input_dir, output_dir


def test_rt1_holds_out_every_100th_episode(rt1_dirs):
    _, output_dir = rt1_dirs
    dataset = datasets.load_from_disk(str(output_dir))
    assert sorted(dataset["test"]["episode_index"]) == [0, 100]
    assert list(dataset["validation"]["episode_index"]) == [50]
    assert len(dataset["train"]) == 99
    assert sorted(dataset["test"]["source_file"]) == ["episode_0000.npz", "episode_0100.npz"]
    assert (output_dir / "README.md").is_file()


def test_rt1_episode_contents_round_trip(rt1_dirs):
    input_dir, output_dir = rt1_dirs
    test = datasets.load_from_disk(str(output_dir))["test"]
    reader = EpisodeReader(test)
    for episode, name in enumerate(test["source_file"]):
        with np.load(input_dir / name) as source:
            np.testing.assert_array_equal(reader.read(episode), source["image"])
            np.testing.assert_allclose(reader.read_column("actions", episode), source["action"].astype(np.float32))
    assert test.features["actions"].shape == (None, 13)


def test_rt1_resize_and_no_validation(tmp_path):
    input_dir = tmp_path / "npz"
    input_dir.mkdir()
    for index in range(3):
        _write_npz(input_dir, f"ep{index}.npz", num_frames=2, marker=index, size=(16, 20))
    dataset = rt1.main(
        ["--input_dir", str(input_dir), "--output_dir", str(tmp_path / "out"), "--image_size", "8", "10", "--validation_offset", "-1"]
    )
    assert len(dataset["validation"]) == 0 and len(dataset["test"]) == 1 and len(dataset["train"]) == 2
    assert EpisodeReader(dataset["train"]).read(0).shape == (2, 8, 10, 3)
    # A saved empty split loads back.
    assert len(datasets.load_from_disk(str(tmp_path / "out"))["validation"]) == 0


def test_rt1_rejects_mismatched_episodes(tmp_path):
    _write_npz(tmp_path, "a.npz", 2, 0, size=(8, 8))
    _write_npz(tmp_path, "b.npz", 2, 1, size=(8, 12))
    with pytest.raises(ValueError, match="--image_size"):
        rt1.main(["--input_dir", str(tmp_path), "--output_dir", str(tmp_path / "out")])
    np.savez(tmp_path / "c.npz", image=np.zeros((2, 8, 8, 3), np.uint8), action=np.zeros((3, 13)))
    with pytest.raises(ValueError, match="action"):
        rt1.load_episode(tmp_path / "c.npz")
    with pytest.raises(FileNotFoundError):
        rt1.list_episode_files(tmp_path / "missing")


def test_rt1_split_rule():
    assert [rt1.assign_split(i) for i in (0, 1, 50, 99, 100, 150, 200)] == [
        "test", "train", "validation", "train", "test", "validation", "test"
    ]
    assert rt1.assign_split(50, validation_offset=-1) == "train"


# ---------------------------------------------------------------------------------------- action bins


def test_action_binner_round_trip_within_half_a_bin():
    rng = np.random.default_rng(0)
    actions = rng.uniform([-1.0, 0.0, 100.0], [1.0, 512.0, 101.0], size=(1000, 3))
    binner = ActionBinner().fit(actions)
    bins = binner.bin(actions)
    assert bins.dtype == np.int64 and bins.min() >= 0 and bins.max() <= 255
    half_bin = (binner.high - binner.low) / 256 / 2
    assert np.all(np.abs(binner.unbin(bins) - actions) <= half_bin + 1e-5)
    # Torch gives the same bins and centres.
    torch_bins = binner.bin(torch.from_numpy(actions))
    assert torch.equal(torch_bins, torch.from_numpy(bins))
    np.testing.assert_allclose(binner.unbin(torch_bins).numpy(), binner.unbin(bins), rtol=1e-6)


def test_action_binner_edges():
    binner = ActionBinner(low=[0.0, 5.0], high=[256.0, 5.0])
    values = np.array([[-10.0, 5.0], [0.0, 4.0], [0.999, 6.0], [1.0, 5.0], [255.99, 5.0], [256.0, 5.0], [1e9, 5.0]])
    np.testing.assert_array_equal(binner.bin(values)[:, 0], [0, 0, 0, 1, 255, 255, 255])
    np.testing.assert_array_equal(binner.bin(values)[:, 1], 0)  # constant dimension: always bin 0
    np.testing.assert_allclose(binner.unbin(np.array([[0, 0], [255, 0]])), [[0.5, 5.0], [255.5, 5.0]])
    with pytest.raises(ValueError):
        binner.bin(np.array([[float("nan"), 5.0]]))
    with pytest.raises(ValueError):
        binner.unbin(np.array([[256, 0]]))
    with pytest.raises(ValueError):
        binner.bin(np.zeros((2, 3)))
    with pytest.raises(RuntimeError):
        ActionBinner().bin(np.zeros((1, 2)))


def test_action_binner_fit_on_episodes_and_save_load(tmp_path):
    episodes = [np.array([[0.0, 1.0], [2.0, 3.0]]), torch.tensor([[-1.0, 10.0]])]
    binner = ActionBinner(num_bins=256).fit(episodes)
    np.testing.assert_array_equal(binner.low, [-1.0, 1.0])
    np.testing.assert_array_equal(binner.high, [2.0, 10.0])
    path = binner.save_pretrained(tmp_path / "ckpt")
    assert path.name == ACTION_BINNER_FILE and json.loads(path.read_text())["num_bins"] == 256
    loaded = ActionBinner.from_pretrained(tmp_path / "ckpt")
    assert loaded.to_dict() == binner.to_dict()
    assert ActionBinner.from_dict(binner.to_dict()).action_dim == 2
    with pytest.raises(FileNotFoundError):
        ActionBinner.from_pretrained(tmp_path / "nowhere")


# ---------------------------------------------------------------------------------------- torch datasets


def test_frame_sequence_dataset_train_and_eval(rt1_dirs):
    _, output_dir = rt1_dirs
    train = datasets.load_from_disk(str(output_dir))["train"]
    lengths = np.array(train["num_frames"])
    segments = FrameSequenceDataset(train, context_frames=2, future_frames=2, train=True)
    assert len(segments) == int((lengths >= 4).sum())
    torch.manual_seed(0)
    for index in range(len(segments)):
        item = segments[index]
        assert item["pixel_values"].shape == (4, 3, 8, 10) and item["pixel_values"].dtype == torch.float32
        assert item["actions"].shape == (4, 13)
        # Frames and actions come from the same steps: frame t has red pixel t/255, action[1] = t.
        steps = item["pixel_values"][:, 0, 0, 0] * 255
        torch.testing.assert_close(steps, item["actions"][:, 1])
        assert int(item["start"]) == round(steps[0].item())

    evaluation = FrameSequenceDataset(train, context_frames=1, future_frames=1, train=False, stride=1)
    assert len(evaluation) == int(np.sum(lengths - 1))
    first = [(int(evaluation[i]["episode_index"]), int(evaluation[i]["start"])) for i in range(5)]
    assert first == [(int(evaluation[i]["episode_index"]), int(evaluation[i]["start"])) for i in range(5)]
    uint8 = FrameSequenceDataset(train, 1, 1, train=False, as_uint8=True)[0]["pixel_values"]
    assert uint8.dtype == torch.uint8 and uint8.shape == (2, 3, 8, 10)


def test_frame_datasets_follow_select_and_shuffle(rt1_dirs):
    _, output_dir = rt1_dirs
    train = datasets.load_from_disk(str(output_dir))["train"].shuffle(seed=0).select(range(5))
    reader = EpisodeReader(train)
    for episode in range(5):
        marker = train[episode]["episode_index"]
        assert reader.read(episode)[0, 1, 1, 0] == marker % 256
        assert reader.num_frames[episode] == 3 + marker % 4
    frames = SingleFrameDataset(train)
    assert len(frames) == int(reader.num_frames.sum())
    assert frames[len(frames) - 1]["pixel_values"].shape == (3, 8, 10)
    with pytest.raises(IndexError):
        frames[len(frames)]
    loader = torch.utils.data.DataLoader(frames, batch_size=4)
    assert next(iter(loader))["pixel_values"].shape == (4, 3, 8, 10)
    sampled = sample_frames(train, num_frames=7, seed=0)
    assert sampled.shape == (7, 8, 10, 3) and sampled.dtype == np.uint8


def test_frame_tensor_conversions():
    frames = np.random.default_rng(0).integers(0, 256, size=(2, 5, 6, 3), dtype=np.uint8)
    tensor = frames_to_tensor(frames)
    assert tensor.shape == (2, 3, 5, 6) and 0 <= tensor.min() and tensor.max() <= 1
    np.testing.assert_array_equal(tensor_to_frames(tensor), frames)
