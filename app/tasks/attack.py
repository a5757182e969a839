"""Attack scoring task."""

from celery import shared_task

from app.services import attacks


@shared_task(name="srs.evaluate_attack")
def evaluate_attack(submission_id: int) -> None:
    attacks.run_evaluation(submission_id)
