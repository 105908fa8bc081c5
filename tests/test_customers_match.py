"""One customer across helpdesks (issue 13, item 3): matching rules, and one row everywhere it is shown.

The store below holds three helpdesks (zd, fd, ic) whose organizations are:

- Acme: Zendesk org 1 (domain_names acme.example) and Freshdesk company 7 (domains acme.example): one customer;
- Solo Ltd (zd 2) and Solo GmbH (fd 8): both list gmail.com, their people write from gmail.com: two customers;
- Globex: Zendesk org 3 and Intercom company c1 record no domain; their people write from globex.example;
- Initech: Zendesk org 4 (external_id INI-9) and Intercom company c2 (company_id INI-9);
- Pat, without an organization, writes from pat@gmail.com to Zendesk and to Freshdesk: one person.
"""

from __future__ import annotations

import io
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from config.settings import CustomerSettings, DistressSettings, Settings, SlaSettings
from kpi_engine.customers import is_personal, resolve
from kpi_engine.distress import refresh
from kpi_engine.engine import compute
from kpi_engine.report import build_report
from sync.digest_job import digest_accounts
from sync.store import Store
from sync.writeback import plan

T = 1_772_366_400  # 2026-03-01 12:00 UTC
DAY = 86400
ALL_RED = DistressSettings(green_max=0, yellow_max=0)  # every active account flagged: write-back has work

ORGS: list[tuple[str, str, str, dict[str, Any], list[str]]] = [  # source, id, name, raw, people's e-mails
    ("zd", "1", "Acme Corp", {"domain_names": ["acme.example"], "external_id": None}, ["ann@acme.example"]),
    ("fd", "7", "Acme", {"domains": ["acme.example"]}, ["bo@acme.example"]),
    ("zd", "2", "Solo Ltd", {"domain_names": ["gmail.com"], "external_id": None}, ["solo.one@gmail.com"]),
    ("fd", "8", "Solo GmbH", {"domains": ["gmail.com"]}, ["solo.two@gmail.com"]),
    ("zd", "3", "Globex Inc", {"domain_names": [], "external_id": None}, ["y@globex.example"]),
    ("ic", "c1", "Globex", {"website": None, "company_id": None}, ["x@globex.example"]),
    ("zd", "4", "Initech", {"domain_names": [], "external_id": "INI-9"}, []),
    ("ic", "c2", "Initech", {"website": None, "company_id": "INI-9"}, []),
]
ORGLESS = [("zd", "pat-zd", "pat@gmail.com"), ("fd", "pat-fd", "Pat@Gmail.com")]


def _build(path: Path) -> Path:
    """Two open tickets per organization (one with an agent reply), two per org-less Pat account."""
    n = 0
    with Store(path) as store:
        for source, oid, name, raw, emails in ORGS:
            store.upsert("organizations", [{"source": source, "id": oid, "name": name, "value": 1000.0,
                                            "created_at": T - 400 * DAY, "raw": raw}])
            people = [{"source": source, "id": f"{source}-{oid}-p{i}", "name": e, "email": e, "role": "customer",
                       "organization_id": oid, "raw": {}} for i, e in enumerate(emails or ["nobody"])]
            store.upsert("people", people)
            for k in range(2):
                n += 1
                store.upsert("tickets", [{"source": source, "id": f"t{n}", "status": "open", "organization_id": oid,
                                          "requester_id": people[0]["id"], "created_at": T - (3 + k) * DAY,
                                          "updated_at": T - DAY, "severity": 1, "raw": {}}])
                store.upsert("messages", [{"source": source, "id": f"m{n}", "ticket_id": f"t{n}", "author_id": "a",
                                           "author_role": "agent", "public": 1, "body": "on it",
                                           "created_at": T - (3 + k) * DAY + 600 * (k + 1)}])
        for source, pid, email in ORGLESS:
            store.upsert("people", [{"source": source, "id": pid, "name": "Pat", "email": email, "role": "customer",
                                     "organization_id": None, "raw": {}}])
            for k in range(2):
                n += 1
                store.upsert("tickets", [{"source": source, "id": f"t{n}", "status": "open", "organization_id": None,
                                          "requester_id": pid, "created_at": T - (5 + k) * DAY,
                                          "updated_at": T - DAY, "severity": 1, "raw": {}}])
    return path


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return _build(tmp_path / "customers.db")


