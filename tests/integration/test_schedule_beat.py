"""The timeline applied by a real celery beat and worker; announcements mailed through the worker to aiosmtpd."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import timedelta

import pytest
from aiosmtpd.controller import Controller

from app import clock, create_app
from app.extensions import db
from app.models import Phase
from app.services import announcements, audit, competition, schedule
from tests.conftest import ROOT, free_port
from tests.factories import make_user
from tests.integration.conftest import MailBox, wait_for

pytestmark = pytest.mark.integration


def start_beat(stack, name: str) -> subprocess.Popen:
    log = (stack.base / f"beat-{name}.log").open("wb")
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "srs.celery",
            "beat",
            "--loglevel=info",
            "--schedule",
            str(stack.base / f"beat-{name}-schedule"),
        ],
        cwd=ROOT,
        env={**stack.env, "SCHEDULE_POLL_SECONDS": "1"},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def current_phase() -> Phase:
    db.session.expire_all()
    db.session.rollback()
    return competition.get_state().phase


@pytest.mark.both_databases  # two beats race for one action: the database's locking is the point
def test_two_real_beats_apply_a_phase_change_once_within_seconds(stack):
    competition.update_state(phase=Phase.DEFENCE, actor="tester")
    beats = [start_beat(stack, "a"), start_beat(stack, "b")]
    try:
        schedule.add("phase", "Attack", clock.now() + timedelta(seconds=3), actor="tester")
        assert current_phase() is Phase.DEFENCE
        wait_for(lambda: current_phase() is Phase.ATTACK, timeout=45, what="the beat to apply the phase change")
        wait_for(lambda: not schedule.pending(), timeout=10, what="the action to be marked applied")
    finally:
        for beat in beats:
            stop(beat)
    db.session.rollback()
    entries = [e for e in audit.last_entries("phase") if e.actor_name == "scheduler"]
    assert len(entries) == 1 and entries[0].after == {"phase": "Attack"}
    [row] = schedule.history()
    assert row.outcome == "applied" and row.applied_at - row.due_at < timedelta(seconds=60)


def test_an_announcement_is_mailed_to_every_student_through_the_worker(stack):
    for name in ("ana", "ben", "cy"):
        make_user(name, team=f"team-{name}")
    make_user("boss", admin=True)
    announcements.create(
        "Deadline moved", "The attack phase ends on Friday.", clock.now() + timedelta(days=1), actor="tester"
    )
    wait_for(lambda: len(stack.mailbox.messages) >= 3, timeout=60, what="three announcement mails")
    recipients = sorted(m["X-Envelope-To"] for m in stack.mailbox.messages)
    assert recipients == ["ana@example.org", "ben@example.org", "cy@example.org"]
    assert all(m["Subject"] == "[SRS] Deadline moved" for m in stack.mailbox.messages)


class RefusingMailBox(MailBox):
    """Refuses one address at RCPT time, like a server that does not know it."""

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        if address.startswith("ghost@"):
            return "550 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"


def test_a_refused_address_is_logged_and_the_others_still_get_the_mail(stack):
    box = RefusingMailBox()
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        app = create_app(
            "testing",
            **(stack.app.config | {"MAIL_SERVER": "127.0.0.1", "MAIL_PORT": port, "MAIL_SUPPRESS_SEND": False}),
        )
        with app.app_context():
            row = announcements.create("Hello", "Text.", clock.now() + timedelta(days=1), actor="tester")
            refused = announcements.send_batch(row.id, ["a@example.org", "ghost@example.org", "b@example.org"])
            db.session.remove()
    finally:
        controller.stop()
    assert refused == ["ghost@example.org"]
    assert sorted(m["X-Envelope-To"] for m in box.messages) == ["a@example.org", "b@example.org"]
