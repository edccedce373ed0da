"""`stac-mmtp overview BUILD_DIR`: the dataset at a glance, as a PNG and a self-contained HTML page.

One figure (matplotlib): a world map of the events coloured by phenomenon over Natural Earth's 1:110m land
(public domain, shipped as `stac_mmtp/data/ne_110m_land.geojson`), a timeline of the events and of the
acquisitions per modality (with each event's delay to its first post-event image), the counts per phenomenon
x continent x split, and the cascade graph. The HTML page inlines the same figure as SVG (it scales
without loss) and the counts as tables and JSON: no script, style or font is fetched from anywhere.
"""

from __future__ import annotations

import html
import io
import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from stac_mmtp.atomic import staged_file
from stac_mmtp.errors import InputError

LAND = Path(__file__).resolve().parents[1] / "data" / "ne_110m_land.geojson"
MODALITIES = {"sentinel-2": "Sentinel-2 (optical)", "sentinel-1": "Sentinel-1 (SAR)", "flatsim": "FLATSIM (InSAR)"}
PNG_NAME, HTML_NAME, JSON_NAME = "overview.png", "overview.html", "overview.json"
DPI = 100
SIZE_IN = (16, 11)  # inches: a 1600 x 1100 PNG


@dataclass
class Overview:
    events: list[dict[str, Any]] = field(default_factory=list)  # id, title, phenomenon, continent, split, lon, lat, start
    acquisitions: list[dict[str, Any]] = field(default_factory=list)  # event, collection, datetime, role, days
    counts: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)  # phenomenon -> continent -> split -> n
    cascades: list[tuple[str, str]] = field(default_factory=list)  # (trigger, triggered)

    def first_post_delay(self) -> dict[str, float]:
        """Days from each event to its first post-event acquisition (any modality)."""
        out: dict[str, float] = {}
        for a in self.acquisitions:
            if a["role"] == "first-post-event" and a["days"] is not None:
                out[a["event"]] = min(out.get(a["event"], a["days"]), a["days"])
        return out

    def to_json(self) -> dict[str, Any]:
        return {"events": len(self.events), "acquisitions": dict(Counter(a["collection"] for a in self.acquisitions)),
                "counts": self.counts, "cascades": [list(c) for c in self.cascades],
                "first_post_event_days": self.first_post_delay()}


def _items(directory: Path) -> list[dict[str, Any]]:
    return [json.loads(p.read_text(encoding="utf-8")) for p in sorted(directory.glob("*/*.json"))]


def collect(build_dir: Path, events_dir: Path | None = None, events: list[Any] | None = None) -> Overview:
    """Read the overview's numbers from a build: event items, imagery items; continents from the inventory."""
    from shapely.geometry import shape

    from stac_mmtp.dataset.inventory import continent, load_inventory
    from stac_mmtp.paths import default_events_dir

    if not (build_dir / "catalog.json").is_file() or not (build_dir / "events").is_dir():
        raise InputError("no catalog.json with an events collection (give the output directory of `stac-mmtp build`)",
                         build_dir)
    inventory = {ev.id: ev for ev in (events if events is not None else load_inventory(events_dir or default_events_dir()))}
    ov = Overview()
    counts: dict[str, dict[str, Counter[str]]] = {}
    for it in _items(build_dir / "events"):
        p = it["properties"]
        ev = inventory.get(it["id"])
        cont = continent(ev) if ev is not None else "unknown"
        split = p.get("ml-aoi:split", "none")
        pt = shape(it["geometry"]).representative_point()
        ov.events.append({"id": it["id"], "title": p.get("title", it["id"]), "phenomenon": p["mmtp:phenomenon"],
                          "continent": cont, "split": split, "lon": pt.x, "lat": pt.y,
                          "start": p.get("datetime") or p.get("start_datetime")})
        counts.setdefault(p["mmtp:phenomenon"], {}).setdefault(cont, Counter())[split] += 1
        ov.cascades += [(it["id"], t) for t in p.get("mmtp:triggers", [])]
    ov.counts = {ph: {c: dict(sorted(s.items())) for c, s in sorted(cs.items())} for ph, cs in sorted(counts.items())}
    for coll in MODALITIES:
        if (build_dir / coll).is_dir():
            for it in _items(build_dir / coll):
                p = it["properties"]
                ov.acquisitions.append({"event": p.get("mmtp:event_id"), "collection": coll,
                                        "datetime": p.get("datetime") or p.get("start_datetime"),
                                        "role": p.get("mmtp:temporal_role"), "days": p.get("mmtp:days_from_event")})
    return ov


def _when(s: str) -> datetime:
    return datetime.fromisoformat(s.replace("Z", "+00:00"))


