"""The competition's runtime state (round, phase, registration), kept in one database row."""

from __future__ import annotations

import dataclasses

import sqlalchemy as sa
from flask import g

from app.extensions import db
from app.models import CompetitionState, Phase
from app.services import audit
from app.services.settings import defence_settings

STATE_ID = 1


def get_state() -> CompetitionState:
    """The state row, created with defaults on first use; read once per request or task (kept on `g`)."""
    state = g.get("competition_state")
    if state is not None and state in db.session:
        return state
    state = _load_state()
    g.competition_state = state
    return state


def _load_state() -> CompetitionState:
    state = db.session.get(CompetitionState, STATE_ID)
    if state is None:
        state = CompetitionState(id=STATE_ID, current_round=0, phase=Phase.NONE, registration_open=True)
        db.session.add(state)
        try:
            db.session.commit()
        except sa.exc.IntegrityError:  # another process created it first
            db.session.rollback()
            state = db.session.get(CompetitionState, STATE_ID)
    return state


def parse_phase(value: str) -> Phase:
    """The Phase named by value ('Defence', 'attack', ...); ValueError naming the choices otherwise."""
    for phase in Phase:
        if str(value).strip().lower() == phase.value.lower():
            return phase
    choices = ", ".join(p.value for p in Phase)
    raise ValueError(f"Unknown phase {value!r}: choose one of {choices}.")


def update_state(
    *, phase: Phase | None = None, registration_open: bool | None = None, actor=None, note: str | None = None
) -> CompetitionState:
    """Change the phase and/or registration, record it in the audit log (actor: default the request's user), commit."""
    state = get_state()
    if phase is not None:
        audit.record(actor, "phase", {"phase": state.phase.value}, {"phase": phase.value}, note=note)
        state.phase = phase
    if registration_open is not None:
        audit.record(actor, "registration", {"open": state.registration_open}, {"open": registration_open}, note=note)
        state.registration_open = registration_open
    db.session.commit()
    return state


def state_as_dict(state: CompetitionState, config: dict) -> dict:
    return {
        "round": state.current_round,
        "phase": state.phase.value,
        "registration_open": state.registration_open,
        "nb_classes": config["NB_CLASSES"],
        "nb_traces_to_classify": config["NB_TRACES_TO_CLASSIFY"],
        # Everything a defence is checked against, so that `srs validate defence --settings` runs the same checks.
        "defence_settings": defence_settings_as_dict(config),
    }


def defence_settings_as_dict(config: dict) -> dict:
    """The worker's DefenceSettings as JSON (field names as keys, columns as a list)."""
    settings = dataclasses.asdict(defence_settings(config))
    settings["columns"] = list(settings["columns"])
    return settings
