"""Announcements: a banner for every logged-in user until it expires, and an e-mail to every student."""

from __future__ import annotations

import logging
import smtplib
from datetime import datetime

import sqlalchemy as sa
from flask import current_app
from flask_mail import Message

from app import clock
from app.extensions import db, mail
from app.models import Announcement, User
from app.services import audit
from app.services.errors import Invalid, NotFound
from app.services.queue import send_task

log = logging.getLogger(__name__)

TITLE_MAX, BODY_MAX = 120, 5000


class AnnouncementError(Invalid):
    """An announcement that cannot be saved."""


def active() -> list[Announcement]:
    """Announcements not expired yet, newest first."""
    query = sa.select(Announcement).where(Announcement.expires_at > clock.now())
    return list(db.session.scalars(query.order_by(Announcement.created_at.desc(), Announcement.id.desc())))


def recent(limit: int = 50) -> list[Announcement]:
    query = sa.select(Announcement).order_by(Announcement.created_at.desc(), Announcement.id.desc())
    return list(db.session.scalars(query.limit(limit)))


def create(title: str, body: str, expires_at: datetime, actor=None) -> Announcement:
    """Save an announcement, record it, commit, then queue its e-mail to every student."""
    title, body = (title or "").strip(), (body or "").strip()
    if not title or not body:
        raise AnnouncementError("An announcement needs a title and a text.")
    if len(title) > TITLE_MAX or len(body) > BODY_MAX:
        raise AnnouncementError(f"Keep the title under {TITLE_MAX} and the text under {BODY_MAX} characters.")
    if expires_at <= clock.now():
        raise AnnouncementError("The expiry is in the past: choose a later date (UTC).")
    _, author = audit._actor(actor)
    row = Announcement(title=title, body=body, expires_at=expires_at, author=author, created_at=clock.now())
    db.session.add(row)
    db.session.flush()
    audit.record(
        actor,
        "announcement",
        None,
        {"title": title, "expires_at": expires_at.isoformat()},
        target=f"announcement {row.id}",
    )
    db.session.commit()
    try:
        send_task("srs.mail_announcement", [row.id])
    except Exception as exc:  # the banner is up; the mail is the part that cannot go out now
        log.warning("could not enqueue the e-mail of announcement %s: %s", row.id, exc)
    return row


def expire(announcement_id: int, actor=None) -> None:
    """End an announcement now (its banner disappears) and commit."""
    row = db.session.get(Announcement, announcement_id)
    if row is None:
        raise NotFound(f"There is no announcement {announcement_id}.")
    before = row.expires_at.isoformat()
    row.expires_at = clock.now()
    audit.record(
        actor,
        "announcement-expire",
        {"expires_at": before},
        {"expires_at": row.expires_at.isoformat()},
        target=f"announcement {row.id}",
    )
    db.session.commit()


def student_addresses() -> list[str]:
    return list(db.session.scalars(sa.select(User.email).where(User.is_admin.is_(False)).order_by(User.id)))


def queue_batches(announcement_id: int) -> int:
    """Split the students' addresses into batches of ANNOUNCEMENT_MAIL_BATCH, one mail task each."""
    size = max(1, current_app.config["ANNOUNCEMENT_MAIL_BATCH"])
    addresses = student_addresses()
    batches = [addresses[i : i + size] for i in range(0, len(addresses), size)]
    for batch in batches:
        send_task("srs.mail_announcement_batch", [announcement_id, batch])
    return len(batches)


def send_batch(announcement_id: int, recipients: list[str]) -> list[str]:
    """Mail each recipient separately (no one sees the others' addresses); returns the refused addresses.

    A refused address is logged and skipped; a server that cannot be reached raises OSError (the task retries).
    """
    row = db.session.get(Announcement, announcement_id)
    if row is None:
        return []
    subject = f"[SRS] {row.title}"
    text = f"{row.body}\n\n— {row.author}, Secret Race Strolling ({current_app.config['SITE_URL']})\n"
    if not current_app.config.get("MAIL_SERVER"):
        log.info("mail (no MAIL_SERVER set) to %s: %s\n%s", ", ".join(recipients), subject, text)
        return []
    refused = []
    with mail.connect() as connection:
        for address in recipients:
            try:
                connection.send(Message(subject=subject, recipients=[address], body=text))
            except (smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as exc:
                log.warning("announcement %s: could not mail %s: %s", announcement_id, address, exc)
                refused.append(address)
    return refused
