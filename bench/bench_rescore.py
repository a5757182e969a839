"""Benchmark rescoring a whole round next to the first scoring of the same uploads, measured in the same run.

Run: python bench/bench_rescore.py [--teams 150] [--captures 300]

Builds a round of TEAMS teams (MATCHES_PER_TEAM targets each, as generated), one verification set of
CAPTURES captures per defender and one attack upload per attacker covering all its targets, in a temporary
SQLite database and folder. The reference is the platform's own scoring of those uploads (the lifecycle run
a worker does, provenance included); the figure is `rescore_round` recomputing every score of the round, as
the admin page and `flask rescore` do. Rescoring reads and scores the same files, so it should take about as
long as the first scoring; the page runs it inside the web request, whose limit is SRS_WEB_TIMEOUT (120 s).
"""

import argparse
import io
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

WEB_TIMEOUT_SECONDS = 120.0


def zipped(frame: pd.DataFrame, member: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(member, frame.to_csv(index=False))
    return buffer.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teams", type=int, default=150)
    parser.add_argument("--captures", type=int, default=300)
    args = parser.parse_args()

    from app import create_app
    from app.evaluation.attack import proba_columns
    from app.extensions import db
    from app.models import Defence, Submission, SubmissionKind, SubmissionStatus, Team, User
    from app.services import attacks, lifecycle, rescore, rounds
    from app.storage import get_storage

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        app = create_app(
            "testing",
            SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp / 'bench.db'}",
            UPLOAD_FOLDER=str(tmp / "uploads"),
            TEMPORARY_UPLOAD_FOLDER=str(tmp / "tmp"),
            CELERY_BROKER_URL="memory://",
        )
        with app.app_context():
            db.create_all()
            lifecycle.mail.mail_team = lambda *a, **k: None  # no mail server here
            nb_classes = app.config["NB_CLASSES"]
            storage, rng = get_storage(), np.random.default_rng(0)

            def store(key: str, content: bytes) -> str:
                path = tmp / "staging"
                path.write_bytes(content)
                storage.save(key, path, move=True)
                return key

            captures = {}
            for i in range(args.teams):
                team = Team(name=f"team-{i:03d}")
                user = User(username=f"u{i}", username_canonical=f"u{i}", email=f"u{i}@example.org", password_hash="x")
                user.team = team
                db.session.add_all([team, user])
                db.session.flush()
                defence_upload = Submission(
                    kind=SubmissionKind.DEFENCE,
                    team_id=team.id,
                    user_id=user.id,
                    original_filename="d.zip",
                    sha256="0" * 64,
                    size=1,
                    status=SubmissionStatus.SUCCEEDED,
                )
                db.session.add(defence_upload)
                db.session.flush()
                ids = rng.permutation(10 * args.captures)[: args.captures] + 1
                cells = rng.integers(1, nb_classes + 1, args.captures)
                captures[team.id] = (ids, cells)
                key = store(
                    f"defences/{defence_upload.id}/r/verification.csv.zip",
                    zipped(pd.DataFrame({"capture_id": ids, "cell_id": cells}), "verification.csv"),
                )
                db.session.add(
                    Defence(
                        team_id=team.id,
                        submission_id=defence_upload.id,
                        utility_score=1.0,
                        utility={},
                        seed=i,
                        train_key=key,
                        test_key=key,
                        verification_key=key,
                    )
                )
            db.session.commit()
            rounds.generate_round(1, app.config["MATCHES_PER_TEAM"])

            uploads = []
            for team in db.session.scalars(db.select(Team).order_by(Team.id)):
                frames = []
                for match in attacks.targets(team.id, 1):
                    ids, cells = captures[match.defender_team_id]
                    proba = rng.random((len(ids), nb_classes))
                    proba[np.arange(len(ids)), cells - 1] += 20 * rng.random(len(ids))
                    proba /= proba.sum(axis=1, keepdims=True)
                    frame = pd.DataFrame(proba, columns=proba_columns(nb_classes))
                    frame.insert(0, "capture_id", ids)
                    frame.insert(0, "team_id", match.defender_team_id)
                    frames.append(frame)
                content = zipped(pd.concat(frames), "attack.csv")
                submission = Submission(
                    kind=SubmissionKind.ATTACK,
                    team_id=team.id,
                    user_id=team.members[0].id,
                    round=1,
                    original_filename="a.zip",
                    sha256="0" * 64,
                    size=len(content),
                )
                db.session.add(submission)
                db.session.flush()
                submission.file_key = store(f"submissions/{submission.id}/upload.zip", content)
                uploads.append(submission.id)
            db.session.commit()

            start = time.perf_counter()
            for submission_id in uploads:
                attacks.run_evaluation(submission_id)
            first = time.perf_counter() - start
            failed = db.session.scalar(
                db.select(db.func.count(Submission.id)).where(Submission.status != SubmissionStatus.SUCCEEDED)
            )
            if failed:
                sys.exit(f"{failed} uploads were not scored: the bench data is wrong")

            start = time.perf_counter()
            report = rescore.rescore_round(1)
            again = time.perf_counter() - start
            db.engine.dispose()

    print(f"round of {args.teams} teams, {len(report.lines)} scores from {len(uploads)} uploads")
    print(f"first scoring (reference, same run): {first:6.1f} s")
    print(f"rescore of the round:                {again:6.1f} s  ({again / first:.2f} x the first scoring)")
    print(f"web request limit (SRS_WEB_TIMEOUT): {WEB_TIMEOUT_SECONDS:6.1f} s")
    print(f"differences found: {len(report.differences)} (0 expected)")
    if report.differences:
        sys.exit(1)


if __name__ == "__main__":
    main()
