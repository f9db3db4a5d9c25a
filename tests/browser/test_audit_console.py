"""Acceptance of ``cvault audit console`` in a real headless Chromium (see tests/support/browser.py).

Each test compares what the browser shows with the database itself, and saves
a screenshot of the page it checked (``CVAULT_TEST_SCREENSHOT_DIR=docs/img`` refreshes
the pictures of docs/audit-console.md).
"""

from __future__ import annotations

from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver

from tests.support.audited_store import Audited
from tests.support.browser import chromium, low_contrast_text, screenshot_dir
from vault.storage.pool import Pool


def _seqs(driver: WebDriver) -> list[int]:
    rows = driver.find_elements(By.CSS_SELECTOR, "table#events tbody tr[data-seq]")
    return [int(row.get_attribute("data-seq") or 0) for row in rows]


def _unlabelled_controls(driver: WebDriver) -> list[str]:
    missing = []
    for control in driver.find_elements(By.CSS_SELECTOR, "input, select, textarea"):
        ident = control.get_attribute("id")
        if not ident or not driver.find_elements(By.CSS_SELECTOR, f"label[for='{ident}']"):
            missing.append(control.get_attribute("name") or "?")
    return missing


async def test_filter_by_secret_shows_exactly_the_reads_the_database_holds(audited: Audited, pool: Pool) -> None:
    org = audited.world.org
    reads = [
        r["seq"]
        for r in await pool.fetch(
            "SELECT seq FROM store.audit_events WHERE org = $1 AND secret = 'db/url' AND action = 'secrets.read' "
            "ORDER BY seq DESC",
            org,
        )
    ]
    assert len(reads) == 2
    shots = screenshot_dir()

    def steps(driver: WebDriver) -> tuple[list[int], list[str], str, list[int], str, str, list[object]]:
        driver.get(audited.console_url)
        driver.save_screenshot(str(shots / "console-timeline.png"))
        unlabelled = _unlabelled_controls(driver)
        poor = low_contrast_text(driver)
        # Keyboard only: the first Tab lands on the skip link, then type the filter and press Enter.
        driver.find_element(By.TAG_NAME, "body").send_keys(Keys.TAB)
        first_focus = driver.switch_to.active_element.text
        driver.find_element(By.ID, "f-action").send_keys("secrets.read")
        secret = driver.find_element(By.ID, "f-secret")
        secret.send_keys("db/url")
        secret.send_keys(Keys.ENTER)
        filtered = _seqs(driver)
        url = driver.current_url
        # The denied write is highlighted and says so in words, not only in colour.
        driver.get(audited.console_url + "?outcome=denied")
        refused = _seqs(driver)
        badge = driver.find_element(By.CSS_SELECTOR, "table#events tbody tr.refused .badge").text
        return filtered, unlabelled, first_focus, refused, badge, url, poor

    async with chromium() as browser:
        filtered, unlabelled, first_focus, refused, badge, url, poor = await browser.run(steps)
    assert poor == []
    assert filtered == reads
    assert "secret=db%2Furl" in url and "action=secrets.read" in url
    assert unlabelled == []
    assert first_focus == "Skip to content"
    denied = [
        r["seq"]
        for r in await pool.fetch(
            "SELECT seq FROM store.audit_events WHERE org = $1 AND outcome = 'denied' ORDER BY seq DESC", org
        )
    ]
    assert refused == denied and denied
    assert badge == "DENIED"


async def test_the_secret_page_lists_every_read_and_write(audited: Audited, pool: Pool) -> None:
    rows = await pool.fetch(
        "SELECT seq, action, version, actor, client_addr FROM store.audit_events "
        "WHERE org = $1 AND vault = 'prod' AND secret = 'db/url' ORDER BY seq DESC",
        audited.world.org,
    )

    def steps(driver: WebDriver) -> tuple[list[int], str, str, list[list[str]]]:
        driver.get(audited.console_url + "?secret=db/url")
        driver.find_element(By.LINK_TEXT, "prod/db/url").click()
        cells = [
            [td.text for td in row.find_elements(By.TAG_NAME, "td")]
            for row in driver.find_elements(By.CSS_SELECTOR, "table#events tbody tr[data-seq]")
        ]
        return _seqs(driver), driver.find_element(By.ID, "read-count").text, driver.title, cells

    async with chromium() as browser:
        seqs, read_count, title, cells = await browser.run(steps)
    assert "Secret prod/db/url" in title
    assert seqs == [r["seq"] for r in rows]
    assert int(read_count) == sum(r["action"] == "secrets.read" for r in rows)
    by_seq = {r["seq"]: r for r in rows}
    for cell in cells:
        row = by_seq[int(cell[0])]
        assert cell[2] == row["action"]
        assert cell[5] == ("" if row["version"] is None else str(row["version"]))
        assert cell[9] == (row["client_addr"] or "")
        if row["actor"]:
            assert f"user {row['actor']}" in cell[6]


