"""Settings read from the app's configuration, shared by the features that need them.

A leaf module: it imports no feature module, so defences, references and the competition state can all use it.
"""

from __future__ import annotations

from app.evaluation.defence import DefenceSettings


def defence_settings(config: dict) -> DefenceSettings:
    """The settings the worker checks defences against (GET /api/v1/competition shows them to `srs validate`)."""
    return DefenceSettings(
        nb_classes=config["NB_CLASSES"],
        mean_nb_rep_per_class=config["MEAN_NB_REP_PER_CLASS"],
        deviation_nb_rep_per_class=config["DEVIATION_NB_REP_PER_CLASS"],
        rows_per_capture=config["ROWS_PER_CAPTURE"],
        nb_traces_to_classify=config["NB_TRACES_TO_CLASSIFY"],
        columns=tuple(config["DEFENCE_COLUMNS"]),
        max_uncompressed_bytes=config["MAX_UNCOMPRESSED_BYTES"],
        max_rows=config["MAX_ROWS"],
        plausible_min_bytes_ratio=config["PLAUSIBLE_MIN_BYTES_RATIO"],
        plausible_min_time_ratio=config["PLAUSIBLE_MIN_TIME_RATIO"],
        min_packet_bytes=config["MIN_PACKET_BYTES"],
        public_score_fraction=config["PUBLIC_SCORE_FRACTION"],
    )
