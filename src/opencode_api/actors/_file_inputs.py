"""The files of a user message (API.md "Richer input and output"), checked before anything of the
turn is stored: their types (declared, and sniffed from the bytes), their size against
``MAX_INPUT_BYTES``, what the model takes (LiteLLM's model map), and https URLs under webfetch's
SSRF policy. What passes becomes the message's ``file`` parts and the ``FileData`` they name.

A URL is passed through to the provider (OpenAI and Anthropic fetch images by URL themselves), so
it is never fetched here: its host must be, or resolve only to, public addresses (LiteLLM fetches
some URLs itself, e.g. for Gemini). PDFs by URL go to Anthropic models only (OpenAI's Chat
Completions take PDFs as data alone).
"""

from __future__ import annotations

import asyncio
import binascii
import contextlib
import ipaddress
import re
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field

from yarl import URL

from opencode_api.actors._errors import InvalidRequestError, SessionError
from opencode_api.actors._ids import new_id
from opencode_api.inputs import FileInput, InputPart, TextInput
from opencode_api.llm import supports_input
from opencode_api.settings import Settings
from opencode_api.store import FileData, Part
from opencode_api.tools import AddressBlocked, AddressPolicy, Lookup, parse_ip_host, system_lookup

IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
PDF_TYPE = "application/pdf"
_ALIASES = {"image/jpg": "image/jpeg", "image/pjpeg": "image/jpeg"}
_DATA_URI = re.compile(r"^data:(?P<mime>[^;,]*)(?:;[^;,]*)*?;base64,(?P<data>.*)$", re.S)
# Seconds each DNS lookup of a URL's host may take.
_LOOKUP_TIMEOUT = 5.0
# Decoding more than this runs in a thread, off the event loop (~1 ms per MB).
_DECODE_INLINE = 1024 * 1024


class FileInputError(InvalidRequestError):
    """A file part is malformed, lies about its type, or points where it must not (400)."""


class InputTooLargeError(SessionError):
    """The message's files are larger than ``MAX_INPUT_BYTES`` once decoded (413)."""

    def __init__(self, message: str, *, limit: int = 0) -> None:
        super().__init__(message)
        self.limit = limit


class UnsupportedInputError(SessionError):
    """The model cannot take this kind of input (400 ``unsupported_input``, naming it)."""

    def __init__(self, message: str, *, model: str = "", field: str | None = None) -> None:
        super().__init__(message)
        self.model = model
        self.field = field


@dataclass(slots=True)
class PreparedInput:
    """A user message's text (``content`` and its text parts), its file parts and their bytes."""

    content: str
    parts: list[Part] = field(default_factory=list)
    files: list[FileData] = field(default_factory=list)


