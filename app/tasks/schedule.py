"""Beat-driven tasks of the timeline and announcements (thin: ids in, services do the work)."""

from celery import shared_task

from app.services import announcements, schedule


@shared_task(name="srs.apply_schedule")
def apply_schedule() -> list[int]:
    return schedule.apply_due()


@shared_task(name="srs.mail_announcement")
def mail_announcement(announcement_id: int) -> int:
    return announcements.queue_batches(announcement_id)


@shared_task(name="srs.mail_announcement_batch", autoretry_for=(OSError,), retry_backoff=5, max_retries=5)
def mail_announcement_batch(announcement_id: int, recipients: list[str]) -> list[str]:
    return announcements.send_batch(announcement_id, recipients)
