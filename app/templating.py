"""Template context: the competition banner on every page, and a few filters."""

from __future__ import annotations

from flask import Flask

from app.services import competition, scores


def human_size(n: int | None) -> str:
    if n is None:
        return "-"
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def percent(value: float | None) -> str:
    """An overhead in percent, signed: '+48.2 %', '0.0 %' (no '-0.0'), '-' when not measured."""
    if value is None:
        return "-"
    return "0.0 %" if abs(value) < 0.05 else f"{value:+.1f} %"


def init_app(app: Flask) -> None:
    @app.context_processor
    def competition_banner():
        return {"competition": competition.get_state()}

    app.jinja_env.filters["human_size"] = human_size
    app.jinja_env.filters["percent"] = percent
    # Which captures an attack's final scores count: "private subset (200 captures)", or "all captures" (old scorer).
    app.jinja_env.filters["final_subset"] = lambda attack: scores.subset_label(*scores.final_subset(attack))
    app.jinja_env.filters["fmt"] = lambda v, spec=".3f": "-" if v is None else format(v, spec)
