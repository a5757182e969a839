"""Defence evaluation task."""

from celery import shared_task

from app.services import defences


@shared_task(name="srs.evaluate_defence")
def evaluate_defence(submission_id: int) -> None:
    defences.run_evaluation(submission_id)