def _settings(db: Path, **customers: Any) -> Settings:
    from sync.registry import register_source_models

    register_source_models()  # [[sources]] kinds come from the installed connector plugins
    return Settings(store={"path": db}, customers=customers, distress=ALL_RED.model_dump(),
                    sla={"first_reply": {1: 5}},
                    sources=[{"name": "zd", "kind": "zendesk", "base_url": "https://x.zendesk.com",
                              "email": "ops@x.example", "api_token": "t"},
                             {"name": "fd", "kind": "freshdesk", "base_url": "https://x.freshdesk.com",
                              "api_key": "k"},
                             {"name": "ic", "kind": "intercom", "base_url": "https://api.intercom.io",
                              "access_token": "t"}])


def _cdi(store: Store, settings: Settings) -> dict[str, Any]:
    result = refresh(store.conn, settings=settings.distress, as_of=T, sla=settings.sla,
                     customers=settings.customers, history_days=0)
    return {a.name: a for a in result.accounts}


def _by_org(store: Store, settings: Settings) -> dict[str, dict[str, Any]]:
    result = compute(store.conn, kpi=settings.kpi, sla=settings.sla, costs=settings.costs, since=T - 30 * DAY,
                     until=T, by="organization", now=T, customers=settings.customers)
    rows = [r for r in result["breakdown"] if r["key"] != "(none)"]
    assert len({r["name"] for r in rows}) == len(rows), [r["name"] for r in rows]
    assert sum(r["kpis"]["tickets_created"] for r in result["breakdown"]) == result["kpis"]["tickets_created"]
    return {r["name"]: r for r in rows}


def test_a_customer_on_two_helpdesks_is_one_row_everywhere(db: Path) -> None:
    settings = _settings(db)
    with Store(db) as store:
        accounts = _cdi(store, settings)
        # distress: Acme once, with both helpdesks' tickets pooled; Solo twice (gmail.com merges nothing)
        # a merged customer's name: the one most members carry, else its primary (smallest key) member's
        assert set(accounts) == {"Acme", "Solo Ltd", "Solo GmbH", "Globex", "Initech", "Pat"}
        acme = accounts["Acme"]
        assert acme.sources == ["fd", "zd"] and acme.components["open_tickets"] == 4
        assert acme.account == "fd:org:7" and acme.members == ["fd:org:7", "zd:org:1"]
        assert accounts["Globex"].sources == ["ic", "zd"]  # by the people's domain (no org domain recorded)
        assert accounts["Initech"].sources == ["ic", "zd"]  # by external id
        assert accounts["Pat"].sources == ["fd", "zd"]  # one e-mail address, whatever its case
        assert accounts["Solo Ltd"].sources == ["zd"] and accounts["Solo GmbH"].sources == ["fd"]
        # keys are stable: an unmerged organization keeps its own account key (its CDI history carries on)
        assert accounts["Solo Ltd"].account == "zd:org:2" and _cdi(store, settings)["Acme"].account == acme.account

        # kpi --by organization: one row per customer, its sources listed
        rows = _by_org(store, settings)
        assert set(rows) == {"Acme", "Solo Ltd", "Solo GmbH", "Globex", "Initech"}
        assert rows["Acme"]["sources"] == ["fd", "zd"] and rows["Acme"]["kpis"]["tickets_created"] == 4
        assert rows["Acme"]["key"] == acme.account  # the same key as the customer's CDI account

        # digest: the customer's name and both sources on one line
        digest = [a for a in digest_accounts(store) if a.name == "Acme"]
        assert len(digest) == 1 and digest[0].source == "fd, zd"

        # write-back: one flagged customer, its reasons on its open tickets in both helpdesks
        planned = plan(store, settings, now=T)
        tagged = {(w.source, w.ticket_id) for w in planned.writes if w.account == acme.account}
        assert {s for s, _ in tagged} == {"fd", "zd"} and len(tagged) == 4
        assert {w.reason for w in planned.writes if w.account == acme.account} == {acme_why(acme)}

        # report data: SLA per customer and the CDI table, one row each
        data = build_report(store.conn, kpi=settings.kpi, sla=settings.sla, costs=settings.costs,
                            distress_settings=settings.distress, distress=refresh(
                                store.conn, settings=settings.distress, as_of=T, customers=settings.customers,
                                history_days=0), since=T - 30 * DAY, until=T, now=T, customers=settings.customers)
        sla_names = [r["account"] for r in data.sla_by_account]
        assert sla_names.count("Acme") == 1 and len(sla_names) == len(set(sla_names)) == 5
        assert next(r for r in data.sla_by_account if r["account"] == "Acme")["sources"] == ["fd", "zd"]
        cdi_names = [a["name"] for a in data.distress["accounts"]]
        assert cdi_names.count("Acme") == 1 and len(cdi_names) == 6


