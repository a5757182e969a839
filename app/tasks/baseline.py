"""Baseline attack task, on its own queue (CELERY_TASK_QUEUE + ".baseline") so it never delays validation."""

from celery import shared_task

from app.services import baseline
from app.services.lifecycle import Delivery


@shared_task(name=baseline.TASK_NAME, bind=True)
def run_baseline(self, defence_id: int) -> None:
    baseline.run(defence_id, Delivery.of(self.request))
