"""Charts drawn for the pages: the leaderboard's utility/privacy trade-off as an accessible SVG.

Drawing lives here, out of app.evaluation, which computes the numbers (costs, leakages, the Pareto front).
"""

from __future__ import annotations

import math
import numbers
from xml.sax.saxutils import escape

_WIDTH, _HEIGHT = 720, 480
_LEFT, _RIGHT, _TOP, _BOTTOM = 80, 30, 50, 70
_X_LABEL = "Utility cost (lower is better)"
_Y_LABEL = "Privacy leakage: best attacker's accuracy"


def _ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering [low, high]."""
    span = high - low
    raw = span / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.ceil(low / step - 1e-9) * step
    return [first + i * step for i in range(int((high - first) / step + 1e-9) + 1)]


def _axis_range(values: list[float]) -> tuple[float, float]:
    low, high = min(values), max(values)
    pad = (high - low) * 0.08 if high > low else max(abs(high) * 0.1, 0.05)
    return low - pad, high + pad


def _number(value: float) -> str:
    return f"{value:.3g}"


def tradeoff_svg(points: list[dict], title: str, x_label: str = _X_LABEL, chance: float | None = None) -> str:
    """Return an accessible SVG scatter plot of the utility/privacy trade-off of the defences.

    Args:
        points: dicts with "name" (team name), "cost" (utility cost, see utility_cost), "leakage"
            (the best attacker's accuracy against it) and "on_front" (bool, on the Pareto front, see
            pareto_front), and optionally "estimate" (True: the leakage is the platform's baseline attack's,
            no attacker has scored yet; drawn hollow). Points with a missing or non-finite cost or leakage are
            left out.
        title: the chart's title, also its accessible name.
        x_label: the horizontal axis's label (the utility cost by default).
        chance: the accuracy of guessing (1 / number of cells), drawn as a labelled horizontal line; None: none.

    Returns:
        An SVG document (role="img" with <title> and <desc>): each team a labelled point, the
        Pareto front drawn as diamonds joined by a step line, both axes labelled; lower-left is
        better. Without any plottable point, an SVG saying "No data yet".
    """
    plotted = [
        point
        for point in points
        if isinstance(point.get("cost"), numbers.Real)
        and isinstance(point.get("leakage"), numbers.Real)
        and math.isfinite(point["cost"])
        and math.isfinite(point["leakage"])
    ]
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_WIDTH} {_HEIGHT}" '
        f'width="{_WIDTH}" height="{_HEIGHT}" role="img" aria-labelledby="chart-title chart-desc" '
        'font-family="sans-serif" font-size="12">'
        f'<title id="chart-title">{escape(title)}</title>'
    )
    if not plotted:
        return (
            f'{head}<desc id="chart-desc">No defence has both a utility cost and a privacy '
            "leakage yet.</desc>"
            f'<text x="{_WIDTH / 2}" y="{_HEIGHT / 2}" text-anchor="middle" font-size="18">'
            "No data yet</text></svg>"
        )

    x_low, x_high = _axis_range([p["cost"] for p in plotted])
    y_low, y_high = _axis_range([p["leakage"] for p in plotted] + ([chance] if chance is not None else []))
    plot_w, plot_h = _WIDTH - _LEFT - _RIGHT, _HEIGHT - _TOP - _BOTTOM

    def sx(value: float) -> float:
        return round(_LEFT + (value - x_low) / (x_high - x_low) * plot_w, 2)

    def sy(value: float) -> float:
        return round(_TOP + (y_high - value) / (y_high - y_low) * plot_h, 2)

    front = sorted((p for p in plotted if p.get("on_front")), key=lambda p: (p["cost"], p["leakage"]))
    described = "; ".join(f"{p['name']} (cost {_number(p['cost'])}, leakage {_number(p['leakage'])})" for p in front)
    desc = (
        f"Scatter plot of {len(plotted)} defences: utility cost on the horizontal axis, privacy "
        f"leakage (the best attacker's accuracy) on the vertical axis, lower is better on both"
        + (f"; guessing scores {_number(chance)}" if chance is not None else "")
        + f". Pareto front: {described or 'none'}."
    )
    parts = [head, f'<desc id="chart-desc">{escape(desc)}</desc>']
    parts.append(f'<text x="{_WIDTH / 2}" y="28" text-anchor="middle" font-size="16">{escape(title)}</text>')
    bottom, right = _TOP + plot_h, _LEFT + plot_w
    parts.append(f'<rect x="{_LEFT}" y="{_TOP}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#444"/>')
    for tick in _ticks(x_low, x_high):
        x = sx(tick)
        parts.append(f'<line x1="{x}" y1="{bottom}" x2="{x}" y2="{bottom + 5}" stroke="#444"/>')
        parts.append(f'<text x="{x}" y="{bottom + 18}" text-anchor="middle">{_number(tick)}</text>')
    for tick in _ticks(y_low, y_high):
        y = sy(tick)
        parts.append(f'<line x1="{_LEFT - 5}" y1="{y}" x2="{_LEFT}" y2="{y}" stroke="#444"/>')
        parts.append(f'<text x="{_LEFT - 8}" y="{y + 4}" text-anchor="end">{_number(tick)}</text>')
    parts.append(f'<text x="{_LEFT + plot_w / 2}" y="{_HEIGHT - 20}" text-anchor="middle">{escape(x_label)}</text>')
    parts.append(
        f'<text transform="translate(22 {_TOP + plot_h / 2}) rotate(-90)" text-anchor="middle">{_Y_LABEL}</text>'
    )
    if chance is not None:
        y = sy(chance)
        parts.append(
            f'<g class="chance"><line x1="{_LEFT}" y1="{y}" x2="{right}" y2="{y}" stroke="#555" '
            'stroke-dasharray="2 4"/>'
            f'<text x="{_LEFT + 6}" y="{y - 5}" font-size="11">chance ({_number(chance)})</text></g>'
        )
    if len(front) > 1:
        # Staircase bounding the dominated region (up and to the right of the front).
        path = [f"M{sx(front[0]['cost'])} {sy(front[0]['leakage'])}"]
        for point in front[1:]:
            path.append(f"H{sx(point['cost'])} V{sy(point['leakage'])}")
        parts.append(
            f'<path d="{" ".join(path)}" fill="none" stroke="#c0392b" stroke-width="2" '
            'stroke-dasharray="6 3"><title>Pareto front</title></path>'
        )
    for point in plotted:
        x, y = sx(point["cost"]), sy(point["leakage"])
        name = escape(str(point["name"]))
        label = f"{name}: cost {_number(point['cost'])}, leakage {_number(point['leakage'])}"
        estimate = bool(point.get("estimate"))
        if estimate:
            label += " (baseline attack: no attacker has scored yet)"
        if point.get("on_front"):
            label += ", on the Pareto front"
            fill = 'fill="#fff" stroke="#c0392b" stroke-width="2"' if estimate else 'fill="#c0392b"'
            marker = f'<path d="M{x} {y - 7} L{x + 7} {y} L{x} {y + 7} L{x - 7} {y} Z" {fill} class="front"/>'
        else:
            fill = 'fill="#fff" stroke="#2c6fbb" stroke-width="2"' if estimate else 'fill="#2c6fbb"'
            marker = f'<circle cx="{x}" cy="{y}" r="5" {fill}/>'
        anchor, dx = ("end", -9) if x > right - 80 else ("start", 9)
        parts.append(
            f'<g><title>{label}</title>{marker}<text x="{x + dx}" y="{y - 6}" text-anchor="{anchor}">{name}</text></g>'
        )
    legend_y = _TOP + 14
    parts.append(
        f'<g font-size="11"><path d="M{right - 150} {legend_y - 5} l5 5 l-5 5 l-5 -5 Z" fill="#c0392b"/>'
        f'<text x="{right - 140}" y="{legend_y + 4}">Pareto front</text>'
        f'<circle cx="{right - 150}" cy="{legend_y + 18}" r="5" fill="#2c6fbb"/>'
        f'<text x="{right - 140}" y="{legend_y + 22}">Other defences</text>'
        f'<circle cx="{right - 150}" cy="{legend_y + 36}" r="5" fill="#fff" stroke="#2c6fbb" stroke-width="2"/>'
        f'<text x="{right - 140}" y="{legend_y + 40}">Baseline attack only</text></g>'
    )
    parts.append("</svg>")
    return "".join(parts)
