"""Issue 8 wired: the reference of undefended traffic, overheads on every page, plausibility figures for staff."""

from __future__ import annotations

import html
import io
import re
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from werkzeug.datastructures import FileStorage

from app.extensions import db
from app.models import Defence, Phase, Reference, Submission, SubmissionKind, SubmissionStatus
from app.services import competition, defences, mail, references, uploads
from tests.conftest import SAMPLE_DEFENCE
from tests.factories import make_attack, make_defence, make_round, make_team, make_user


def text(response) -> str:
    body = re.sub(r"<[^>]+>", " ", response.get_data(as_text=True))
    return " ".join(html.unescape(body).split())


def zipped(frame: pd.DataFrame, member: str = "defence.csv") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(member, frame.to_csv(index=False))
    return buffer.getvalue()


def kb_copy() -> bytes:
    """The sample with sizes written in kB (rounded, never 0): a unit mistake the checks must catch."""
    frame = pd.read_csv(SAMPLE_DEFENCE)
    size = frame["direction_size"]
    frame["direction_size"] = np.sign(size) * np.maximum(1, (size.abs() / 1000).round()).astype(int)
    return zipped(frame, "kb.csv")


def small_reference(scale: float = 1.0) -> bytes:
    """A small defence-format file of 3 cells: enough for a reference (it only needs readable sizes)."""
    rows = [
        (cell, rep, sign * int(500 * scale), i * 0.1)
        for cell in (1, 2, 3)
        for rep in range(4)
        for i, sign in enumerate((1, -1, -1, -1, 1, -1, -1))
    ]
    return zipped(pd.DataFrame(rows, columns=["cell_id", "rep", "direction_size", "timestamp"]))


@pytest.fixture
def outbox(monkeypatch):
    sent = []
    monkeypatch.setattr(mail, "queue_mail", lambda s, r, t, h=None: sent.append((s, t, h)))
    return sent


def evaluate(user, body: bytes, name: str) -> Submission:
    """Upload through the upload service and run the worker's evaluation in this process."""
    submission = uploads.create_submission(SubmissionKind.DEFENCE, user, FileStorage(io.BytesIO(body), name))
    defences.run_evaluation(submission.id)
    db.session.expire_all()
    return db.session.get(Submission, submission.id)


