"""A one-off rewrite of stored sets into the layout students' scripts read right.

Sets written before the layout rule listed test captures in random order: the example attack, which pairs a
groupby("capture_id") with ids taken in file order, then scores at chance. The rows stay the same; only their
order changes, so ids, labels and scores already recorded stay valid.
"""

from __future__ import annotations

import zipfile
from typing import TYPE_CHECKING

import numpy as np
import sqlalchemy as sa

from app.extensions import db
from app.models import Defence
from app.storage import get_storage, scratch_dir

if TYPE_CHECKING:  # imported where used: this one-off rewrite is the only user of pandas in most processes
    import pandas as pd

# Sort keys per set: a stable sort keeps each capture's rows in the time order they were written in.
_ORDER = {"test": ["capture_id"], "train": ["cell_id", "rep"]}


def _in_order(frame: pd.DataFrame, keys: list[str]) -> bool:
    values = frame[keys].to_numpy()
    if len(values) < 2:
        return True
    diff = np.diff(values, axis=0)
    for column in range(diff.shape[1]):  # lexicographic: a later key may only fall where earlier ones rise
        earlier_equal = np.all(diff[:, :column] == 0, axis=1) if column else np.ones(len(diff), dtype=bool)
        if np.any(earlier_equal & (diff[:, column] < 0)):
            return False
    return True


def _rewrite(key: str, keys: list[str]) -> int | None:
    """Rewrite one stored set in order; its new size, or None when it was already in order."""
    storage = get_storage()
    with storage.local_path(key) as path, zipfile.ZipFile(path) as archive:
        member = archive.namelist()[0]
        with archive.open(member) as handle:
            import pandas as pd

            frame = pd.read_csv(handle)
    if _in_order(frame, keys):
        return None
    frame = frame.sort_values(keys, kind="stable")
    with scratch_dir("layout-") as work:
        target = work / "set.zip"
        with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(member, frame.to_csv(index=False))
        return storage.save(key, target, move=True)


def rewrite_sets() -> dict[str, int]:
    """Rewrite every stored train and test set not yet in the layout; drop the attack-set zips built from them.

    Returns counts: `rewritten` sets, `unchanged` sets (already in order).
    """
    counts = {"rewritten": 0, "unchanged": 0}
    for defence in db.session.scalars(sa.select(Defence).order_by(Defence.id)):
        for name, key in (("train", defence.train_key), ("test", defence.test_key)):
            size = _rewrite(key, _ORDER[name])
            if size is None:
                counts["unchanged"] += 1
                continue
            counts["rewritten"] += 1
            setattr(defence, f"{name}_size", size)
        db.session.commit()
    if counts["rewritten"]:
        get_storage().delete_prefix("attack_sets")  # rebuilt from the rewritten sets on the next download
    return counts
