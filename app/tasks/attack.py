"""Attack scoring task."""

from celery import shared_task

from app.services import attacks
from app.services.lifecycle import Delivery


@shared_task(name="srs.evaluate_attack", bind=True)
def evaluate_attack(self, submission_id: int) -> None:
    attacks.run_evaluation(submission_id, Delivery.of(self.request))
