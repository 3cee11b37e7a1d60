"""Web-page world model: the answer parser, the line F1, the simulated shop and the Hub-schema reader."""

import json

import datasets
import pytest
from helpers import REPO

from rlvr_world.data.webpage import (
    WebDataFormatError,
    build_dataset,
    from_hub_columns,
    to_hub_rows,
)
from rlvr_world.data.webpage_generator import (
    Shop,
    make_catalog,
    make_splits,
    play_episode,
)
from rlvr_world.data.webpage_generator.generate import episode_rng, input_key
from rlvr_world.metrics.webpage import score_completion
from rlvr_world.rewards import get_reward_funcs
from rlvr_world.text.webpage import (
    Item,
    WebPromptOptions,
    format_changes,
    no_changes,
    parse_changes,
    render_tree,
    tree_changes,
)

FIXTURE = REPO / "tests" / "fixtures" / "webarena_world_model_cot"
GOLD = ("New items:\n[55] StaticText 'Added 2 to cart'\n\nDeleted items:\nNone\n\n"
        "Updated items:\n[3] link 'Cart (2)'\n[42] StaticText 'In stock: 2'")


# ----------------------------------------------------------------------------- parser


@pytest.mark.parametrize("text", [
    "", "garbage", None, 42, ["New items:"], "new items: [1] x", "\n\n\n", "[3] link 'Cart (2)'",
    "New items", "Items:\nNone", "\x00\ud800", "New items:" * 10_000,
])
def test_parser_never_raises(text):
    parsed = parse_changes(text)
    assert parsed is None or set(parsed) == {"New items", "Deleted items", "Updated items"}


def test_parser_reads_sections_reasoning_and_odd_layouts():
    assert parse_changes("garbage") is None and parse_changes("") is None and parse_changes(None) is None
    parsed = parse_changes(GOLD)
    assert parsed == {"New items": ["[55] StaticText 'Added 2 to cart'"], "Deleted items": ["None"],
                      "Updated items": ["[3] link 'Cart (2)'", "[42] StaticText 'In stock: 2'"]}
    # reasoning before </think> is dropped, even when it mentions a header; indentation is stripped
    thought = "<think>\nNew items:\n[9] fake 'x'\n</think>\n  New items:\n\t[1] a 'b'\nUpdated items: [2] c 'd'"
    assert parse_changes(thought) == {"New items": ["[1] a 'b'"], "Deleted items": [], "Updated items": ["[2] c 'd'"]}
    # a repeated header continues its section; lines before the first header are ignored
    assert parse_changes("intro\nNew items:\n[1] a ''\nNew items:\n[2] b ''")["New items"] == ["[1] a ''", "[2] b ''"]
    # a truncated answer keeps what it has
    assert parse_changes("New items:\n[1] a 'b'\n\nDeleted it")["New items"] == ["[1] a 'b'", "Deleted it"]


# ----------------------------------------------------------------------------- F1


def test_f1_on_hand_computed_cases():
    assert score_completion(GOLD, GOLD).f1 == 1.0 and score_completion(GOLD, GOLD).exact
    # 4 gold lines (None counts as a line); predict 2 of them plus one wrong line: P 2/3, R 2/4, F1 4/7
    pred = "New items:\n[55] StaticText 'Added 2 to cart'\n\nUpdated items:\n[3] link 'Cart (2)'\n[42] StaticText 'x'"
    s = score_completion(pred, GOLD)
    assert (s.matches, s.predicted, s.gold) == (2, 3, 4)
    assert s.precision == pytest.approx(2 / 3) and s.recall == pytest.approx(0.5)
    assert s.f1 == pytest.approx(2 * (2 / 3) * 0.5 / (2 / 3 + 0.5))
    # a right line in the wrong section does not match
    wrong_section = "Deleted items:\n[3] link 'Cart (2)'"
    assert score_completion(wrong_section, GOLD).matches == 0 and score_completion(wrong_section, GOLD).f1 == 0.0
    # the no-change answer: None x3 against gold with one None -> P 1/3, R 1/4
    s = score_completion(format_changes(no_changes()), GOLD)
    assert (s.matches, s.predicted, s.gold) == (1, 3, 4) and s.f1 == pytest.approx(2 / 7)
    # nothing changes: None everywhere is exactly right
    nothing = format_changes(no_changes())
    assert score_completion(nothing, nothing).f1 == 1.0
    # empty sections: headers only -> no predicted lines -> P = R = 0 -> F1 0, not a format error
    empty = score_completion("New items:\nDeleted items:\nUpdated items:", GOLD)
    assert (empty.predicted, empty.f1, empty.format_error) == (0, 0.0, False)
    # repeating a right line costs precision: P 1/2
    twice = score_completion("Updated items:\n[3] link 'Cart (2)'\n[3] link 'Cart (2)'", GOLD)
    assert (twice.matches, twice.predicted) == (1, 2)
    # a format error scores 0 and is flagged
    bad = score_completion("I think the cart changes.", GOLD)
    assert bad.format_error and bad.f1 == 0.0 and bad.gold == 4


