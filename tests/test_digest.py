"""The weekly digest's composition: right numbers, arrows and sparklines; always within Slack's limits."""

from __future__ import annotations

import json
import re
from datetime import date
from typing import Any

import pytest
import requests
import responses
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.sim.base import responses_callback
from connectors.sim.slack import SlackSim, cumulative_size, validate_blocks
from kpi_engine.digest import (
    CHAR_BUDGET,
    DigestAccount,
    DigestInput,
    DigestTicket,
    compose,
    digest_input_from_kpis,
    iso_week_bounds,
    payload_size,
    render_terminal,
)
from kpi_engine.digest_format import sparkline

THIS_WEEK = {
    "period": {"since": "2026-11-16", "until": "2026-11-23", "timezone": "Europe/Berlin"},
    "kpis": {"tickets_created": 1204, "first_response_time_median_s": 8040, "full_resolution_time_median_s": 200_000,
             "csat_pct": 93.4, "fcr_pct": 71.0, "sla_adherence_pct": 88.2, "backlog_size": 250,
             "backlog_age": {"0_24h": 120, "24_48h": 40, "48h_7d": 60, "gt_7d": 30, "pct_gt_7d": 12.0},
             "cdi_red": 4, "cdi_yellow": 11, "monthly_ticket_volume": [{"month": "2026-11", "tickets": 3000}]},
}
LAST_WEEK = {"kpis": {"tickets_created": 1075, "first_response_time_median_s": 9120,
                      "full_resolution_time_median_s": 190_000, "csat_pct": 91.0, "fcr_pct": 73.5,
                      "sla_adherence_pct": 88.2, "backlog_size": 270, "backlog_age": {"pct_gt_7d": 10.0}}}
TICKETS_TREND = [900, 1000, None, 1100, 1050, 980, 1075, 1204]


def _trend() -> list[dict[str, Any] | None]:
    return [None if v is None else {"kpis": {"tickets_created": v, "csat_pct": 90 + i}}
            for i, v in enumerate(TICKETS_TREND)]


def _realistic() -> DigestInput:
    accounts = [
        DigestAccount("Steady Inc", "acme-zendesk", 55, "yellow", -3, ["open tickets 60th pct"], False),
        {"name": "Globex <Ltd> & Co", "source": "acme-freshdesk", "cdi": 64, "band": "yellow", "change_7d": 22,
         "reasons": ["negative tone 97th pct"]},
        DigestAccount("Acme Corp", "acme-zendesk", 82, "red", 17,
                      ["open tickets 95th pct", "negative tone 88th pct", "tickets 30d 80th pct", "4th reason"], True),
        DigestAccount("Initech", "acme-zendesk", 58, "yellow", 6, [], False),
    ]
    tickets = [
        DigestTicket("acme-freshdesk", "9", "Refund?", 3 * 86400, None, None),
        DigestTicket("acme-zendesk", "123", "Printer on fire", 23 * 86400 + 4 * 3600, "urgent",
                     "https://acme.zendesk.com/agent/tickets/123"),
    ]
    return digest_input_from_kpis("2026-W47", THIS_WEEK, LAST_WEEK, _trend(), accounts, tickets,
                                  sources=["acme-zendesk", "acme-freshdesk"],
                                  notes=["CSAT excludes Intercom: no ratings synced"])


def _field(payload: dict[str, Any], label: str) -> str:
    for block in payload["blocks"]:
        for fld in block.get("fields") or []:
            if fld["text"].split("\n", 1)[0] == label:
                return fld["text"]
    raise AssertionError(f"no field {label!r}")


def _all_text(payload: dict[str, Any]) -> str:
    return json.dumps(payload["blocks"], ensure_ascii=False)


