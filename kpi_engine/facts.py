"""The definitions of the per-ticket facts, computed into TEMP tables for a set of tickets.

:mod:`kpi_engine.fact_store` runs this for the tickets that changed (or all of them) and keeps
the result in the store; :mod:`kpi_engine.per_ticket` runs it for checks against vendor metrics.

``_kpi_tickets``         one row per selected ticket in the KPI ticket set (``ticket_rowid`` = the
                        ticket's rowid), with the columns of ``kpi_facts`` that come from the ticket
``_kpi_messages``        per ticket: first agent reply, message / reply / customer-message counts, last
                        customer message, and the ordered customer/reply sequence (average response time)
``_kpi_status_history``  per ticket: status-history summary (first solve, reopens, time in statuses)
``_kpi_escalations``     tickets escalated by a priority/group/tag change

Two plans fill ``_kpi_messages``/``_kpi_status_history``: for a few tickets, seek each one's rows through the
(source, ticket_id, created_at) indexes; for most of the store, one ordered scan of the whole
index grouped by ticket is cheaper than a million seeks. Both produce identical rows.

Time in statuses without a per-event "next event" lookup: a status event records the status
it leaves (``old_value``) and the one it enters (``new_value``). For a solved ticket, time in
a set W of statuses = sum(t: old in W) - sum(t: new in W) - created x (n_old in W - n_new in W)
(the initial status, left at the first event, was entered at creation). That is one pass of
plain sums per ticket. A NULL ``old_value`` (the creation event, or Intercom's first known
state) counts as ``new``, so for a consistent history the count terms vanish (see :func:`wait_sql`).
"""

from __future__ import annotations

import logging
import re

from kpi_engine.workspace import SOLVED, UNSOLVED, Workspace, sql_list, ticket_set

logger = logging.getLogger("deskpulse.kpi.facts")

#: An agent reply (KPIS.md): public, by an agent, and not the ticket's description. Bots/system never.
REPLY = "(m.author_role = 'agent' AND m.kind IS NOT 'description')"
CUSTOMER = "(m.author_role = 'customer')"
MESSAGE_SCOPE = "m.public = 1 AND m.author_role IN ('agent', 'customer')"
AGENT_WAIT = ("pending",)
ON_HOLD = ("on_hold",)
SCAN_SHARE = 0.3  # scan the whole index once the period needs more than this share of the tickets


def tag_tokens(expr: str) -> str:
    """A tags value (JSON list, Python list repr or space separated) as ' a b c ' for exact word matches."""
    inner = f"COALESCE({expr}, '')"
    for ch in ("[", "]", '"', "''", ","):
        inner = f"replace({inner}, '{ch}', ' ')"
    return f"(' ' || {inner} || ' ')"


def _any_tag(expr: str, tags: list[str]) -> str:
    if not tags:
        return "0"
    tokens = tag_tokens(expr)
    return "(" + " OR ".join(f"instr({tokens}, ' {t.replace(chr(39), chr(39) * 2)} ') > 0" for t in tags) + ")"


def _severity_case(ws: Workspace, expr: str) -> str:
    """Vendor priority value -> severity, from the union of the configured maps (their keys are disjoint)."""
    mapping: dict[str, int] = {}
    for kind_map in ws.kpi.severity_map.values():
        for value, sev in kind_map.items():
            if mapping.get(value, sev) != sev:
                logger.warning("priority '%s' maps to different severities per vendor; using the highest", value)
            mapping[value] = max(sev, mapping.get(value, sev))
    if not mapping:
        return "1"
    whens = " ".join(f"WHEN {sql_list([v])[1:-1]} THEN {s}" for v, s in sorted(mapping.items()))
    return f"(CASE {expr} {whens} ELSE 1 END)"


def escalation_groups(ws: Workspace) -> list[str]:
    """Configured escalation groups as ids: ids as given, plus the ids of groups with those names."""
    names = list(ws.kpi.escalation.groups)
    if not names:
        return []
    rows = ws.conn.execute(f"SELECT id FROM groups WHERE name IN {sql_list(names)}").fetchall()
    return sorted(set(names) | {r[0] for r in rows})


def _in(expr: str, values: tuple[str, ...]) -> str:
    return f"{expr} IN {sql_list(values)}"


