"""E-mail: composed here, sent by the send_mail task (logged instead when no MAIL_SERVER is set)."""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

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


def site_url(endpoint: str, **values) -> str:
    """An absolute link to endpoint under SITE_URL, built without a request (workers have none)."""
    site = urlsplit(current_app.config["SITE_URL"])
    adapter = current_app.url_map.bind(site.netloc, script_name=site.path or "/", url_scheme=site.scheme or "http")
    return adapter.build(endpoint, values, force_external=True)


def mail_team(team: Team, subject: str, template: str, **context) -> None:
    """Mail every member of team the text and HTML renderings of templates/email/<template>."""
    recipients = [m.email for m in team.members]
    if not recipients:
        return
    text = render_template(f"email/{template}.txt", team=team, site_url=site_url, **context)
    html = render_template(f"email/{template}.html", team=team, site_url=site_url, **context)
    queue_mail(subject, recipients, text, html)
