"""Issue 22's acceptance runs, against the four services as processes on loopback, started as
the other benchmarks start them (``prefshift.stack.Stack``, the seed cohort in a fresh SQLite
file, the embedded persona, als and random trained at start-up):

``idle``: for each service in turn, 1,000 idle TCP connections from another client address
(``tests/common/slowloris.py``, all idle, each reopened as soon as the server closes it), held
while ``/healthz`` is timed on fresh connections; the bound is 50 ms.

``schemathesis``: ``st run`` on each service's schema with every check, every phase, 200
examples per operation and a random seed (printed), the services configured with an API token;
the exclusions are in ``schemathesis.toml`` (one place, each with why). "Every check" is
schemathesis's default set: all of them but ``max_response_time`` (it needs a limit) and
``object_level_authorization`` (it needs two users' credentials; the services have one token).
Each service's run warns that the other services' exclusions match none of its operations.
Exits non-zero when any service has a failure.

    uv run python benchmarks/hostile_clients.py idle [--sockets 1000] [--probes 40]
    uv run python benchmarks/hostile_clients.py schemathesis [--examples 200] [--seed N]
        [--only SERVICE]

Run it niced on a machine doing nothing else when the figures matter (docs/security.md).
"""

from __future__ import annotations

import argparse
import random
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the slowloris client lives with the tests

from service_stack import NAMES, service_stack  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
DATASET = "seed-cohort"
#: the four services (the console is a web page over them, not part of this)
#: how long the idle connections are held: past the 10 s header timeout, so that the server
#: closes them and they come back, as an attacker renews them
HOLD_S = 22.0


def prepare_database(workdir: Path) -> str:
    from prefshift import migrate
    from prefshift_datasets.importer import import_dataset

    url = f"sqlite:///{workdir / 'hostile.db'}"
    migrate.upgrade(url)
    import_dataset(url, SHARED / DATASET, name=DATASET)
    return url


@contextmanager
def stack(database_url: str, data_dir: Path, api_token: str | None) -> Iterator[dict[str, str]]:
    """The four services, as ``benchmarks/orchestrator_run.py`` starts them; their URLs."""
    services, urls, _ = service_stack(
        database_url,
        data_dir,
        DATASET,
        {
            "PREFSHIFT_RECOMMENDER_AUTOTRAIN": "als,random",
            **({"PREFSHIFT_API_TOKEN": api_token} if api_token else {}),
        },
    )
    services.start()
    try:
        services.wait_ready(timeout=600)
        yield urls
    finally:
        services.stop()


def _healthz_ms(port: int) -> float:
    started = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(b"GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n")
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    elapsed = (time.perf_counter() - started) * 1000
    if not answer.startswith(b"HTTP/1.1 200"):
        raise AssertionError(f"/healthz answered {answer[:120]!r}")
    return elapsed


def idle(sockets: int, probes: int) -> bool:
    """``sockets`` idle connections to each service in turn, ``/healthz`` timed meanwhile."""
    passed = True
    with tempfile.TemporaryDirectory() as workdir:
        url = prepare_database(Path(workdir))
        with stack(url, Path(workdir) / "data", api_token=None) as urls:
            for name in NAMES:
                port = int(urls[name].rsplit(":", 1)[1])
                quiet = [_healthz_ms(port) for _ in range(10)]
                attacker = subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "tests.common.slowloris",
                        str(port),
                        str(sockets),
                        str(HOLD_S),
                        "idle",
                    ],
                    cwd=ROOT,
                    stdout=subprocess.PIPE,
                    text=True,
                )
                try:
                    assert attacker.stdout is not None
                    assert attacker.stdout.readline().strip() == "ready"
                    held = []
                    deadline = time.monotonic() + HOLD_S - 2
                    while time.monotonic() < deadline:
                        held.append(_healthz_ms(port))
                        time.sleep(HOLD_S / probes)
                    reopened = attacker.communicate(timeout=30)[0].strip()
                finally:
                    attacker.kill()
                    attacker.wait()
                ok = statistics.median(held) < 50 and max(held) < 50
                passed = passed and ok
                print(
                    f"{name:13s} idle={sockets} probes={len(held)} "
                    f"healthz ms: quiet median {statistics.median(quiet):.1f} | "
                    f"held median {statistics.median(held):.1f} "
                    f"p95 {statistics.quantiles(held, n=20)[-1]:.1f} max {max(held):.1f} "
                    f"({reopened}) {'ok' if ok else 'OVER 50 ms'}",
                    flush=True,
                )
    return passed


def fuzz(examples: int, seed: int, only: list[str]) -> bool:
    """schemathesis, every check and phase, on each service's schema."""
    token = secrets.token_urlsafe(16)
    print(f"schemathesis seed {seed}, {examples} examples per operation", flush=True)
    failed = []
    with tempfile.TemporaryDirectory() as workdir:
        url = prepare_database(Path(workdir))
        with stack(url, Path(workdir) / "data", api_token=token) as urls:
            for name in only:
                command = [
                    str(Path(sys.executable).with_name("st")),
                    "--config-file",
                    str(ROOT / "schemathesis.toml"),
                    "run",
                    f"{urls[name]}/openapi.json",
                    # no --checks: its "all" would override schemathesis.toml's exclusions;
                    # the default is every check but the two that need setting up
                    "--max-examples",
                    str(examples),
                    "--seed",
                    str(seed),
                    "--header",
                    f"Authorization: Bearer {token}",
                    "--request-timeout",
                    "120",
                    "--workers",
                    "1",
                    "--no-color",
                ]
                print(f"== {name}", flush=True)
                if subprocess.run(command, cwd=workdir, check=False).returncode != 0:
                    failed.append(name)
    print(f"services with failures: {failed or 'none'}", flush=True)
    return not failed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parts = parser.add_subparsers(dest="part", required=True)
    idle_part = parts.add_parser("idle", help="idle connections against /healthz")
    idle_part.add_argument("--sockets", type=int, default=1000)
    idle_part.add_argument("--probes", type=int, default=40)
    fuzz_part = parts.add_parser("schemathesis", help="every check on every service")
    fuzz_part.add_argument("--examples", type=int, default=200)
    fuzz_part.add_argument("--seed", type=int, default=None, help="default: a random one")
    fuzz_part.add_argument(
        "--only", choices=NAMES, action="append", help="this service only (repeatable)"
    )
    options = parser.parse_args()
    if options.part == "idle":
        ok = idle(options.sockets, options.probes)
    else:
        seed = options.seed if options.seed is not None else random.randrange(2**31)
        ok = fuzz(options.examples, seed, options.only or list(NAMES))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
