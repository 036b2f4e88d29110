"""Web search backends for the ``websearch`` tool: Exa's search API and DuckDuckGo (``ddgs``)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp

from opencode_api.tools._base import ToolError

DdgsSearch = Callable[[str, int], list[dict[str, Any]]]
"""``search(query, max_results) -> [{"title", "href", "body"}]``, sync like ``DDGS.text``."""


@dataclass(frozen=True, slots=True)
class SearchResult:
    title: str
    url: str
    snippet: str
    published: str | None = None


class SearchBackend(Protocol):
    """One search service. Failures are ``ToolError``s with a message the model can act on."""

    name: str

    async def search(self, query: str, num_results: int) -> list[SearchResult]: ...

    async def aclose(self) -> None: ...


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


class ExaBackend:
    """Exa's ``POST /search`` (https://docs.exa.ai/reference/search), as the original opencode."""

    name = "exa"

    def __init__(
        self,
        api_key: str | None,
        *,
        api_base: str = "https://api.exa.ai",
        max_characters: int = 1500,
        timeout: float = 25.0,
    ) -> None:
        self._api_key = api_key
        self._endpoint = api_base.rstrip("/") + "/search"
        self._max_characters = max_characters
        self._timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                trust_env=False, timeout=aiohttp.ClientTimeout(total=self._timeout)
            )
        return self._session

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def search(self, query: str, num_results: int) -> list[SearchResult]:
        if not self._api_key:
            raise ToolError(
                "web search is configured to use Exa but EXA_API_KEY is not set; "
                "set it, or set WEBSEARCH_BACKEND=ddgs for the keyless DuckDuckGo backend"
            )
        body = {
            "query": query,
            "numResults": num_results,
            "type": "auto",
            "contents": {"text": {"maxCharacters": self._max_characters}},
        }
        headers = {"x-api-key": self._api_key, "Accept": "application/json"}
        try:
            async with self._client().post(self._endpoint, json=body, headers=headers) as resp:
                if resp.status in (401, 403):
                    raise ToolError(
                        f"Exa rejected the API key (HTTP {resp.status}); check EXA_API_KEY"
                    )
                if resp.status == 429:
                    raise ToolError("Exa search is rate limited (HTTP 429); try again later")
                if resp.status >= 400:
                    detail = _clip(await resp.text(errors="replace"), 300)
                    raise ToolError(f"Exa search failed with HTTP {resp.status}: {detail}")
                try:
                    payload = await resp.json(content_type=None)
                except ValueError as exc:
                    raise ToolError(f"Exa search returned invalid JSON: {exc}") from exc
        except TimeoutError as exc:
            raise ToolError(f"Exa search timed out after {self._timeout:g} s") from exc
        except aiohttp.ClientError as exc:
            raise ToolError(
                f"Exa search backend unreachable at {self._endpoint}: {type(exc).__name__}: {exc}"
            ) from exc
        results = payload.get("results") if isinstance(payload, dict) else None
        if not isinstance(results, list):
            raise ToolError("Exa search returned an unexpected response (no results list)")
        parsed = []
        for item in results[:num_results]:
            if not isinstance(item, dict):
                continue
            highlights = item.get("highlights")
            snippet = (
                item.get("text")
                or item.get("summary")
                or (
                    " … ".join(h for h in highlights if isinstance(h, str))
                    if isinstance(highlights, list)
                    else ""
                )
            )
            parsed.append(
                SearchResult(
                    title=str(item.get("title") or item.get("url") or "(untitled)"),
                    url=str(item.get("url") or ""),
                    snippet=_clip(str(snippet), self._max_characters),
                    published=item.get("publishedDate") or None,
                )
            )
        return parsed


def _ddgs_text(query: str, max_results: int) -> list[dict[str, Any]]:
    from ddgs import DDGS  # lazily: an optional extra (declared in setup.cfg)

    results: list[dict[str, Any]] = DDGS(timeout=10).text(query, max_results=max_results)
    return results


class DdgsBackend:
    """DuckDuckGo (and friends) through the ``ddgs`` package: no key needed.

    ``ddgs`` is synchronous, so each search runs in a worker thread (``asyncio.to_thread``); on
    abort the await is cancelled at once while the thread finishes its request in the background.
    """

    name = "ddgs"

    def __init__(self, search: DdgsSearch | None = None) -> None:
        self._search = search or _ddgs_text

    async def aclose(self) -> None:
        return None

    async def search(self, query: str, num_results: int) -> list[SearchResult]:
        try:
            raw = await asyncio.to_thread(self._search, query, num_results)
        except ImportError as exc:
            raise ToolError(
                "no web search backend available: the ddgs package is not installed "
                "(pip install ddgs) and EXA_API_KEY is not set"
            ) from exc
        except Exception as exc:
            message = str(exc)
            if "no results" in message.lower():
                return []
            raise ToolError(
                f"DuckDuckGo search (ddgs) failed: {type(exc).__name__}: {message}"
            ) from exc
        return [
            SearchResult(
                title=str(item.get("title") or item.get("href") or "(untitled)"),
                url=str(item.get("href") or item.get("url") or ""),
                snippet=_clip(str(item.get("body") or ""), 1500),
            )
            for item in raw[:num_results]
            if isinstance(item, dict)
        ]
