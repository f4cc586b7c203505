"""The admin web UI in a real browser (Debian's Chromium driven by Playwright) against the whole
stack in-process: catalog, dispatcher, poller, storage, Studio and ops on real PostgreSQL and NATS,
every provider's fake and the local provider, behind the gateway served on a free port.

One walk through what an operator does: open the UI, give the admin token (a wrong one first),
generate an image with the local provider through the form (a bad parameter first, its message
next to the field), see it appear; find the task in the history and open its detail; store a
provider key and see only its mask; check a provider's health; then in Studio create a project,
an episode and a shot, generate two images for the shot with the composed prompt, choose the
second frame, see it in the episode overview and export a storyboard.

Along the way: no page error, no request leaves the gateway's origin, the token is never in a URL.
"""

from __future__ import annotations

import contextlib
import importlib.util
import re
import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _missing() -> list[str]:
    missing = []
    if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
        missing.append(
            f"Chromium ({CHROMIUM}; install it with `apt-get install -y chromium` or `make system-deps`)"
        )
    if importlib.util.find_spec("playwright") is None:
        missing.append("the Python package playwright (`pip install -c constraints.txt -e '.[dev]'`)")
    if importlib.util.find_spec("services.studio.server") is None:
        missing.append("the Studio service (services/studio)")
    return missing


MISSING = _missing()
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.slow,
    pytest.mark.timeout(600),
    pytest.mark.skipif(bool(MISSING), reason="the web UI browser test needs " + "; ".join(MISSING)),
]

WAIT_MS = 60_000


@contextlib.asynccontextmanager
async def browser_page(origin: str) -> AsyncIterator[tuple[Any, dict[str, list[str]]]]:
    """A Chromium page, and what it saw: page errors, console errors, and every request URL."""
    from playwright.async_api import async_playwright

    seen: dict[str, list[str]] = {"errors": [], "requests": []}
    executable = CHROMIUM if Path(CHROMIUM).exists() else str(shutil.which("chromium"))
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        try:
            context = await browser.new_context(viewport={"width": 1400, "height": 1000})
            page = await context.new_page()
            page.set_default_timeout(WAIT_MS)
            page.on("pageerror", lambda error: seen["errors"].append(f"page error: {error}"))
            page.on(
                "console",
                lambda message: (
                    seen["errors"].append(f"console: {message.text}")
                    if message.type == "error" and "status of 4" not in message.text
                    else None
                ),
            )
            page.on("request", lambda request: seen["requests"].append(request.url))
            yield page, seen
        finally:
            await browser.close()