def test_headline_kpis_are_humanized_with_judged_changes() -> None:
    payload = compose(_realistic())
    frt = _field(payload, "First response (median)")
    assert "*2h 14m*" in frt and "▼ 18m" in frt and "🟢" in frt and "better" in frt
    resolution = _field(payload, "Resolution (median)")
    assert "*2d 7h*" in resolution and "▲" in resolution and "worse" in resolution
    csat = _field(payload, "CSAT")
    assert "*93%*" in csat and "▲ 2.4 pts" in csat and "better" in csat
    fcr = _field(payload, "First-contact resolution")
    assert "▼ 2.5 pts" in fcr and "worse" in fcr
    assert "unchanged" in _field(payload, "SLA adherence")
    backlog = _field(payload, "Open backlog")
    assert "*250*" in backlog and "▼" in backlog and "better" in backlog   # fewer open tickets is good news
    old = _field(payload, "Open &gt; 7 days")
    assert "*12%*" in old and "▲ 2 pts" in old and "worse" in old
    tickets = _field(payload, "Tickets created")
    assert "*1,204*" in tickets and "▲ 12%" in tickets and "better" not in tickets and "worse" not in tickets


def test_sparklines_follow_the_eight_week_trend_with_gaps() -> None:
    payload = compose(_realistic())
    line = _field(payload, "Tickets created").rsplit("\n", 1)[-1]
    assert line == f"`{sparkline(TICKETS_TREND)}`"
    assert line[3] == " " and line[-2] == "█"                        # the missing week, and this week is the peak
    assert "`▁▂ ▄▅▆▇█`" in _field(payload, "CSAT")                   # 90..97 steadily up; week 3 had no data
    assert "`" not in _field(payload, "Open backlog")                # no history: no sparkline rather than blanks


def test_header_period_sources_backlog_buckets_and_notes() -> None:
    payload = compose(_realistic())
    blocks = payload["blocks"]
    assert blocks[0] == {"type": "header", "text": {"type": "plain_text", "text": "Support weekly digest · 2026-W47",
                                                    "emoji": True}}
    context = blocks[1]["elements"][0]["text"]
    assert "16–22 Nov 2026" in context and "Europe/Berlin" in context and "2 sources" in context
    text = _all_text(payload)
    assert "&lt;24h 120 · 1–2d 40 · 2–7d 60 · &gt;7d 30" in text
    assert "CSAT excludes Intercom" in text


def test_accounts_turned_red_first_then_by_rise_with_top_three_reasons() -> None:
    text = _all_text(compose(_realistic()))
    acme, globex, initech = (text.index(name) for name in ("Acme Corp", "Globex &lt;Ltd&gt; &amp; Co", "Initech"))
    assert acme < globex < initech
    assert "Steady Inc" not in text                                  # neither red nor rising: not news
    assert "turned red" in text and "CDI 82 (▲ 17 in 7d)" in text
    assert "tickets 30d 80th pct" in text and "4th reason" not in text
    assert "1 turned red · 2 rising · now 🔴 4 red, 🟡 11 yellow" in text


def test_oldest_tickets_sorted_linked_and_escaped() -> None:
    text = _all_text(compose(_realistic()))
    assert text.index("Printer on fire") < text.index("Refund?")
    assert "<https://acme.zendesk.com/agent/tickets/123|#123> Printer on fire · *23d 4h* · urgent" in text
    assert "#9 Refund? · *3d*" in text


def test_fallback_text_names_every_kpi_and_verdict_in_words() -> None:
    text = compose(_realistic())["text"]
    assert text.startswith("Support weekly digest 2026-W47 (16–22 Nov 2026)")
    assert "First response (median) 2h 14m (▼ 18m, better)" in text
    assert "CSAT 93% (▲ 2.4 pts, better)" in text and "1 account turned red." in text
    assert "🟢" not in text and "🔴" not in text


def test_empty_week_says_so_instead_of_inventing_numbers() -> None:
    inp = DigestInput("2026-W01", date(2025, 12, 29), date(2026, 1, 5), "UTC", [], {}, {})
    payload = compose(inp)
    text = _all_text(payload)
    assert "No account turned red" in text and "No open tickets." in text
    assert "*—*" in _field(payload, "CSAT") and "no data last week" in _field(payload, "CSAT")
    assert "29 Dec 2025 – 4 Jan 2026" in payload["blocks"][1]["elements"][0]["text"]
    assert validate_blocks(payload["blocks"]) == []


