"""The trade-off chart drawn for the leaderboard page."""

import xml.etree.ElementTree as ET

from app.charts import tradeoff_svg

SVG = "{http://www.w3.org/2000/svg}"


def test_tradeoff_svg_names_teams_and_marks_the_front():
    points = [
        {"name": "Team <A&B>", "cost": 11.0, "leakage": 0.95, "on_front": True},
        {"name": "bravo", "cost": 14.0, "leakage": 0.60, "on_front": True},
        {"name": "charlie", "cost": 15.0, "leakage": 0.90, "on_front": False},
        {"name": "no leakage yet", "cost": 12.0, "leakage": None, "on_front": False},
    ]
    svg = tradeoff_svg(points, "Round 2: utility vs privacy")
    root = ET.fromstring(svg)  # well-formed despite the markup in a team name
    assert root.get("role") == "img"
    assert root.find(f"{SVG}title").text == "Round 2: utility vs privacy"
    assert "Pareto front: Team <A&B>" in root.find(f"{SVG}desc").text
    texts = [element.text for element in root.iter(f"{SVG}text")]
    assert {"Team <A&B>", "bravo", "charlie"} <= set(texts)
    assert "no leakage yet" not in texts
    assert "Utility cost (lower is better)" in texts
    assert "Privacy leakage: best attacker's accuracy" in texts
    assert len([e for e in root.iter(f"{SVG}path") if e.get("class") == "front"]) == 2
    steps = [e for e in root.iter(f"{SVG}path") if e.findtext(f"{SVG}title") == "Pareto front"]
    assert len(steps) == 1 and "H" in steps[0].get("d") and "V" in steps[0].get("d")


def test_tradeoff_svg_without_data_says_so():
    root = ET.fromstring(tradeoff_svg([], "Overall"))
    assert root.find(f"{SVG}title").text == "Overall"
    assert "No data yet" in [element.text for element in root.iter(f"{SVG}text")]


def test_tradeoff_svg_with_a_single_point():
    svg = tradeoff_svg([{"name": "solo", "cost": 10.0, "leakage": 0.5, "on_front": True}], "One")
    assert "solo" in [element.text for element in ET.fromstring(svg).iter(f"{SVG}text")]


def test_tradeoff_svg_takes_another_horizontal_axis():
    points = [{"name": "a", "cost": 23.0, "leakage": 0.9, "on_front": True}]
    svg = tradeoff_svg(points, "Round 1", x_label="Bandwidth overhead (%) <lower is better>")
    texts = [element.text for element in ET.fromstring(svg).iter(f"{SVG}text")]
    assert "Bandwidth overhead (%) <lower is better>" in texts


def test_the_chance_accuracy_is_drawn_and_described():
    points = [{"name": "padded", "cost": 11.0, "leakage": 0.75, "on_front": True}]
    root = ET.fromstring(tradeoff_svg(points, "Round 1", chance=0.01))
    texts = [element.text for element in root.iter(f"{SVG}text")]
    assert "chance (0.01)" in texts
    assert "guessing scores 0.01" in root.find(f"{SVG}desc").text


# --- the heat map and line charts of the submission and team pages ----------------------------------------------

from app.charts import contrast, heatmap_svg, line_chart_svg, ramp_colour, text_on  # noqa: E402


def _cells(root):
    return {int(g.get("data-cell")): g for g in root.iter(f"{SVG}g") if g.get("class") == "cell"}


def test_the_heat_map_writes_each_cells_recall_and_outlines_the_most_exposed():
    captures = [3] * 99 + [0]
    recognised = [3, 0, 2] + [1] * 96 + [0]
    svg = heatmap_svg("leak-7", "Where <it> leaks", captures, recognised, (10, 10), [1, 3, 4, 5, 6], "the baseline")
    root = ET.fromstring(svg)
    assert root.get("role") == "img" and root.get("id") == "leak-7"
    assert root.get("aria-labelledby") == "leak-7-title leak-7-desc"
    assert root.find(f"{SVG}title").text == "Where <it> leaks"
    desc = root.find(f"{SVG}desc").text
    assert "10 by 10 grid" in desc and "row by row from the top left" in desc
    assert "cell 1 (3 of 3), cell 3 (2 of 3)" in desc and "(101 of 297 in all)" in desc
    cells = _cells(root)
    assert len(cells) == 100
    texts = [t.text for t in cells[3].iter(f"{SVG}text")]
    assert texts == ["3", "67"]  # its number and its recall in percent: the colour is never alone
    assert cells[3].findtext(f"{SVG}title") == "Cell 3: 2 of 3 captures recognised (67%)"
    assert [t.text for t in cells[100].iter(f"{SVG}text")] == ["100", "–"]
    assert cells[100].find(f"{SVG}rect").get("stroke-dasharray")  # no captures: an empty dashed square
    # Cell 11 starts the second row: numbered row by row.
    assert float(cells[11].find(f"{SVG}rect").get("y")) > float(cells[10].find(f"{SVG}rect").get("y"))
    assert cells[11].find(f"{SVG}rect").get("x") == cells[1].find(f"{SVG}rect").get("x")
    exposed = [int(g.get("data-cell")) for g in root.iter(f"{SVG}g") if g.get("class") == "exposed"]
    assert exposed == [1, 3, 4, 5, 6]


