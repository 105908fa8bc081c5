"""``deskpulse report`` as one self-contained HTML file: Vega-Lite charts (through Altair) with their scripts inlined.

Why Vega-Lite: the charts are declarative specs Altair validates against the Vega-Lite schema, the renderer
(vega-embed, bundled by ``vl-convert-python``) draws them as SVG in the browser with tooltips, and one
~0.9 MB script serves every chart, inlined once, so the file opens offline and makes no request at view
time. Every chart has a title, its units and a text alternative (a sentence plus the values as a table),
and the page reflows from a phone's width to a laptop's.
"""

from __future__ import annotations

import html
import json
import os
from collections.abc import Iterable
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import altair as alt

from kpi_engine.report import BACKLOG_BUCKETS, BREAKDOWN_KPIS, BREAKDOWNS, ReportData
from kpi_engine.units import arrow, humanize

HEIGHT = 230
BAND_COLORS = {"red": "#c62828", "yellow": "#c99700", "green": "#2e7d32"}
#: the key figures at the top of the page, in order, and how each is labelled
CARDS = (("tickets_created", "Tickets created"), ("tickets_solved", "Tickets solved"),
         ("first_response_time_median_s", "First response (median)"),
         ("full_resolution_time_median_s", "Resolution (median)"), ("backlog_size", "Backlog now"),
         ("csat_pct", "CSAT"), ("fcr_pct", "First-contact resolution"), ("sla_adherence_pct", "SLA adherence"),
         ("cdi_red", "Accounts in red"))
COLUMN_LABELS = {"tickets_created": "created", "tickets_solved": "solved", "first_response_time_median_s": "FRT med",
                 "full_resolution_time_median_s": "resolution med", "fcr_pct": "FCR", "csat_pct": "CSAT",
                 "sla_adherence_pct": "SLA"}


@lru_cache(maxsize=1)
def vega_script() -> str:
    """vega + vega-lite + vega-embed as one script (bundled by vl-convert for Altair's Vega-Lite version).

    Bundling takes vl-convert 1.3 s, a quarter of a report's time on a million tickets, and gives the same text
    every time for one vl-convert and Vega-Lite version: it is kept in the user's cache folder under those
    versions (``$XDG_CACHE_HOME/deskpulse``, else ``~/.cache/deskpulse``). A cache that cannot be read or
    written is only slower.
    """
    import vl_convert as vlc

    wanted = "v" + "_".join(alt.SCHEMA_VERSION.lstrip("v").split(".")[:2])
    versions = vlc.get_vegalite_versions()
    version = wanted if wanted in versions else versions[-1]
    cached = _bundle_cache(f"vega-bundle-{getattr(vlc, '__version__', 'unknown')}-{version}.js")
    try:
        if cached is not None and cached.stat().st_size > 0:
            return cached.read_text(encoding="utf-8")
    except OSError:
        pass
    # The stub marks snippet required; the runtime signature is (snippet=None, vl_version=None) and None
    # means vl-convert's default snippet (vegaEmbed, vega, vegaLite on window), which the report relies on.
    script: str = vlc.javascript_bundle(vl_version=version)  # type: ignore[call-arg]
    if cached is not None:
        try:  # through a temporary name: a report rendered meanwhile never reads half a bundle
            cached.parent.mkdir(parents=True, exist_ok=True)
            tmp = cached.with_name(f".{cached.name}.{os.getpid()}.tmp")
            tmp.write_text(script, encoding="utf-8")
            os.replace(tmp, cached)
        except OSError:
            pass
    return script


def _bundle_cache(name: str) -> Path | None:
    """Where the bundle is kept; None without a cache folder (no ``$XDG_CACHE_HOME`` and no home)."""
    base = os.environ.get("XDG_CACHE_HOME")
    if not base:
        try:
            base = str(Path.home() / ".cache")
        except (RuntimeError, KeyError):  # no HOME and no passwd entry (some containers)
            return None
    return Path(base) / "deskpulse" / name


def _hours(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds / 3600, 2)


