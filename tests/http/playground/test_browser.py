"""The playground driven in headless Chromium against a real server and the fake provider: a
conversation, queue and abort, a question, reload and reconnect mid-turn, hostile output, auth,
regenerate, edit, fork and delete (the harness is in this folder's conftest)."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import pytest
from aiohttp import web

from opencode_api.http._keys import STREAMS
from opencode_api.testing import FakeLLMServer, Reply, ToolCall, Usage
from tests.http.conftest import (
    JWT_SECRET,
    basic,
    bearer,
    hs256_token,
)
from tests.http.playground.conftest import (
    ANSWER,
    HOSTILE,
    PASSWORD,
    PHONE,
    QUESTIONS,
    TODOS,
    ServerFactory,
    playground,
)

try:
    from playwright.async_api import Browser, expect
except ImportError:  # the dev extra installs it; chromium() says so when it is missing
    pass


async def test_a_conversation_streams_with_tools_todos_and_cost(
    browser: Browser, serve: ServerFactory, fake: FakeLLMServer, shots: Path
) -> None:
    fake.enqueue(
        Reply(
            reasoning="The user wants a plan. I will write todos first.",
            text="Let me write that down.",
            tool_calls=[ToolCall("todowrite", TODOS, id="call_todo")],
            usage=Usage(prompt_tokens=1200, completion_tokens=80),
        ),
        Reply(text=ANSWER, usage=Usage(prompt_tokens=1400, completion_tokens=60)),
    )
    base = await serve(compaction_keep_messages=1)
    ui = await playground(browser, base)
    page = ui.page
    await ui.open()
    await ui.new_session()
    await page.get_by_label("Model").select_option(
        json.dumps(["openai", "gpt-4o-mini"], separators=(",", ":"))
    )
    await ui.send("Make a plan for the playground")

    answer = ui.assistant()
    await expect(answer.locator("strong", has_text="plan")).to_be_visible()
    await expect(answer.locator("pre code")).to_have_text("print('hello')\n")
    await expect(answer.locator("details.reasoning")).to_contain_text("I will write todos first")
    tool = answer.locator("details.tool")
    await expect(tool).to_have_attribute("data-status", "completed")
    await tool.locator("summary").click()
    await expect(tool.locator(".tool-args")).to_contain_text('"Sketch the page"')
    await expect(page.locator("#todos summary")).to_have_text("Todos (1/3)")
    await ui.idle()
    # Per message and per session: tokens and a price (gpt-4o-mini is in LiteLLM's price map).
    await expect(answer.locator(".msg-foot")).to_contain_text("2,600 in · 140 out · $")
    await expect(page.locator("#session-cost")).to_contain_text("Session $")
    await expect(page.locator("#session-cost")).to_contain_text("2,600 in · 140 out")
    assert fake.requests[-1]["model"] == "gpt-4o-mini"
    # The session list: its title can be changed in place, and the list follows (over /event).
    await page.get_by_label("Session title").fill("Playground plan")
    await page.get_by_label("Session title").press("Enter")
    await expect(page.locator("button.session[aria-current=true]")).to_contain_text(
        "Playground plan"
    )
    await page.locator("#todos summary").click()
    await tool.locator("summary").click()  # closed again: the screenshot shows the answer
    await page.screenshot(path=shots / "playground-desktop.png", animations="disabled")

    # Phone width: the list slides over the chat from a button.
    await page.set_viewport_size(PHONE)
    await expect(page.locator("#toggle-sidebar")).to_be_visible()
    await page.screenshot(path=shots / "playground-phone.png", animations="disabled")
    await page.locator("#toggle-sidebar").click()
    await expect(page.locator("button.session", has_text="Playground plan")).to_be_in_viewport()
    await page.screenshot(path=shots / "playground-phone-sessions.png", animations="disabled")
    await page.locator("button.session", has_text="Playground plan").click()

    # Compaction: status in the header, and the button runs one.
    await expect(page.locator("#compaction")).to_contain_text("compaction idle")
    await page.get_by_role("button", name="Compact").click()
    await expect(page.locator("#compaction")).to_contain_text("compacted 1 time")
    await expect(page.locator("article.msg.compacted")).not_to_have_count(0)
    ui.check()


async def test_a_turn_sent_while_one_runs_is_queued_and_abort_stops_both(
    browser: Browser, serve: ServerFactory, fake: FakeLLMServer
) -> None:
    fake.enqueue(Reply(text="This answer never ends because the model hangs", hang_after=4))
    base = await serve()
    ui = await playground(browser, base)
    page = ui.page
    await ui.open()
    await ui.new_session()
    await ui.send("Tell me a long story")
    await expect(ui.assistant()).to_contain_text("This answer")
    await expect(page.locator("#session-status")).to_have_text("busy")
    await expect(page.locator("li[data-status=busy] .dot.busy")).to_be_visible()

    await ui.send("And then?")
    queued = page.locator("article.msg.user").last
    await expect(queued.locator(".badge")).to_have_text("queued")

    await expect(page.get_by_role("button", name="Abort")).to_be_visible()
    await page.get_by_label("Message", exact=True).press("Escape")  # or the Abort button
    await expect(ui.assistant(0).locator(".badge")).to_have_text("aborted")
    # Queued turns end the same way: the queued message started, as an aborted turn.
    await expect(queued.locator(".badge")).to_be_hidden()
    await expect(page.locator("article.msg.assistant .badge", has_text="aborted")).to_have_count(2)
    await ui.idle()
    await expect(page.locator("li[data-status=idle] .dot")).to_be_visible()
    ui.check()


async def test_a_question_is_answered_inline(
    browser: Browser, serve: ServerFactory, fake: FakeLLMServer, shots: Path
) -> None:
    fake.enqueue(
        Reply(text="One thing first.", tool_calls=[ToolCall("question", QUESTIONS, id="q1")]),
        Reply(text="Red it is."),
    )
    base = await serve()
    ui = await playground(browser, base)
    page = ui.page
    await ui.open()
    await ui.new_session()
    await ui.send("Style the button")
    form = page.locator("form.question")
    await expect(form.locator("legend")).to_have_text("Color: Which color should the button be?")
    await page.screenshot(path=shots / "playground-question.png", animations="disabled")
    await form.get_by_label("Red").check()
    await form.get_by_role("button", name="Answer").click()
    await expect(ui.assistant()).to_contain_text("Red it is.")
    await expect(form).to_have_class(re.compile(r"\bclosed\b"))
    await ui.idle()
    # The model got the answer as the question tool's result.
    tool_results = [m for r in fake.requests for m in r["messages"] if m.get("role") == "tool"]
    assert "Red" in json.dumps(tool_results)
    ui.check()


async def test_a_reload_mid_turn_reattaches_and_misses_nothing(
    browser: Browser, serve: ServerFactory, fake: FakeLLMServer
) -> None:
    release = asyncio.Event()
    asked = asyncio.Event()
    fake.enqueue(
        Reply(text="First step done.", tool_calls=[ToolCall("todowrite", TODOS, id="call_1")]),
        Reply(text="Second step done.", received=asked, hold=release),
    )
    base = await serve()
    ui = await playground(browser, base)
    page = ui.page
    await ui.open()
    await ui.new_session()
    await ui.send("Two steps, please")
    await expect(ui.assistant()).to_contain_text("First step done.")
    await asked.wait()  # the second step waits on the model

    await page.reload()
    await expect(page.locator("#connection")).to_have_text("live")
    answer = ui.assistant()
    await expect(answer.locator(".badge")).to_have_text("running")
    await expect(answer).to_contain_text("First step done.")
    release.set()
    await expect(answer).to_contain_text("Second step done.")
    await expect(answer.locator(".badge")).to_be_hidden()
    await ui.idle()
    # Replayed and live, each part once: one user message, one answer, one tool call.
    await expect(page.locator("article.msg")).to_have_count(2)
    await expect(answer.locator("details.tool")).to_have_count(1)
    await expect(answer.locator(".part.text")).to_have_text(
        ["First step done.", "Second step done."]
    )
    ui.check()


async def test_a_dropped_stream_resumes_with_last_event_id(
    browser: Browser, serve: ServerFactory, fake: FakeLLMServer, apps: dict[str, web.Application]
) -> None:
    release = asyncio.Event()
    asked = asyncio.Event()
    fake.enqueue(
        Reply(text="Before the drop.", tool_calls=[ToolCall("todowrite", TODOS, id="call_1")]),
        Reply(text="After the drop.", received=asked, hold=release),
    )
    base = await serve()
    ui = await playground(browser, base)
    page = ui.page
    resumed: list[str] = []
    page.on(
        "request",
        lambda request: (
            resumed.append(request.headers["last-event-id"])
            if "/stream" in request.url and "last-event-id" in request.headers
            else None
        ),
    )
    await ui.open()
    await ui.new_session()
    await ui.send("Keep going")
    await expect(ui.assistant()).to_contain_text("Before the drop.")
    await asked.wait()

    # The server ends its open-ended streams (what a proxy's timeout or a network blip does).
    closing = apps[base][STREAMS].closing
    closing.set()
    await expect(page.locator("body")).to_have_attribute("data-stream", "reconnecting")
    closing.clear()
    await expect(page.locator("body")).to_have_attribute("data-stream", "open")
    assert resumed and all(int(value) > 0 for value in resumed)
    release.set()
    answer = ui.assistant()
    await expect(answer.locator(".part.text")).to_have_text(["Before the drop.", "After the drop."])
    await ui.idle()
    await expect(page.locator("article.msg")).to_have_count(2)
    ui.check()


async def test_a_hostile_answer_renders_as_text(
    browser: Browser, serve: ServerFactory, fake: FakeLLMServer
) -> None:
    fake.enqueue(Reply(text=HOSTILE))
    base = await serve()
    ui = await playground(browser, base)
    page = ui.page
    await ui.open()
    await ui.new_session()
    await ui.send('<img src=x onerror="window.__pwned=6"> is my **question**')
    answer = ui.assistant()
    await expect(answer.locator("strong")).to_have_text("still markdown")
    await ui.idle()
    user = page.locator("article.msg.user").last
    await expect(user).to_contain_text('<img src=x onerror="window.__pwned=6"> is my **question**')
    chat = page.locator("#chat")
    for selector in ("script", "iframe", "svg", "[onerror]", "[onload]", "a[href^=javascript]"):
        assert await chat.locator(selector).count() == 0, selector
    assert await page.evaluate("window.__pwned") is None
    # Reloaded from the store, the same: sanitized again.
    await page.reload()
    await expect(ui.assistant().locator("strong")).to_have_text("still markdown")
    assert await chat.locator("[onerror], script, iframe, svg").count() == 0
    assert await page.evaluate("window.__pwned") is None
    # Chromium reports the handlers of the markup DOMPurify parses (an inert DOMParser document)
    # as blocked by the page's CSP; and the harmless <img src=x> that is left finds no "x".
    ui.check("Executing inline event handler violates", "404 (Not Found)")


@pytest.mark.parametrize("password", [PASSWORD, None], ids=["server-password", "token-only"])
async def test_a_user_token_with_or_without_the_server_password(
    browser: Browser, serve: ServerFactory, fake: FakeLLMServer, password: str | None
) -> None:
    base = await serve(opencode_server_password=password, supabase_jwt_secret=JWT_SECRET)
    server = basic("opencode", password) if password else {}
    if password:
        refused = await playground(browser, base)
        assert (await refused.page.request.get(f"{base}/")).status == 401
    credentials = {"username": "opencode", "password": password} if password else None
    ui = await playground(browser, base, http_credentials=credentials)
    page = ui.page
    await ui.open()
    # With user accounts the page has a token field; the token rides in Authorization, or in
    # X-User-Authorization when Authorization carries the server password.
    token = hs256_token("alice")
    await page.get_by_label("User token (Supabase JWT)").fill(token)
    await page.get_by_role("button", name="Save").click()
    await expect(page.locator("#connection")).to_have_text("live")
    await ui.new_session()
    await ui.send("hello, it is alice")
    await expect(ui.assistant()).to_contain_text("tok4")
    await ui.idle()
    session_id = (await page.evaluate("location.hash"))[1:]
    url = f"{base}/session/{session_id}"
    anonymous = await page.request.get(url, headers=server)
    assert anonymous.status == 404  # the session is alice's alone
    header = "X-User-Authorization" if password else "Authorization"
    owned = await page.request.get(url, headers={**server, header: bearer(token)["Authorization"]})
    assert (await owned.json())["user_id"] == "alice"
    ui.check()


async def test_regenerate_edit_fork_and_delete(
    browser: Browser, serve: ServerFactory, fake: FakeLLMServer
) -> None:
    fake.enqueue(
        Reply(text="First answer."),
        Reply(text="Second answer."),
        Reply(text="Answer to the edit."),
    )
    base = await serve(auto_title=False)
    ui = await playground(browser, base)
    page = ui.page
    page.on("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
    await ui.open()
    await ui.new_session()
    await ui.send("Question one")
    await expect(ui.assistant()).to_contain_text("First answer.")
    await ui.idle()

    await ui.assistant().get_by_role("button", name="Regenerate").click()
    await expect(ui.assistant()).to_contain_text("Second answer.")
    await ui.idle()
    messages = page.locator("article.msg:visible")
    await expect(messages).to_have_count(2)

    user = page.locator("article.msg.user")
    await user.get_by_role("button", name="Edit").click()
    await user.get_by_label("Edited message").fill("Question two")
    await user.get_by_role("button", name="Send edit").click()
    await expect(ui.assistant()).to_contain_text("Answer to the edit.")
    await ui.idle()
    await expect(messages).to_have_text([re.compile("Question two"), re.compile("the edit")])

    # Reloaded, the stream's replay holds the reverted turns too: they stay gone.
    await page.reload()
    await expect(ui.assistant()).to_contain_text("Answer to the edit.")
    await expect(messages).to_have_text([re.compile("Question two"), re.compile("the edit")])
    original = (await page.evaluate("location.hash"))[1:]

    await ui.assistant().get_by_role("button", name="Fork").click()
    await expect(page).not_to_have_url(re.compile(f"#{original}$"))
    await expect(messages).to_have_text([re.compile("Question two"), re.compile("the edit")])
    await expect(page.locator("button.session")).to_have_count(2)
    forked = (await page.evaluate("location.hash"))[1:]
    copy = await (await page.request.get(f"{base}/session/{forked}")).json()
    assert copy["forked_from"]["session_id"] == original

    await page.get_by_role("button", name="Delete").click()
    await expect(page.locator("button.session")).to_have_count(1)
    assert (await page.request.get(f"{base}/session/{forked}")).status == 404
    ui.check()