def test_sample_shows_zero_overheads_everywhere_and_kb_copy_fails_plausibility(client, auth, alice, admin, outbox):
    competition.update_state(phase=Phase.DEFENCE)
    sample = evaluate(alice, SAMPLE_DEFENCE.read_bytes(), "sample.zip")
    assert sample.status is SubmissionStatus.SUCCEEDED, sample.error
    # The reference was measured lazily, once, from REFERENCE_TRACES (the sample itself by default).
    stored = db.session.scalars(sa.select(Reference)).all()
    assert len(stored) == 1 and stored[0].nb_cells == 100 and stored[0].created_by is None
    defence = db.session.scalar(sa.select(Defence).where(Defence.submission_id == sample.id))
    assert defence.reference_id == stored[0].id
    assert defence.overheads == {"bandwidth_in": 0.0, "bandwidth_out": 0.0, "bandwidth_total": 0.0, "time": 0.0}
    assert sample.results["utility_score"] == pytest.approx(5.730, abs=0.001)  # the original score is unchanged

    auth.login()
    page = text(client.get(f"/submissions/{sample.id}"))
    assert "Overheads against undefended traffic" in page
    assert "Bandwidth in Bandwidth out Bandwidth total Time 0.0 % 0.0 % 0.0 % 0.0 %" in page
    assert "0.0 %" in text(client.get("/team/al-bo"))
    api = client.get(f"/api/v1/submissions/{sample.id}").get_json()["results"]
    assert api["overheads"]["bandwidth_total"] == 0.0 and api["reference_id"] == stored[0].id
    assert len(api["overheads"]["per_cell"]) == 100
    assert api["overheads"]["per_cell"]["42"] == {
        "bandwidth_in": 0.0,
        "bandwidth_out": 0.0,
        "bandwidth_total": 0.0,
        "time": 0.0,
    }
    subject, mail_text, mail_html = outbox[-1]
    assert "accepted" in subject
    assert "bandwidth in 0.0 %, out 0.0 %, total 0.0 %; time 0.0 %" in mail_text
    assert "Overheads against undefended traffic" in mail_html and "0.0 %" in mail_html

    kb = evaluate(alice, kb_copy(), "kb.zip")
    assert kb.status is SubmissionStatus.FAILED
    assert "plausibility" in kb.error
    check = next(c for c in kb.results["checks"] if c["name"] == "plausibility")
    assert not check["passed"] and "kB" in check["message"] and "multiply by 1000" in check["message"]
    assert check["examples"] and check["examples"][0].startswith("cell ")
    assert db.session.scalar(sa.select(sa.func.count(Reference.id))) == 1  # never measured again per upload
    page = text(client.get(f"/submissions/{kb.id}"))
    assert "plausibility FAILED" in page and "sizes look like kB" in page
    assert "kB" in outbox[-1][1] and "refused" in outbox[-1][0]
    auth.logout()

    # Staff see the measured figures per cell of the failing defence.
    auth.login("admin")
    response = client.get(f"/admin/submissions/{kb.id}")
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert 'id="plausibility-figures"' in body
    figures = kb.results["plausibility_figures"]
    assert len(figures) == 100 and figures[0]["cell_id"] == 1
    first = figures[0]
    assert first["bytes_in_ratio"] < 0.01 and first["duration_ratio"] == pytest.approx(1.0)
    assert f"{first['reference_bytes_in']:,.0f}" in body and f"{first['bytes_in']:,.0f}" in body
    assert 'id="plausibility-figures"' not in client.get(f"/admin/submissions/{sample.id}").get_data(as_text=True)


def test_an_unreadable_reference_fails_the_upload_with_a_reason_and_no_defence(make_app, tmp_path, outbox):
    make_app(REFERENCE_TRACES=str(tmp_path / "missing.zip"))
    user = make_user("alice", team="al-bo")
    competition.update_state(phase=Phase.DEFENCE)
    submission = evaluate(user, SAMPLE_DEFENCE.read_bytes(), "sample.zip")
    assert submission.status is SubmissionStatus.FAILED
    assert "reference of undefended traffic is missing" in submission.error and "not judged" in submission.error
    assert db.session.scalar(sa.select(sa.func.count(Defence.id))) == 0


