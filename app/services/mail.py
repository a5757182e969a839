"""E-mail: composed here, sent by the send_mail task (logged instead when no MAIL_SERVER is set)."""

from __future__ import annotations

import logging

from flask import current_app, render_template
from flask_mail import Message

from app.extensions import mail
from app.models import Team
from app.services.queue import send_task

log = logging.getLogger(__name__)


def deliver(subject: str, recipients: list[str], text_body: str, html_body: str | None = None) -> None:
    """Send now (inside the worker), or write the message to the log when no mail server is configured."""
    if not current_app.config.get("MAIL_SERVER"):
        log.info("mail (no MAIL_SERVER set) to %s: %s\n%s", ", ".join(recipients), subject, text_body)
        return
    msg = Message(subject=subject, recipients=recipients, body=text_body, html=html_body)
    mail.send(msg)


def queue_mail(subject: str, recipients: list[str], text_body: str, html_body: str | None = None) -> None:
    """Send in the background; if the broker is down, send from this process rather than lose the message."""
    try:
        send_task("srs.send_mail", [subject, recipients, text_body, html_body])
    except Exception as exc:
        log.warning("could not enqueue mail, sending inline: %s", exc)
        deliver(subject, recipients, text_body, html_body)


def mail_team(team: Team, subject: str, template: str, **context) -> None:
    """Mail every member of team the text and HTML renderings of templates/email/<template>."""
    recipients = [m.email for m in team.members]
    if not recipients:
        return
    # Workers have no request: render as if under SITE_URL so that links in the mail are absolute and right.
    with current_app.test_request_context(base_url=current_app.config["SITE_URL"]):
        text = render_template(f"email/{template}.txt", team=team, **context)
        html = render_template(f"email/{template}.html", team=team, **context)
    queue_mail(subject, recipients, text, html)
