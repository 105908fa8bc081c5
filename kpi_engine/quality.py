"""Quality family: CSAT, NPS and CES from the ``ratings`` table, attributed by rating time.

CSAT: satisfied = ``score_1_5 >= 4`` (connectors map Zendesk good=5/bad=1, Intercom
1-5, Freshdesk's scales; imported CSAT is 1-5). NPS: 0-10 responses, promoters 9-10,
detractors 0-6. CES 2.0: 1-7 agreement; mean and share of 5-7; responses on other
scales are kept apart (not counted). Ratings of deleted/spam/merged tickets are
excluded (their tickets have no facts, see :mod:`kpi_engine.fact_store`); survey responses
without a ticket count for the whole store (and for the requester's organization in
``--by organization``).

CSAT that a helpdesk API cannot serve is reported as such, never as 0% and never as a silent
null: :func:`csat_unavailable` reads what the connector recorded about its ratings endpoint
(``sync_state``; Zendesk's legacy-only satisfaction-ratings API) and :func:`csat_reason` turns it
into the reason shown next to a null ``csat_pct``.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from typing import Any

from kpi_engine.family import Family, Finish
from kpi_engine.partials import num
from kpi_engine.stats import pct, ratio, rounded
from kpi_engine.workspace import NONE_KEY, Workspace

_DIMS = {  # f: the rated ticket's facts (absent for survey responses without a ticket)
    "source": "r.source",
    "channel": f"COALESCE(f.channel, '{NONE_KEY}')",
    "priority": f"CASE WHEN f.ticket_rowid IS NULL THEN '{NONE_KEY}' ELSE f.severity END",
    "agent": f"COALESCE(r.assignee_id, f.assignee_id, '{NONE_KEY}')",
    "group": f"COALESCE(f.group_id, '{NONE_KEY}')",
    "organization": (f"COALESCE(f.source || ':org:' || NULLIF(f.organization_id, ''), COALESCE(json_extract(r.raw, "
                     f"'$.person_source'), r.source) || ':org:' || NULLIF(p.organization_id, ''), '{NONE_KEY}')"),
}


def collect(ws: Workspace) -> None:
    """Ratings of the period (of ``ws.source`` when one source is asked, else every source, survey imports
    included), per breakdown key and kind."""
    source = ws.source
    key = ws.key("r.created_at", ws.dimension_of(_DIMS))
    people = ("LEFT JOIN people p ON p.source = COALESCE(json_extract(r.raw, '$.person_source'), r.source) "
              "AND p.id = r.requester_id" if ws.by == "organization" else "")
    where_source = "AND r.source = :source" if source is not None else ""
    shard = ws.in_shard("f.ticket_rowid")
    if shard:  # a sharded run: rated tickets by their shard, survey responses without a known ticket in the first
        orphans = " OR f.ticket_rowid IS NULL" if ws.shard.first else ""
        where_source += f" AND ((f.ticket_rowid IS NOT NULL{shard}){orphans})"
    params = {**ws.params, "source": source}
    rows = ws.execute(f"""SELECT key, kind, COUNT(*), SUM(good), SUM(promoter), SUM(detractor), SUM(score), SUM(easy)
        FROM (SELECT {key} AS key, r.kind AS kind,
                CASE WHEN r.kind = 'csat' THEN r.score_1_5 >= 4 END AS good,
                CASE WHEN r.kind = 'nps' THEN r.score >= 9 END AS promoter,
                CASE WHEN r.kind = 'nps' THEN r.score <= 6 END AS detractor,
                r.score AS score,
                CASE WHEN r.kind = 'ces' THEN r.score >= 5 END AS easy
              FROM ratings r LEFT JOIN kpi_facts f ON f.source = r.source AND f.ticket_id = r.ticket_id {people}
              WHERE r.created_at >= :since AND r.created_at < :until {where_source}
                AND (r.ticket_id IS NULL OR f.ticket_rowid IS NOT NULL
                     OR NOT EXISTS (SELECT 1 FROM tickets t WHERE t.source = r.source AND t.id = r.ticket_id))
                AND ((r.kind = 'csat' AND r.score_1_5 BETWEEN 1 AND 5)
                  OR (r.kind = 'nps' AND r.score BETWEEN 0 AND 10)
                  OR (r.kind = 'ces' AND r.score BETWEEN 1 AND 7)))
        GROUP BY key, kind""", params).fetchall()
    for key_value, kind, n, good, promoters, detractors, score, easy in rows:
        add = ws.parts.add
        add(key_value, f"{kind}_n", n)
        if kind == "csat":
            add(key_value, "csat_good", good or 0)
        elif kind == "nps":
            add(key_value, "nps_promoters", promoters or 0)
            add(key_value, "nps_detractors", detractors or 0)
        else:
            add(key_value, "ces_sum", score or 0)
            add(key_value, "ces_easy", easy or 0)


def finalize(part: dict[str, Any], finish: Finish) -> dict[str, Any]:
    nps_n = num(part, "nps_n")
    nps = None
    if nps_n:
        nps = 100.0 * (num(part, "nps_promoters") - num(part, "nps_detractors")) / nps_n
    return {
        "csat_pct": rounded(pct(num(part, "csat_good"), num(part, "csat_n"))),
        "nps": rounded(nps),
        "ces_mean": rounded(ratio(num(part, "ces_sum"), num(part, "ces_n"))),
        "ces_easy_pct": rounded(pct(num(part, "ces_easy"), num(part, "ces_n"))),
    }


#: survey responses without a ticket count even in a store without tickets
FAMILY = Family("quality", collect, finalize, needs_tickets=False)


CSAT_NOT_AVAILABLE = "CSAT not available through this API"
#: Zendesk sends the legacy survey 24 h after a ticket is solved by default (its satisfaction automation);
#: tickets solved this long after the newest rating record and this long ago should have one by now.
SURVEY_GRACE_S = 3 * 86400
#: this many such tickets without a single rating record (not even an ``offered`` one) settle it
MIN_UNSURVEYED = 10


def _day(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d")


def csat_unavailable(conn: sqlite3.Connection, sources: list[str] | None, now: int) -> dict[str, str]:
    """Sources whose CSAT the helpdesk API does not serve, with why (source -> reason).

    Only streams whose cursor carries ``csat_api`` (the Zendesk connector's satisfaction ratings)
    are judged. ``"forbidden"``: the endpoint answered 403. ``"listed"``: it answered, but its
    newest record (offered surveys included) is older than ``MIN_UNSURVEYED`` tickets solved since:
    Zendesk's ``/api/v2/satisfaction_ratings`` serves only the legacy CSAT (Satisfaction Ratings
    API page), so an account on the newer CSAT lists nothing while tickets are solved and surveyed.
    """
    rows = conn.execute("SELECT source, cursor FROM sync_state WHERE stream = 'satisfaction_ratings'").fetchall()
    out: dict[str, str] = {}
    for source, raw in rows:
        if sources is not None and source not in sources:
            continue
        try:
            cursor = json.loads(raw) if raw else None
        except ValueError:
            continue
        if not isinstance(cursor, dict) or "csat_api" not in cursor:
            continue
        if cursor["csat_api"] == "forbidden":
            out[source] = (f"{CSAT_NOT_AVAILABLE}: the satisfaction-ratings endpoint answers HTTP 403 "
                           "(customer satisfaction is off, or not visible to this API user)")
            continue
        high = cursor.get("high")
        after = 0 if high is None else int(high) + SURVEY_GRACE_S
        if after >= now - SURVEY_GRACE_S:
            continue  # a survey record this recent: CSAT is served (and no ticket scan for the usual case)
        solved = conn.execute(
            "SELECT COUNT(*) FROM tickets WHERE source = ? AND solved_at > ? AND solved_at <= ? "
            "AND status IN ('solved', 'closed') AND NOT is_merged", [source, after, now - SURVEY_GRACE_S]).fetchone()[0]
        if solved >= MIN_UNSURVEYED:
            since = f"since {_day(int(high))}" if high is not None else "at all"
            out[source] = (f"{CSAT_NOT_AVAILABLE}: the satisfaction-ratings endpoint (legacy CSAT only) lists no "
                           f"survey {since} although {solved} tickets were solved after it; the account is likely "
                           "on Zendesk's newer CSAT (survey responses), which this endpoint does not serve")
    return out


def csat_reason(unavailable: dict[str, str], csat_pct: float | None) -> str | None:
    """The reason to show next to ``csat_pct``: why it is null, or which sources it leaves out."""
    if not unavailable:
        return None
    detail = "; ".join(f"source {name}: {reason}" for name, reason in sorted(unavailable.items()))
    if csat_pct is None:
        return detail
    return f"partial, without {', '.join(sorted(unavailable))} ({detail})"