def test_staff_replace_the_reference_from_the_admin_page(client, auth, admin):
    auth.login("admin")
    page = text(client.get("/admin/reference"))
    assert "No reference yet" in page and "test_defence.csv.zip" in page
    first = small_reference()
    response = client.post(
        "/admin/reference",
        data={"file": (io.BytesIO(first), "undefended.zip")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 302
    page = text(client.get(response.headers["Location"]))
    assert "undefended.zip" in page and "3 cells, 12 captures" in page and "set by admin" in page
    current = references.current_reference()
    assert current.source == "undefended.zip" and current.created_by == "admin"
    medians = references.reference_medians(current)  # 5 packets of 500 bytes in, 2 out, per capture
    assert medians.bytes_in == (2500.0,) * 3 and medians.bytes_out == (1000.0,) * 3

    # A second file replaces it; the first stays stored (defences measured against it keep it).
    client.post(
        "/admin/reference",
        data={"file": (io.BytesIO(small_reference(2.0)), "second.zip")},
        content_type="multipart/form-data",
    )
    assert references.current_reference().source == "second.zip"
    assert [r.source for r in references.references()] == ["second.zip", "undefended.zip"]
    # Setting the first file again makes its stored row current, without a second row.
    client.post(
        "/admin/reference",
        data={"file": (io.BytesIO(first), "again.zip")},
        content_type="multipart/form-data",
    )
    assert references.current_reference().id == current.id
    assert db.session.scalar(sa.select(sa.func.count(Reference.id))) == 2


@pytest.mark.parametrize(
    ("body", "status", "expected"),
    [
        (b"cell_id,rep\n1,2\n", 422, "zip"),
        (zipped(pd.DataFrame({"cell_id": [1], "rep": [1], "direction_size": [0], "timestamp": [0.0]})), 422, "0"),
        (zipped(pd.DataFrame({"cell": [1], "rep": [1], "size": [10], "timestamp": [0.0]})), 422, "cell_id"),
        (b"", 422, "empty"),
    ],
    ids=["not a zip", "size zero", "wrong columns", "empty"],
)
def test_a_bad_reference_is_refused_with_its_reason_and_nothing_changes(client, auth, admin, body, status, expected):
    auth.login("admin")
    response = client.post(
        "/admin/reference", data={"file": (io.BytesIO(body), "bad.zip")}, content_type="multipart/form-data"
    )
    assert response.status_code == status
    assert expected in text(response)
    assert references.current_reference() is None


def test_students_cannot_see_or_set_the_reference(client, auth, alice):
    auth.login()
    assert client.get("/admin/reference").status_code == 403
    response = client.post(
        "/admin/reference", data={"file": (io.BytesIO(small_reference()), "r.zip")}, content_type="multipart/form-data"
    )
    assert response.status_code == 403 and references.current_reference() is None


def test_the_reference_form_needs_csrf_and_has_a_size_limit(make_app):
    app = make_app(WTF_CSRF_ENABLED=True, MAX_CONTENT_LENGTH=2048)
    make_user("admin", admin=True)
    client = app.test_client()
    client.post("/login", data={"username": "admin", "password": "secret-pw", "csrf_token": _token(client, "/login")})
    no_token = client.post(
        "/admin/reference",
        data={"file": (io.BytesIO(small_reference()), "r.zip")},
        content_type="multipart/form-data",
    )
    assert no_token.status_code == 400 and "security token" in no_token.get_data(as_text=True)
    too_large = client.post(
        "/admin/reference",
        data={"file": (io.BytesIO(b"x" * 4096), "r.zip"), "csrf_token": _token(client, "/admin/reference")},
        content_type="multipart/form-data",
    )
    assert too_large.status_code == 413
    assert references.current_reference() is None


def _token(client, path: str) -> str:
    return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', client.get(path).get_data(as_text=True))[1]


def test_set_reference_command_and_a_defence_keeps_its_reference(app, runner, tmp_path):
    old = references.set_reference(_write(tmp_path / "old.zip", small_reference()), source="old.zip", by="t")
    team = make_team("al-bo")
    defence = make_defence(team)
    defence.reference_id = old.id
    db.session.commit()
    result = runner.invoke(args=["set-reference", str(_write(tmp_path / "new.zip", small_reference(3.0)))])
    assert result.exit_code == 0, result.output
    assert "is now current" in result.output and "3 cells" in result.output
    db.session.expire_all()
    current = references.current_reference()
    assert current.source == "new.zip" and current.created_by == "cli"  # flask commands act as `cli`
    assert db.session.get(Defence, defence.id).reference_id == old.id
    bad = runner.invoke(args=["set-reference", str(_write(tmp_path / "bad.zip", b"not a zip"))])
    assert bad.exit_code != 0 and "zip" in bad.output
    assert references.current_reference().id == current.id


def _write(path: Path, body: bytes) -> Path:
    path.write_bytes(body)
    return path


def test_leaderboard_plots_the_bandwidth_overhead_on_request(client, auth, alice):
    cheap, costly, attacker = make_team("cheap"), make_team("costly"), alice.team
    for team, bandwidth, time in ((cheap, 12.5, 3.0), (costly, 240.0, 55.0)):
        defence = make_defence(team, utility_score=5.0)
        defence.overheads = {"bandwidth_in": 1.0, "bandwidth_out": 1.0, "bandwidth_total": bandwidth, "time": time}
    make_defence(attacker)  # measured before overheads existed: left out of the overhead plot
    db.session.commit()
    matches = make_round(1, [(attacker, cheap), (attacker, costly), (cheap, attacker)])
    for match, accuracy in zip(matches, (0.9, 0.6, 0.8), strict=True):
        make_attack(match, 0.95, accuracy=accuracy)  # the plot shows the best attacker's accuracy
    auth.login()
    default = text(client.get("/leaderboard/?round=1"))
    assert "Utility cost Privacy leakage" in default and "Bandwidth overhead" in default  # the axis link
    overhead = client.get("/leaderboard/?round=1&x=overhead")
    assert overhead.status_code == 200
    body = text(overhead)
    assert "Team Bandwidth overhead Time overhead Privacy leakage" in body
    assert "cheap +12.5 % +3.0 % 0.900" in body and "costly +240.0 % +55.0 % 0.600" in body
    assert "al-bo +" not in body
    assert "bandwidth overhead against privacy leakage" in overhead.get_data(as_text=True)
    assert client.get("/leaderboard/?round=1&x=bogus").status_code == 400


def _stored_set(key: str, frame: pd.DataFrame, tmp_path: Path) -> None:
    from app.storage import get_storage

    get_storage().save(key, _write(tmp_path / key.replace("/", "_"), zipped(frame, key.rsplit("/", 1)[-1][:-4])))


def _read_set(key: str) -> pd.DataFrame:
    from app.storage import get_storage

    with get_storage().open(key) as handle:
        return pd.read_csv(handle, compression="zip")


def test_rewrite_sets_puts_old_sets_in_the_layout_scripts_read_right(app, runner, tmp_path):
    from app.storage import get_storage

    defence = make_defence(make_team("al-bo"))
    defence.train_key, defence.test_key = "defences/1/r/team_1_train.csv.zip", "defences/1/r/team_1_test.csv.zip"
    db.session.commit()
    # As written before the layout rule: captures in random order, each capture's rows in time order.
    test = pd.DataFrame(
        {
            "capture_id": [907, 907, 15, 15, 15, 400],
            "direction_size": [100, -1500, 60, -700, 80, 90],
            "timestamp": [0.0, 0.5, 0.0, 0.25, 0.75, 0.0],
        }
    )
    train = pd.DataFrame(
        {
            "cell_id": [2, 2, 1, 1, 1, 2],
            "rep": [0, 0, 1, 1, 0, 1],
            "direction_size": [10, 20, 30, 40, 50, 60],
            "timestamp": [0.0, 1.0, 0.0, 1.0, 0.0, 0.0],
        }
    )
    _stored_set(defence.test_key, test, tmp_path)
    _stored_set(defence.train_key, train, tmp_path)
    _stored_set("attack_sets/round_1/team_9_sets.zip", test, tmp_path)

    result = runner.invoke(args=["rewrite-sets"])
    assert result.exit_code == 0, result.output
    assert "2 sets rewritten, 0 already in order" in result.output
    rewritten = _read_set(defence.test_key)
    assert rewritten["capture_id"].tolist() == [15, 15, 15, 400, 907, 907]
    assert rewritten["direction_size"].tolist() == [60, -700, 80, 90, 100, -1500]  # time order kept
    assert _read_set(defence.train_key)[["cell_id", "rep", "direction_size"]].values.tolist() == [
        [1, 0, 50],
        [1, 1, 30],
        [1, 1, 40],
        [2, 0, 10],
        [2, 0, 20],
        [2, 1, 60],
    ]
    assert not get_storage().exists("attack_sets/round_1/team_9_sets.zip")  # rebuilt on the next download
    db.session.expire_all()
    assert db.session.get(Defence, defence.id).test_size == get_storage().size(defence.test_key)
    again = runner.invoke(args=["rewrite-sets"])
    assert "0 sets rewritten, 2 already in order" in again.output