def acme_why(acct: Any) -> str:
    return f"CDI {acct.cdi} ({acct.band})" + (": " + ", ".join(acct.top_reasons[:3]) if acct.top_reasons else "")


def test_a_shared_personal_domain_never_merges(db: Path) -> None:
    with Store(db) as store:
        cmap = resolve(store.conn, CustomerSettings())
        assert ("zd", "org", "2") not in cmap.by_member and ("fd", "org", "8") not in cmap.by_member
        # the same companies on a company domain would merge: the personal list is what keeps them apart
        store.conn.execute("UPDATE organizations SET raw = json_set(raw, '$.domain_names', json('[\"solo.example\"]'),"
                           " '$.domains', json('[\"solo.example\"]')) WHERE id IN ('2', '8')")
        assert resolve(store.conn).by_member[("zd", "org", "2")].sources == ["fd", "zd"]
        # ... unless the config calls that domain personal too
        assert ("zd", "org", "2") not in resolve(store.conn, CustomerSettings(personal_domains=["solo.example"])
                                                 ).by_member


def test_personal_domain_list() -> None:
    for domain in ("gmail.com", "GMAIL.com", "gmx.de", "gmx.net", "web.de", "proton.me", "outlook.com", "icloud.com"):
        assert is_personal(domain), domain
    for domain in ("acme.example", "gmx.example.com", "notgmail.com", "mail.acme.example"):
        assert not is_personal(domain), domain
    assert is_personal("freemail.example", ["freemail.example"])


def test_explicit_mapping_overrides_the_domain(db: Path) -> None:
    settings = _settings(db, map={"Acme West": ["zd:1"], "Solo Group": ["zd:2", "fd:8"]})
    with Store(db) as store:
        accounts = _cdi(store, settings)
        # zd:1 shares acme.example with fd:7, but the mapping keeps it apart; Solo merges despite gmail.com
        assert accounts["Acme West"].account == "customer:Acme West" and accounts["Acme West"].sources == ["zd"]
        assert accounts["Acme"].sources == ["fd"] and accounts["Acme"].account == "fd:org:7"
        assert accounts["Solo Group"].sources == ["fd", "zd"] and accounts["Solo Group"].components["open_tickets"] == 4
        rows = _by_org(store, settings)
        assert rows["Solo Group"]["sources"] == ["fd", "zd"] and rows["Acme West"]["key"] == "customer:Acme West"


def test_matching_turned_off_keeps_one_account_per_helpdesk(db: Path) -> None:
    settings = _settings(db, match=False)
    with Store(db) as store:
        result = refresh(store.conn, settings=settings.distress, as_of=T, customers=settings.customers,
                         history_days=0)
        assert len(result.accounts) == 10  # 8 organizations, Pat twice
        assert all(len(a.sources) == 1 and not a.members for a in result.accounts)
        assert sorted(a.account for a in result.accounts if a.name in ("Acme", "Acme Corp")) == ["fd:org:7",
                                                                                                   "zd:org:1"]
        rows = compute(store.conn, kpi=settings.kpi, sla=settings.sla, costs=settings.costs, since=T - 30 * DAY,
                       until=T, by="organization", now=T, customers=settings.customers)["breakdown"]
        assert len([r for r in rows if r["key"] != "(none)"]) == 8


