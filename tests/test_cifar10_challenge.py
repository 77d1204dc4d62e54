"""cifar10_challenge graded end to end: wrong entries through the real engine
and a real kernel, and the class leaderboard built from real gradings. The
reference and the blank release are graded in tests/test_every_assignment.py,
as for every assignment (shared here through the session fixtures).

Three wrong entries are graded, each cheap (none trains for more than one
short epoch) and each wrong in more than one way. Their scores do not depend
on the seed or the machine: two never produce ten predictions per image,
and the third is scored on test images scaled differently from the ones it
trained on, which leaves it near chance, far below the 40 % pass mark."""

import csv
import json
import tomllib

import nbformat
import pytest

from autograder.cli import main
from autograder.course import SUITES_DIR
from autograder.engine.prepare import declared_alias
from autograder.records.gradescope import LEADERBOARD
from autograder.records.gradescope import leaderboard as gradescope_entries
from autograder.results import GradingResult
from conftest import CIFAR10_CONV_MODEL, CIFAR10_DENSE_MODEL, REPO, assert_only_these_fail, needs_data_of

A = "cifar10_challenge"


def full_data(test):
    """Marks a test that grades on all of CIFAR-10: slow, and skipped without the data."""
    return pytest.mark.slow(needs_data_of(A)(test))


RULES = tomllib.loads((SUITES_DIR / A / "assignment.toml").read_text())
BUDGET = RULES["challenge"]["parameter_budget"]
TIME_LIMIT = RULES["limits"]["notebook_timeout"]

SCALED = """
x_train = x_train_full.astype("float32") / 255
y_train = y_train_full
x_test = x_test_raw.astype("float32") / 255
"""
# Raw pixels, 0-255: the grader feeds the model test images divided by 255.
UNSCALED = """
x_train = x_train_full.astype("float32")
y_train = y_train_full
x_test = x_test_raw.astype("float32")
"""
CNN = CIFAR10_CONV_MODEL.replace("{head}", 'layers.Flatten(), layers.Dense({output})')
TRAIN = """
model.compile(optimizer="adam", loss={loss}, metrics=["accuracy"])
history = model.fit(x_train[:2000], y_train[:2000], batch_size=128, epochs=1, verbose=0)
"""

WRONG = {
    # 1,578,506 parameters: Flatten then Dense(512) pays for every pixel.
    "over_budget": {"alias": 'LEADERBOARD_ALIAS = "Dense Dan"', "prepare": SCALED, "build_model": CIFAR10_DENSE_MODEL,
                    "train": TRAIN.format(loss='"sparse_categorical_crossentropy"')},
    # y_train has shape (N, 1): one output unit. Training then fails (labels up to 9 for one
    # output); the model is still graded. The alias is computed, so the grader cannot read it.
    "one_output": {"alias": 'LEADERBOARD_ALIAS = "one output".title()', "prepare": SCALED,
                   "build_model": CNN.format(output='y_train.shape[1], activation="softmax"'),
                   "train": TRAIN.format(loss='"sparse_categorical_crossentropy"')},
    # Logits out (no softmax), trained on raw pixels for 16 updates: near chance on scaled images.
    "logits_unscaled": {"alias": 'LEADERBOARD_ALIAS = "Logit Lou"', "prepare": UNSCALED,
                        "build_model": CNN.format(output="10"),
                        "train": TRAIN.format(
                            loss="keras.losses.SparseCategoricalCrossentropy(from_logits=True)")},
}
OVER = f"1,578,506 parameters; the challenge allows at most {BUDGET:,}"
FAILS = {
    "over_budget": {
        "test_parameter_budget": [OVER, "has 1,573,376", "GlobalAveragePooling2D"],
        "test_working_model": [OVER, "no accuracy points and no place on the leaderboard"],
        "test_accuracy_bands": [OVER, "no place on the leaderboard"],
    },
    "one_output": {
        "test_input_and_output": ["returns shape (256, 1)", "y_train.shape[1] is 1"],
        "test_working_model": ["predictions of shape (10000, 1)", "10 outputs per image"],
        "test_accuracy_bands": ["predictions of shape (10000, 1)"],
    },
    "logits_unscaled": {
        "test_input_and_output": ["the last layer uses `linear`", "from_logits=True"],
        "test_working_model": ["the pass mark is 40%", "close to guessing", "divided by 255",
                               "reached its time limit, it was stopped there"],
        "test_accuracy_bands": ["0 of the 4 bands (55%, 60%, 65%, 70%) reached", "close to guessing"],
    },
}
"""For each wrong entry, the checks that fail and what each says; every
other check earns its full points."""