def _huge() -> DigestInput:
    long = "Ünïcödé & <tricky> *name* " * 20
    sources = [f"source-{i:02d}-{'x' * 50}" for i in range(40)]
    accounts = [DigestAccount(f"{long} {i}", sources[i % 40], 71 + i % 29, "red", 15 + i % 30,
                              [f"{long} reason {j}" for j in range(6)], True) for i in range(200)]
    tickets = [DigestTicket(sources[i % 40], str(10_000 + i), long, 86400 * (100 - i), "urgent " * 10,
                            f"https://acme.zendesk.com/agent/tickets/{10_000 + i}") for i in range(100)]
    headline = {"tickets_created": 1e9, "first_response_time_median_s": 1e8, "csat_pct": 99.99}
    trend = {k: [None, 1.0, 2.0, None, 3.0, 4.0, 5.0, 6.0] for k in headline}
    return DigestInput("2026-W47", date(2026, 11, 16), date(2026, 11, 23), "America/Argentina/ComodRivadavia",
                       sources, headline, {}, trend, accounts, tickets, [long * 3] * 50)


def test_forty_sources_two_hundred_red_accounts_and_a_hundred_tickets_still_fit() -> None:
    payload = compose(_huge())
    blocks = payload["blocks"]
    assert validate_blocks(blocks) == []
    assert payload_size(blocks) <= CHAR_BUDGET and cumulative_size(blocks) == payload_size(blocks)
    assert len(blocks) <= 50 and len(payload["text"]) <= 3000
    text = _all_text(payload)
    assert re.search(r"…and \d+ more accounts \(\d+ turned red\)", text)
    assert re.search(r"…and \d+ more open tickets", text)
    assert "…and 32 more" in blocks[1]["elements"][0]["text"]     # 40 sources, 8 named
    assert "…and 45 more notes" in text
    shown = len(re.findall(r"🔴 \*", text))
    assert len(re.findall(r"🔴 \*[^*\n]+\* · CDI", text)) == shown    # a "*" inside a name cannot break the bold
    hidden = int(re.search(r"…and (\d+) more accounts", text).group(1))
    assert shown + hidden == 200 and shown >= 3


def test_the_huge_digest_is_accepted_by_the_slack_simulator() -> None:
    now = [1_000.0]
    sim = SlackSim(bot_token="xoxb-test", channels=("#support",), clock=lambda: now[0])
    payload = compose(_huge())
    with responses.RequestsMock() as mock:
        mock.add_callback(responses.POST, re.compile(r"https://slack\.test/.*"), callback=responses_callback(sim))
        answer = requests.post("https://slack.test/api/chat.postMessage", json={**payload, "channel": "#support"},
                               headers={"Authorization": "Bearer xoxb-test"}, timeout=5).json()
        now[0] += 1.0
        hook = requests.post(f"https://slack.test{sim.webhook_path}", json=payload, timeout=5)
    assert answer["ok"] is True, answer
    assert (hook.status_code, hook.text) == (200, "ok")
    assert [m["blocks"] for m in sim.messages] == [payload["blocks"], payload["blocks"]]


def test_escape_heavy_text_makes_the_digest_shrink_its_lists_to_fit() -> None:
    amps = "&<>" * 200                                                 # each character escapes to 4-5
    accounts = [DigestAccount(f"{amps} {i}", "s", 90, "red", 30, [amps] * 3, True) for i in range(30)]
    tickets = [DigestTicket("s", str(i), amps, 86400.0 * (30 - i), amps, None) for i in range(30)]
    inp = DigestInput("2026-W47", date(2026, 11, 16), date(2026, 11, 23), "UTC", ["s"], {}, {}, {},
                      accounts, tickets, [amps] * 10)
    blocks = compose(inp)["blocks"]
    text = _all_text({"blocks": blocks})
    shown = len(re.findall(r"🔴 \*", text))
    assert 3 <= shown < 10                                            # below the cap of 10: the budget shrank it
    assert f"…and {30 - shown} more accounts ({30 - shown} turned red)" in text
    assert payload_size(blocks) <= CHAR_BUDGET and validate_blocks(blocks) == []


