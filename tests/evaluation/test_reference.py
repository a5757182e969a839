"""Undefended reference, overheads and the plausibility check, on the real sample and on small uploads."""

import json
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.evaluation.defence import (
    CellMedians,
    DefenceSettings,
    DefenceTraces,
    cell_medians,
    check_plausibility,
    compute_overheads,
    compute_reference,
    evaluate_defence,
    group_captures,
    read_defence,
)
from app.evaluation.errors import ValidationError

from .test_defence import SAMPLE, SMALL, valid_rows, write_upload

DEFAULTS = DefenceSettings()
SLOW_PROPERTY = settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def sample():
    """The sample's traces grouped into captures, and its per-cell medians as the reference."""
    traces, _ = read_defence(SAMPLE, DEFAULTS)
    traces, captures = group_captures(traces)
    return traces, captures, compute_reference(SAMPLE, DEFAULTS)


def transformed(traces: DefenceTraces, size=None, timestamp=None) -> DefenceTraces:
    return DefenceTraces(
        traces.cell_id,
        traces.rep,
        traces.direction_size if size is None else size,
        traces.timestamp if timestamp is None else timestamp,
    )


def unzipped(path: Path) -> bytes:
    with zipfile.ZipFile(path) as archive:
        return archive.read(archive.namelist()[0])


def plausibility(traces: DefenceTraces, captures, reference: CellMedians, settings_=DEFAULTS):
    return check_plausibility(traces, cell_medians(traces, captures), reference, settings_)


# ---------------------------------------------------------------------------------------------- reference


def test_reference_survives_json(sample):
    _, _, reference = sample
    assert len(reference.cell_id) == 100 and sum(reference.nb_captures) == 3603
    assert CellMedians.from_dict(json.loads(json.dumps(reference.to_dict()))) == reference
    with pytest.raises(ValueError, match="lack duration"):
        CellMedians.from_dict({k: v for k, v in reference.to_dict().items() if k != "duration"})


def test_reference_medians_are_the_medians_of_each_cells_captures(sample):
    _, _, reference = sample
    frame = pd.read_csv(SAMPLE)
    cell = frame[frame.cell_id == 42]
    sent = cell[cell.direction_size > 0].groupby("rep").direction_size.sum()
    duration = cell.groupby("rep").timestamp.agg(lambda t: t.max() - t.min())
    index = reference.cell_id.index(42)
    assert reference.bytes_out[index] == pytest.approx(sent.median())
    assert reference.duration[index] == pytest.approx(duration.median())


def test_an_unreadable_reference_is_refused(tmp_path):
    with pytest.raises(ValidationError, match="The reference failed"):
        compute_reference(write_upload(tmp_path / "r.zip", text="a,b\n1,2\n"), DEFAULTS)


# ---------------------------------------------------------------------------------------------- overheads


def test_the_sample_against_itself_costs_nothing(sample):
    traces, captures, reference = sample
    overheads = compute_overheads(cell_medians(traces, captures), reference)
    assert (overheads.bandwidth_in, overheads.bandwidth_out, overheads.bandwidth_total, overheads.time) == (0, 0, 0, 0)
    assert set(overheads.per_cell) == set(range(1, 101))
    assert overheads.per_cell[7] == {"bandwidth_in": 0.0, "bandwidth_out": 0.0, "bandwidth_total": 0.0, "time": 0.0}


def test_overheads_are_medians_over_cells_of_relative_costs(sample):
    traces, captures, reference = sample
    padded = np.sign(traces.direction_size) * 1500  # every packet padded to a full frame
    slow = traces.timestamp * np.where(traces.cell_id <= 60, 1.5, 1.0)  # 60 cells take 50 % longer
    overheads = compute_overheads(cell_medians(transformed(traces, padded, slow), captures), reference)
    assert overheads.time == pytest.approx(50.0)
    assert overheads.per_cell[80]["time"] == pytest.approx(0.0)
    frame = pd.read_csv(SAMPLE)
    total = frame.direction_size.abs().groupby([frame.cell_id, frame.rep]).agg(["sum", "size"])
    per_cell = (total["size"] * 1500).groupby("cell_id").median() / total["sum"].groupby("cell_id").median() - 1
    assert overheads.bandwidth_total == pytest.approx(100 * per_cell.median())
    assert overheads.bandwidth_total > 0 and overheads.bandwidth_in > 0 and overheads.bandwidth_out > 0


