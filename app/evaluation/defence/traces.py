"""Typed columns of a defence upload, with the file line of every row."""

from dataclasses import dataclass

import numpy as np


@dataclass
class DefenceTraces:
    """Typed columns of a defence upload; `line_numbers[i]` is the file line of row i (None: i + 2)."""

    cell_id: np.ndarray
    rep: np.ndarray
    direction_size: np.ndarray
    timestamp: np.ndarray
    line_numbers: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.cell_id = np.asarray(self.cell_id, dtype=np.int64)
        self.rep = np.asarray(self.rep, dtype=np.int64)
        self.direction_size = np.asarray(self.direction_size, dtype=np.int64)
        self.timestamp = np.asarray(self.timestamp, dtype=np.float64)

    def __len__(self) -> int:
        return len(self.cell_id)

    def line(self, row: int) -> int:
        """Line of the CSV file holding data row `row` (0-based), the header being line 1."""
        return int(self.line_numbers[row]) if self.line_numbers is not None else int(row) + 2

    def take(self, order: np.ndarray) -> "DefenceTraces":
        lines = self.line_numbers[order] if self.line_numbers is not None else order + 2
        return DefenceTraces(
            self.cell_id[order], self.rep[order], self.direction_size[order], self.timestamp[order], lines
        )