def figure(ov: Overview) -> Any:
    """The overview figure (matplotlib, Agg): map, timeline, counts, cascade graph."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Polygon as MplPolygon

    phenomena = sorted({e["phenomenon"] for e in ov.events})
    cmap = plt.get_cmap("tab20", max(len(phenomena), 1))
    colour = {ph: cmap(i) for i, ph in enumerate(phenomena)}
    fig = plt.figure(figsize=SIZE_IN, dpi=DPI)
    grid = fig.add_gridspec(2, 2, height_ratios=[1.1, 1], hspace=0.28, wspace=0.18)

    ax = fig.add_subplot(grid[0, 0])
    land = json.loads(LAND.read_text(encoding="utf-8"))
    for feat in land["features"]:
        geom = feat["geometry"]
        polys = geom["coordinates"] if geom["type"] == "MultiPolygon" else [geom["coordinates"]]
        for poly in polys:
            ax.add_patch(MplPolygon(poly[0], closed=True, facecolor="#e6e6e6", edgecolor="#b0b0b0", linewidth=0.4))
    for ph in phenomena:
        es = [e for e in ov.events if e["phenomenon"] == ph]
        sc = ax.scatter([e["lon"] for e in es], [e["lat"] for e in es], s=22, color=colour[ph], label=f"{ph} ({len(es)})",
                        edgecolor="black", linewidth=0.3, zorder=3)
        sc.set_gid(f"events-{ph}")
    ax.set(xlim=(-180, 180), ylim=(-60, 85), aspect="equal", title=f"{len(ov.events)} events by phenomenon")
    ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(0, -0.01), ncol=4, frameon=False)
    ax.set_xticks([])
    ax.set_yticks([])

    ax = fig.add_subplot(grid[0, 1])
    rows = [("events", [e for e in ov.events if e["start"]])] + [
        (MODALITIES[c], [a for a in ov.acquisitions if a["collection"] == c and a["datetime"]]) for c in MODALITIES]
    for y, (name, things) in enumerate(rows):
        key = "start" if name == "events" else "datetime"
        cols = [colour[e["phenomenon"]] for e in things] if name == "events" else "#555555"
        ax.scatter([_when(t[key]) for t in things], [y] * len(things), s=14, c=cols, marker="|" if y else "o")
    ax.set_yticks(range(len(rows)), [f"{n} ({len(t)})" for n, t in rows], fontsize=8)
    delay = ov.first_post_delay()
    title = "timeline of events and acquisitions"
    if delay:
        days = sorted(delay.values())
        title += f"; first post-event image: median {days[len(days) // 2]:.1f} days after the event ({len(days)} events)"
    ax.set_title(title, fontsize=9)

    ax = fig.add_subplot(grid[1, 0])
    ax.axis("off")
    continents = sorted({c for cs in ov.counts.values() for c in cs})
    splits = sorted({s for cs in ov.counts.values() for ss in cs.values() for s in ss})
    header = ["phenomenon", *continents, *splits]
    table = []
    for ph, cs in ov.counts.items():
        by_split = Counter()
        for ss in cs.values():
            by_split.update(ss)
        table.append([ph, *[str(sum(cs.get(c, {}).values()) or "") for c in continents],
                      *[str(by_split.get(s, "") or "") for s in splits]])
    if table:
        t = ax.table(cellText=table, colLabels=header, loc="upper center", cellLoc="center")
        t.auto_set_font_size(False)
        t.set_fontsize(6)
    ax.set_title("events per phenomenon x continent, and per split", fontsize=9)

    ax = fig.add_subplot(grid[1, 1])
    ax.axis("off")
    _cascade_graph(ax, ov, colour)
    fig.suptitle("stac-mmtp dataset overview", fontsize=13)
    return fig


def _cascade_graph(ax: Any, ov: Overview, colour: dict[str, Any]) -> None:
    """Cascades as chains, one per row: a trigger on the left, what it triggered to its right."""
    by_id = {e["id"]: e for e in ov.events}
    children: dict[str, list[str]] = {}
    triggered = set()
    for a, b in ov.cascades:
        children.setdefault(a, []).append(b)
        triggered.add(b)
    roots = sorted(a for a in children if a not in triggered)
    y = 0
    for root in roots:
        stack = [(root, 0)]
        while stack:
            node, depth = stack.pop()
            ph = by_id.get(node, {}).get("phenomenon", "")
            ax.text(depth * 0.34, -y, node, fontsize=5.5, va="center",
                    bbox={"boxstyle": "round", "facecolor": colour.get(ph, "white"), "alpha": 0.5, "linewidth": 0})
            if depth:
                ax.annotate("", xy=(depth * 0.34, -y), xytext=(depth * 0.34 - 0.05, -y),
                            arrowprops={"arrowstyle": "->", "linewidth": 0.5})
            y += 1
            stack += [(c, depth + 1) for c in sorted(children.get(node, []), reverse=True)]
    ax.set_xlim(0, 1.4)
    ax.set_ylim(-max(y, 1), 1)
    ax.set_title(f"cascades: {len(ov.cascades)} links between {len(roots)} chains", fontsize=9)


def _html(ov: Overview, svg: str) -> str:
    rows = "".join(
        f"<tr><td>{html.escape(ph)}</td><td>{html.escape(c)}</td><td>{html.escape(s)}</td><td>{n}</td></tr>"
        for ph, cs in ov.counts.items() for c, ss in cs.items() for s, n in ss.items())
    events = "".join(
        f"<tr><td>{html.escape(e['id'])}</td><td>{html.escape(e['title'])}</td><td>{html.escape(e['phenomenon'])}</td>"
        f"<td>{html.escape(e['continent'])}</td><td>{html.escape(e['split'])}</td></tr>" for e in ov.events)
    data = json.dumps(ov.to_json(), sort_keys=True).replace("</", "<\\/")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>stac-mmtp dataset overview</title>
<style>body{{font-family:sans-serif;margin:1em}}table{{border-collapse:collapse;font-size:12px}}
td,th{{border:1px solid #ccc;padding:2px 6px}}svg{{max-width:100%;height:auto}}</style></head><body>
<h1>stac-mmtp dataset overview</h1>
<p>{len(ov.events)} events, {len(ov.acquisitions)} acquisitions, {len(ov.cascades)} cascade links.
Map: Natural Earth 1:110m land (public domain).</p>
{svg}
<h2>Events per phenomenon, continent and split</h2>
<table id="counts"><tr><th>phenomenon</th><th>continent</th><th>split</th><th>events</th></tr>{rows}</table>
<h2>Events</h2>
<table id="events"><tr><th>id</th><th>title</th><th>phenomenon</th><th>continent</th><th>split</th></tr>{events}</table>
<script type="application/json" id="overview-data">{data}</script>
</body></html>
"""