def _base(values: list[dict[str, Any]], description: str) -> alt.Chart:
    return alt.Chart(alt.Data(values=values), description=description).properties(width="container", height=HEIGHT)


class Figure:
    """One chart: its spec, title, units line, text alternative and the values behind it as a small table."""

    def __init__(self, key: str, title: str, units: str, summary: str, chart: alt.TopLevelMixin | None,
                 columns: list[str], rows: Iterable[Iterable[Any]]) -> None:
        self.key, self.title, self.units, self.summary = key, title, units, summary
        self.spec = None if chart is None else chart.to_dict()
        self.columns, self.rows = columns, [list(r) for r in rows]


def _series_summary(label: str, points: list[tuple[str, float | None]], unit: str) -> str:
    known = [(k, v) for k, v in points if v is not None]
    if not known:
        return f"No {label} in this period."
    low = min(known, key=lambda kv: kv[1])
    high = max(known, key=lambda kv: kv[1])
    return (f"{label.capitalize()} from {known[0][0]} to {known[-1][0]}: lowest {low[1]:g} {unit} ({low[0]}), "
            f"highest {high[1]:g} {unit} ({high[0]}), latest {known[-1][1]:g} {unit}.")


def volume_figures(data: ReportData) -> list[Figure]:
    weeks = data.weeks
    values = [{"week": w["week"], "kind": kind, "tickets": w[f"tickets_{kind}"] or 0}
              for w in weeks for kind in ("created", "solved")]
    weekly = _base(values, "Tickets created and solved per ISO week").mark_bar().encode(
        x=alt.X("week:O", title="ISO week"), xOffset=alt.XOffset("kind:N"),
        y=alt.Y("tickets:Q", title="tickets"),
        color=alt.Color("kind:N", title=None, legend=alt.Legend(orient="top")),
        tooltip=["week:O", "kind:N", "tickets:Q"])
    figs = [Figure("volume_weekly", "Tickets per week", "tickets created and solved, per ISO week",
                   _series_summary("tickets created", [(w["week"], w["tickets_created"]) for w in weeks], "tickets"),
                   weekly if weeks else None, ["week", "created", "solved"],
                   [(w["week"], w["tickets_created"], w["tickets_solved"]) for w in weeks])]
    months = data.kpis.get("monthly_ticket_volume") or []
    if months:
        mvals = [{"month": m["month"], "tickets": m["tickets"], "MoM %": m["mom_change_pct"],
                  "YoY %": m["yoy_change_pct"], "partial": "partial month" if m["is_partial"] else "whole month"}
                 for m in months]
        monthly = _base(mvals, "Tickets created per month with month-over-month and year-over-year change").mark_bar(
        ).encode(x=alt.X("month:O", title="month"), y=alt.Y("tickets:Q", title="tickets created"),
                 opacity=alt.Opacity("partial:N", title=None, sort=["whole month", "partial month"], scale=alt.Scale(
                     domain=["whole month", "partial month"], range=[1.0, 0.45]), legend=alt.Legend(orient="top")),
                 tooltip=["month:O", "tickets:Q", "MoM %:Q", "YoY %:Q", "partial:N"])
        last = months[-1]
        summary = (f"{len(months)} months; latest {last['month']}: {last['tickets']:,} tickets, MoM "
                   f"{arrow(last['mom_change_pct']) or 'n/a'}, YoY {arrow(last['yoy_change_pct']) or 'n/a'}.")
        figs.append(Figure("volume_monthly", "Tickets per month, with MoM and YoY",
                           "tickets created per calendar month; change in % against the month before and the "
                           "same month a year before", summary, monthly,
                           ["month", "tickets", "MoM", "YoY", "partial"],
                           [(m["month"], m["tickets"], arrow(m["mom_change_pct"]) or "—",
                             arrow(m["yoy_change_pct"]) or "—", "yes" if m["is_partial"] else "")
                            for m in months]))
    return figs


