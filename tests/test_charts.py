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