def test_the_heat_maps_numbers_are_readable_on_every_colour_of_the_ramp():
    for step in range(101):
        fill = ramp_colour(step / 100)
        assert contrast(fill, text_on(fill)) >= 4.5, fill
    assert ramp_colour(0) == "#440154" and ramp_colour(1) == "#fde725" and ramp_colour(2) == "#fde725"
    # Perceptually ordered: the ramp's luminance rises with the value, so greyscale still reads it.
    lightness = [contrast(ramp_colour(step / 10), "#000000") for step in range(11)]
    assert lightness == sorted(lightness)


def test_the_line_charts_colours_stand_out_on_light_and_dark_pages():
    from app.charts import _SERIES_STYLES

    for colour, _, _ in _SERIES_STYLES:
        assert contrast(colour, "#ffffff") >= 3 and contrast(colour, "#1d2330") >= 3, colour
    assert len({dash for _, dash, _ in _SERIES_STYLES}) == len(_SERIES_STYLES)  # each line its own dash pattern


def test_a_line_chart_draws_each_series_with_its_legend_intervals_and_chance_line():
    series = [
        {"name": "bob <b>", "xs": [0, 0.5, 1], "ys": [0, 0.9, 1]},
        {"name": "carol", "xs": [1, 2, 3], "ys": [0.5, None, 0.7], "lows": [0.4, None, 0.6], "highs": [0.6, None, 0.8]},
    ]
    svg = line_chart_svg(
        "roc-3",
        "ROC",
        "A description",
        series,
        x_label="False-positive rate",
        y_label="True-positive rate",
        x_range=(0, 3),
        y_range=(0, 1),
        diagonal="chance (AUC 0.5)",
        reference=([1, 2], [0.1, 0.2], "guessing"),
    )
    root = ET.fromstring(svg)
    assert root.get("aria-labelledby") == "roc-3-title roc-3-desc" and root.find(f"{SVG}desc").text == "A description"
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert {"bob <b>", "carol", "chance (AUC 0.5)", "guessing", "False-positive rate", "True-positive rate"} <= set(
        texts
    )
    groups = [g for g in root.iter(f"{SVG}g") if g.get("class") == "series"]
    assert len(groups) == 2
    # A missing value breaks the line: carol's two points are not joined.
    assert not groups[1].findall(f"{SVG}polyline")
    assert len(groups[1].findall(f"{SVG}path")) >= 2  # error bars at both points
    dashes = [p.get("stroke-dasharray") for g in groups for p in g.iter(f"{SVG}polyline")]
    assert dashes == [None]


def test_the_figures_write_in_the_pages_own_colour_outside_their_coloured_squares():
    """Text, axes and keys follow the page's ink (currentColor), so a dark page keeps them readable; only the
    numbers inside the heat map's squares have their own colour, chosen against the square's fill."""
    heat = ET.fromstring(heatmap_svg("h", "t", [1, 1, 1, 0], [1, 0, 1, 0], (2, 2), [1], "x"))
    chart = ET.fromstring(
        line_chart_svg(
            "c", "t", "d", [{"name": "a", "xs": [1, 2], "ys": [0.1, 0.2]}],
            x_label="x", y_label="y", x_range=(1, 2), y_range=(0, 1),
        )
    )  # fmt: skip
    assert heat.get("fill") == chart.get("fill") == "currentColor"
    in_cells = {id(t) for g in heat.iter(f"{SVG}g") if g.get("class") == "cell" for t in g.iter(f"{SVG}text")}
    for root in (heat, chart):
        for element in root.iter(f"{SVG}text"):
            if id(element) not in in_cells:
                assert element.get("fill") in (None, "currentColor"), element.text
    legend = {id(x) for g in chart.iter(f"{SVG}g") if g.get("class") == "legend" for x in g.iter(f"{SVG}line")}
    axes = [line for line in chart.iter(f"{SVG}line") if id(line) not in legend]
    assert axes and all(line.get("stroke") == "currentColor" for line in axes)