def duration_figure(data: ReportData, key: str, prefix: str, title: str) -> Figure:
    rows = []
    for w in data.weeks:
        for stat in ("median", "p90"):
            for clock, suffix in (("calendar", ""), ("business", "_business")):
                rows.append({"week": w["week"], "statistic": stat, "clock": clock,
                             "hours": _hours(w[f"{prefix}_{stat}_s{suffix}"])})
    drawn = [r for r in rows if r["hours"] is not None]
    chart = _base(drawn, f"{title}: median and 90th percentile per week, calendar and business hours").mark_line(
        point=True).encode(
        x=alt.X("week:O", title="ISO week"), y=alt.Y("hours:Q", title="hours"),
        color=alt.Color("statistic:N", title=None, legend=alt.Legend(orient="top")),
        strokeDash=alt.StrokeDash("clock:N", title=None, legend=alt.Legend(orient="top"), scale=alt.Scale(
            domain=["calendar", "business"], range=[[1, 0], [6, 3]])),
        tooltip=["week:O", "statistic:N", "clock:N", "hours:Q"])
    medians = [(w["week"], _hours(w[f"{prefix}_median_s"])) for w in data.weeks]
    return Figure(key, title, "hours; median and p90 per ISO week; solid = calendar time, dashed = business hours",
                  _series_summary(f"calendar median {title.lower()}", medians, "h"), chart if drawn else None,
                  ["week", "median", "p90", "median (business)", "p90 (business)"],
                  [(w["week"], *(_hours(w[f"{prefix}_{s}_s{b}"]) for b in ("", "_business")
                                 for s in ("median", "p90"))) for w in data.weeks])


def backlog_figure(data: ReportData) -> Figure:
    order = [label for _, label in BACKLOG_BUCKETS]
    values = [{"week": w["week"], "age": label, "tickets": (w["backlog_age"].get(key) or 0), "order": i}
              for w in data.weeks for i, (key, label) in enumerate(BACKLOG_BUCKETS)]
    chart = _base(values, "Unsolved tickets at the end of each week, stacked by age").mark_bar().encode(
        x=alt.X("week:O", title="end of ISO week"), y=alt.Y("tickets:Q", title="unsolved tickets", stack="zero"),
        color=alt.Color("age:N", title="age", sort=order, scale=alt.Scale(
            domain=order, range=["#9ecae1", "#4292c6", "#fd8d3c", "#d94801"]), legend=alt.Legend(orient="top")),
        order=alt.Order("order:Q"), tooltip=["week:O", "age:N", "tickets:Q"])
    return Figure("backlog", "Backlog size and age", "unsolved tickets at the end of each ISO week, by age",
                  _series_summary("backlog size", [(w["week"], w["backlog_size"]) for w in data.weeks], "tickets"),
                  chart if data.weeks else None, ["week", "backlog", *order],
                  [(w["week"], w["backlog_size"], *(w["backlog_age"].get(k) for k, _ in BACKLOG_BUCKETS))
                   for w in data.weeks])


def satisfaction_figures(data: ReportData) -> list[Figure]:
    figs = []
    for key, name, title, units, domain in (
            ("csat_pct", "CSAT", "CSAT per week", "% satisfied of all ratings received that week", [0, 100]),
            ("nps", "NPS", "NPS per week", "net promoter score (−100 to 100) of imported NPS answers", [-100, 100]),
            ("ces_mean", "CES", "Customer effort per week", "mean CES 2.0 score (1–7, higher = easier)", [1, 7])):
        points = [(w["week"], w[key]) for w in data.weeks]
        values = [{"week": k, name: v} for k, v in points if v is not None]
        chart = _base(values, title).mark_line(point=True).encode(
            x=alt.X("week:O", title="ISO week"), y=alt.Y(f"{name}:Q", title=name, scale=alt.Scale(domain=domain)),
            tooltip=["week:O", f"{name}:Q"])
        figs.append(Figure(f"satisfaction_{key}", title, units, _series_summary(name, points, ""),
                           chart if values else None, ["week", name], points))
    return figs


