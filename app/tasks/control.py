"""Housekeeping tasks: mail delivery (reset links, registration mails), the stale-submission sweeper, and a state
probe."""

from celery import shared_task

from app.services import competition, mail, maintenance, password_reset, registration


@shared_task(name="srs.send_mail", autoretry_for=(OSError,), retry_backoff=5, max_retries=5)
def send_mail(subject: str, recipients: list[str], text_body: str, html_body: str | None = None) -> None:
    mail.deliver(subject, recipients, text_body, html_body)


@shared_task(name=password_reset.RESET_TASK, autoretry_for=(OSError,), retry_backoff=5, max_retries=5)
def send_reset_link(email: str) -> None:
    password_reset.send_link_for(email)


@shared_task(name=registration.CONFIRM_TASK, autoretry_for=(OSError,), retry_backoff=5, max_retries=5)
def send_registration_mail(token: str) -> None:
    registration.send_mail_for(token)


@shared_task(name="srs.sweep_submissions")
def sweep_submissions() -> dict[str, int]:
    return maintenance.sweep()


@shared_task(name="srs.competition_state", ignore_result=False)
def competition_state() -> dict:
    """The state as the worker reads it from the database (used to check that web and workers agree)."""
    from flask import current_app

    return competition.state_as_dict(competition.get_state(), current_app.config)
