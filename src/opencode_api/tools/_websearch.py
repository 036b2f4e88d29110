"""The ``websearch`` tool: a web search through the configured backend, formatted for the model."""

from __future__ import annotations

from pydantic import AliasChoices, BaseModel, Field

from opencode_api.settings import Settings
from opencode_api.tools._base import Tool, ToolContext, ToolOutput
from opencode_api.tools._search_backends import (
    DdgsBackend,
    ExaBackend,
    SearchBackend,
    SearchResult,
)

DESCRIPTION = """\
Searches the web and returns the most relevant results, each with its title, URL and a snippet \
of its content.

When to use it:
- For information beyond your knowledge cutoff: current events, recent releases, prices, \
documentation of new versions, anything that changes over time.
- To find pages to read in full with webfetch.

Usage notes:
- Write a specific query, as you would type it in a search engine; include the year for recent \
events and names of products, libraries and versions.
- num_results: how many results to return (default 8, 1 to 20).
- Snippets are short excerpts: fetch a page with webfetch when you need its full content.
- Cite the URLs of the results you rely on in your answer."""


class WebSearchParams(BaseModel):
    query: str = Field(min_length=1, description="The web search query")
    num_results: int = Field(
        default=8,
        ge=1,
        le=20,
        # The original's camelCase name is accepted too, so prompts written for it carry over.
        validation_alias=AliasChoices("num_results", "numResults"),
        description="Number of search results to return (default 8, at most 20)",
    )


def format_results(query: str, results: list[SearchResult]) -> str:
    if not results:
        return f'No results found for "{query}". Try a broader or differently worded query.'
    blocks = []
    for number, result in enumerate(results, 1):
        lines = [f"{number}. {result.title}", f"   URL: {result.url}"]
        if result.published:
            lines.append(f"   Published: {result.published}")
        if result.snippet:
            lines.append(f"   {result.snippet}")
        blocks.append("\n".join(lines))
    return f'Search results for "{query}":\n\n' + "\n\n".join(blocks)


def backend_from_settings(settings: Settings) -> SearchBackend:
    """``exa``, ``ddgs``, or ``auto``: Exa when ``EXA_API_KEY`` is set, else DuckDuckGo."""
    key = settings.exa_api_key.get_secret_value() if settings.exa_api_key else None
    choice = settings.websearch_backend
    if choice == "exa" or (choice == "auto" and key):
        return ExaBackend(key, api_base=settings.exa_api_base)
    return DdgsBackend()


class WebSearchTool(Tool[WebSearchParams]):
    name = "websearch"
    description = DESCRIPTION
    params = WebSearchParams
    timeout = 30.0

    def __init__(self, backend: SearchBackend) -> None:
        self.backend = backend

    @classmethod
    def from_settings(cls, settings: Settings) -> WebSearchTool:
        return cls(backend_from_settings(settings))

    async def aclose(self) -> None:
        await self.backend.aclose()

    async def run(self, params: WebSearchParams, ctx: ToolContext) -> ToolOutput:
        results = await self.backend.search(params.query, params.num_results)
        return ToolOutput(
            text=format_results(params.query, results),
            title=f"Web search: {params.query}",
            metadata={
                "backend": self.backend.name,
                "results": [{"title": r.title, "url": r.url} for r in results],
            },
        )