SLA_LEVELS = {"under 80%": "#c62828", "80–95%": "#c99700", "95% or more": "#2e7d32"}


def _sla_level(pct: float) -> str:
    return "under 80%" if pct < 80 else ("80–95%" if pct < 95 else "95% or more")


def sla_figure(data: ReportData) -> Figure:
    rows = data.sla_by_account
    values = [{"account": r["account"], "SLA adherence %": r["sla_adherence_pct"], "tickets": r["tickets_created"],
               "level": _sla_level(r["sla_adherence_pct"])} for r in rows]
    chart = alt.Chart(alt.Data(values=values), description="SLA adherence per account, worst first").mark_bar(
    ).encode(
        y=alt.Y("account:N", title=None, sort=None), x=alt.X("SLA adherence %:Q", scale=alt.Scale(domain=[0, 100])),
        color=alt.Color("level:N", title=None, scale=alt.Scale(domain=list(SLA_LEVELS), range=list(
            SLA_LEVELS.values())), legend=alt.Legend(orient="top")),
        tooltip=["account:N", "SLA adherence %:Q", "tickets:Q"]).properties(
        width="container", height=max(60, 22 * len(values)))
    summary = (f"{len(rows)} accounts with the lowest SLA adherence; worst: {rows[0]['account']} at "
               f"{rows[0]['sla_adherence_pct']:g}%." if rows else "No SLA targets were completed in this period.")
    return Figure("sla_accounts", "SLA adherence per account, worst first",
                  "% of SLA targets (first reply, resolution) met among those completed in the period",
                  summary, chart if rows else None, ["account", "SLA adherence %", "tickets created"],
                  [(r["account"], r["sla_adherence_pct"], r["tickets_created"]) for r in rows])


def cdi_figures(data: ReportData) -> list[Figure]:
    bands = data.distress.get("bands", {})
    values = [{"band": b, "accounts": bands.get(f"cdi_{b}", 0)} for b in ("red", "yellow", "green")]
    chart = alt.Chart(alt.Data(values=values), description="Accounts by Customer Distress Index band").mark_bar(
    ).encode(x=alt.X("band:N", sort=["red", "yellow", "green"], title="CDI band"),
             y=alt.Y("accounts:Q", title="accounts"),
             color=alt.Color("band:N", scale=alt.Scale(domain=list(BAND_COLORS), range=list(BAND_COLORS.values())),
                             legend=None),
             tooltip=["band:N", "accounts:Q"]).properties(width="container", height=180)
    total = sum(v["accounts"] for v in values)
    figs = [Figure("cdi_bands", "Accounts by distress band", f"accounts active in the last 90 days, as of "
                   f"{data.distress.get('day')}", ", ".join(f"{v['accounts']} {v['band']}" for v in values) + ".",
                   chart if total else None, ["band", "accounts"], [(v["band"], v["accounts"]) for v in values])]
    line_vals = data.cdi_lines
    line = _base(line_vals, "CDI of the top accounts at each week-end over 12 weeks").mark_line(point=True).encode(
        x=alt.X("day:O", title="week ending"), y=alt.Y("cdi:Q", title="CDI (0–100)", scale=alt.Scale(domain=[0, 100])),
        color=alt.Color("account:N", title=None, legend=alt.Legend(orient="top", columns=2)),
        tooltip=["day:O", "account:N", "cdi:Q"])
    accounts = list(dict.fromkeys(v["account"] for v in line_vals))
    figs.append(Figure("cdi_trend", "CDI of the top accounts, 12 weeks", "Customer Distress Index (0–100) at each "
                       "week-end; higher = more distressed", f"CDI of {', '.join(accounts)} over "
                       f"{len({v['day'] for v in line_vals})} week-ends." if line_vals else "No CDI history yet.",
                       line if line_vals else None, ["week ending", "account", "CDI"],
                       [(v["day"], v["account"], v["cdi"]) for v in line_vals]))
    return figs