# ---------------------------------------------------------------------------------------------- plausibility


def test_the_sample_and_honest_defences_are_plausible(sample):
    traces, captures, reference = sample
    assert plausibility(traces, captures, reference).passed
    padded = np.sign(traces.direction_size) * 1500
    assert plausibility(transformed(traces, size=padded), captures, reference).passed
    assert plausibility(transformed(traces, timestamp=traces.timestamp * 2.5), captures, reference).passed


def test_dummy_packets_keep_a_defence_plausible(sample):
    traces, _, reference = sample
    rng = np.random.default_rng(3)
    extra = rng.random(len(traces)) < 0.3  # a dummy packet after 30 % of the packets
    rows = np.sort(np.concatenate((np.arange(len(traces)), np.flatnonzero(extra))))
    size = traces.direction_size[rows].copy()
    size[np.flatnonzero(np.diff(rows) == 0) + 1] = -1500  # the copies become full-size dummies
    dummies = DefenceTraces(traces.cell_id[rows], traces.rep[rows], size, traces.timestamp[rows])
    dummies, captures = group_captures(dummies)
    assert plausibility(dummies, captures, reference).passed


def test_sizes_in_kilobytes_fail_with_the_likely_cause(sample):
    traces, captures, reference = sample
    kilobytes = np.sign(traces.direction_size) * np.maximum(1, np.round(np.abs(traces.direction_size) / 1000))
    check = plausibility(transformed(traces, size=kilobytes.astype(np.int64)), captures, reference)
    assert not check.passed
    assert "bytes received are below 50 % of undefended traffic in 100 of 100 cells" in check.message
    assert "sizes look like kB: multiply by 1000" in check.message
    assert len(check.examples) == 5 and check.examples[0].startswith("cell ")


def test_crafted_one_byte_packets_fail(sample):
    """Six 1-byte packets per capture, timed so the product of medians is just above 1 (utility in the thousands)."""
    _, _, reference = sample
    cells = np.repeat(np.arange(1, 101), 36 * 6)
    reps = np.repeat(np.arange(100 * 36), 6)
    size = np.tile([1, -1, 1, -1, 1, -1], 100 * 36)
    timestamp = np.tile(np.linspace(0, 0.12, 6), 100 * 36)
    crafted, captures = group_captures(DefenceTraces(cells, reps, size, timestamp))
    check = plausibility(crafted, captures, reference)
    assert not check.passed
    assert "100 % of the packets (21,600) are smaller than 20 bytes" in check.message
    assert "duration is below 50 %" in check.message
    assert "an IPv4 + TCP header alone is 40 bytes" in check.message


def test_millisecond_scale_mistakes_fail(sample):
    traces, captures, reference = sample
    check = plausibility(transformed(traces, timestamp=traces.timestamp / 1000), captures, reference)
    assert not check.passed
    assert "durations look 1000 times too short" in check.message


@SLOW_PROPERTY
@given(seed=st.integers(0, 2**32 - 1), most=st.integers(0, 1500), share=st.floats(0, 1))
def test_any_padding_passes_and_the_same_scaled_to_kilobytes_fails(sample, seed, most, share):
    traces, captures, reference = sample
    rng = np.random.default_rng(seed)
    padding = rng.integers(0, most + 1, len(traces)) * (rng.random(len(traces)) < share)
    padded = np.sign(traces.direction_size) * np.minimum(np.abs(traces.direction_size) + padding, 65535)
    assert plausibility(transformed(traces, size=padded), captures, reference).passed
    scaled = np.sign(padded) * np.maximum(1, np.round(np.abs(padded) / 1000)).astype(np.int64)
    assert not plausibility(transformed(traces, size=scaled), captures, reference).passed