def build_tickets(ws: Workspace) -> int:
    """``_kpi_tickets``: the tickets ``ws.selection`` picks (without one, those created before ``until`` that the
    period can need) that are in the KPI ticket set; returns the row count."""
    groups = escalation_groups(ws)
    # tickets.tags is a compact JSON list (Store.upsert): an exact '"tag"' match needs no tokenizing
    tags = [t.replace("'", "''") for t in ws.kpi.escalation.tags]
    esc = "(" + " OR ".join(f"instr(t.tags, '\"{t}\"') > 0" for t in tags) + ")" if tags else "0"
    if groups:
        esc = f"({esc} OR t.group_id IN {sql_list(groups)})"
    vendor_sla = "NULL"
    if not ws.sla.first_reply and not ws.sla.resolution:
        vendor_sla = "json_extract(t.raw, '$.sla_applied.sla_status')"
    solve = f"CASE WHEN {_in('t.status', SOLVED)} THEN COALESCE(t.solved_at, t.updated_at) END"
    # the ticket's rowid is stable (tickets are upserted, never replaced), so persisted facts can key on it
    ws.create_temp("_kpi_tickets", """CREATE TEMP TABLE _kpi_tickets (ticket_rowid INTEGER PRIMARY KEY,
        source TEXT, ticket_id TEXT, created_at INTEGER, synced_solved_at INTEGER, solved_at INTEGER, status TEXT,
        severity INTEGER, requester_id TEXT, organization_id TEXT, assignee_id TEXT, group_id TEXT, channel TEXT,
        escalated INTEGER, vendor_reopens INTEGER, vendor_first_resolution_s INTEGER, vendor_sla_status TEXT,
        created_at_business INTEGER, solved_at_business INTEGER)""")
    selection = ws.selection if ws.selection is not None else _relevant_rowids(ws)
    ws.execute(f"""INSERT INTO _kpi_tickets (ticket_rowid, source, ticket_id, created_at, synced_solved_at,
            solved_at, status, severity, requester_id, organization_id, assignee_id, group_id, channel, escalated,
            vendor_reopens, vendor_first_resolution_s, vendor_sla_status, created_at_business, solved_at_business)
        SELECT t.rowid, t.source, t.id, t.created_at, t.solved_at, {solve}, t.status, COALESCE(t.severity, 1),
            t.requester_id, t.organization_id, t.assignee_id, t.group_id, t.channel, {esc}, t.vendor_reopens,
            t.vendor_first_resolution_s, {vendor_sla}, {ws.bexpr('b1', 't.created_at')}, {ws.bexpr('b2', solve)}
        FROM tickets t{ws.bjoin('b1', 't.created_at')}{ws.bjoin('b2', solve)}
        WHERE t.rowid IN ({selection}) AND {ticket_set('t')}
        ORDER BY t.source, t.id""")
    return int(ws.conn.execute("SELECT COUNT(*) FROM _kpi_tickets").fetchone()[0])


def _relevant_rowids(ws: Workspace) -> str:
    """Row ids of tickets created before ``until`` that the period can need: created in it, solved in or
    after it, or unsolved. One index range per branch (created_at, solved_at, status), whatever the
    planner's statistics say: a plain scan of a million tickets costs more than all of them together."""
    base = f"SELECT rowid FROM tickets WHERE source IN {ws.src} AND "
    late = "+created_at < :until"  # unary + : this term must not pick the index, the branch's own column does
    return " UNION ".join([f"{base}created_at >= :since AND created_at < :until",
                           f"{base}solved_at >= :since AND {late}", f"{base}solved_at IS NULL AND {late}",
                           f"{base}{_in('status', UNSOLVED)} AND {late}"])


def _use_scan(ws: Workspace, relevant: int) -> bool:
    total = ws.execute(f"SELECT COUNT(*) FROM tickets t WHERE t.source IN {ws.src}").fetchone()[0]
    return bool(total) and relevant > SCAN_SHARE * total


def _token(ws: Workspace) -> str:
    """One message of the customer/reply sequence: customer '-t[:B]', reply 't[:B]', others NULL."""
    b = f" || ':' || {ws.bexpr('bm', 'm.created_at')}" if ws.business else ""
    return (f"CASE WHEN {CUSTOMER} THEN '-' || m.created_at{b} "
            f"WHEN m.kind IS NOT 'description' THEN m.created_at{b} END")


def _fill(ws: Workspace, table: str, cols: dict[str, str], source_table: str, alias: str, scope: str,
          scan: bool) -> None:
    """INSERT one summary row per relevant ticket into ``table``, by the seek or the scan plan."""
    names = list(cols)
    select = ", ".join(f"{expr} AS {name}" for name, expr in cols.items())
    bjoin = ws.bjoin(f"b{alias}", f"{alias}.created_at")
    if scan:
        ws.conn.execute("CREATE UNIQUE INDEX IF NOT EXISTS temp._kpi_tickets_key ON _kpi_tickets (source, ticket_id)")
        # CROSS JOIN: the grouped scan drives the loop and streams as a co-routine (no materialized copy)
        ws.execute(f"""INSERT INTO {table} SELECT k.ticket_rowid, {', '.join('g.' + n for n in names)}
            FROM (SELECT {alias}.source AS source, {alias}.ticket_id AS tid, {select}
                  FROM {source_table} {alias}{bjoin}
                  WHERE {alias}.source IN {ws.src} AND {scope}
                  GROUP BY {alias}.source, {alias}.ticket_id) g
            CROSS JOIN _kpi_tickets k ON k.source = g.source AND k.ticket_id = g.tid""")
    else:
        ws.execute(f"""INSERT INTO {table} SELECT k.ticket_rowid, {select}
            FROM _kpi_tickets k JOIN {source_table} {alias} ON {alias}.source = k.source
                AND {alias}.ticket_id = k.ticket_id AND {scope}{bjoin}
            GROUP BY k.ticket_rowid""")


