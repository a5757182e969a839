"""Defence evaluation task."""

from celery import shared_task

from app.services import defences
from app.services.lifecycle import Delivery


@shared_task(name="srs.evaluate_defence", bind=True)
def evaluate_defence(self, submission_id: int) -> None:
    defences.run_evaluation(submission_id, Delivery.of(self.request))
