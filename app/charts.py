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


# --- the figures of the submission and team pages ----------------------------------------------------------------
# Each is an inline SVG with its own ids (several share a page), its text drawn in the page's own colour
# (currentColor: it follows the page's light or dark colours), its data in a table beside it on the page.

# Viridis (perceptually uniform, readable with every common colour-vision deficiency and in greyscale), 9 stops.
_VIRIDIS = (
    (0x44, 0x01, 0x54),
    (0x47, 0x2D, 0x7B),
    (0x3B, 0x52, 0x8B),
    (0x2C, 0x72, 0x8E),
    (0x21, 0x91, 0x8C),
    (0x28, 0xAE, 0x80),
    (0x5E, 0xC9, 0x62),
    (0xAD, 0xDC, 0x30),
    (0xFD, 0xE7, 0x25),
)
# Okabe & Ito's colour-blind safe colours, each with its own dash pattern and marker: colour is never alone.
_SERIES_STYLES = (
    ("#0072B2", "", "circle"),
    ("#D55E00", "7 4", "square"),
    ("#009E73", "2 3", "diamond"),
    ("#CC79A7", "9 3 2 3", "triangle"),
)


def ramp_colour(value: float) -> str:
    """The viridis colour of a value in [0, 1] (clipped), as #rrggbb."""
    value = min(max(float(value), 0.0), 1.0) * (len(_VIRIDIS) - 1)
    low = min(int(value), len(_VIRIDIS) - 2)
    share = value - low
    rgb = (round(a + (b - a) * share) for a, b in zip(_VIRIDIS[low], _VIRIDIS[low + 1], strict=True))
    return "#" + "".join(f"{c:02x}" for c in rgb)


def _luminance(colour: str) -> float:
    """WCAG relative luminance of #rrggbb."""
    channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: str, b: str) -> float:
    """WCAG contrast ratio of two #rrggbb colours."""
    high, low = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def text_on(fill: str) -> str:
    """Black or white, whichever reads better on fill (at least 4.5:1 on any colour)."""
    return "#000000" if contrast(fill, "#000000") >= contrast(fill, "#ffffff") else "#ffffff"


def _head(ident: str, width: int, height: int, title: str, desc: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'role="img" aria-labelledby="{ident}-title {ident}-desc" class="chart" id="{ident}" '
        'font-family="sans-serif" font-size="12" fill="currentColor">'
        f'<title id="{ident}-title">{escape(title)}</title><desc id="{ident}-desc">{escape(desc)}</desc>'
    )


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.0f}"