def build_messages(ws: Workspace, scan: bool) -> None:
    """``_kpi_messages``: message summary per ticket (tickets without public messages have no row)."""
    cols = {
        "first_reply_at": f"MIN(CASE WHEN {REPLY} THEN m.created_at END)",
        "agent_replies": f"SUM({REPLY})",
        "public_messages": "COUNT(*)",  # public customer + agent messages (descriptions included): the interactions
        "customer_messages": f"SUM({CUSTOMER})",
        "last_customer_message_at": f"MAX(CASE WHEN {CUSTOMER} THEN m.created_at END)",
        "sequence": f"group_concat({_token(ws)})",
    }
    ws.create_temp("_kpi_messages",
                   f"CREATE TEMP TABLE _kpi_messages (ticket_rowid INTEGER PRIMARY KEY, {', '.join(cols)})")
    _fill(ws, "_kpi_messages", cols, "messages", "m", MESSAGE_SCOPE, scan)


def _is_any(expr: str, values: tuple[str, ...]) -> str:
    """0/1 membership without IN's per-row lookup table (``IS`` is NULL-safe: NULL is never a member)."""
    return "(" + " OR ".join(f"{expr} IS '{v}'" for v in values) + ")"


def _chain(statuses: tuple[str, ...], value: str) -> str:
    """sum(value where the event leaves a status in W) - sum(value where it enters one), over status events.

    ``value`` (possibly the business-time expression) is only evaluated for events touching W.
    """
    old, new = _is_any("e.old_value", statuses), _is_any("e.new_value", statuses)
    return f"COALESCE(SUM(CASE WHEN {old} OR {new} THEN {value} * ({old} - {new}) END), 0)"


def build_events(ws: Workspace, scan: bool) -> None:
    """``_kpi_status_history``: status-history summary per ticket (tickets without events have no row).

    Stored per status set W (agent wait = ``pending``, ``on_hold``, ``solved``): the chain sums
    ``*_chain`` (epochs) and ``*_chain_business`` (business epochs); requester wait is the rest of the
    ticket's life (see :func:`wait_sql`). ``history_first_solved_at`` doubles as "this ticket has status
    history": a solved ticket whose history never shows a solve has no usable history.
    """
    b = ws.bexpr("be", "e.created_at")
    cols = {
        "history_first_solved_at": f"MIN(CASE WHEN {_is_any('e.new_value', SOLVED)} THEN e.created_at END)",
        "history_reopens": (f"SUM(CASE WHEN {_is_any('e.old_value', SOLVED)} THEN {_is_any('e.new_value', UNSOLVED)} "
                            "ELSE 0 END)"),
    }
    for name, statuses in (("pending", AGENT_WAIT), ("on_hold", ON_HOLD), ("solved", SOLVED)):
        cols[f"{name}_chain"] = _chain(statuses, "e.created_at")
        cols[f"{name}_chain_business"] = _chain(statuses, b) if ws.business else "NULL"
    ws.create_temp("_kpi_status_history",
                   f"CREATE TEMP TABLE _kpi_status_history (ticket_rowid INTEGER PRIMARY KEY, {', '.join(cols)})")
    _fill(ws, "_kpi_status_history", cols, "ticket_events", "e", "e.field = 'status'", scan)