_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=400)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(names=st.lists(_text, max_size=60), reasons=st.lists(_text, max_size=8),
       subjects=st.lists(_text, max_size=40), notes=st.lists(_text, max_size=12), week=_text)
def test_any_input_composes_to_valid_blocks(names: list[str], reasons: list[str], subjects: list[str],
                                            notes: list[str], week: str) -> None:
    accounts = [DigestAccount(n, n[:30], 80, "red", 20, reasons, i % 2 == 0) for i, n in enumerate(names)]
    tickets = [DigestTicket("s", s[:50] or "1", s, 3600.0 * i, s[:10], None) for i, s in enumerate(subjects)]
    inp = DigestInput(week or "2026-W47", date(2026, 1, 1), date(2026, 1, 8), "UTC", names[:50],
                      {"csat_pct": 50.0}, {"csat_pct": 40.0}, {}, accounts, tickets, notes)
    blocks = compose(inp)["blocks"]
    assert validate_blocks(blocks) == []
    assert payload_size(blocks) <= CHAR_BUDGET


def test_render_terminal_is_plain_text() -> None:
    out = render_terminal(compose(_realistic()))
    assert out.startswith("Support weekly digest · 2026-W47\n═")
    assert "2h 14m  🟢 ▼ 18m better" in out
    assert "Globex <Ltd> & Co" in out and "<24h 120" in out
    assert "#123 Printer on fire · 23d 4h" in out
    assert "*" not in out and "<https" not in out and "&amp;" not in out
    assert sparkline(TICKETS_TREND) in out                           # code span kept, gap included


def test_digest_input_from_kpis_flattens_and_pads_the_trend() -> None:
    inp = digest_input_from_kpis("2026-W47", {"kpis": {"csat_pct": float("nan"), "backlog_age": {"gt_7d": 3},
                                                       "monthly_ticket_volume": [], "label": "x", "flag": True}},
                                 None, [{"kpis": {"csat_pct": 80}}, {"csat_pct": 90}])
    assert inp.headline == {"csat_pct": None, "backlog_age.gt_7d": 3.0}
    assert inp.previous == {}
    assert inp.trend["csat_pct"] == [None] * 6 + [80.0, 90.0]
    assert (inp.since, inp.until, inp.timezone) == (date(2026, 11, 16), date(2026, 11, 23), "UTC")


def test_digest_input_keeps_only_the_last_eight_weeks_and_the_result_period() -> None:
    trend = [{"kpis": {"tickets_created": i}} for i in range(12)]
    inp = digest_input_from_kpis("2026-W47", THIS_WEEK, LAST_WEEK, trend)
    assert inp.trend["tickets_created"] == [float(i) for i in range(4, 12)]
    assert inp.timezone == "Europe/Berlin" and inp.previous["backlog_age.pct_gt_7d"] == 10.0


@pytest.mark.parametrize(("week", "bounds"), [
    ("2026-W47", (date(2026, 11, 16), date(2026, 11, 23))),
    ("2026-W01", (date(2025, 12, 29), date(2026, 1, 5))),
    ("2026-W53", (date(2026, 12, 28), date(2027, 1, 4))),
])
def test_iso_week_bounds(week: str, bounds: tuple[date, date]) -> None:
    assert iso_week_bounds(week) == bounds


@pytest.mark.parametrize("week", ["2025-W53", "2026-47", "W47", "2026-W00"])
def test_iso_week_bounds_rejects_bad_weeks(week: str) -> None:
    with pytest.raises(ValueError, match="week"):
        iso_week_bounds(week)
