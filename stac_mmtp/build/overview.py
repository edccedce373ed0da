"""The dataset at a glance (`stac-mmtp overview BUILD_DIR`, `build(overview=True)`): a PNG and an offline HTML page.

One figure (matplotlib): a world map of the events coloured by phenomenon over Natural Earth's 1:110m land
(public domain, shipped as `stac_mmtp/data/ne_110m_land.geojson`), a timeline of the events and of the
acquisitions per modality (with each event's delay to its first post-event image), the counts per phenomenon
x continent x split, and the cascade graph. The HTML page draws the same views with Bokeh (hover, zoom, a
click opens the event's item), Bokeh's JS and CSS inlined and the land as patches of the same polygons, plus
the counts as tables and JSON: no script, style, font or map data is fetched from anywhere.
"""

from __future__ import annotations

import html
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


def _event_href(event_id: str) -> str:
    """The event's item, relative to overview/overview.html in the build tree."""
    return f"../events/{event_id}/{event_id}.json"


def _hex(rgba: Any) -> str:
    return "#{:02x}{:02x}{:02x}".format(*(round(c * 255) for c in rgba[:3]))


def interactive(ov: Overview) -> tuple[str, dict[str, str], str]:
    """The interactive plots (bokeh): (script, {name: div}, the bokeh JS/CSS inlined).

    The map, timeline, first-post-event delays, counts and cascades, with hover and a tap that opens the event's
    item. The land is drawn from the shipped Natural Earth polygons as ordinary patches (no tile or topojson
    fetch); `bundle_for_objs_and_resources` inlines only the bokeh bundles these plots use (no widgets)."""
    import matplotlib.pyplot as plt
    from bokeh.embed import components
    from bokeh.embed.bundle import bundle_for_objs_and_resources
    from bokeh.models import ColumnDataSource, HoverTool, OpenURL, TapTool
    from bokeh.plotting import figure as bfigure
    from bokeh.resources import INLINE

    phenomena = sorted({e["phenomenon"] for e in ov.events})
    cmap = plt.get_cmap("tab20", max(len(phenomena), 1))
    colour = {ph: _hex(cmap(i)) for i, ph in enumerate(phenomena)}  # the PNG's colours
    tools = "pan,wheel_zoom,box_zoom,reset,save"
    by_id = {e["id"]: e for e in ov.events}

    # the world map: land patches, events per phenomenon (legend entries hide/show them)
    fmap = bfigure(title=f"{len(ov.events)} events by phenomenon (hover: event; click: its item)", tools=tools,
                   x_range=(-180, 180), y_range=(-60, 85), match_aspect=True, width=1150, height=470,
                   background_fill_color="#f4f8fb")
    land = json.loads(LAND.read_text(encoding="utf-8"))
    xs, ys = [], []
    for feat in land["features"]:
        geom = feat["geometry"]
        for poly in geom["coordinates"] if geom["type"] == "MultiPolygon" else [geom["coordinates"]]:
            xs.append([round(c[0], 3) for c in poly[0]])
            ys.append([round(c[1], 3) for c in poly[0]])
    fmap.patches(xs, ys, fill_color="#e6e6e6", line_color="#b0b0b0", line_width=0.5)
    points = []
    for ph in phenomena:
        es = [e for e in ov.events if e["phenomenon"] == ph]
        src = ColumnDataSource({"x": [e["lon"] for e in es], "y": [e["lat"] for e in es],
                                "id": [e["id"] for e in es], "title": [e["title"] for e in es],
                                "date": [(e["start"] or "")[:10] for e in es], "phenomenon": [ph] * len(es),
                                "url": [_event_href(e["id"]) for e in es]})
        points.append(fmap.scatter("x", "y", source=src, size=9, color=colour[ph], line_color="black",
                                   line_width=0.5, legend_label=f"{ph} ({len(es)})", name="events"))
    fmap.add_tools(HoverTool(renderers=points, tooltips=[("event", "@id"), ("title", "@title"), ("date", "@date"),
                                                         ("phenomenon", "@phenomenon")]),
                   TapTool(renderers=points, callback=OpenURL(url="@url", same_tab=True)))
    fmap.legend.click_policy = "hide"
    fmap.legend.label_text_font_size = "8pt"
    fmap.add_layout(fmap.legend[0], "right")  # beside the map, not over the Americas
    fmap.axis.visible = False
    fmap.grid.visible = False

    # the timeline: events (by phenomenon colour) and each modality's acquisitions
    rows = ["events", *MODALITIES.values()]
    ftime = bfigure(title="timeline of events and acquisitions", x_axis_type="datetime", y_range=rows[::-1],
                    tools=tools, width=900, height=260)
    evs = [e for e in ov.events if e["start"]]
    r_ev = ftime.scatter("x", "y", source=ColumnDataSource({
        "x": [_when(e["start"]) for e in evs], "y": ["events"] * len(evs), "id": [e["id"] for e in evs],
        "title": [e["title"] for e in evs], "date": [e["start"][:10] for e in evs],
        "colour": [colour[e["phenomenon"]] for e in evs], "url": [_event_href(e["id"]) for e in evs]}),
        size=8, color="colour", line_color="black", line_width=0.4)
    acqs = [a for a in ov.acquisitions if a["datetime"] and a["collection"] in MODALITIES]
    r_acq = ftime.scatter("x", "y", source=ColumnDataSource({
        "x": [_when(a["datetime"]) for a in acqs], "y": [MODALITIES[a["collection"]] for a in acqs],
        "event": [a["event"] or "" for a in acqs], "role": [a["role"] or "" for a in acqs],
        "date": [a["datetime"][:10] for a in acqs],
        "days": ["" if a["days"] is None else f"{a['days']:.1f}" for a in acqs]}),
        marker="dash", angle=1.5708, size=14, color="#555555")
    ftime.add_tools(HoverTool(renderers=[r_ev], tooltips=[("event", "@id"), ("title", "@title"), ("date", "@date")]),
                    HoverTool(renderers=[r_acq], tooltips=[("event", "@event"), ("date", "@date"), ("role", "@role"),
                                                           ("days from the event", "@days")]),
                    TapTool(renderers=[r_ev], callback=OpenURL(url="@url", same_tab=True)))

    # each event's delay to its first post-event image
    delay = ov.first_post_delay()
    ds = sorted((by_id[k]["start"] or "", k, v) for k, v in delay.items() if k in by_id and by_id[k]["start"])
    fdelay = bfigure(title=f"days from the event to its first post-event image ({len(ds)} events)",
                     x_axis_type="datetime", tools=tools, width=900, height=220, y_axis_label="days")
    r_d = fdelay.scatter("x", "y", source=ColumnDataSource({
        "x": [_when(d[0]) for d in ds], "y": [d[2] for d in ds], "id": [d[1] for d in ds],
        "colour": [colour[by_id[d[1]]["phenomenon"]] for d in ds], "url": [_event_href(d[1]) for d in ds]}),
        size=9, color="colour", line_color="black", line_width=0.4)
    fdelay.add_tools(HoverTool(renderers=[r_d], tooltips=[("event", "@id"), ("days", "@y{0.0}")]),
                     TapTool(renderers=[r_d], callback=OpenURL(url="@url", same_tab=True)))

    # counts: phenomenon x continent (colour: events), the splits in the hover
    continents = sorted({c for cs in ov.counts.values() for c in cs})
    cells = [(ph, c, ss) for ph, cs in ov.counts.items() for c, ss in cs.items()]
    top = max([sum(ss.values()) for _, _, ss in cells] or [1])
    fcount = bfigure(title="events per phenomenon x continent (hover: per split)", x_range=continents,
                     y_range=list(ov.counts)[::-1], tools="hover,save", width=900, height=40 + 26 * len(ov.counts),
                     tooltips=[("phenomenon", "@ph"), ("continent", "@c"), ("events", "@n"), ("splits", "@splits")])
    fcount.rect("c", "ph", 0.95, 0.9, source=ColumnDataSource({
        "ph": [x[0] for x in cells], "c": [x[1] for x in cells], "n": [sum(x[2].values()) for x in cells],
        "splits": [", ".join(f"{k} {v}" for k, v in x[2].items()) for x in cells],
        "alpha": [0.25 + 0.75 * sum(x[2].values()) / top for x in cells]}), color="#3182bd", fill_alpha="alpha")
    fcount.text("c", "ph", text="n", source=ColumnDataSource({
        "ph": [x[0] for x in cells], "c": [x[1] for x in cells], "n": [str(sum(x[2].values())) for x in cells]}),
        text_align="center", text_baseline="middle", text_font_size="8pt")
    fcount.xaxis.major_label_orientation = 0.6

    # the cascade graph: one chain per row, trigger left of what it triggered
    nodes, edges = _cascade_layout(ov)
    fcasc = bfigure(title=f"cascades: {len(ov.cascades)} links (hover: event; click: its item)", tools=tools,
                    width=900, height=40 + 22 * max(len(nodes), 1), x_range=(-0.2, 4.5))
    fcasc.segment([edges[e][0] for e in range(len(edges))], [edges[e][1] for e in range(len(edges))],
                  [edges[e][2] for e in range(len(edges))], [edges[e][3] for e in range(len(edges))],
                  line_color="#888888")
    r_n = fcasc.scatter("x", "y", source=ColumnDataSource({
        "x": [n[1] for n in nodes], "y": [n[2] for n in nodes], "id": [n[0] for n in nodes],
        "title": [by_id.get(n[0], {}).get("title", n[0]) for n in nodes],
        "colour": [colour.get(by_id.get(n[0], {}).get("phenomenon", ""), "#cccccc") for n in nodes],
        "url": [_event_href(n[0]) for n in nodes]}), size=10, color="colour", line_color="black")
    fcasc.text("x", "y", text="id", source=r_n.data_source, x_offset=8, text_baseline="middle", text_font_size="7pt")
    fcasc.add_tools(HoverTool(renderers=[r_n], tooltips=[("event", "@id"), ("title", "@title")]),
                    TapTool(renderers=[r_n], callback=OpenURL(url="@url", same_tab=True)))
    fcasc.axis.visible = False
    fcasc.grid.visible = False

    plots = {"map": fmap, "timeline": ftime, "delay": fdelay, "counts": fcount, "cascades": fcasc}
    script, divs = components(plots)
    bundle = bundle_for_objs_and_resources(list(plots.values()), INLINE)
    return script, divs, "\n".join(bundle)  # a Bundle iterates over its JS and CSS, rendered


