"""Competition parameters a defence is checked and split against, and the columns it must have."""

from dataclasses import dataclass

INTEGER_COLUMNS = ("cell_id", "rep", "direction_size")
FLOAT_COLUMNS = ("timestamp",)


@dataclass
class DefenceSettings:
    """Competition parameters a defence is checked and split against."""

    nb_classes: int = 100
    mean_nb_rep_per_class: int = 32
    deviation_nb_rep_per_class: int = 7
    rows_per_capture: int = 5
    nb_traces_to_classify: int = 300
    columns: tuple[str, ...] = ("cell_id", "rep", "direction_size", "timestamp")
    max_uncompressed_bytes: int = 2 * 1024**3
    # Real uploads hold 1-6 M rows (a 32 MB zip of real traces holds about 6.2 M); 20 M leaves a 3x margin
    # while bounding what a crafted file of short rows can make a worker hold (32 bytes a row: 640 MB).
    max_rows: int = 20_000_000
    # Plausibility against undefended traffic: a defence must still carry the pages (see plausibility.py).
    plausible_min_bytes_ratio: float = 0.5
    plausible_min_time_ratio: float = 0.5
    min_packet_bytes: int = 20
    # Share of each test set on which attack scores are shown while a round is open (see split.draw_public).
    public_score_fraction: float = 1 / 3

    def __post_init__(self) -> None:
        if self.nb_traces_to_classify < self.nb_classes:
            raise ValueError("nb_traces_to_classify must be at least nb_classes (one test capture per cell)")
        if not 0 < self.public_score_fraction <= 1:
            raise ValueError("public_score_fraction must be in (0, 1]")
        if self.max_rows < 1:
            raise ValueError("max_rows must be at least 1")
        if set(self.columns) != set(INTEGER_COLUMNS + FLOAT_COLUMNS):
            raise ValueError(f"columns must be {INTEGER_COLUMNS + FLOAT_COLUMNS} in any order")
