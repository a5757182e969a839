"""Round tasks: the fresh split of a defence pinned again in a later round."""

from celery import shared_task

from app.services import round_sets


@shared_task(name="srs.prepare_round_set")
def prepare_round_set(round_set_id: int) -> None:
    round_sets.prepare(round_set_id)
