"""A short accounting soak (bench/soak.py runs the long one): faults at random for a few
seconds, and every event published is printed once or falls inside an announced gap."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.soak import FAULTS, SoakConfig, run_soak


# A shed subscribe reply costs 20 s by design (10 s, sent again, 10 s more), and a stall may
# land on one: the suite's 60 s guard would cut a run that is only slow, not stuck. The
# soak's own waits are bounded (30 s a stall, 90 s to settle, 60 s for the last event).
@pytest.mark.soak
@pytest.mark.timeout(240)
def test_every_event_is_printed_once_or_inside_an_announced_gap(tmp_path: Path) -> None:
    config = SoakConfig(seconds=12.0, rate=200.0, mean_fault_interval=1.0, seed=5)
    report = run_soak(config, tmp_path)
    summary = "\n".join([*report.lines(), *report.post_mortem(), report.stderr])
    assert set(report.faults) == set(FAULTS), summary  # every kind of fault came up
    assert report.gaps > 0 and report.printed > 0, summary
    assert report.duplicates == 0, summary
    assert report.unaccounted == [], summary