# ---------------------------------------------------------------------------------------------- the pipeline


def test_evaluation_with_a_reference_checks_plausibility_and_reports_overheads(tmp_path, sample):
    _, _, reference = sample
    result = evaluate_defence(SAMPLE, tmp_path, team_id=1, settings=DEFAULTS, seed=2, reference=reference)
    names = [check.name for check in result.checks]
    assert names.index("plausibility") == names.index("utility") - 1
    assert result.utility_score == pytest.approx(5.730, abs=0.001), "the utility score is unchanged"
    summary = json.loads(json.dumps(result.to_dict()))
    assert summary["overheads"]["bandwidth_total"] == 0.0 and summary["overheads"]["time"] == 0.0
    assert summary["overheads"]["per_cell"]["100"]["bandwidth_in"] == 0.0


def test_evaluation_without_a_reference_runs_neither(tmp_path):
    result = evaluate_defence(
        write_upload(tmp_path / "d.zip", valid_rows()), tmp_path, team_id=1, settings=SMALL, seed=1
    )
    assert "plausibility" not in [check.name for check in result.checks]
    assert result.to_dict()["overheads"] is None


def test_an_implausible_upload_is_refused_before_the_utility_and_writes_nothing(tmp_path):
    rows = valid_rows()
    reference = compute_reference(write_upload(tmp_path / "r.zip", rows), SMALL)
    tiny = [(cell, rep, int(np.sign(size)), time) for cell, rep, size, time in rows]
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(ValidationError) as caught:
        evaluate_defence(
            write_upload(tmp_path / "d.zip", tiny), out, team_id=1, settings=SMALL, seed=1, reference=reference
        )
    assert [check.name for check in caught.value.checks if not check.passed] == ["plausibility"]
    assert "utility" not in [check.name for check in caught.value.checks]
    assert "failed 1 check (plausibility)" in caught.value.message
    assert list(out.iterdir()) == []


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_row_order_never_changes_any_result(seed):
    rows = valid_rows({1: 3, 2: 4, 3: 2, 4: 3})
    shuffled = [rows[i] for i in np.random.default_rng(seed).permutation(len(rows))]
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        reference = compute_reference(write_upload(work / "r.zip", rows), SMALL)
        results, files = [], []
        for name, order in (("a", rows), ("b", shuffled)):
            (work / name).mkdir()
            result = evaluate_defence(
                write_upload(work / f"{name}.zip", order),
                work / name,
                team_id=1,
                settings=SMALL,
                seed=5,
                reference=reference,
            )
            results.append(result.to_dict())
            files.append([unzipped(path) for path in (result.train_path, result.test_path, result.verification_path)])
        assert results[0] == results[1]
        assert compute_reference(work / "b.zip", SMALL) == reference
    assert files[0] == files[1]


def test_cells_without_a_reference_figure_are_left_out_and_none_stays_json():
    reference = CellMedians((1, 2), (100.0, 0.0), (50.0, 0.0), (150.0, 0.0), (2.0, 0.0), (3, 3))
    defence = CellMedians(
        (1, 2, 3), (150.0, 10.0, 1.0), (50.0, 10.0, 1.0), (200.0, 20.0, 2.0), (0.0, 1.0, 1.0), (3, 3, 3)
    )
    overheads = compute_overheads(defence, reference)
    assert overheads.bandwidth_in == pytest.approx(50.0)
    assert overheads.time == pytest.approx(-100.0)
    assert overheads.per_cell[2] == {"bandwidth_in": None, "bandwidth_out": None, "bandwidth_total": None, "time": None}
    assert 3 not in overheads.per_cell, "only cells both have count"
    zero = CellMedians((1,), (0.0,), (0.0,), (0.0,), (0.0,), (3,))
    assert compute_overheads(defence, zero).to_dict()["bandwidth_total"] is None
    json.dumps(compute_overheads(defence, zero).to_dict(), allow_nan=False)
    with pytest.raises(ValueError, match="no cell in common"):
        compute_overheads(defence, CellMedians((9,), (1.0,), (1.0,), (2.0,), (1.0,), (3,)))