@pytest.fixture(scope="module")
def wrong(graded):
    return lambda name: graded(A, name, WRONG[name])


@full_data
@pytest.mark.parametrize("entry", FAILS)
def test_wrong_entry(wrong, entry):
    assert_only_these_fail(wrong(entry), A, FAILS[entry])


@full_data
def test_what_each_wrong_entry_records(wrong):
    over, one, logits = (wrong(n) for n in ("over_budget", "one_output", "logits_unscaled"))
    assert over.metrics["parameters"] == 1_578_506 and "test_accuracy" not in over.metrics
    assert "test_accuracy" not in one.metrics and any("cell 'train' raised" in n for n in one.notes)
    assert logits.metrics["test_accuracy"] < 0.2 and logits.metrics["parameters"] == 114_410
    assert (over.alias, one.alias, logits.alias) == ("Dense Dan", "", "Logit Lou")


@full_data
def test_reference_keeps_the_rules_and_records_what_the_board_ranks_by(reference_cli):
    results, _ = reference_cli(A)
    metrics = results["metrics"]
    assert set(metrics) == {"test_accuracy", "parameters", "private_slice_accuracy"}
    assert metrics["parameters"] == 114_410 <= BUDGET
    assert metrics["test_accuracy"] >= 0.70
    assert results["timings"]["execute"] < TIME_LIMIT
    assert results["alias"] == "Reference model"
    # Gradescope's leaderboard shows the same metric the class board ranks by.
    assert "test_accuracy" in LEADERBOARD
    [entry] = gradescope_entries(GradingResult.from_dict(results))
    assert entry == {"name": "Test accuracy", "value": round(metrics["test_accuracy"], 4), "order": "desc"}


@full_data
def test_the_class_leaderboard_of_graded_entries(reference_cli, wrong, tmp_path, capsys):
    out = tmp_path / "graded"
    reference, _ = reference_cli(A)
    records = {"s01": reference, **{f"s0{i}": wrong(n).to_dict() for i, n in
                                    enumerate(("over_budget", "one_output", "logits_unscaled"), start=2)}}
    for student, record in records.items():
        (out / student).mkdir(parents=True)
        (out / student / "results.json").write_text(json.dumps(record))
    assert main(["leaderboard", "--from", str(out)]) == 0
    assert "ranked 2 of 4 student(s)" in capsys.readouterr().out
    rows = list(csv.DictReader((out / "leaderboard.csv").open()))
    # Over the budget or without ten outputs: no test accuracy, not on the board.
    assert [(r["rank"], r["name"]) for r in rows] == [("1", "Reference model"), ("2", "Logit Lou")]
    top, last = rows
    assert float(top["value"]) == round(reference["metrics"]["test_accuracy"], 4) > float(last["value"])
    assert top["metric"] == "Test accuracy" and top["parameters"] == "114410"
    assert float(top["training_seconds"]) == round(
        reference["timings"]["execute"] + reference["timings"]["export"], 1)
    assert top["device"] == reference["device"] and top["device"]
    page = (out / "leaderboard.html").read_text()
    assert "<th>Parameters</th><th>Training (s)</th><th>Device</th>" in page
    assert "114,410" in page and "Dense Dan" not in page


def test_the_notebook_states_the_rules_of_assignment_toml():
    source = nbformat.read(REPO / "solutions" / A / f"{A}.ipynb", as_version=4)
    text = "\n".join(c.source for c in source.cells)
    assert f"PARAMETER_BUDGET = {BUDGET:_}" in text and f"TIME_LIMIT_S = {TIME_LIMIT}" in text
    assert f"at most **{BUDGET:,}**" in text and f"at most **{TIME_LIMIT} seconds**" in text
    release = nbformat.read(REPO / "assignments" / A / f"{A}.ipynb", as_version=4)
    # The reference sets an example alias; the release leaves it for the student.
    assert (declared_alias(source), declared_alias(release)) == ("Reference model", "")