async def test_the_admin_ui_end_to_end(pg_url, nats_url, monkeypatch, tmp_path):
    from playwright.async_api import expect

    from tests.integration.gateway.conftest import ADMIN_TOKEN, gateway_running

    started = time.monotonic()
    async with (
        gateway_running(pg_url, nats_url, monkeypatch, tmp_path, studio=True) as gw,
        browser_page(gw.url) as (page, seen),
    ):
        stack_ready = time.monotonic()
        expect.set_options(timeout=WAIT_MS)

        # --- the token: asked for at once; a wrong one is refused with the server's message -------
        await page.goto(gw.url + "/")
        assert page.url.startswith(gw.url + "/ui/")
        dialog = page.get_by_role("dialog", name="Admin token")
        await expect(dialog).to_be_visible()
        await page.get_by_role("textbox", name="Token").fill("not-the-admin-token")
        await page.get_by_role("button", name="Use this token").click()
        await expect(dialog).to_be_visible()
        await expect(page.locator("#token-reason")).to_have_text("the admin token is not valid")
        await page.get_by_role("textbox", name="Token").fill(ADMIN_TOKEN)
        await page.get_by_role("button", name="Use this token").click()
        await expect(dialog).to_be_hidden()
        assert await page.evaluate("sessionStorage.getItem('aigen.adminToken')") == ADMIN_TOKEN

        # --- generate: provider → model → prompt → parameters; the price follows ------------------
        await expect(page.get_by_role("heading", name="Generate", level=1)).to_be_visible()
        form = page.get_by_role("form", name="Generate")
        await form.get_by_label("Provider", exact=True).select_option("local")
        await form.get_by_label("Model", exact=True).select_option("local-image")
        await expect(form.get_by_label("Width", exact=True)).to_have_value("1024")
        await expect(form.locator("output.price")).to_contain_text("$0.00")
        await page.get_by_label("Field labels", exact=True).select_option("zh")
        await expect(form.get_by_label("宽度", exact=True)).to_be_visible()
        await page.get_by_label("Field labels", exact=True).select_option("en")
        await form.get_by_label("Prompt", exact=True).fill("a lighthouse at dusk")
        await form.get_by_label("Width", exact=True).fill("10")
        await form.get_by_label("Height", exact=True).fill("240")
        await form.get_by_role("button", name="Generate").click()
        width_field = form.locator('[data-field="parameters.width"]')
        await expect(width_field.locator(".field-error")).to_have_text("must be at least 64")
        await expect(form.get_by_label("Width", exact=True)).to_have_attribute("aria-invalid", "true")
        await form.get_by_label("Width", exact=True).fill("320")
        await form.get_by_label("Style", exact=True).select_option(label="Layered waves")
        await form.get_by_role("button", name="Generate").click()
        card = page.locator(".task-card").first
        await expect(card).to_have_attribute("data-status", "SUCCESS")
        task_id = await card.get_attribute("data-task-id")
        assert task_id
        image = card.locator("img.media")
        await expect(image).to_have_count(1)
        assert await image.evaluate(
            "img => img.decode().then(() => [img.naturalWidth, img.naturalHeight])"
        ) == [
            320,
            240,
        ]

        # --- task history, then the task's detail -------------------------------------------------
        await page.get_by_role("link", name="Task history").click()
        await page.get_by_label("Provider", exact=True).select_option("local")
        await page.get_by_role("button", name="Filter").click()
        await expect(page).to_have_url(re.compile(r"#/tasks\?provider=local$"))
        row = page.locator(f'tr[data-task-id="{task_id}"]')
        await expect(row.locator(".badge")).to_have_text("SUCCESS")
        await page.get_by_label("Status", exact=True).select_option("FAILED")
        await page.get_by_role("button", name="Filter").click()
        await expect(page.get_by_text("No task matches these filters.")).to_be_visible()
        await page.get_by_role("button", name="Clear").click()
        await row.get_by_role("link").click()
        await expect(page.get_by_role("heading", name=f"Task {task_id[:12]}", level=1)).to_be_visible()
        await expect(page.locator(".status-line .badge").first).to_have_text("SUCCESS")
        await expect(page.locator(".result-detail img.media")).to_have_count(1)
        await expect(page.locator(".details").get_by_text("image/png")).to_be_visible()
        await expect(page.get_by_role("cell", name="waves")).to_be_visible()
        await expect(page.get_by_role("button", name="Cancel task")).to_have_count(0)

        # --- providers: a key is stored and shown only as its mask; health is checked -------------
        await page.get_by_role("link", name="Providers").click()
        await expect(page.locator('tr[data-provider="openai"]')).to_be_visible()
        await page.locator('tr[data-provider="openai"]').get_by_role("link").click()
        await expect(page.get_by_role("heading", name="OpenAI", level=1)).to_be_visible()
        secret = "sk-ui-test-0123456789-wxyz"
        await page.get_by_label("New API key", exact=True).fill(secret)
        await page.get_by_role("button", name="Save key").click()
        key_state = page.locator(".key-state")
        await expect(key_state).to_have_attribute("data-key-state", "stored")
        await expect(key_state.locator(".masked")).to_have_text("••••wxyz")
        await expect(page.get_by_label("New API key", exact=True)).to_have_value("")
        assert secret not in await page.content()
        provider = await gw.admin("GET", "/admin/providers/openai")
        assert provider.json()["apiKeyMasked"] == "••••wxyz"
        model_row = page.locator("tr[data-model]").first
        model_slug = await model_row.get_attribute("data-model")
        await model_row.get_by_role("button", name=re.compile("^Deactivate")).click()
        await expect(page.locator(f'tr[data-model="{model_slug}"]')).to_contain_text("inactive")
        await (
            page.locator(f'tr[data-model="{model_slug}"]')
            .get_by_role("button", name=re.compile("^Activate"))
            .click()
        )
        await expect(page.locator(f'tr[data-model="{model_slug}"]').get_by_role("button")).to_have_text(
            "Deactivate"
        )
        await page.goto(gw.url + "/ui/#/providers/local")
        await page.get_by_role("button", name="Check now").click()
        await expect(page.locator(".health[data-ok=true]")).to_contain_text("ms")

        # --- Studio: project → episode → shot → generate for the shot → choose a frame -----------
        await page.get_by_role("link", name="Studio").click()
        new_project = page.get_by_role("form", name="New project")
        await new_project.get_by_role("textbox", name="Name", exact=True).fill("Night Harbour")
        await new_project.get_by_role("textbox", name="Slug", exact=True).fill("Night Harbour")
        await new_project.get_by_role("button", name="Create project").click()
        slug_field = new_project.locator('[data-field="slug"] .field-error')
        await expect(slug_field).to_contain_text("lower-case letters")
        await new_project.get_by_role("textbox", name="Slug", exact=True).fill("night-harbour")
        await new_project.get_by_label("Default image model", exact=True).select_option("local-image")
        await new_project.get_by_role("button", name="Create project").click()
        await expect(page.get_by_role("heading", name="Night Harbour", level=1)).to_be_visible()

        new_episode = page.get_by_role("form", name="New episode")
        await new_episode.get_by_label("Title", exact=True).fill("Pilot")
        await new_episode.get_by_role("button", name="Create episode").click()
        await expect(page.get_by_role("heading", name="Episode 1: Pilot", level=1)).to_be_visible()

        await page.get_by_text("New shot", exact=True).click()
        new_shot = page.get_by_role("form", name="New shot")
        await new_shot.get_by_label("Title", exact=True).fill("Opening")
        await new_shot.get_by_label("Description", exact=True).fill("A lighthouse at dusk")
        await new_shot.get_by_label("Duration (seconds)", exact=True).fill("3")
        await new_shot.get_by_role("button", name="Create shot").click()
        await expect(page.get_by_role("heading", name="Shot 1: Opening", level=1)).to_be_visible()

        panel = page.get_by_role("form", name="Generate for this shot")
        await expect(panel.get_by_label("Model", exact=True)).to_have_value("local-image")
        prompt = panel.get_by_label("Prompt", exact=True)
        await expect(prompt).to_have_value("A lighthouse at dusk.")
        await prompt.fill("A lighthouse at dusk. Wide shot.")
        await panel.get_by_label("Width", exact=True).fill("320")
        await panel.get_by_label("Height", exact=True).fill("180")
        await panel.get_by_label("Number of outputs", exact=True).fill("2")
        await panel.get_by_role("button", name="Generate for this shot").click()
        shot_card = page.locator(".task-card").first
        await expect(shot_card).to_have_attribute("data-status", "SUCCESS")
        shot_task = await shot_card.get_attribute("data-task-id")
        frames = page.locator("li.frame")
        await expect(frames).to_have_count(2)
        await expect(page.locator('li.frame[data-frame-number="1"]')).to_have_attribute(
            "data-selected", "true"
        )
        await page.get_by_role("button", name="Select Frame 2 as the shot's picture").click()
        await expect(page.locator('li.frame[data-frame-number="2"]')).to_have_attribute(
            "data-selected", "true"
        )
        await expect(page.locator('li.frame[data-frame-number="1"]')).to_have_attribute(
            "data-selected", "false"
        )
        await expect(page.locator(f'tr[data-task-id="{shot_task}"] .badge')).to_have_text("SUCCESS")
        listed = await gw.admin("POST", "/admin/studio/ListFrames", json={"shotId": await shot_id_of(page)})
        chosen = [f for f in listed.json()["frames"] if f["selected"]]
        assert [f["frameNumber"] for f in chosen] == [2]
        task = (await gw.admin("GET", f"/admin/tasks/{shot_task}")).json()
        assert task["prompt"] == "A lighthouse at dusk. Wide shot."
        assert task["numberOfOutputs"] == 2

        # --- the episode overview shows the chosen picture; a storyboard export has its link -------
        await (
            page.get_by_role("navigation", name="Breadcrumb")
            .get_by_role("link", name="Episode 1: Pilot")
            .click()
        )
        shot_tile = page.locator(".shot-card").first
        await expect(shot_tile.locator("img.media")).to_have_attribute("src", re.compile(r"/files/"))
        chosen_src = await shot_tile.locator("img.media").get_attribute("src")
        assert chosen_src is not None and chosen_src.split("?")[0] == chosen[0]["url"].split("?")[0]
        await page.get_by_role("button", name="Export").click()
        download = page.get_by_role("link", name="Download")
        await expect(download).to_have_count(1)
        href = await download.get_attribute("href")
        assert href is not None
        exported = await gw.http.get(href)
        assert exported.status_code == 200
        assert b"Opening" in exported.content

        finished = time.monotonic()

    assert seen["errors"] == [], seen["errors"]
    foreign = [url for url in seen["requests"] if not url.startswith((gw.url, "data:", "blob:"))]
    assert foreign == [], f"requests left the gateway's origin: {foreign}"
    assert not [url for url in seen["requests"] if ADMIN_TOKEN in url]
    # Live progress came from the admin server-sent events of each task submitted.
    for followed in (task_id, shot_task):
        assert f"{gw.url}/admin/tasks/{followed}/events" in seen["requests"]
    print(
        f"\nweb UI walk: stack {stack_ready - started:.1f} s, browser {finished - stack_ready:.1f} s, "
        f"{len(seen['requests'])} requests"
    )


async def shot_id_of(page: Any) -> str:
    found = re.search(r"#/studio/shots/([^/?]+)", page.url)
    assert found, page.url
    return found.group(1)
