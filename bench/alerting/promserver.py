"""A real Prometheus server on 127.0.0.1 over a backfilled TSDB, and the promtool steps.

`backfill_openmetrics()` wraps `promtool tsdb create-blocks-from openmetrics`;
`PrometheusServer` starts `prometheus` with no scrape targets on a free loopback port (so it
only serves what was backfilled) and answers range queries.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any

READY_TIMEOUT_S = 120.0
QUERY_TIMEOUT_S = 600.0


def tool(name: str) -> str:
    path = shutil.which(name)
    if not path:
        raise SystemExit(
            f"{name} not found: install Debian's prometheus package "
            "(scripts/install-deploy-tools.sh)"
        )
    return path


def _run(argv: list[str], timeout: float) -> None:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    if result.returncode != 0:
        raise RuntimeError(
            f"{' '.join(argv[:4])} failed:\n{result.stdout[-2000:]}{result.stderr[-3000:]}"
        )


def backfill_openmetrics(source: Path, tsdb: Path) -> None:
    # 700h: promtool then writes few large blocks instead of one per 2 hours.
    _run(
        [
            tool("promtool"),
            "tsdb",
            "create-blocks-from",
            "openmetrics",
            "--quiet",
            "--max-block-duration=700h",
            str(source),
            str(tsdb),
        ],
        timeout=1800,
    )


def move_blocks(source: Path, tsdb: Path) -> None:
    for block in source.iterdir():
        if block.is_dir() and (block / "meta.json").exists():
            shutil.move(str(block), str(tsdb / block.name))


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class PrometheusServer:
    """`prometheus` serving a TSDB directory; use as a context manager."""

    def __init__(self, tsdb: Path, workdir: Path, lookback_s: int = 59) -> None:
        self.tsdb = tsdb
        self._lookback_s = lookback_s
        self._config = workdir / "prometheus.yml"
        self._config.write_text("global:\n  evaluation_interval: 1m\n", encoding="utf-8")
        self._log = workdir / "prometheus.log"
        self._process: subprocess.Popen[bytes] | None = None
        self.url = ""

    def start(self) -> None:
        port = _free_port()
        self.url = f"http://127.0.0.1:{port}"
        with self._log.open("ab") as log:
            self._process = subprocess.Popen(
                [
                    tool("prometheus"),
                    f"--config.file={self._config}",
                    f"--storage.tsdb.path={self.tsdb}",
                    f"--web.listen-address=127.0.0.1:{port}",
                    "--storage.tsdb.retention.time=100y",
                    f"--query.lookback-delta={self._lookback_s}s",
                    "--query.max-samples=500000000",
                    f"--query.timeout={int(QUERY_TIMEOUT_S)}s",
                    "--log.level=warn",
                ],
                stdout=log,
                stderr=log,
            )
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"prometheus exited; see {self._log}")
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                time.sleep(0.3)
        raise RuntimeError(f"prometheus not ready after {READY_TIMEOUT_S}s; see {self._log}")

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=30)
            self._process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def __enter__(self) -> PrometheusServer:
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()

    def query_range(self, expr: str, start: int, end: int, step: int) -> list[dict[str, Any]]:
        """Matrix result of a range query (the caller keeps end-start under 11,000 steps)."""
        body = urllib.parse.urlencode(
            {"query": expr, "start": start, "end": end, "step": step}
        ).encode()
        request = urllib.request.Request(f"{self.url}/api/v1/query_range", data=body)
        with urllib.request.urlopen(request, timeout=QUERY_TIMEOUT_S + 30) as answer:
            payload = json.loads(answer.read())
        if payload.get("status") != "success":
            raise RuntimeError(f"query failed: {payload.get('error')}: {expr}")
        result: list[dict[str, Any]] = payload["data"]["result"]
        return result