async def test_the_lineage_graph_names_the_operator_who_stripped_the_token(audited: Audited) -> None:
    shots = screenshot_dir()
    operator = audited.operator.id

    def steps(driver: WebDriver) -> dict[str, object]:
        driver.get(audited.console_url + "?action=secrets.read&secret=api/key")
        # The authority-token column links the service token the workload used.
        driver.find_element(By.CSS_SELECTOR, "table#events tbody tr[data-seq] td:nth-child(9) a").click()
        graph = driver.find_element(By.ID, "lineage")
        service = graph.find_element(By.CSS_SELECTOR, "g.node[data-kind='service']")
        found = {
            "url": driver.current_url,
            "service_token": service.get_attribute("data-token"),
            "service_detail": service.find_element(By.CSS_SELECTOR, "text.detail").text,
            "users": [n.text for n in graph.find_elements(By.CSS_SELECTOR, "g.node[data-kind='user'] text")],
            "permission": graph.find_element(By.CSS_SELECTOR, "g.node[data-kind='permission']").get_attribute(
                "data-token"
            ),
            "store": [
                (
                    n.get_attribute("data-token"),
                    "revoked" in (n.get_attribute("class") or ""),
                    n.find_element(By.CSS_SELECTOR, "text.revoked-mark").text,
                )
                for n in graph.find_elements(By.CSS_SELECTOR, "g.node[data-kind='store']")
            ],
            "scopes": sorted(
                n.find_element(By.CSS_SELECTOR, "text").text
                for n in graph.find_elements(By.CSS_SELECTOR, "g.node[data-kind='scope']")
            ),
            "edges": sorted(e.text for e in graph.find_elements(By.CSS_SELECTOR, "g.edge text")),
        }
        driver.save_screenshot(str(shots / "console-token.png"))
        found["poor"] = low_contrast_text(driver)
        # Keyboard: Tab reaches the graph's token boxes, and Enter on one follows it.
        driver.find_element(By.TAG_NAME, "body").send_keys(Keys.TAB)
        for _ in range(40):
            active = driver.switch_to.active_element
            if (active.get_attribute("aria-label") or "").startswith("permission token"):
                active.send_keys(Keys.ENTER)
                break
            active.send_keys(Keys.TAB)
        found["after_enter"] = driver.current_url
        return found

    async with chromium() as browser:
        found = await browser.run(steps)
    assert str(found["url"]).endswith(f"/tokens/{audited.service_id}")
    assert found["poor"] == []
    assert str(found["after_enter"]).endswith(f"/tokens/{audited.permission_id}")
    assert found["service_token"] == audited.service_id
    # Names, not numbers: the reviewer (an auditor) may list the org's members (docs/audit.md, "Who the actors are").
    assert found["service_detail"] == "stripped by ops@example.com"
    assert found["users"][0] == f"user {operator}"
    assert found["permission"] == audited.permission_id
    assert found["store"] == [(audited.read_token_id, True, "REVOKED")]  # revoked at the end of the scenario
    # The denied write came with a verified org discharge, so its row names the lineage too (issue 16).
    assert found["scopes"] == ["secrets.read prod/api/key", "secrets.read prod/db/url", "secrets.write prod/db/url"]
    assert found["edges"] == ["created", "discharged", "narrowed", "narrowed", "narrowed", "stripped"]


async def test_a_tampered_row_is_named_as_the_broken_link(audited: Audited, pool: Pool) -> None:
    shots = screenshot_dir()
    chain_url = audited.console_url + "chain"

    def status(driver: WebDriver) -> str:
        driver.get(chain_url)
        return str(driver.find_element(By.ID, "chain-status").text)

    async with chromium() as browser:
        intact = await browser.run(status)
        head = await pool.fetchval("SELECT coalesce(max(seq), 0) FROM store.audit_events")
        victim = await pool.fetchval(
            "SELECT min(seq) FROM store.audit_events WHERE action = 'secrets.read' AND secret = 'db/url'"
        )
        async with pool.acquire() as conn, conn.transaction():
            # The append-only triggers do not fire in replica mode (a superuser's way, and a tamperer's).
            await conn.execute("SET LOCAL session_replication_role = replica")
            await conn.execute("UPDATE store.audit_events SET client_addr = '203.0.113.9' WHERE seq = $1", victim)

        def broken(driver: WebDriver) -> tuple[str, str, str, list[tuple[str, str, float]]]:
            text = status(driver)
            driver.save_screenshot(str(shots / "console-chain.png"))
            return (
                text,
                driver.find_element(By.ID, "broken-seq").text,
                driver.find_element(By.ID, "verified-upto").text,
                low_contrast_text(driver),
            )

        text, broken_seq, upto, poor = await browser.run(broken)
    assert poor == []
    assert intact.startswith("Intact.") and f"{head} events in 1 chain verified" in intact
    assert f"BROKEN at event {victim}." in text
    assert f"event {victim}: hash does not match its contents (edited?)" in text
    assert broken_seq == f"event {victim}"
    assert upto.startswith(f"event {victim - 1} ")
