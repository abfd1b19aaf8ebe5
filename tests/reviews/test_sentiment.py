"""Review sentiment end to end on a small written set: train (recorded like an image run, with
the VADER and majority baselines), score, show; the split keeps products and authors apart."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

HEADER = (
    "author_id,rating,is_recommended,helpfulness,total_feedback_count,total_neg_feedback_count,"
    "total_pos_feedback_count,submission_time,review_text,review_title,skin_tone,eye_color,skin_type,"
    "hair_color,product_id,product_name,brand_name,price_usd\n"
)
POSITIVE = [
    "love this cream, my skin glows",
    "amazing texture and it absorbs fast",
    "holy grail, so hydrating",
    "my skin is soft and calm, repurchasing",
    "gorgeous glow and no breakouts",
]
NEGATIVE = [
    "terrible, it gave me a rash",
    "broke me out badly, returning it",
    "burned my skin and smells awful",
    "sticky greasy mess, total waste of money",
    "caused redness and itching, returned",
]
NEUTRAL = [
    "it is okay, nothing special",
    "average moisturizer, does the job I guess",
    "fine but pricey for what it is",
]


def write_reviews(path: Path, products: int = 40, per_product: int = 15, seed: int = 1) -> Path:
    rng = random.Random(seed)
    lines = [HEADER]
    author = 1000
    for p in range(products):
        for _ in range(per_product):
            roll = rng.random()
            rating, pool = (
                (5, POSITIVE)
                if roll < 0.7
                else (rng.choice([1, 2]), NEGATIVE)
                if roll < 0.9
                else (3, NEUTRAL)
            )
            author += 1
            skin = rng.choice(["oily", "dry", "combination", "normal"])
            lines.append(
                f'{author},{rating},1.0,,0,0,0,2023-02-01,"{rng.choice(pool)}",,light,brown,{skin},,'
                f"P{p},Product {p},Brand,10.0\n"
            )
    path.write_text("".join(lines), encoding="utf-8")
    return path


def test_split_keeps_products_and_authors_apart():
    from skinctl.reviews.data import Example, split_examples

    rng = random.Random(0)
    examples = [
        Example(
            i, "text", rng.randrange(3), f"P{rng.randrange(30)}", f"A{rng.randrange(200)}", None
        )
        for i in range(1000)
    ]
    split = split_examples(examples, seed=3, val_fraction=0.15, test_fraction=0.2)
    parts = (split.train, split.val, split.test)
    for i, a in enumerate(parts):
        for b in parts[i + 1 :]:
            assert not {e.product for e in a} & {e.product for e in b}
            assert not {e.author for e in a} & {e.author for e in b}
    assert sum(map(len, parts)) + split.dropped_shared_authors == 1000


def test_scoring_without_a_sentiment_run_says_how_to_make_one(cli):
    result = cli("reviews", "score")
    assert result.exit_code == 1
    assert "skinctl train run --task sentiment" in result.stderr


@pytest.mark.slow
def test_train_score_show(cli, tmp_path, engine):
    from tests.products.conftest import SEPHORA

    products = tmp_path / "product_info.csv"
    header = SEPHORA.split("\r\n")[0]
    products.write_text(
        header
        + "\r\n"
        + "".join(
            f"P{p},Product {p},1,Brand,1,4.0,15,,,,,\"['Aqua, Glycerin']\",10,,,0,0,0,0,0,,Skincare,Moisturizers,"
            "Moisturizers,0,,\r\n"
            for p in range(40)
        ),
        encoding="utf-8",
    )
    assert cli("ingest", "products", str(products)).exit_code == 0
    reviews = write_reviews(tmp_path / "reviews_0-250.csv")
    assert cli("ingest", "reviews", str(reviews)).exit_code == 0

    trained = cli("train", "run", "--task", "sentiment", "--epochs", "6", "--json")
    assert trained.exit_code == 0, trained.stderr + repr(trained.exception)
    run = trained.json()
    assert run["task"] == "sentiment" and run["status"] == "finished"
    test = run["metrics"]["test"]
    baselines = run["metrics"]["baselines"]
    assert set(baselines) == {"vader", "majority"}
    assert test["accuracy_ci95"][0] > test["majority_rate"]  # clears the majority rate
    assert test["f1_macro"] > baselines["vader"]["f1_macro"] > baselines["majority"]["f1_macro"]
    assert [c["class_name"] for c in run["per_class"]] == ["negative", "neutral", "positive"]
    listed = cli("train", "list", "--json").json()
    assert [r["task"] for r in listed] == ["sentiment"]
    human = cli("train", "show", str(run["id"]))
    assert human.exit_code == 0 and "negative" in human.stdout

    scored = cli("reviews", "score", "--run", str(run["id"]), "--json")
    assert scored.exit_code == 0, scored.stderr
    document = scored.json()
    assert document["scored"] == 600 and sum(document["by_sentiment"].values()) == 600
    again = cli("reviews", "score", "--json").json()
    assert (again["scored"], again["already_scored"]) == (0, 600)  # resumes: nothing left

    shown = cli("reviews", "show", "P3", "--json")
    assert shown.exit_code == 0, shown.stderr
    summary = shown.json()
    assert summary["sentiment_source"] == f"sentiment run {run['id']}"
    assert summary["overall"]["reviews"] == 15
    assert {s["group"] for s in summary["by_skin_type"]} <= {"oily", "dry", "combination", "normal"}
    oily = cli("reviews", "show", "P3", "--skin-type", "oily", "--json").json()
    assert oily["overall"]["reviews"] == sum(
        s["reviews"] for s in summary["by_skin_type"] if s["group"] == "oily"
    )
    human = cli("reviews", "show", "P3")
    assert human.exit_code == 0 and "by skin type" in human.stdout


@pytest.mark.slow
def test_the_fast_scorer_gives_the_models_probabilities(engine, tmp_path):
    import numpy as np

    from skinctl.reviews.data import review_text
    from skinctl.reviews.model import Scorer, build, predict

    texts = [review_text("Great!", t) for t in POSITIVE + NEGATIVE + NEUTRAL] + [
        "ÉCLAT d'or: CAPITALS, punctuation!!! and a\u2028line separator",
        "",
        "unknownword anotherunknown",
    ]
    model = build(texts * 3, 3, learning_rate=0.01)
    expected = predict(model, texts)
    got = Scorer.from_model(model).predict(texts)
    assert np.allclose(got, expected, atol=1e-5)


def test_log_odds_finds_what_negative_reviews_say_more():
    from collections import Counter

    from skinctl.reviews.summary import log_odds, terms_of

    negative = ["broke me out", "rash and broke me out", "smells bad"]
    positive = ["love it", "love the smell", "soft skin love"]
    a = Counter(t for text in negative for t in set(terms_of(text)))
    b = Counter(t for text in positive for t in set(terms_of(text)))
    scores = log_odds(a, b, a + b)
    assert scores["broke"] > 0 > scores["love"]
    assert "broke me" in terms_of("It broke me out")
