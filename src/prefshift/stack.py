"""Start the four services as processes on loopback and stop them together.

Used by ``prefshift up`` and by the end-to-end tests, so that both run the services exactly the
same way: separate processes speaking real HTTP.

Two ways to start a service process, the same ``main.run()`` in both:

- ``exec`` (``prefshift up``): a new Python interpreter per service, which imports its service
  (pandas, scipy, SQLAlchemy, FastAPI: 3–6 s of CPU each on the 2-core development machine);
- ``fork`` (the tests): forked from one server process per parent that has imported every
  service once (``multiprocessing``'s forkserver, which is itself a fresh interpreter, not a
  fork of the caller). Each child is a separate process with its own environment, ports,
  database connections and signal handling; only the import is shared. The test suite starts
  many services; what that saves is measured in docs/development.md.
"""

from __future__ import annotations

import importlib
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess
from typing import Literal, Protocol

import httpx

from prefshift_common.settings import CommonSettings, bind_address

#: service name → (its package, the CommonSettings field holding its URL); each package's
#: ``main.run()`` serves it (``prefshift_common.app.serve``), as its container image does.
SERVICES: dict[str, tuple[str, str]] = {
    "tmdb-proxy": ("prefshift_tmdb_proxy", "tmdb_proxy_url"),
    "simulator": ("prefshift_simulator", "simulator_url"),
    "recommender": ("prefshift_recommender", "recommender_url"),
    "orchestrator": ("prefshift_orchestrator", "orchestrator_url"),
    "console": ("prefshift_console", "console_url"),
}


#: What the fork server imports once: every service, and what each imports only when it serves.
_PRELOAD = [*(f"{package}.main" for package, _ in SERVICES.values()), "uvicorn"]


class ServiceProcess(Protocol):
    """What a stack needs of a service's process (``subprocess.Popen``'s names)."""

    @property
    def pid(self) -> int | None: ...

    @property
    def returncode(self) -> int | None: ...

    def poll(self) -> int | None: ...

    def send_signal(self, sig: int) -> None: ...

    def wait(self, timeout: float | None = None) -> int: ...

    def kill(self) -> None: ...


def _serve(package: str, argv: Sequence[str], env: Mapping[str, str]) -> None:
    """A forked service's body: this service's environment and command line, then its
    ``main.run()``, exactly as ``python -c "from <package>.main import run; run()"`` would."""
    os.environ.clear()
    os.environ.update(env)
    sys.argv = [package, *argv]
    importlib.import_module(f"{package}.main").run()


class ForkedService:
    """A service process forked from the fork server, behind ``subprocess.Popen``'s names."""

    def __init__(self, package: str, argv: Sequence[str], env: Mapping[str, str]) -> None:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(_PRELOAD)
        self._process: BaseProcess = context.Process(  # type: ignore[attr-defined]
            target=_serve, args=(package, list(argv), dict(env)), name=package, daemon=True
        )
        self._process.start()

    @property
    def pid(self) -> int | None:
        return self._process.pid

    @property
    def returncode(self) -> int | None:
        return self._process.exitcode

    def poll(self) -> int | None:
        return self._process.exitcode

    def send_signal(self, sig: int) -> None:
        if self._process.pid is not None and self._process.exitcode is None:
            os.kill(self._process.pid, sig)

    def wait(self, timeout: float | None = None) -> int:
        self._process.join(timeout)
        if self._process.exitcode is None:
            raise subprocess.TimeoutExpired(f"{self._process.name} (forked)", timeout or 0.0)
        return self._process.exitcode

    def kill(self) -> None:
        self._process.kill()


class PortInUse(RuntimeError):
    """A service's port is taken (by another ``prefshift up`` or anything else)."""


@dataclass
class Stack:
    """The four services as child processes."""

    settings: CommonSettings
    env: Mapping[str, str] = field(default_factory=dict)
    services: tuple[str, ...] = tuple(SERVICES)
    #: ``exec`` (a new interpreter per service) or ``fork`` (from the fork server; tests)
    launcher: Literal["exec", "fork"] = "exec"
    processes: dict[str, ServiceProcess] = field(default_factory=dict)

    def url(self, service: str) -> str:
        return str(getattr(self.settings, SERVICES[service][1]))

    def check_ports(self) -> None:
        """Raise ``PortInUse`` naming every service whose port something already listens on:
        started anyway, the others would answer for it (another stack's, on another
        database)."""
        taken = []
        for service in self.services:
            host, port = bind_address(self.url(service))
            with socket.socket() as probe:
                probe.settimeout(1.0)
                if probe.connect_ex((host, port)) == 0:
                    taken.append(f"{service} ({host}:{port})")
        if taken:
            raise PortInUse(
                f"already in use: {', '.join(taken)} — is prefshift up (or make demo) already "
                "running? Stop it, or move the ports with PREFSHIFT_<SERVICE>_URL"
            )

    def start(self, *, log_level: str = "warning") -> None:
        """Start every service (after ``check_ports``)."""
        self.check_ports()
        env = {**os.environ, **self.env}
        for service in self.services:
            package, _ = SERVICES[service]
            host, port = bind_address(self.url(service))
            argv = ["--host", host, "--port", str(port), "--log-level", log_level]
            if self.launcher == "fork":
                self.processes[service] = ForkedService(package, argv, env)
                continue
            # Each service in a process group of its own: a terminal's Ctrl-C (SIGINT to the
            # foreground group) reaches `up` or `demo` only, which stop the services with
            # SIGTERM. In the terminal's group a service still starting got it too — even in
            # the interpreter's start-up, before any code of ours could ignore it — and printed
            # a KeyboardInterrupt traceback.
            command = [sys.executable, "-c", f"from {package}.main import run; run()", *argv]
            self.processes[service] = subprocess.Popen(command, env=env, process_group=0)  # noqa: S603

    def wait_ready(self, timeout: float = 300.0) -> None:
        """Block until every service answers ``/readyz``; raise if one exits or times out
        (generous: each imports pandas and scipy, which takes minutes on a busy 2-core machine)."""
        deadline = time.monotonic() + timeout
        pending = set(self.processes)
        headers = {}
        if self.settings.api_token is not None:
            headers["authorization"] = f"Bearer {self.settings.api_token.get_secret_value()}"
        while pending:
            for service in sorted(pending):
                process = self.processes[service]
                if process.poll() is not None:
                    raise RuntimeError(f"{service} exited with code {process.returncode}")
                try:
                    response = httpx.get(
                        f"{self.url(service)}/readyz", timeout=1.0, headers=headers
                    )
                    if response.status_code == 200:
                        pending.discard(service)
                except httpx.HTTPError:
                    pass
            if pending and time.monotonic() > deadline:
                raise TimeoutError(f"not ready after {timeout:.0f}s: {', '.join(sorted(pending))}")
            if pending:
                time.sleep(0.2)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM every service (uvicorn shuts down gracefully), SIGKILL what lingers."""
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for process in self.processes.values():
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.processes.clear()

    def __enter__(self) -> Stack:
        self.start()
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()