# -- page ----------------------------------------------------------------------------------------------------
CSS = """
:root { color-scheme: light; --ink: #1d2433; --muted: #5b6475; --line: #e3e6ec; --card: #f6f7f9; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink); }
main { max-width: 1120px; margin: 0 auto; padding: 16px; }
header h1 { font-size: 1.5rem; margin: 8px 0 2px; }
header p { margin: 0; color: var(--muted); }
h2 { font-size: 1.15rem; margin: 28px 0 8px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(150px, 1fr)); gap: 10px; margin: 16px 0; }
.card { background: var(--card); border-radius: 8px; padding: 10px 12px; }
.card .label { display: block; color: var(--muted); font-size: .82rem; }
.card .value { display: block; font-size: 1.35rem; font-weight: 600; }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(min(100%, 480px), 1fr)); gap: 18px; }
figure { margin: 0; min-width: 0; }
figure h3 { font-size: 1rem; margin: 6px 0 0; }
figure .units { color: var(--muted); font-size: .85rem; margin: 0 0 6px; }
.vis { width: 100%; min-height: 60px; }
.vega-embed { width: 100%; display: flex; }
details { font-size: .85rem; color: var(--muted); margin-top: 4px; }
.table-wrap { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-size: .88rem; }
th, td { text-align: right; padding: 4px 8px; border-bottom: 1px solid var(--line); white-space: nowrap; }
th:first-child, td:first-child { text-align: left; white-space: normal; }
td.reasons { text-align: left; white-space: normal; min-width: 14em; }
.band { font-weight: 600; }
.band-red { color: #c62828; } .band-yellow { color: #9a7400; } .band-green { color: #2e7d32; }
.note { background: #fff8e1; border-radius: 6px; padding: 6px 10px; }
footer { color: var(--muted); font-size: .8rem; margin: 32px 0 12px; }
"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _table(columns: list[str], rows: list[list[Any]], fmt: Any = None) -> str:
    head = "".join(f"<th scope='col'>{_e(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{_e(fmt(c, v) if fmt else v)}</td>" for c, v in zip(columns, row,
                                                                                             strict=False))
                   + "</tr>" for row in rows)
    return f"<div class='table-wrap'><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"


def _figure_html(fig: Figure) -> str:
    body = (f"<div class='vis' id='vis-{fig.key}' role='img' aria-label='{_e(fig.title)}: {_e(fig.summary)}'></div>"
            if fig.spec else f"<p class='note'>{_e(fig.summary)}</p>")
    return (f"<figure data-chart='{fig.key}' data-has-chart='{'yes' if fig.spec else 'no'}'>"
            f"<h3>{_e(fig.title)}</h3><p class='units'>{_e(fig.units)}</p>{body}"
            f"<details><summary>Text alternative</summary><p class='alt'>{_e(fig.summary)}</p>"
            f"{_table(fig.columns, fig.rows)}</details></figure>")


def _cards(data: ReportData) -> str:
    out = []
    for name, label in CARDS:
        value = data.kpis.get(name)
        out.append(f"<div class='card' data-kpi='{name}'><span class='label'>{_e(label)}</span>"
                   f"<span class='value'>{_e(humanize(name, value, data.currency))}</span></div>")
    return "<section class='cards' aria-label='Key figures'>" + "".join(out) + "</section>"


def _distress_table(data: ReportData) -> str:
    rows = []
    for a in data.distress.get("accounts", []):
        rows.append(f"<tr data-account='{_e(a['account'])}'><td>{_e(a.get('name') or a['account'])}</td>"
                    f"<td>{_e(', '.join(a.get('sources') or [a['source']]))}</td><td data-cdi>{a['cdi']}</td>"
                    f"<td class='band band-{_e(a['band'])}'>{_e(a['band'])}</td><td>{_e(a.get('trend') or '–')}</td>"
                    f"<td class='reasons'>{_e(', '.join(a.get('top_reasons') or []) or '–')}</td></tr>")
    if not rows:
        return "<p class='note'>No account was active in the last 90 days.</p>"
    head = "".join(f"<th scope='col'>{c}</th>" for c in ("account", "sources", "CDI", "band", "trend", "top reasons"))
    more = data.distress.get("total_accounts", 0) - len(rows)
    tail = f"<p class='units'>…and {more} more accounts (<code>deskpulse distress --top 0</code>).</p>" if more > 0 \
        else ""
    return (f"<div class='table-wrap'><table class='distress'><thead><tr>{head}</tr></thead><tbody>"
            f"{''.join(rows)}</tbody></table></div>{tail}")


def _breakdown_html(data: ReportData) -> str:
    parts = []
    for dim, label in BREAKDOWNS:
        rows = data.breakdowns.get(dim, [])
        columns = [label, *(COLUMN_LABELS[k] for k in BREAKDOWN_KPIS)]
        cells = [[r["label"], *(humanize(k, r[k], data.currency) for k in BREAKDOWN_KPIS)] for r in rows]
        parts.append(f"<section data-breakdown='{dim}'><h3>By {label.lower()}</h3>"
                     + (_table(columns, cells) if cells else "<p class='note'>No tickets.</p>") + "</section>")
    return "<div class='grid'>" + "".join(parts) + "</div>"


def _json_script(value: Any) -> str:
    """JSON safe inside <script>: no '</' can close the element early."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).replace("</", "<\\/")


