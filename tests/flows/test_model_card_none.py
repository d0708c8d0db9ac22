"""A model card is written whatever a split holds: a metric without a value reads n/a, never a crash."""

from __future__ import annotations

from flows.model_card import summary_table


def test_a_pu_card_of_a_test_split_without_positives_says_n_a():
    meta = {
        "task": "pu",
        "metrics": {"test": {"positives": 0, "unlabeled": 12, "tpr_at_0.5": None, "unlabeled_fraction_at_0.5": 0.25,
                             "polymorphs": {"compositions": 0, "positive_highest": None, "random_baseline": None}}},
        "dataset": {"rows": 40, "per_split": {"train": 28, "val": 0, "test": 12}},
    }  # fmt: skip
    card = "\n".join(summary_table(meta, "csp models train pu"))
    assert "| test P_syn >= 0.5 | n/a of 0 positives, 25.0% of 12 unlabeled |" in card


def test_a_regression_card_without_r2_says_n_a():
    meta = {"task": "regression", "metrics": {"test": {"mae_ev_per_atom": 0.0812, "count": 3, "r2": None}}}
    card = "\n".join(summary_table(meta, "csp models train dft"))
    assert "| test MAE | 0.0812 eV/atom (3 rows) |" in card and "| test R2 | n/a |" in card
