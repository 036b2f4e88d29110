"""Attachments in the playground, in headless Chromium against a real server and the fake
provider: an image attached, sent as ``parts`` and echoed by the provider, shown in the
conversation (also after a reload, through the authenticated file route), a PDF downloaded,
files the page refuses (kind, size) and ones the server refuses (a model without vision)."""

from __future__ import annotations

import asyncio
import struct
import zlib
from pathlib import Path

from opencode_api.testing import FakeLLMServer, Reply, received_files
from tests.http.conftest import JWT_SECRET, hs256_token
from tests.http.playground.conftest import PASSWORD, PHONE, ServerFactory, playground

try:
    from playwright.async_api import Browser, expect
except ImportError:  # the dev extra installs it; chromium() says so when it is missing
    pass


def png(width: int = 160, height: int = 120) -> bytes:
    """A real PNG (signature, IHDR, IDAT, IEND): a sunset-ish gradient with a sun."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = bytearray()
    for y in range(height):
        rows.append(0)  # filter: none
        for x in range(width):
            sun = (x - 110) ** 2 + (y - 45) ** 2 < 18**2
            sea = y > 80
            if sun:
                rows += bytes((255, 214, 90))
            elif sea:
                rows += bytes((30, 60 + (y - 80), 120 + x // 4))
            else:
                rows += bytes((250 - y, 120 + y // 2, 90 + y))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(bytes(rows)))
        + chunk(b"IEND", b"")
    )


PNG = png()
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
# What a drag from the file manager and a paste of a copied image deliver to the page.
DROP = """(png) => {
  const files = new DataTransfer();
  const huge = new Uint8Array(21 * 1024 * 1024);
  files.items.add(new File([huge], "huge.png", {type: "image/png"}));
  files.items.add(new File([new Uint8Array(png)], "small.png", {type: "image/png"}));
  const composer = document.getElementById("composer");
  for (const type of ["dragover", "drop"]) {
    const init = {dataTransfer: files, bubbles: true, cancelable: true};
    composer.dispatchEvent(new DragEvent(type, init));
  }
}"""
PASTE = """(png) => {
  const files = new DataTransfer();
  files.items.add(new File([new Uint8Array(png)], "image.png", {type: "image/png"}));
  const init = {clipboardData: files, bubbles: true, cancelable: true};
  document.getElementById("composer-input").dispatchEvent(new ClipboardEvent("paste", init));
}"""


async def test_an_image_is_sent_shown_and_still_shown_after_a_reload(
    browser: Browser, serve: ServerFactory, fake: FakeLLMServer, shots: Path
) -> None:
    fake.enqueue(Reply(echo_files=True))
    base = await serve(auto_title=False)
    ui = await playground(browser, base)
    page = ui.page
    await ui.open()
    await ui.new_session()
    await page.get_by_label("Session title").fill("A picture")
    await page.get_by_label("Session title").press("Enter")
    attach = page.get_by_role("button", name="Attach files")
    await expect(attach).to_be_visible()
    async with page.expect_file_chooser() as chooser:
        await attach.click()
    await (await chooser.value).set_files(
        {"name": "sunset.png", "mimeType": "image/png", "buffer": PNG}
    )
    chips = page.get_by_role("list", name="Files to send")
    await expect(chips.locator("li")).to_have_count(1)
    await expect(chips.locator("img.chip-thumb")).to_have_js_property("complete", True)
    await ui.send("What is in this picture?")
    await expect(chips).to_be_hidden()

    # The provider got the text, then the image, inline; it echoes what it received.
    answer = ui.assistant()
    await expect(answer).to_contain_text('"kind": "image"')
    await ui.idle()
    assert received_files(fake.requests[-1]) == [
        {"kind": "image", "media_type": "image/png", "bytes": len(PNG), "url": None}
    ]
    content = fake.requests[-1]["messages"][-1]["content"]
    assert [part["type"] for part in content] == ["text", "image_url"]
    assert content[0]["text"] == "What is in this picture?"

    user = page.locator("article.msg.user")
    thumb = user.get_by_role("button", name="Open sunset.png full size")
    await expect(thumb.locator("img")).to_have_js_property("naturalWidth", 160)
    # The next message's files wait as chips: a PDF shows its name.
    await page.locator("#attach-input").set_input_files(
        {"name": "quarterly-report.pdf", "mimeType": "application/pdf", "buffer": PDF}
    )
    await expect(chips).to_contain_text("quarterly-report.pdf")
    await page.screenshot(path=shots / "playground-attachments.png", animations="disabled")
    await chips.get_by_role("button", name="Remove quarterly-report.pdf").click()
    await expect(chips).to_be_hidden()

    # A click (or Enter) opens the full size; Escape closes it.
    await thumb.click()
    viewer = page.locator("dialog.viewer")
    await expect(viewer).to_be_visible()
    await expect(viewer.locator("img")).to_have_js_property("naturalHeight", 120)
    await page.keyboard.press("Escape")
    await expect(viewer).to_be_hidden()
    await expect(thumb).to_be_focused()  # back where the keyboard was
    await page.keyboard.press("Enter")
    await expect(viewer).to_be_visible()
    await viewer.get_by_role("button", name="Close").click()
    await expect(viewer).to_be_hidden()

    # Reloaded: drawn from the stored message, its bytes fetched from the file route.
    await page.reload()
    await expect(page.locator("#connection")).to_have_text("live")
    thumb = page.locator("article.msg.user").get_by_role("button", name="Open sunset.png full size")
    await expect(thumb.locator("img")).to_have_js_property("naturalWidth", 160)
    assert (await thumb.locator("img").get_attribute("src") or "").startswith("blob:")
    await expect(page.locator("article.msg.user .part.plain")).to_have_text(
        "What is in this picture?"
    )
    ui.check()


async def test_files_load_with_the_users_token_and_a_pdf_downloads(
    browser: Browser, serve: ServerFactory, fake: FakeLLMServer
) -> None:
    fake.enqueue(Reply(echo_files=True))
    base = await serve(opencode_server_password=PASSWORD, supabase_jwt_secret=JWT_SECRET)
    credentials = {"username": "opencode", "password": PASSWORD}
    ui = await playground(browser, base, http_credentials=credentials)
    page = ui.page
    await ui.open()
    await page.get_by_label("User token (Supabase JWT)").fill(hs256_token("alice"))
    await page.get_by_role("button", name="Save").click()
    await expect(page.locator("#connection")).to_have_text("live")
    await ui.new_session()
    # Two files and no text: the message is its files alone.
    await page.locator("#attach-input").set_input_files(
        [
            {"name": "dot.png", "mimeType": "image/png", "buffer": PNG},
            {"name": "terms.pdf", "mimeType": "application/pdf", "buffer": PDF},
        ]
    )
    await expect(page.locator("#attachments li")).to_have_count(2)
    await page.get_by_role("button", name="Send").click()
    await expect(ui.assistant()).to_contain_text('"kind": "document"')
    await ui.idle()
    assert [f["kind"] for f in received_files(fake.requests[-1])] == ["image", "document"]

    # After a reload the bytes come through the file route, which needs alice's token (in
    # X-User-Authorization next to the password): a plain <img src> could not have sent it.
    await page.reload()
    await expect(page.locator("#connection")).to_have_text("live")
    user = page.locator("article.msg.user")
    await expect(user.locator("img.thumb")).to_have_js_property("naturalWidth", 160)
    await expect(user.locator(".part.plain")).to_have_count(0)
    async with page.expect_download() as download:
        await user.get_by_role("button", name="Download terms.pdf").click()
    saved = await download.value
    assert saved.suggested_filename == "terms.pdf"
    assert await asyncio.to_thread(Path(await saved.path()).read_bytes) == PDF
    ui.check()


async def test_the_page_refuses_wrong_kinds_and_sizes_and_sends_nothing(
    browser: Browser, serve: ServerFactory, fake: FakeLLMServer, tmp_path: Path
) -> None:
    base = await serve(auto_title=False)
    ui = await playground(browser, base)
    page = ui.page
    await ui.open()
    await ui.new_session()
    await page.set_viewport_size(PHONE)
    note = page.locator("#attach-error")
    await page.locator("#attach-input").set_input_files(
        {"name": "notes.txt", "mimeType": "text/plain", "buffer": b"hello"}
    )
    await expect(note).to_be_visible()
    await expect(note).to_contain_text("“notes.txt” cannot be attached")
    await expect(page.locator("#attachments")).to_be_hidden()
    await page.get_by_role("button", name="Send").click()
    await page.wait_for_timeout(300)
    await expect(page.locator("article.msg")).to_have_count(0)

    # Dropped onto the composer: an image over 20 MB is refused, the small one is taken.
    await page.evaluate(DROP, list(PNG))
    await expect(note).to_contain_text("“huge.png” is too large (21.0 MB): at most 20 MB.")
    chip = page.locator("#attachments li")
    await expect(chip).to_have_count(1)
    await expect(chip).to_contain_text("small.png")
    # At 390px the chips and the note fit the composer, and the page does not scroll sideways.
    assert await page.evaluate("document.documentElement.scrollWidth") <= 390
    await page.screenshot(path=tmp_path / "attachments-phone.png", animations="disabled")
    # A pasted image joins it.
    await page.get_by_label("Message", exact=True).focus()
    await page.evaluate(PASTE, list(PNG))
    await expect(chip).to_have_count(2)
    await expect(note).to_be_hidden()
    # Removable by keyboard: the chip's remove button, then focus stays in the list.
    remove = page.get_by_role("button", name="Remove small.png")
    await remove.focus()
    await page.keyboard.press("Enter")
    await expect(chip).to_have_count(1)
    await expect(page.get_by_role("button", name="Remove image.png")).to_be_focused()
    await page.keyboard.press("Space")
    await expect(page.locator("#attachments")).to_be_hidden()
    await expect(page.get_by_label("Message", exact=True)).to_be_focused()
    assert fake.requests == []
    ui.check()


async def test_a_server_refusal_shows_on_the_message(
    browser: Browser, serve: ServerFactory, fake: FakeLLMServer
) -> None:
    base = await serve(auto_title=False)
    ui = await playground(browser, base)
    page = ui.page
    await ui.open()
    await ui.new_session()
    # A model without vision: 400 unsupported_input, naming it, shown like any refusal.
    await page.evaluate(
        """() => {
          const select = document.getElementById("model-select");
          const option = document.createElement("option");
          option.value = JSON.stringify(["openai", "gpt-3.5-turbo"]);
          option.textContent = "gpt-3.5-turbo";
          select.append(option);
          select.value = option.value;
        }"""
    )
    await page.locator("#attach-input").set_input_files(
        {"name": "dot.png", "mimeType": "image/png", "buffer": PNG}
    )
    await ui.send("Look")
    user = page.locator("article.msg.user")
    await expect(user.locator(".badge")).to_have_text("failed")
    await expect(user.locator(".part.error")).to_contain_text("unsupported_input")
    await expect(user.locator(".part.error")).to_contain_text("gpt-3.5-turbo")
    # A file whose bytes are not what its type says: 400 invalid_request.
    await page.get_by_label("Model").select_option("")
    await page.locator("#attach-input").set_input_files(
        {"name": "fake.png", "mimeType": "image/png", "buffer": PDF}
    )
    await ui.send("And this?")
    failed = page.locator("article.msg.user").last
    await expect(failed.locator(".part.error")).to_contain_text("invalid_request")
    assert fake.requests == []
    ui.check("400 (Bad Request)")
