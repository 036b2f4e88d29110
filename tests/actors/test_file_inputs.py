"""``FileInputs``: a message's files checked before anything is stored (types declared and
sniffed, size, URLs under the SSRF policy through the DNS seam, the model's capabilities)."""

from __future__ import annotations

import asyncio
import base64
import socket
from collections.abc import Sequence

import pytest

from opencode_api.actors import FileInputError, InputTooLargeError, UnsupportedInputError
from opencode_api.actors._compaction import transcript
from opencode_api.actors._file_inputs import FileInputs, sniff
from opencode_api.inputs import FileInput, InputPart, TextInput
from opencode_api.settings import Settings
from opencode_api.store import Message, Part

SIGNATURES = {
    "image/png": b"\x89PNG\r\n\x1a\n",
    "image/jpeg": b"\xff\xd8\xff\xdb",
    "image/gif": b"GIF89a",
    "image/webp": b"RIFF\x10\x00\x00\x00WEBPVP8 ",
    "application/pdf": b"%PDF-1.7\n",
}
ADDRESSES = {
    "public.example": ["93.184.215.14"],
    "internal.example": ["10.0.0.7"],
    "mixed.example": ["93.184.215.14", "127.0.0.1"],
}


async def fake_lookup(host: str, family: int) -> Sequence[str]:
    if host not in ADDRESSES:
        raise socket.gaierror("no such host")
    return [a for a in ADDRESSES[host] if (":" in a) == (family == socket.AF_INET6)]


def inputs(**settings: object) -> FileInputs:
    return FileInputs(Settings(_env_file=None, **settings), lookup=fake_lookup)  # type: ignore[call-arg]


def data_file(mime: str, body: bytes, declared: str | None = None) -> FileInput:
    uri = f"data:{declared or mime};base64,{base64.b64encode(body).decode()}"
    return FileInput(type="file", mime=mime, data=uri, filename="f")


async def prepare(parts: Sequence[InputPart], model: str = "openai/gpt-4o-mini", **kw: object):  # type: ignore[no-untyped-def]
    checker = inputs(**kw)
    return await checker.prepare(
        "hello",
        parts,
        session_id="ses_1",
        message_id="msg_1",
        model=model,
        provider=model.partition("/")[0],
    )


@pytest.mark.parametrize("mime", list(SIGNATURES))
async def test_each_accepted_type_is_sniffed_and_stored(mime: str) -> None:
    body = SIGNATURES[mime] + b"\x00" * 32
    assert sniff(body) == mime
    prepared = await prepare([TextInput(type="text", text="more"), data_file(mime, body)])
    assert prepared.content == "hello\n\nmore"
    [stored] = prepared.files
    assert (stored.mime, stored.size, base64.b64decode(stored.data)) == (mime, len(body), body)
    [part] = prepared.parts
    assert part.type == "file" and part.message_id == "msg_1"
    assert part.metadata == {"mime": mime, "filename": "f", "file_id": stored.id, "size": len(body)}


async def test_aliases_and_parameters_of_data_uris() -> None:
    jpeg = SIGNATURES["image/jpeg"] + b"\x00" * 8
    uri = "data:image/jpg;name=a.jpg;base64," + base64.b64encode(jpeg).decode()
    prepared = await prepare([FileInput(type="file", mime="IMAGE/JPG", data=uri)])
    assert prepared.files[0].mime == "image/jpeg"


@pytest.mark.parametrize(
    ("part", "field"),
    [
        (data_file("image/png", SIGNATURES["image/gif"]), "parts.0.data"),
        (data_file("image/png", SIGNATURES["image/png"], declared="image/gif"), "parts.0.data"),
        (data_file("application/pdf", b"<html>not a pdf"), "parts.0.data"),
        (FileInput(type="file", mime="image/png", data="data:image/png,rawbytes"), "parts.0.data"),
        (
            FileInput(type="file", mime="text/plain", data="data:text/plain;base64,aGk="),
            "parts.0.mime",
        ),
        (
            FileInput(type="file", mime="image/png", url="https://internal.example/a.png"),
            "parts.0.url",
        ),
        (
            FileInput(type="file", mime="image/png", url="https://mixed.example/a.png"),
            "parts.0.url",
        ),
        (
            FileInput(type="file", mime="image/png", url="https://nowhere.example/a.png"),
            "parts.0.url",
        ),
        (FileInput(type="file", mime="image/png", url="https://2130706433/a.png"), "parts.0.url"),
        (FileInput(type="file", mime="image/png", url="https://[::1]/a.png"), "parts.0.url"),
        (FileInput(type="file", mime="image/png", url="ftp://public.example/a.png"), "parts.0.url"),
    ],
    ids=[
        "gif_bytes_as_png",
        "uri_declares_gif",
        "html_as_pdf",
        "not_base64_uri",
        "text_file",
        "name_to_private",
        "name_to_public_and_loopback",
        "unresolvable",
        "decimal_loopback",
        "ipv6_loopback",
        "ftp",
    ],
)
async def test_refused_naming_the_field(part: FileInput, field: str) -> None:
    with pytest.raises(FileInputError) as caught:
        await prepare([part])
    assert caught.value.field == field


