"""The benchmark, run small: every generated invoice goes through its lifecycle to an end."""

import json
from pathlib import Path

import pytest

from arflow_local import bench


def test_a_small_benchmark_ends_every_lifecycle(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a ledger of eight invoices, and no import table (it starts dozens of interpreters)
    arguments = ["--invoices", "8", "--out", str(tmp_path), "--import-runs", "0"]

    # When the benchmark runs it
    exit_code = bench.main(arguments)

    # Then it succeeds, and the timeline it wrote ends each of the eight lifecycles once
    assert exit_code == 0
    timeline = [
        json.loads(line)
        for line in (tmp_path / "timeline.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    ended = [e["invoice_id"] for e in timeline if e["event"] == "lifecycle_ended"]
    assert len(ended) == 8
    assert len(set(ended)) == 8
    assert "every lifecycle ended  yes (8 of 8)" in capsys.readouterr().out