def sniff(head: bytes) -> str | None:
    """The type the first bytes announce, among the accepted ones."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head.startswith(b"%PDF-"):
        return PDF_TYPE
    return None


def _decoded_size(data: str) -> int:
    return len(data) * 3 // 4 - data.count("=", max(0, len(data) - 2))


class FileInputs:
    """Checks and prepares a message's parts; ``lookup`` is the DNS seam (tests inject theirs)."""

    def __init__(self, settings: Settings, *, lookup: Lookup | None = None) -> None:
        self._max_bytes = settings.max_input_bytes
        self._policy = AddressPolicy(settings.webfetch_allow_hosts)
        self._lookup: Lookup = lookup or system_lookup

    async def prepare(
        self,
        content: str,
        parts: Sequence[InputPart],
        *,
        kept: Sequence[Part] = (),
        session_id: str,
        message_id: str,
        model: str,
        provider: str,
    ) -> PreparedInput:
        """The message's text, parts and files; ``kept``: stored file parts carried over (a
        regenerate's), named again by a part of this message (their bytes stay as stored)."""
        texts = [content] if content.strip() else []
        texts += [p.text for p in parts if isinstance(p, TextInput)]
        prepared = PreparedInput(content="\n\n".join(texts))
        files = [(i, p) for i, p in enumerate(parts) if isinstance(p, FileInput)]
        mimes = [self._mime(i, p) for i, p in files]
        kinds = {
            "pdf" if m == PDF_TYPE else "image": f"parts.{i}"
            for (i, _), m in zip(files, mimes, strict=True)
        }
        for carried in kept:
            kind = "pdf" if carried.metadata.get("mime") == PDF_TYPE else "image"
            kinds.setdefault(kind, "message_id")
        for kind, name in kinds.items():
            if supports_input(model, kind) is False:
                what = "images" if kind == "image" else "PDF files"
                raise UnsupportedInputError(
                    f"model {model} does not take {what} (LiteLLM's model map)",
                    model=model,
                    field=name,
                )
        prepared.parts.extend(
            part.model_copy(update={"id": new_id("prt"), "message_id": message_id}) for part in kept
        )
        total = sum(_decoded_size(self._data_uri(i, p)[1]) for i, p in files if p.data)
        if total > self._max_bytes:
            raise InputTooLargeError(
                f"the message's files are {total} bytes; at most {self._max_bytes} "
                "(MAX_INPUT_BYTES) are accepted",
                limit=self._max_bytes,
            )
        for (index, part), mime in zip(files, mimes, strict=True):
            metadata: dict[str, object] = {"mime": mime, "filename": part.filename}
            if part.data is not None:
                data, size = await self._checked_data(index, part, mime)
                stored = FileData(
                    id=new_id("fil"), session_id=session_id, mime=mime, size=size, data=data
                )
                prepared.files.append(stored)
                metadata.update(file_id=stored.id, size=stored.size)
            else:
                assert part.url is not None
                if mime == PDF_TYPE and provider != "anthropic":
                    raise UnsupportedInputError(
                        f"model {model} takes PDFs as data: URIs only, not by URL",
                        model=model,
                        field=f"parts.{index}.url",
                    )
                metadata["url"] = await self._checked_url(index, part.url)
            prepared.parts.append(
                Part(
                    id=new_id("prt"),
                    message_id=message_id,
                    session_id=session_id,
                    type="file",
                    content=part.filename,
                    metadata=metadata,
                )
            )
        return prepared

    @staticmethod
    def _mime(index: int, part: FileInput) -> str:
        mime = part.mime.strip().lower()
        mime = _ALIASES.get(mime, mime)
        if mime not in IMAGE_TYPES and mime != PDF_TYPE:
            raise FileInputError(
                f"parts.{index}.mime: {part.mime!r} is not accepted; send png, jpeg, gif or "
                "webp images, or PDFs (application/pdf)",
                field=f"parts.{index}.mime",
            )
        return mime

    @staticmethod
    def _data_uri(index: int, part: FileInput) -> tuple[str, str]:
        """(declared type, base64 data) of a ``data:`` URI."""
        match = _DATA_URI.match(part.data or "")
        if match is None:
            raise FileInputError(
                f"parts.{index}.data must be a base64 data: URI (data:<type>;base64,<data>)",
                field=f"parts.{index}.data",
            )
        declared = match["mime"].strip().lower()
        return _ALIASES.get(declared, declared), match["data"]

    async def _checked_data(self, index: int, part: FileInput, mime: str) -> tuple[str, int]:
        """The base64 data and its decoded size, once it decodes to what ``mime`` says."""
        name = f"parts.{index}.data"
        declared, data = self._data_uri(index, part)
        if declared and declared != mime:
            raise FileInputError(f"{name} declares {declared} but mime is {mime}", field=name)
        try:
            if len(data) > _DECODE_INLINE:
                raw = await asyncio.to_thread(binascii.a2b_base64, data, strict_mode=True)
            else:
                raw = binascii.a2b_base64(data, strict_mode=True)
        except (binascii.Error, ValueError):
            raise FileInputError(f"{name} is not valid base64", field=name) from None
        sniffed = sniff(raw[:16])
        if sniffed != mime:
            found = sniffed or "not an accepted file type"
            raise FileInputError(f"{name}: the bytes are {found}, not {mime}", field=name)
        return data, len(raw)

    async def _checked_url(self, index: int, raw: str) -> str:
        name = f"parts.{index}.url"
        try:
            url = URL(raw)
        except ValueError:
            raise FileInputError(f"{name} is not a URL", field=name) from None
        if url.scheme != "https" or not url.raw_host:
            raise FileInputError(f"{name} must be an https URL", field=name)
        host = url.raw_host
        try:
            self._policy.check_url(url)  # an IP literal, legacy forms included
            if parse_ip_host(host) is not None or self._policy.host_allowed(host):
                return str(url)
            addresses: list[str] = []
            for family in (socket.AF_INET, socket.AF_INET6):
                with contextlib.suppress(OSError, ValueError):  # idna: a label too long
                    # TimeoutError is an OSError: a resolver that hangs refuses the URL.
                    async with asyncio.timeout(_LOOKUP_TIMEOUT):
                        addresses += await self._lookup(host, int(family))
            if not addresses:
                raise FileInputError(f"{name}: its host cannot be resolved", field=name)
            # Every address must be public: the provider (or LiteLLM) connects, not a vetting
            # resolver of ours.
            for address in addresses:
                self._policy.check_ip(ipaddress.ip_address(address.split("%", 1)[0]), host)
        except AddressBlocked:
            raise FileInputError(
                f"{name} points to a private, loopback or otherwise non-public address", field=name
            ) from None
        return str(url)