def test_a_domain_two_organizations_of_one_helpdesk_claim_merges_nothing(db: Path) -> None:
    with Store(db) as store:
        store.upsert("organizations", [{"source": "zd", "id": "5", "name": "Acme EU",
                                        "raw": {"domain_names": ["acme.example"]}}])
        cmap = resolve(store.conn)
        assert ("zd", "org", "1") not in cmap.by_member and ("fd", "org", "7") not in cmap.by_member
        assert any("acme.example" in note for note in cmap.notes)


def test_intercom_website_is_a_domain(db: Path) -> None:
    with Store(db) as store:
        store.upsert("organizations", [{"source": "ic", "id": "c9", "name": "ACME Inc.",
                                        "raw": {"website": "https://www.Acme.example/about"}}])
        assert resolve(store.conn).by_member[("ic", "org", "c9")].members == (
            ("fd", "org", "7"), ("ic", "org", "c9"), ("zd", "org", "1"))


def test_config_through_the_console_script(db: Path, tmp_path: Path) -> None:
    """[customers] from the file reaches distress and kpi; a malformed mapping is one line, exit 2."""
    cfg = tmp_path / "deskpulse.toml"
    cfg.write_text(f'[store]\npath = "{db}"\n[customers]\nmatch_by = []\n'
                   '[customers.map]\n"Solo Group" = ["zd:2", "fd:8"]\n')
    out = subprocess.run(["deskpulse", "--config", str(cfg), "distress", "--format", "json", "--top", "0"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    names = [a["name"] for a in json.loads(out.stdout)["accounts"]]
    assert names.count("Solo Group") == 1 and "Acme" in names and "Acme Corp" in names  # only the map merges
    out = subprocess.run(["deskpulse", "--config", str(cfg), "kpi", "--since", "2026-02-01", "--until", "2026-03-02",
                          "--by", "organization", "--format", "json"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)["breakdown"]
    assert [r["sources"] for r in rows if r["name"] == "Solo Group"] == [["fd", "zd"]]
    out = subprocess.run(["deskpulse", "--config", str(cfg), "distress", "--source", "fd", "--format", "json"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    shown = {a["name"]: a["sources"] for a in json.loads(out.stdout)["accounts"]}
    assert shown["Solo Group"] == ["fd", "zd"] and "Acme Corp" not in shown  # customers with tickets in fd
    cfg.write_text(f'[store]\npath = "{db}"\n[customers.map]\n"Solo" = ["zd-2"]\n')
    out = subprocess.run(["deskpulse", "--config", str(cfg), "distress"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    assert len(out.stderr.strip().splitlines()) == 1 and "zd-2" in out.stderr and "customers" in out.stderr


def test_demo_world_through_three_simulators_shows_each_customer_once(tmp_path: Path) -> None:
    from sync.cli.context import AppContext
    from sync.cli.demo import run_demo

    out = io.StringIO()
    actx = AppContext(db_path=tmp_path / "demo.db", console=Console(file=out, width=160))
    shown = run_demo(actx, tickets=200, seed=5, kinds=[])
    accounts = shown["distress"].accounts
    names = [a.name for a in accounts]
    assert len(names) == len(set(names)), sorted(names)
    assert accounts and all(a.sources == ["sim-freshdesk", "sim-intercom", "sim-zendesk"] for a in accounts)
    assert "sim-freshdesk, sim-intercom, sim-zendesk" in " ".join(out.getvalue().split())  # the distress table
    settings = Settings(store={"path": tmp_path / "demo.db"})
    with Store(tmp_path / "demo.db") as store:
        digest = digest_accounts(store, limit=100)
        assert len({d.name for d in digest}) == len(digest) == len(accounts)
        assert {d.source for d in digest} == {"sim-freshdesk, sim-intercom, sim-zendesk"}
        orgs = store.scalar("SELECT COUNT(DISTINCT name) FROM organizations")
        result = compute(store.conn, kpi=settings.kpi, sla=SlaSettings(), costs=settings.costs, since=0,
                         until=int(actx.clock()) + DAY, by="organization", now=int(actx.clock()))
    rows = [r for r in result["breakdown"] if r["key"] != "(none)"]
    assert len({r["name"] for r in rows}) == len(rows) and 0 < len(rows) <= orgs  # orgs without tickets: no row
    assert all(r["sources"] == ["sim-freshdesk", "sim-intercom", "sim-zendesk"] for r in rows)
