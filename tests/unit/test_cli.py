"""The classify CLI: JSON Lines in, classified JSON Lines out, dead letters aside, no tracebacks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson

from tests.helpers import validator

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "worker", *args], input=stdin,
                          capture_output=True, cwd=ROOT, timeout=60, check=False)


LINES = b"\n".join([
    orjson.dumps({"failureCategory": "userValidation"}),
    b"{broken",
    b"",
    orjson.dumps({"records": [{"operationName": "Enrollment", "resultType": "Success",
                               "properties": {"FailureCategory": "Not Applicable"}},
                              {"operationName": "Enrollment", "resultType": "Fail",
                               "properties": {"FailureReason": "0x80180013"}}]}),
    b"\xff\xfe",
]) + b"\n"


def test_stdin_to_stdout_with_dead_letters_on_stderr() -> None:
    proc = run("classify", stdin=LINES)
    assert proc.returncode == 0
    events = [orjson.loads(line) for line in proc.stdout.splitlines()]
    assert [e["failureCategory"] for e in events] == ["userValidation",
                                                      "enrollmentRestrictionsEnforced"]
    for e in events:
        validator("classified-event").validate(e)
    err = proc.stderr.decode()
    assert "Traceback" not in err
    dead = [orjson.loads(line) for line in proc.stderr.splitlines() if line.startswith(b"{")]
    assert [d["errorClass"] for d in dead] == ["not_json", "not_utf8"]
    assert [d["source"]["offset"] for d in dead] == [2, 5]  # line numbers
    summary = orjson.loads(err.strip().splitlines()[-1].removeprefix("summary: "))
    assert summary == {"blank_lines": 1, "category.enrollmentRestrictionsEnforced": 1,
                       "category.userValidation": 1, "classified": 2, "dead_lettered": 2,
                       "skipped_success": 1}


def test_file_in_dead_letters_to_file(tmp_path: Path) -> None:
    src, dl = tmp_path / "in.jsonl", tmp_path / "dead.jsonl"
    src.write_bytes(LINES)
    proc = run("classify", str(src), "--dead-letters", str(dl))
    assert proc.returncode == 0
    assert len(proc.stdout.splitlines()) == 2
    dead = [orjson.loads(line) for line in dl.read_bytes().splitlines()]
    assert len(dead) == 2 and all(d["source"]["topic"] == str(src) for d in dead)


def test_missing_file_is_a_clear_error() -> None:
    proc = run("classify", "/nonexistent/input.jsonl")
    assert proc.returncode == 2
    assert b"cannot open /nonexistent/input.jsonl" in proc.stderr
    assert b"Traceback" not in proc.stderr


def test_no_command_prints_help_and_exits_2() -> None:
    proc = run()
    assert proc.returncode == 2 and b"classify" in proc.stderr


def test_an_installation_without_the_dev_tools_still_runs_and_explains_demo() -> None:
    # The container image installs the package without worker/dev (.dockerignore); hiding the
    # package in sys.modules does the same here (a copy would still find the editable install).
    code = ("import sys; sys.modules['worker.dev'] = None; from worker.cli import main; "
            "sys.exit(main(sys.argv[1:]))")
    for args, exit_code, said in ((["--version"], 0, b"python -m worker"),
                                  (["run", "--help"], 0, b"--bootstrap-servers"),
                                  (["demo"], 2, b"development tool")):
        proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, cwd=ROOT,
                              timeout=60, check=False)
        assert proc.returncode == exit_code, proc.stderr
        assert said in proc.stdout + proc.stderr and b"Traceback" not in proc.stderr