async def test_public_names_and_allowlisted_hosts_pass_through() -> None:
    url = "https://public.example/a.png"
    prepared = await prepare([FileInput(type="file", mime="image/png", url=url)])
    assert prepared.files == [] and prepared.parts[0].metadata["url"] == url
    internal = FileInput(type="file", mime="image/png", url="https://internal.example/a.png")
    allowed = await prepare([internal], webfetch_allow_hosts="internal.example")
    assert allowed.parts[0].metadata["url"] == "https://internal.example/a.png"


async def test_size_is_counted_over_all_files_before_decoding() -> None:
    png = data_file("image/png", SIGNATURES["image/png"] + b"\x00" * 60)
    await prepare([png, png], max_input_bytes=136)
    with pytest.raises(InputTooLargeError) as caught:
        await prepare([png, png], max_input_bytes=135)
    assert caught.value.limit == 135


async def test_model_capabilities_from_the_map() -> None:
    png = data_file("image/png", SIGNATURES["image/png"])
    pdf = data_file("application/pdf", SIGNATURES["application/pdf"])
    with pytest.raises(UnsupportedInputError) as caught:
        await prepare([pdf, png], model="openai/gpt-3.5-turbo")
    assert caught.value.model == "openai/gpt-3.5-turbo"
    with pytest.raises(UnsupportedInputError):
        await prepare([pdf], model="openai/o3-mini")  # vision: False; PDFs: not said either
    await prepare([png, pdf], model="anthropic/claude-haiku-4-5")
    await prepare([png], model="openai/my-local-model")  # unknown to the map: left to the provider
    pdf_url = FileInput(type="file", mime="application/pdf", url="https://public.example/a.pdf")
    await prepare([pdf_url], model="anthropic/claude-haiku-4-5")
    with pytest.raises(UnsupportedInputError) as by_url:
        await prepare([pdf_url])
    assert by_url.value.field == "parts.0.url"


async def test_kept_parts_are_named_again_and_checked_against_the_model() -> None:
    kept = Part(
        id="prt_old",
        message_id="msg_old",
        session_id="ses_1",
        type="file",
        content="a.png",
        metadata={"mime": "image/png", "file_id": "fil_1", "size": 9},
    )
    checker = inputs()
    prepared = await checker.prepare(
        "again",
        [],
        kept=[kept],
        session_id="ses_1",
        message_id="msg_1",
        model="openai/gpt-4o-mini",
        provider="openai",
    )
    [part] = prepared.parts
    assert part.message_id == "msg_1" and part.id != "prt_old"
    assert part.metadata == kept.metadata and prepared.files == []
    with pytest.raises(UnsupportedInputError):
        await checker.prepare(
            "again",
            [],
            kept=[kept],
            session_id="ses_1",
            message_id="msg_1",
            model="openai/gpt-3.5-turbo",
            provider="openai",
        )


def test_the_summarizer_hears_of_attached_files() -> None:
    part = Part(
        id="prt_1",
        message_id="msg_1",
        session_id="ses_1",
        type="file",
        content="cat.png",
        metadata={"mime": "image/png", "file_id": "fil_1"},
    )
    user = Message(id="msg_1", session_id="ses_1", role="user", content="look", parts=[part])
    assert transcript([user]) == "User: look [attached image/png: cat.png]"


async def test_a_lookup_that_hangs_refuses_the_url(monkeypatch: pytest.MonkeyPatch) -> None:
    import opencode_api.actors._file_inputs as module

    monkeypatch.setattr(module, "_LOOKUP_TIMEOUT", 0.01)
    never = asyncio.Event()

    async def hanging(host: str, family: int) -> Sequence[str]:
        await never.wait()
        return []

    checker = FileInputs(Settings(_env_file=None), lookup=hanging)  # type: ignore[call-arg]
    url = FileInput(type="file", mime="image/png", url="https://slow.example/a.png")
    with pytest.raises(FileInputError):
        await checker.prepare(
            "", [url], session_id="s", message_id="m", model="openai/gpt-4o-mini", provider="openai"
        )