def render(data: ReportData) -> str:
    """The whole page as a string."""
    volume = volume_figures(data)
    frt = duration_figure(data, "first_response", "first_response_time", "First response time")
    resolution = duration_figure(data, "resolution", "full_resolution_time", "Resolution time")
    backlog = backlog_figure(data)
    satisfaction = satisfaction_figures(data)
    sla = sla_figure(data)
    cdi = cdi_figures(data)
    figures = [*volume, frt, resolution, backlog, *satisfaction, sla, *cdi]
    specs = {f"vis-{f.key}": f.spec for f in figures if f.spec}
    period = data.period
    scope = f"source {data.source}" if data.source else "all sources"
    generated = datetime.fromtimestamp(data.generated_at, UTC).strftime("%Y-%m-%d %H:%M UTC")
    notes = "".join(f"<p class='note'>{_e(n)}</p>" for n in data.notes)

    def grid(figs: list[Figure]) -> str:
        return "<div class='grid'>" + "".join(_figure_html(f) for f in figs) + "</div>"

    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(data.title)} · {_e(period['since'])} to {_e(period['last_day'])}</title>
<style>{CSS}</style>
<script>{vega_script()}</script>
</head><body><main>
<header><h1>{_e(data.title)}</h1>
<p>{_e(period['since'])} to {_e(period['last_day'])} (reporting timezone {_e(period['timezone'])}), {_e(scope)}.</p>
</header>{notes}
{_cards(data)}
<h2>Volume</h2>{grid(volume)}
<h2>Responsiveness</h2>{grid([frt, resolution])}
<h2>Backlog</h2>{grid([backlog])}
<h2>Satisfaction</h2>{grid(satisfaction)}
<h2>SLA</h2>{grid([sla])}
<h2>Customer distress</h2>{grid(cdi)}
<h3>Top accounts by priority</h3>{_distress_table(data)}
<h2>Breakdowns</h2>{_breakdown_html(data)}
<footer>Generated by deskpulse at {_e(generated)}. The same numbers: <code>deskpulse kpi --since {_e(period['since'])}
--until {_e(period['until'])}{' --source ' + _e(data.source) if data.source else ''}</code> and
<code>deskpulse distress</code>.</footer>
</main>
<script type="application/json" id="deskpulse-data">{_json_script(data.to_dict())}</script>
<script>
(function () {{
  const specs = {_json_script(specs)};
  const pending = Object.entries(specs).map(([id, spec]) =>
    vegaEmbed("#" + id, spec, {{renderer: "svg", actions: false}}).catch((err) => console.error(id, err)));
  Promise.all(pending).then(() => {{ document.documentElement.dataset.chartsReady = "yes"; }});
}})();
</script>
</body></html>
"""