def heatmap_svg(
    ident: str,
    title: str,
    captures: list[int],
    recognised: list[int],
    shape: tuple[int, int],
    exposed: list[int],
    who: str = "the attack",
) -> str:
    """An accessible SVG heat map of how often an attack recognised each cell of the grid.

    Args:
        ident: the SVG's id (its title's and description's ids start with it): unique on the page.
        title: the chart's title, also its accessible name.
        captures, recognised: per cell (cell c at index c - 1), its scored captures and how many the attack's top
            guess named.
        shape: (rows, columns) of the grid; cells are numbered row by row from the top left.
        exposed: the most exposed cells, outlined and named in the description.
        who: who recognised the cells, in words ("the baseline attack").

    Returns:
        An SVG (role="img" with <title> and <desc>): one square per cell filled on the viridis ramp by its recall,
        with the cell's number and its recall in percent written in it (black or white, whichever contrasts
        more), a dashed empty square for a cell without captures, the most exposed cells outlined thickly, and a
        colour key from 0 to 100 %.
    """
    rows, columns = shape
    size, left, top = 46, 20, 44
    key_x = left + columns * size + 24
    width, height = key_x + 70, top + rows * size + 40
    total, hits = sum(captures), sum(recognised)
    described = ", ".join(
        f"cell {c} ({recognised[c - 1]} of {captures[c - 1]})" for c in exposed if 0 < c <= len(captures)
    )
    desc = (
        f"Heat map of the {rows} by {columns} grid of cells, numbered row by row from the top left: each square "
        f"shows the percentage of the cell's test captures {who} recognised ({hits} of {total} in all). "
        f"Most exposed: {described or 'none'}."
    )
    parts = [_head(ident, width, height, title, desc)]
    parts.append(f'<text x="{left}" y="20" font-size="15">{escape(title)}</text>')
    for index, (count, hit) in enumerate(zip(captures, recognised, strict=True)):
        cell = index + 1
        x, y = left + (index % columns) * size, top + (index // columns) * size
        if count:
            share = hit / count
            fill = ramp_colour(share)
            ink = text_on(fill)
            label = f"Cell {cell}: {hit} of {count} captures recognised ({share:.0%})"
            square = f'<rect x="{x}" y="{y}" width="{size}" height="{size}" fill="{fill}" stroke="#ffffff"/>'
        else:
            ink, label = "currentColor", f"Cell {cell}: no captures scored"
            square = (
                f'<rect x="{x + 1}" y="{y + 1}" width="{size - 2}" height="{size - 2}" fill="none" '
                'stroke="currentColor" stroke-dasharray="3 3"/>'
            )
        parts.append(
            f'<g class="cell" data-cell="{cell}"><title>{label}</title>{square}'
            f'<text x="{x + 6}" y="{y + 14}" font-size="9" fill="{ink}">{cell}</text>'
            f'<text x="{x + size / 2}" y="{y + 34}" text-anchor="middle" font-size="14" font-weight="bold" '
            f'fill="{ink}">{_percent(hit / count if count else None)}</text></g>'
        )
    for cell in exposed:
        if 0 < cell <= len(captures):
            x, y = left + ((cell - 1) % columns) * size, top + ((cell - 1) // columns) * size
            # A black line inside a white one along the square's edge (clear of its numbers): visible on every
            # colour of the ramp and on any page.
            parts.append(
                f'<g class="exposed" data-cell="{cell}" fill="none">'
                f'<rect x="{x + 1}" y="{y + 1}" width="{size - 2}" height="{size - 2}" stroke="#ffffff" '
                'stroke-width="2"/>'
                f'<rect x="{x + 3}" y="{y + 3}" width="{size - 6}" height="{size - 6}" stroke="#000000" '
                'stroke-width="2"/></g>'
            )
    key_top, key_height = top, rows * size
    steps = 20
    parts.append('<g class="key">')
    for step in range(steps):
        value = 1 - (step + 0.5) / steps
        y = key_top + step * key_height / steps
        parts.append(
            f'<rect x="{key_x}" y="{y:.1f}" width="16" height="{key_height / steps + 0.5:.1f}" '
            f'fill="{ramp_colour(value)}"/>'
        )
    for value in (1.0, 0.5, 0.0):
        y = key_top + (1 - value) * key_height
        parts.append(f'<text x="{key_x + 22}" y="{y + 4:.1f}">{value:.0%}</text>')
    parts.append(
        f'<text x="{key_x}" y="{top - 8}" font-size="11">recall</text></g>'
        f'<text x="{left}" y="{height - 12}" font-size="11">Numbers: % of the cell\'s captures recognised; '
        "thick outline: the most exposed cells.</text></svg>"
    )
    return "".join(parts)


def _marker(kind: str, x: float, y: float, colour: str) -> str:
    if kind == "square":
        return f'<rect x="{x - 4}" y="{y - 4}" width="8" height="8" fill="{colour}"/>'
    if kind == "diamond":
        return f'<path d="M{x} {y - 5.5}L{x + 5.5} {y}L{x} {y + 5.5}L{x - 5.5} {y}Z" fill="{colour}"/>'
    if kind == "triangle":
        return f'<path d="M{x} {y - 5.5}L{x + 5} {y + 4}L{x - 5} {y + 4}Z" fill="{colour}"/>'
    return f'<circle cx="{x}" cy="{y}" r="4.5" fill="{colour}"/>'


def line_chart_svg(
    ident: str,
    title: str,
    desc: str,
    series: list[dict],
    *,
    x_label: str,
    y_label: str,
    x_range: tuple[float, float],
    y_range: tuple[float, float],
    x_ticks: list[float] | None = None,
    markers: bool = True,
    diagonal: str | None = None,
    reference: tuple[list[float], list[float], str] | None = None,
    width: int = 520,
    height: int = 360,
) -> str:
    """An accessible SVG line chart.

    Args:
        ident: the SVG's id (unique on the page); title, desc: its accessible name and description.
        series: each a dict with "name" (the legend's text), "xs" and "ys" (None values leave a gap), and
            optionally "lows"/"highs" (an interval drawn as an error bar at each point) and "labels" (a text
            written by each point). Up to four series get their own colour, dash pattern and marker.
        x_range, y_range: the axes' extents; x_ticks: the horizontal ticks (default: about five round ones).
        markers: draw a marker at each point (off for curves of many points).
        diagonal: draw the line y = x across the plot, labelled with this text (a ROC curve's chance line).
        reference: (xs, ys, label) of a dashed grey reference line (the chance level of top-k accuracy).
    """
    left, right, top = 62, 16, 40
    legend_height = 18 * len(series) + 8
    bottom = 48 + legend_height
    plot_w, plot_h = width - left - right, height - top - bottom
    (x_low, x_high), (y_low, y_high) = x_range, y_range

    def sx(value: float) -> float:
        return round(left + (value - x_low) / ((x_high - x_low) or 1) * plot_w, 2)

    def sy(value: float) -> float:
        return round(top + (y_high - value) / ((y_high - y_low) or 1) * plot_h, 2)

    parts = [_head(ident, width, height, title, desc)]
    parts.append(f'<text x="{left}" y="20" font-size="15">{escape(title)}</text>')
    axis_bottom = top + plot_h
    parts.append(
        f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" stroke="currentColor" '
        'stroke-opacity="0.7"/>'
    )
    for tick in x_ticks if x_ticks is not None else _ticks(x_low, x_high):
        x = sx(tick)
        parts.append(f'<line x1="{x}" y1="{axis_bottom}" x2="{x}" y2="{axis_bottom + 5}" stroke="currentColor"/>')
        parts.append(f'<text x="{x}" y="{axis_bottom + 18}" text-anchor="middle">{_number(tick)}</text>')
    for tick in _ticks(y_low, y_high):
        y = sy(tick)
        parts.append(
            f'<line x1="{left}" y1="{y}" x2="{left + plot_w}" y2="{y}" stroke="currentColor" stroke-opacity="0.15"/>'
        )
        parts.append(f'<text x="{left - 8}" y="{y + 4}" text-anchor="end">{_number(tick)}</text>')
    parts.append(f'<text x="{left + plot_w / 2}" y="{axis_bottom + 36}" text-anchor="middle">{escape(x_label)}</text>')
    parts.append(
        f'<text transform="translate(16 {top + plot_h / 2}) rotate(-90)" text-anchor="middle">{escape(y_label)}</text>'
    )
    if diagonal:
        parts.append(
            f'<g class="chance"><line x1="{sx(x_low)}" y1="{sy(y_low)}" x2="{sx(x_high)}" y2="{sy(y_high)}" '
            'stroke="currentColor" stroke-opacity="0.6" stroke-dasharray="3 4"/>'
            f'<text x="{sx(x_low + (x_high - x_low) * 0.55)}" y="{sy(y_low + (y_high - y_low) * 0.47)}" '
            f'font-size="11">{escape(diagonal)}</text></g>'
        )
    if reference:
        xs, ys, label = reference
        points = " ".join(f"{sx(x)},{sy(y)}" for x, y in zip(xs, ys, strict=True))
        parts.append(
            f'<g class="chance"><polyline points="{points}" fill="none" stroke="currentColor" stroke-opacity="0.6" '
            f'stroke-dasharray="3 4"/><text x="{sx(xs[-1]) - 4}" y="{sy(ys[-1]) - 6}" text-anchor="end" '
            f'font-size="11">{escape(label)}</text></g>'
        )
    for index, line in enumerate(series):
        colour, dash, marker = _SERIES_STYLES[index % len(_SERIES_STYLES)]
        name = escape(str(line["name"]))
        parts.append(f'<g class="series" data-series="{index}"><title>{name}</title>')
        runs, run = [], []
        for x, y in zip(line["xs"], line["ys"], strict=True):
            if y is None:
                runs, run = runs + [run], []
            else:
                run.append(f"{sx(x)},{sy(y)}")
        for points in [*runs, run]:
            if len(points) > 1:
                dashes = f' stroke-dasharray="{dash}"' if dash else ""
                parts.append(
                    f'<polyline points="{" ".join(points)}" fill="none" stroke="{colour}" stroke-width="2.5"'
                    f'{dashes} stroke-linejoin="round"/>'
                )
        lows, highs = line.get("lows"), line.get("highs")
        labels = line.get("labels")
        for i, (x, y) in enumerate(zip(line["xs"], line["ys"], strict=True)):
            if y is None:
                continue
            if lows and highs and lows[i] is not None and highs[i] is not None:
                low, high, cx = sy(lows[i]), sy(highs[i]), sx(x)
                parts.append(
                    f'<path d="M{cx - 5} {low}H{cx + 5}M{cx} {low}V{high}M{cx - 5} {high}H{cx + 5}" '
                    f'stroke="{colour}" stroke-width="1.5" fill="none"/>'
                )
            if markers:
                parts.append(_marker(marker, sx(x), sy(y), colour))
            if labels and labels[i]:
                parts.append(f'<text x="{sx(x) + 7}" y="{sy(y) - 7}" font-size="11">{escape(str(labels[i]))}</text>')
        parts.append("</g>")
    legend_top = axis_bottom + 52
    for index, line in enumerate(series):
        colour, dash, marker = _SERIES_STYLES[index % len(_SERIES_STYLES)]
        y = legend_top + 18 * index
        dashes = f' stroke-dasharray="{dash}"' if dash else ""
        parts.append(
            f'<g class="legend"><line x1="{left}" y1="{y}" x2="{left + 34}" y2="{y}" stroke="{colour}" '
            f'stroke-width="2.5"{dashes}/>{_marker(marker, left + 17, y, colour) if markers else ""}'
            f'<text x="{left + 42}" y="{y + 4}">{escape(str(line["name"]))}</text></g>'
        )
    parts.append("</svg>")
    return "".join(parts)