def _cascade_layout(ov: Overview) -> tuple[list[tuple[str, float, float]], list[tuple[float, float, float, float]]]:
    """Nodes (id, x, y) and edges (x0, y0, x1, y1): each chain from its root, depth to the right, a row each."""
    children: dict[str, list[str]] = {}
    triggered = set()
    for a, b in ov.cascades:
        children.setdefault(a, []).append(b)
        triggered.add(b)
    nodes: list[tuple[str, float, float]] = []
    edges: list[tuple[float, float, float, float]] = []
    y = 0
    for root in sorted(a for a in children if a not in triggered):
        stack: list[tuple[str, int, tuple[float, float] | None]] = [(root, 0, None)]
        while stack:
            node, depth, parent = stack.pop()
            here = (depth * 1.4, -y)
            nodes.append((node, *here))
            if parent:
                edges.append((*parent, *here))
            y += 1
            stack += [(c, depth + 1, here) for c in sorted(children.get(node, []), reverse=True)]
    return nodes, edges


def _html(ov: Overview) -> str:
    script, divs, resources = interactive(ov)
    rows = "".join(
        f"<tr><td>{html.escape(ph)}</td><td>{html.escape(c)}</td><td>{html.escape(s)}</td><td>{n}</td></tr>"
        for ph, cs in ov.counts.items() for c, ss in cs.items() for s, n in ss.items())
    events = "".join(
        f"<tr><td><a href=\"{html.escape(_event_href(e['id']))}\">{html.escape(e['id'])}</a></td>"
        f"<td>{html.escape(e['title'])}</td><td>{html.escape(e['phenomenon'])}</td>"
        f"<td>{html.escape(e['continent'])}</td><td>{html.escape(e['split'])}</td></tr>" for e in ov.events)
    data = json.dumps(ov.to_json(), sort_keys=True).replace("</", "<\\/")
    plots = "\n".join(f'<div class="plot" id="ov-{name}">{div}</div>' for name, div in divs.items())
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>stac-mmtp dataset overview</title>
<style>body{{font-family:sans-serif;margin:1em}}table{{border-collapse:collapse;font-size:12px}}
td,th{{border:1px solid #ccc;padding:2px 6px}}.plot{{margin:0 0 1em 0;display:inline-block}}</style>
{resources}
</head><body>
<h1>stac-mmtp dataset overview</h1>
<p>{len(ov.events)} events, {len(ov.acquisitions)} acquisitions, {len(ov.cascades)} cascade links.
Hover a point for its event, click it to open the event's item; the legend hides and shows phenomena.
Map: Natural Earth 1:110m land (public domain). Plots: Bokeh, its scripts included in this page.</p>
{plots}
<h2>Events per phenomenon, continent and split</h2>
<table id="counts"><tr><th>phenomenon</th><th>continent</th><th>split</th><th>events</th></tr>{rows}</table>
<h2>Events</h2>
<table id="events"><tr><th>id</th><th>title</th><th>phenomenon</th><th>continent</th><th>split</th></tr>{events}</table>
<script type="application/json" id="overview-data">{data}</script>
{script}
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
    try:
        with staged_file(out_dir / PNG_NAME) as tmp:
            fig.savefig(tmp, format="png", dpi=DPI)
    finally:
        plt.close(fig)
    with staged_file(out_dir / HTML_NAME) as tmp:
        tmp.write_text(_html(ov), encoding="utf-8")
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
