"""Write the client's bundled reference: the sample's per-cell medians, as the worker computes them.

Run it after changing the sample or how medians are computed (tests/client/test_validate_defence.py fails until
the bundled file matches again):

    python scripts/make_client_reference.py
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "attack_defence_test_scripts" / "test_defence.csv.zip"
BUNDLED = ROOT / "client" / "srs_client" / "reference.json"


def reference_document(sample: Path = SAMPLE) -> dict:
    """The bundled file's content: where the medians come from, and the medians (CellMedians.to_dict())."""
    sys.path.insert(0, str(ROOT))
    from app.evaluation.defence import DefenceSettings, compute_reference

    medians = compute_reference(sample, DefenceSettings())
    return {
        "source": sample.relative_to(ROOT).as_posix(),
        "sha256": hashlib.sha256(sample.read_bytes()).hexdigest(),
        "medians": medians.to_dict(),
    }


def main() -> None:
    BUNDLED.write_text(json.dumps(reference_document(), separators=(",", ":")) + "\n", encoding="utf-8")
    print(f"wrote {BUNDLED.relative_to(ROOT)} ({BUNDLED.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