def write_overview(build_dir: Path, out_dir: Path | None = None, events_dir: Path | None = None,
                   events: list[Any] | None = None) -> dict[str, Path]:
    """Write overview.png, overview.html and overview.json into `out_dir` (default: BUILD_DIR/overview).

    `events` (the inventory's Event objects) spares reading the inventory again (the build passes its own)."""
    import matplotlib.pyplot as plt

    ov = collect(build_dir, events_dir, events)
    out_dir = out_dir or build_dir / "overview"
    out_dir.mkdir(parents=True, exist_ok=True)
    fig = figure(ov)
    svg = io.StringIO()
    try:
        fig.savefig(svg, format="svg")
        with staged_file(out_dir / PNG_NAME) as tmp:
            fig.savefig(tmp, format="png", dpi=DPI)
    finally:
        plt.close(fig)
    text = svg.getvalue()
    text = text[text.index("<svg"):]  # drop the XML prolog and DOCTYPE: the SVG is inlined in the page
    with staged_file(out_dir / HTML_NAME) as tmp:
        tmp.write_text(_html(ov, text), encoding="utf-8")
    with staged_file(out_dir / JSON_NAME) as tmp:
        tmp.write_text(json.dumps(ov.to_json(), indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return {"png": out_dir / PNG_NAME, "html": out_dir / HTML_NAME, "json": out_dir / JSON_NAME}


def link_from_root(build_dir: Path, files: dict[str, Path]) -> None:
    """Add the overview files to the root catalog as titled assets (STAC Browser lists a catalog's assets)."""
    from stac_mmtp.raster.assets import file_fields
    from stac_mmtp.stac import FILE

    root = build_dir / "catalog.json"
    cat = json.loads(root.read_text(encoding="utf-8"))
    rel = {k: p.relative_to(build_dir).as_posix() for k, p in files.items()}
    if FILE not in cat.setdefault("stac_extensions", []):
        cat["stac_extensions"].append(FILE)
    cat.setdefault("assets", {}).update({
        "overview": {"href": f"./{rel['png']}", "type": "image/png", "roles": ["overview"],
                     "title": "Dataset overview (map, timeline, counts, cascades)", **file_fields(files["png"])},
        "overview-html": {"href": f"./{rel['html']}", "type": "text/html", "roles": ["metadata"],
                          "title": "Dataset overview, interactive page (works offline)", **file_fields(files["html"])},
        "overview-json": {"href": f"./{rel['json']}", "type": "application/json", "roles": ["metadata"],
                          "title": "Dataset overview, the numbers", **file_fields(files["json"])},
    })
    with staged_file(root) as tmp:
        tmp.write_text(json.dumps(cat, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
