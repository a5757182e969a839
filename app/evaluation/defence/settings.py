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

    def __post_init__(self) -> None:
        if self.nb_traces_to_classify < self.nb_classes:
            raise ValueError("nb_traces_to_classify must be at least nb_classes (one test capture per cell)")
        if set(self.columns) != set(INTEGER_COLUMNS + FLOAT_COLUMNS):
            raise ValueError(f"columns must be {INTEGER_COLUMNS + FLOAT_COLUMNS} in any order")
