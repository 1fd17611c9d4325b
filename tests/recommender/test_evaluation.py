"""`prefshift eval recommenders` on ml-latest-small: the collaborative models beat popularity
on nDCG@10, and popularity beats random (a real property of well-chosen hyperparameters)."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from prefshift.cli.main import app


@pytest.mark.slow
def test_collaborative_beat_popularity_beats_random(
    ml_small_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PREFSHIFT_DATABASE_URL", ml_small_database_url)
    result = CliRunner().invoke(
        app, ["eval", "recommenders", "--dataset", "ml-latest-small", "--k", "10,30"]
    )
    assert result.exit_code == 0, result.output
    ndcg10 = {}
    for line in result.stdout.splitlines():
        cells = [cell.strip() for cell in line.split("│") if cell.strip()]
        if cells and cells[0] in {"als", "bpr", "item-knn", "popularity", "random"}:
            assert len(cells) == 6, line  # recall@10, recall@30, nDCG@10, nDCG@30, train s
            assert all(re.fullmatch(r"\d+\.\d+", cell) for cell in cells[1:]), line
            ndcg10[cells[0]] = float(cells[3])
    assert set(ndcg10) == {"als", "bpr", "item-knn", "popularity", "random"}
    for name in ("als", "bpr", "item-knn"):
        assert ndcg10[name] > ndcg10["popularity"], (name, ndcg10)
    assert ndcg10["popularity"] > 2 * ndcg10["random"], ndcg10


def test_unknown_dataset_and_implementation_are_refused(
    ml_small_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PREFSHIFT_DATABASE_URL", ml_small_database_url)
    runner = CliRunner()
    missing = runner.invoke(app, ["eval", "recommenders", "--dataset", "ml-1m"])
    assert missing.exit_code == 1
    assert "ml-1m" in missing.output
    wrong = runner.invoke(
        app, ["eval", "recommenders", "--dataset", "ml-latest-small", "--implementations", "svd"]
    )
    assert wrong.exit_code != 0
    assert "svd" in wrong.output
