"""`prefshift experiment plan`: how many users a study needs, and what its LLM calls cost."""

from __future__ import annotations

import math
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

console = Console()

#: Per simulator call when nothing is recorded: docs/simulator.md's measured prompt size for a
#: persona with 40 history movies and a page of 30 (grows with experiences), and ~40 tokens of
#: answer per rated movie.
DEFAULT_PROMPT_TOKENS = 11_158
DEFAULT_COMPLETION_TOKENS = 1_200


def call_counts(arms: list[str], pages: int, llm_arms: set[str]) -> tuple[int, int]:
    """Simulator and LLM-recommender calls per user: one baseline; per page, a recommender
    arm rates its page and re-rates the test movies, control only re-rates; an LLM arm asks
    its recommender once per page."""
    simulator = 1 + sum(pages * (1 if arm == "control" else 2) for arm in arms)
    recommender = sum(pages for arm in arms if arm in llm_arms)
    return simulator, recommender


def recorded_usage() -> tuple[float, float, int] | None:
    """Mean prompt and completion tokens of the recorded, successful LLM calls, and how many."""
    from sqlalchemy import func, select

    from prefshift_common.db import create_sync_db_engine
    from prefshift_common.llm.models import LlmCall
    from prefshift_common.settings import CommonSettings

    engine = create_sync_db_engine(CommonSettings().resolved_database_url)
    try:
        with engine.connect() as connection:
            row = connection.execute(
                select(
                    func.avg(LlmCall.prompt_tokens),
                    func.avg(LlmCall.completion_tokens),
                    func.count(),
                ).where(LlmCall.prompt_tokens > 0)
            ).one()
    except Exception:  # no database, or not migrated: fall back to the documented sizes
        return None
    finally:
        engine.dispose()
    if not row[2]:
        return None
    return float(row[0]), float(row[1]), int(row[2])


def register(experiment_app: typer.Typer) -> None:
    """Add `plan` to `prefshift experiment`."""

    @experiment_app.command("plan")
    def plan(
        effect: Annotated[
            float, typer.Option(min=0.001, help="Net shift (stars) the study must detect.")
        ] = 0.1,
        sd: Annotated[
            float | None,
            typer.Option(min=0.0, help="Per-user spread of the control arm's shift (stars)."),
        ] = None,
        experiment: Annotated[
            int | None,
            typer.Option(help="Take the spread from this experiment's report (last page)."),
        ] = None,
        arms: Annotated[
            str, typer.Option(help="Arms, comma-separated.")
        ] = "llm,llm-persuasive,als,random,control",
        pages: Annotated[int, typer.Option(min=1, max=20)] = 4,
        users: Annotated[
            int | None, typer.Option(min=1, help="Users to cost (default: the users needed).")
        ] = None,
        price_per_million: Annotated[
            float | None, typer.Option(min=0.0, help="Price per million tokens (any currency).")
        ] = None,
        url: Annotated[str | None, typer.Option(help="Orchestrator URL.")] = None,
    ) -> None:
        """Users needed to detect a net shift of EFFECT (80% power, 5% two-sided, from the
        control arm's spread), and the LLM calls and tokens the study will cost (from the
        recorded usage in the database when there is some, else documented sizes)."""
        from prefshift.cli.simulate import _call, _client
        from prefshift_orchestrator.statistics import min_detectable_shift, users_needed

        arm_names = [a.strip() for a in arms.split(",") if a.strip()]
        if sd is None and experiment is not None:
            with _client(url) as client:
                report = _call(client, "GET", f"/experiments/{experiment}/report")
            power = report["statistics"].get("power") or []
            if not power:
                raise typer.BadParameter("the experiment's report has no control-arm spread")
            sd = float(power[-1]["control_sd"])
            console.print(
                f"control-arm spread of experiment {experiment}, page "
                f"{power[-1]['page']}: sd {sd:.3f} ({power[-1]['n']} users)"
            )
        if sd is None:
            raise typer.BadParameter("give --sd or --experiment")
        needed = users_needed(effect, sd) if sd > 0 else 2
        n_users = users or needed
        console.print(
            f"to detect a net shift of {effect:g} stars with 80% power (5%, two-sided) at a "
            f"control spread of {sd:.3f}: {needed} users "
            f"(with {n_users}: {min_detectable_shift(sd, n_users):.3f} stars)"
        )
        llm_arms = {a for a in arm_names if a.startswith("llm")}
        simulator_calls, recommender_calls = call_counts(arm_names, pages, llm_arms)
        usage = recorded_usage()
        if usage is None:
            prompt, completion = float(DEFAULT_PROMPT_TOKENS), float(DEFAULT_COMPLETION_TOKENS)
            source = "documented sizes (no recorded LLM calls)"
        else:
            prompt, completion, source = usage[0], usage[1], f"{usage[2]} recorded LLM calls"
        table = Table(title=f"LLM cost of {n_users} users ({', '.join(arm_names)}; {pages} pages)")
        for column in ("", "calls", "prompt tokens", "completion tokens", "cost"):
            table.add_column(column, justify="left" if column == "" else "right")
        total_cost = 0.0
        for label, per_user in (
            ("simulator (llm backend)", simulator_calls),
            ("LLM recommenders", recommender_calls),
        ):
            calls = per_user * n_users
            tokens_in, tokens_out = calls * prompt, calls * completion
            cost = (
                (tokens_in + tokens_out) / 1e6 * price_per_million
                if price_per_million is not None
                else math.nan
            )
            total_cost += 0.0 if math.isnan(cost) else cost
            table.add_row(
                label,
                f"{calls:,}",
                f"{tokens_in:,.0f}",
                f"{tokens_out:,.0f}",
                "—" if math.isnan(cost) else f"{cost:,.2f}",
            )
        console.print(table)
        console.print(f"tokens per call from {source}; the embedded persona costs no calls")
        if price_per_million is not None:
            console.print(f"total: {total_cost:,.2f} at {price_per_million:g} per million tokens")
