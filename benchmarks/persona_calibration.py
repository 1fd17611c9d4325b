"""Time of ``prefshift persona calibrate`` on an experiment in the database (e.g. the seed
study's 116 users imported with ``prefshift experiment import-seed-results``), in process:

    PREFSHIFT_DATABASE_URL=... uv run python benchmarks/persona_calibration.py --experiment 1

Prints the time to read the experiment and prepare the static scores, one replay of every
user, arm and page (the unit of work; the baseline of the same run), the whole fit with its
bootstrap, and the load average.
"""

from __future__ import annotations

import argparse
import os
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiment", type=int, required=True)
    parser.add_argument("--start", default="literature")
    parser.add_argument("--bootstrap", type=int, default=20)
    args = parser.parse_args()

    from prefshift.recorded_runs import load_recorded_experiment, offline_facts
    from prefshift_common.db import create_sync_db_engine
    from prefshift_simulator.calibration.fit import DEFAULT_BOUNDS, calibrate
    from prefshift_simulator.calibration.replay import draws, prepare, replay
    from prefshift_simulator.config import Settings
    from prefshift_simulator.embedded.model import EmbeddedPersonaModel
    from prefshift_simulator.embedded.persona_models import flat_parameters
    from prefshift_simulator.evaluation import collaborative_stats, read_dataset
    from prefshift_simulator.main import persona_models

    settings = Settings()
    base = persona_models(settings)[0][args.start]
    started = time.perf_counter()
    engine = create_sync_db_engine(settings.resolved_database_url)
    with engine.connect() as connection:
        recorded = load_recorded_experiment(connection, args.experiment)
        snapshot = read_dataset(settings.resolved_database_url, recorded.dataset)
        shown = {
            t for u in recorded.users for p in u.arms.values() for page in p for t in page.shown
        }
        facts = {**offline_facts(connection, shown - set(snapshot.facts)), **snapshot.facts}
    engine.dispose()
    stats = collaborative_stats(snapshot)
    prepared = prepare(
        recorded.users, model=EmbeddedPersonaModel(base.params), facts=facts, stats=stats
    )
    read_s = time.perf_counter() - started
    start = flat_parameters(base.params)
    noise = draws(prepared, replications=2)
    started = time.perf_counter()
    for _ in range(5):
        replay(prepared, noise, start)
    replay_s = (time.perf_counter() - started) / 5
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    calibration = calibrate(prepared, start=start, bootstrap=args.bootstrap)
    fit_s = time.perf_counter() - started
    print(
        f"experiment {args.experiment}: {prepared.n_users} users, arms {', '.join(prepared.arms)}, "
        f"{prepared.n_pages} pages; fitted {', '.join(DEFAULT_BOUNDS)}"
    )
    print(f"  read + static scores   {read_s:6.1f} s")
    print(f"  one replay (2 noise replications, all users)  {replay_s * 1000:6.0f} ms  (unit)")
    print(
        f"  fit + {calibration.bootstrap} bootstrap resamples  {fit_s:6.1f} s  "
        f"({calibration.evaluations} replays: {fit_s / max(calibration.evaluations, 1) * 1000:.0f}"
        " ms each)"
    )
    print(
        f"  load average {load_before:.1f} before the fit, {os.getloadavg()[0]:.1f} after, "
        f"on {os.cpu_count()} cores"
    )


if __name__ == "__main__":
    main()