def test_reward_registry_scores_from_the_ground_truth_column():
    f1, precision, recall = get_reward_funcs(["webpage_f1", "webpage_precision", "webpage_recall"])
    assert [f.__name__ for f in (f1, precision, recall)] == ["webpage_f1", "webpage_precision", "webpage_recall"]
    completions = [GOLD, "nonsense", [{"role": "assistant", "content": GOLD}], "Updated items:\n[3] link 'Cart (2)'"]
    gold = [GOLD] * 4
    assert f1(completions=completions, ground_truth=gold) == [1.0, 0.0, 1.0, pytest.approx(0.4)]
    assert precision(completions=completions, ground_truth=gold) == [1.0, 0.0, 1.0, 1.0]
    assert recall(completions=completions, ground_truth=gold) == [1.0, 0.0, 1.0, 0.25]


def test_decoding_without_special_tokens_keeps_the_last_line_clean():
    """The reference decodes with special tokens, so its last line carries the EOS string and never matches."""
    from rlvr_world.training.tiny_model import EOS_TOKEN, train_tokenizer

    tok = train_tokenizer([GOLD] * 4, vocab_size=400)
    ids = tok(GOLD, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    clean, leaky = tok.decode(ids, skip_special_tokens=True), tok.decode(ids, skip_special_tokens=False)
    assert leaky.endswith(EOS_TOKEN)
    assert score_completion(clean, GOLD).f1 == 1.0
    assert score_completion(leaky, GOLD).matches == 3  # what the reference's decoding would cost


# ----------------------------------------------------------------------------- trees and the shop


def test_tree_diff_matches_items_by_id():
    before = [Item(1, "RootWebArea", "Home", (("focused", "True"),)), Item(2, "link", "Cart (0)", depth=1),
              Item(10, "heading", "Featured", depth=1)]
    after = [Item(1, "RootWebArea", "Home", (("focused", "True"),)), Item(2, "link", "Cart (1)", depth=1),
             Item(11, "StaticText", "It's here", depth=1)]
    assert render_tree(before).splitlines()[1] == "\t[2] link 'Cart (0)'"
    assert tree_changes(before, after) == {"New items": ["[11] StaticText \"It's here\""],
                                           "Deleted items": ["[10] heading 'Featured'"],
                                           "Updated items": ["[2] link 'Cart (1)'"]}
    assert tree_changes(before, before) == no_changes()
    with pytest.raises(ValueError, match="unique"):
        tree_changes(before + before[:1], after)


def test_shop_actions_change_the_state_and_the_tree():
    catalog = make_catalog(0)
    shop = Shop(catalog)
    noun = catalog[0].name.split()[1].lower()
    shop.act(f"type [5] [{noun}]")
    assert shop.state.page == "search" and shop.url.endswith(f"q={noun}")
    links = [item for item in shop.tree() if item.role == "link" and item.id >= 22]
    assert {item.name for item in links} == {p.name for p in catalog if noun in p.name.lower()}
    shop.act("click [22]")  # product 0's result link
    assert shop.state.page == "product" and shop.state.product == 0
    before = shop.tree()
    shop.act("select [43] [2]")
    assert tree_changes(before, shop.tree()) == {"New items": [], "Deleted items": [],
                                                 "Updated items": ["[43] combobox 'Quantity: 2' hasPopup: listbox"]}
    before, stock = shop.tree(), shop.state.stock[0]
    shop.act("click [44]")
    changes = tree_changes(before, shop.tree())
    if stock >= 2:
        assert changes["New items"] == ["[45] StaticText 'Added 2 to cart'"]
        assert "[3] link 'Cart (2)'" in changes["Updated items"] and shop.state.cart == {0: 2}
    else:
        assert changes["New items"][0].startswith("[45] StaticText") and shop.state.cart == {}
    before = shop.tree()
    for inert in ("click [40]", "click [999]", "type [44] [x]", "select [43] [9]", "hover [3]", "gibberish"):
        shop.act(inert)
    assert tree_changes(before, shop.tree()) == no_changes()
    shop.act("go_back")
    assert shop.state.page == "search" and shop.state.search_text == noun


def test_generator_is_deterministic_and_its_changes_are_the_tree_diff():
    a, b = make_splits(seed=3, episodes=40), make_splits(seed=3, episodes=40)
    assert a == b and a != make_splits(seed=4, episodes=40)
    assert all(len(a[s]) > 0 for s in ("train", "heldout_transitions", "heldout_pages"))
    # heldout_pages holds exactly the transitions that touch the account page, and train never does
    assert all("account" in (r["page_type"], r["next_page_type"]) for r in a["heldout_pages"])
    assert not any("account" in (r["page_type"], r["next_page_type"]) for r in a["train"] + a["heldout_transitions"])
    assert not {input_key(r) for r in a["heldout_transitions"]} & {input_key(r) for r in a["train"]}
    # replaying an episode's actions in a fresh shop gives the same trees, and the changes are their diff
    catalog = make_catalog(3)
    episode = play_episode(catalog, episode_rng(3, 7), 7)
    from rlvr_world.data.webpage_generator.generate import start_state

    shop = Shop(catalog, start_state(episode_rng(3, 7), catalog))
    for record in episode:
        before = shop.tree()
        assert render_tree(before) == record["observation"] and shop.url == record["url"]
        shop.act(record["action"])
        assert record["changes"] == tree_changes(before, shop.tree())
        assert shop.state.page == record["next_page_type"]


def test_dataset_rows_and_prompts():
    records = make_splits(seed=0, episodes=20)["train"][:5]
    short = build_dataset(records, WebPromptOptions(include_instruction=False))
    full = build_dataset(records)
    row = short[0]
    text = row["prompt"][0]["content"]
    assert text.startswith(f"URL: {records[0]['url']}\nOBJECTIVE: ") and text.endswith(f"CURRENT ACTION: {records[0]['action']}\n")
    assert records[0]["observation"] in text and len(full[0]["prompt"][0]["content"]) > len(text) + 200
    assert row["completion"][0]["content"] == row["ground_truth"] == format_changes(records[0]["changes"])
    assert score_completion(row["ground_truth"], row["ground_truth"]).exact


# ----------------------------------------------------------------------------- the Hub schema


def load_fixture(name):
    return datasets.load_dataset("json", data_files=str(FIXTURE / name), split="train")


def test_hub_reader_maps_the_sft_and_rl_layouts():
    sft = from_hub_columns(load_fixture("sft.jsonl"))
    assert sft[0]["prompt"][0]["role"] == "user" and "CURRENT ACTION: click [12]" in sft[0]["prompt"][0]["content"]
    assert sft[0]["completion"][0]["content"].startswith("<think>")  # the CoT answer is the SFT target
    assert sft[0]["ground_truth"] == ("New items:\n[435] link 'Orders'\n[436] link 'Invoices'\n\nDeleted items:\nNone"
                                      "\n\nUpdated items:\n[12] link 'SALES' expanded: True")
    assert sft["num_changes"] == [3, 3] and sft["changed"] == [True, True]
    rl = from_hub_columns(load_fixture("rl.jsonl"))
    assert rl["changed"] == [True, False] and rl[1]["ground_truth"] == format_changes(no_changes())
    assert rl[0]["prompt"] == load_fixture("rl.jsonl")[0]["prompt"]
    # the same reward scores both layouts: the SFT answer (with its reasoning) against the RL gold
    f1 = get_reward_funcs(["webpage_f1"])[0]
    assert f1(completions=[load_fixture("sft.jsonl")[0]["answer"]], ground_truth=[rl[0]["ground_truth"]]) == [1.0]


def test_hub_reader_names_the_row_and_field_of_bad_input(tmp_path):
    bad = tmp_path / "bad.jsonl"
    rows = [json.loads(line) for line in (FIXTURE / "rl.jsonl").read_text().splitlines()]
    rows[1]["reward_model"] = {"style": "rule", "ground_truth": "the page changes"}
    bad.write_text("\n".join(json.dumps(r) for r in rows))
    with pytest.raises(WebDataFormatError, match="row 1: the gold answer has no"):
        from_hub_columns(datasets.load_dataset("json", data_files=str(bad), split="train"), where="bad.jsonl")
    with pytest.raises(WebDataFormatError, match="expected our canonical"):
        from_hub_columns(datasets.Dataset.from_list([{"text": "x"}]))


def test_our_rows_round_trip_through_the_hub_layout():
    ours = build_dataset(make_splits(seed=0, episodes=10)["train"][:6])
    hub = to_hub_rows(ours, "train")
    assert {"prompt", "reward_model", "question", "answer", "extra_info"} <= set(hub.column_names)
    back = from_hub_columns(hub.remove_columns(["question", "answer"]))
    assert back["ground_truth"] == ours["ground_truth"] and back["changed"] == ours["changed"]