def build_escalations(ws: Workspace, scan: bool) -> None:
    """``_kpi_escalations``: tickets escalated by a change: priority raised to the top severity, moved to an
    escalation group, or given an escalation tag (these events are few: their own pass)."""
    top = ws.kpi.escalation.top_severity
    sev_new, sev_old = _severity_case(ws, "e.new_value"), _severity_case(ws, "e.old_value")
    groups = escalation_groups(ws)
    # A raise from an unset priority (severity 1, KPIS.md "none->1") counts too; only the ticket's creation
    # event, which sets the initial priority, is not a raise.
    at_creation = "(SELECT t.created_at FROM tickets t WHERE t.source = e.source AND t.id = e.ticket_id)"
    escalated = [f"(e.field = 'priority' AND {sev_new} >= {top} AND {sev_old} < {top} "
                 f"AND (e.old_value IS NOT NULL OR e.created_at > {at_creation}))",
                 f"(e.field = 'tags' AND {_any_tag('e.new_value', list(ws.kpi.escalation.tags))})"]
    if groups:
        escalated.append(f"(e.field = 'group_id' AND e.new_value IN {sql_list(groups)})")
    cols = {"escalated": f"MAX({' OR '.join(escalated)})"}
    ws.create_temp("_kpi_escalations",
                   "CREATE TEMP TABLE _kpi_escalations (ticket_rowid INTEGER PRIMARY KEY, escalated)")
    _fill(ws, "_kpi_escalations", cols, "ticket_events", "e", "e.field IN ('priority', 'group_id', 'tags')", scan)


def wait_sql(business: bool) -> dict[str, str]:
    """Per solved ticket (aliases k, e): time in requester wait / agent wait / on hold, NULL without history.

    A consistent history enters and leaves pending and on_hold as often (the initial status is
    ``new``), and enters the solved set once more than it leaves it (the final solve). So:
    agent wait = pending chain, on hold = on_hold chain, solved-between-reopens = solved chain + latest
    solve, requester wait = lifetime - agent wait - solved time ({new, open, on_hold} are the remaining
    statuses). Inconsistent histories (a value outside [0, lifetime]) give NULL rather than a made-up number.
    """
    sfx = "_business" if business else ""
    c, s = f"k.created_at{sfx}", f"k.solved_at{sfx}"
    aw = f"e.pending_chain{sfx}"
    oh = f"e.on_hold_chain{sfx}"
    sv = f"(e.solved_chain{sfx} + {s})"
    rw = f"(({s} - {c}) - {aw} - {sv})"
    life = f"({s} - {c})"

    def guard(expr: str) -> str:
        return f"CASE WHEN e.history_first_solved_at IS NOT NULL AND {expr} BETWEEN 0 AND {life} THEN {expr} END"

    return {"requester": guard(rw), "agent": guard(aw), "on_hold": guard(oh)}


def build(ws: Workspace) -> None:
    """All per-ticket TEMP tables for the workspace's period."""
    ws.build_business_days()
    relevant = build_tickets(ws)
    scan = _use_scan(ws, relevant)
    build_messages(ws, scan)
    build_events(ws, scan)
    build_escalations(ws, scan)


#: a ticket's first solve (aliases k, e): from its status history, else the vendor's first resolution time
FIRST_SOLVE = ("(CASE WHEN e.history_first_solved_at IS NOT NULL THEN e.history_first_solved_at "
               "WHEN k.vendor_first_resolution_s IS NOT NULL THEN k.created_at + k.vendor_first_resolution_s END)")
#: a ticket's reopens: from its status history, else the vendor's count
REOPENS = ("(CASE WHEN e.history_first_solved_at IS NOT NULL THEN e.history_reopens "
           "ELSE COALESCE(k.vendor_reopens, 0) END)")
#: end of "awaiting a first reply" (aliases k, e, m): the first agent reply or the first solve, whichever is first
FIRST_SOLVE_OR_LATEST = "COALESCE(e.history_first_solved_at, k.solved_at)"
AWAIT_END = (f"(CASE WHEN m.first_reply_at IS NULL THEN {FIRST_SOLVE_OR_LATEST} "
             f"WHEN {FIRST_SOLVE_OR_LATEST} IS NULL THEN m.first_reply_at "
             f"ELSE MIN(m.first_reply_at, {FIRST_SOLVE_OR_LATEST}) END)")
#: a status event's change to "unsolved" (alias x): +1 solved -> unsolved, -1 into a solved status, else 0
DELTA = (f"(CASE WHEN {_is_any('x.old_value', SOLVED)} THEN {_is_any('x.new_value', UNSOLVED)} "
         f"ELSE -{_is_any('x.new_value', SOLVED)} END)")

_RUN_CAL = re.compile(r"-(\d+)(?:,-\d+)*,(\d+)")
_RUN_BUS = re.compile(r"-(\d+):(\d+)(?:,-\d+:\d+)*,(\d+):(\d+)")


def runs(seq: str, business: bool) -> list[tuple[int, int | None, int, int | None]]:
    """(run start, its B, reply, its B) for every answered run of customer messages in a sequence string."""
    out: list[tuple[int, int | None, int, int | None]] = []
    if business:
        for cs, cb, rs, rb in _RUN_BUS.findall(seq):
            out.append((int(cs), int(cb), int(rs), int(rb)))
    else:
        for cs, rs in _RUN_CAL.findall(seq):
            out.append((int(cs), None, int(rs), None))
    return out
