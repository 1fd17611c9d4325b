"""Reference fidelity figures on the seed cohort, to read a report's baseline fidelity against.

The seed study reports its LLM personas at MAE 0.57 / RMSE 0.87 and a per-user-mean predictor
at RMSE 1.03. This script recomputes the per-user-mean predictor with ``measurements.fidelity``:
for each of the 150 users, 30 random held-out movies (seeded), predicted by the mean of the
user's other ratings; figures pooled over every held-out movie (as a report's top-level
``fidelity``) and averaged per user (as the ``baseline`` cells of its statistics).

Run: ``uv run python benchmarks/measurements_fidelity_reference.py [--seeds 5]``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from prefshift_orchestrator.measurements import fidelity

SEED_COHORT = Path(__file__).resolve().parents[2] / "shared" / "data" / "seed-cohort"
TEST_MOVIES = 30


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    ratings = pd.read_csv(SEED_COHORT / "ratings.csv")
    print(f"per-user-mean predictor, {TEST_MOVIES} held-out movies per user, 150 users")
    print(f"{'seed':>4} {'pooled MAE':>10} {'pooled RMSE':>11} {'per-user MAE':>12} {'RMSE':>6}")
    for seed in range(args.seeds):
        rng = np.random.default_rng(seed)
        predicted: dict[int, float] = {}
        real: dict[int, float] = {}
        per_user = []
        key = 0
        for _, history in ratings.groupby("userId"):
            order = rng.permutation(len(history))
            held_out = history.iloc[order[:TEST_MOVIES]]
            mean = float(history.iloc[order[TEST_MOVIES:]]["rating"].mean())
            user_predicted = {int(m): mean for m in held_out["movieId"]}
            user_real = {
                int(m): float(r)
                for m, r in zip(held_out["movieId"], held_out["rating"], strict=True)
            }
            per_user.append(fidelity(user_predicted, user_real))
            for movie in user_real:  # pooled: one key per (user, movie)
                predicted[key], real[key] = mean, user_real[movie]
                key += 1
        pooled = fidelity(predicted, real)
        mae = np.mean([f.mae for f in per_user if f.mae is not None])
        rmse = np.mean([f.rmse for f in per_user if f.rmse is not None])
        print(f"{seed:>4} {pooled.mae:>10.3f} {pooled.rmse:>11.3f} {mae:>12.3f} {rmse:>6.3f}")
    print("seed study: LLM personas MAE 0.57 / RMSE 0.87; per-user mean RMSE 1.03")


if __name__ == "__main__":
    main()
