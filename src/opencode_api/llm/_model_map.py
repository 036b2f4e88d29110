"""LiteLLM's bundled model and price map, read straight from its JSON file, without LiteLLM.

Importing LiteLLM costs ~2 s and ~200 MB; its map is one 3.5 MB JSON file inside the installed
package, found without importing it and loaded once on first use (~0.1 s, ~6 MB). It serves the
provider catalogue, context windows, Anthropic's default ``max_tokens``, the provider of bare model
names and pricing (``_pricing``). Lookups follow LiteLLM's own: the same candidate names in the same
order, case-insensitive, and an entry counts only for its own provider.
"""

from __future__ import annotations

import importlib.util
import json
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

MAP_FILE = "model_prices_and_context_window_backup.json"
PROVIDERS_FILE = "provider_endpoints_support_backup.json"
# LiteLLM's default for an Anthropic model whose output limit it does not know.
ANTHROPIC_DEFAULT_MAX_TOKENS = 128_000

Entry = Mapping[str, Any]

# Entry providers that LiteLLM's routing calls by another name (``vertex_ai-language-models``).
_PROVIDER_ALIASES = {"bedrock_converse": "bedrock", "ai21": "ai21_chat"}
_DATED_SUFFIX = re.compile(r"-\d{4}-\d{2}-\d{2}$")
_VERSION_SUFFIX = re.compile(r"-\d+$")
_FINETUNE_SUFFIX = re.compile(r"(:[^:]*){3}$")


class ModelMapUnavailableError(RuntimeError):
    """LiteLLM is not installed, or its package has no bundled map: no catalogue, no prices."""


@dataclass(frozen=True, slots=True)
class ModelMap:
    """The map's entries (aliases expanded) and what routing derives from them."""

    entries: Mapping[str, Entry]
    #: lower-cased key -> key, for LiteLLM's case-insensitive lookups
    lowercase: Mapping[str, str]
    #: LiteLLM's rules for names the map does not list (``claude-...`` -> anthropic)
    provider_rules: tuple[tuple[re.Pattern[str], str], ...]
    #: every provider prefix LiteLLM routes (``openai``, ``hosted_vllm``, ...)
    providers: frozenset[str]

    def find(self, name: str) -> tuple[str, Entry] | None:
        """(key, entry) for ``name``, exact first, then ignoring case."""
        entry = self.entries.get(name)
        if entry is not None:
            return name, entry
        key = self.lowercase.get(name.lower())
        return (key, self.entries[key]) if key is not None else None


_map: ModelMap | None = None
_lock = threading.Lock()


def litellm_package_dir() -> Path | None:
    """The installed LiteLLM package's directory, located without importing it."""
    spec = importlib.util.find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def model_map() -> ModelMap:
    """The map, loaded on first use (blocking ~0.1 s: load it in a thread at start-up)."""
    loaded = _map
    if loaded is not None:
        return loaded
    return _load_once()


def _load_once() -> ModelMap:
    global _map
    with _lock:
        if _map is None:
            _map = _load()
        return _map


def _load() -> ModelMap:
    package = litellm_package_dir()
    path = package / MAP_FILE if package is not None else None
    if path is None or not path.is_file():
        raise ModelMapUnavailableError(f"LiteLLM's bundled {MAP_FILE} was not found")
    with path.open("rb") as file:
        raw: dict[str, Any] = json.load(file)
    generalizations = raw.pop("fallback_generalizations", None)
    entries = _expand_aliases({k: v for k, v in raw.items() if isinstance(v, dict)})
    rules: list[tuple[re.Pattern[str], str]] = []
    for rule in (generalizations or {}).get("rules") or []:
        provider = (rule.get("model_info") or {}).get("litellm_provider")
        if isinstance(provider, str) and isinstance(rule.get("pattern"), str):
            rules.append((re.compile(rule["pattern"], re.IGNORECASE), provider))
    providers = {
        normalize_provider(entry["litellm_provider"])
        for entry in entries.values()
        if isinstance(entry.get("litellm_provider"), str)
    }
    assert package is not None
    endpoints = package / PROVIDERS_FILE
    if endpoints.is_file():
        with endpoints.open("rb") as file:
            listed = json.load(file).get("providers") or {}
        providers.update(name for name in listed if "/" not in name)
    return ModelMap(
        entries=entries,
        lowercase={key.lower(): key for key in reversed(list(entries))},
        provider_rules=tuple(rules),
        providers=frozenset(providers),
    )


def _expand_aliases(entries: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Serve an ``alias_of`` row, and each name of an ``aliases`` list, as the row it names.

    As LiteLLM loads the map: an alias never replaces a real row, the first claim wins, and a
    pointer to nothing (or to another pointer) is dropped.
    """
    pointers = {
        name: target
        for name, entry in entries.items()
        if isinstance(target := entry.get("alias_of"), str)
    }
    owners: dict[str, str] = {}
    for name, entry in entries.items():
        aliases = entry.get("aliases")
        if name in pointers or not isinstance(aliases, list):
            continue
        for alias in aliases:
            if (alias in entries and alias not in pointers) or alias in owners:
                continue
            owners[alias] = name
    for alias, target in pointers.items():
        if target in entries and target not in pointers and alias not in owners:
            owners[alias] = target
    for name, entry in entries.items():
        if name not in pointers:
            entry.pop("aliases", None)
    for alias in pointers.keys() - owners.keys():
        del entries[alias]
    for alias, owner in owners.items():
        entries[alias] = entries[owner]
    return entries


def normalize_provider(provider: str) -> str:
    """The routing name of an entry's provider (``vertex_ai-language-models`` -> ``vertex_ai``)."""
    if provider in _PROVIDER_ALIASES:
        return _PROVIDER_ALIASES[provider]
    for family in ("vertex_ai", "fireworks_ai"):
        if provider.startswith(f"{family}-"):
            return family
    return provider


@lru_cache(maxsize=4096)
def bare_provider(name: str) -> str | None:
    """The provider LiteLLM infers for a model name without a provider prefix, or None."""
    mapping = model_map()
    found = mapping.find(name)
    if found is not None:
        provider = found[1].get("litellm_provider")
        if isinstance(provider, str):
            return normalize_provider(provider)
    for pattern, provider in mapping.provider_rules:
        if pattern.search(name):
            return provider
    return None


@lru_cache(maxsize=4096)
def split_model(model: str) -> tuple[str, str]:
    """(provider, model name without the provider prefix) for a LiteLLM model string.

    ``openai/gpt-4o`` -> (``openai``, ``gpt-4o``); a bare name takes the provider the map gives it
    (``claude-haiku-4-5`` -> ``anthropic``); the provider is ``""`` when nothing tells it.
    """
    prefix, _, rest = model.partition("/")
    if rest and prefix in model_map().providers:
        return prefix, rest
    return bare_provider(model) or "", model


def _provider_matches(entry: Entry, provider: str) -> bool:
    """Whether an entry may serve ``provider``, as LiteLLM decides it."""
    owner = entry.get("litellm_provider")
    if not provider or not isinstance(owner, str) or owner == provider:
        return True
    return (
        (provider == "vertex_ai" and owner.startswith("vertex_ai"))
        or (provider == "fireworks_ai" and owner.startswith("fireworks_ai"))
        or (provider.startswith("bedrock") and owner.startswith("bedrock"))
        or (provider == "azure_ai" and owner in ("azure", "openai"))
        or provider in ("litellm_proxy", "github", "nadir")
    )


def _stripped(name: str, provider: str) -> str:
    if provider in ("vertex_ai", "gemini", "databricks"):
        return _VERSION_SUFFIX.sub("", name)
    if "ft:" in name:
        return _FINETUNE_SUFFIX.sub("", name)
    return _DATED_SUFFIX.sub("", name)


@lru_cache(maxsize=4096)
def find_model(model: str) -> tuple[str, str, Entry] | None:
    """(provider, key, entry) of a LiteLLM model string, as LiteLLM's cost lookup finds it.

    ``anthropic/claude-haiku-4-5`` is listed as ``claude-haiku-4-5``, ``gemini/gemini-2.5-flash``
    under its prefix; a dated snapshot the map lacks falls back to its undated name. None when
    the map does not know the model.
    """
    mapping = model_map()
    provider, name = split_model(model)
    if not provider:
        return None
    # LiteLLM first settles on the name as given, else without its prefix, then looks it up
    # with its provider's candidates.
    if model in mapping.entries or name not in mapping.entries:
        name = model
    if name.startswith(f"{provider}/"):
        split, combined, prefixed = name[len(provider) + 1 :], name, f"{provider}/{name}"
    else:
        split, combined, prefixed = name, f"{provider}/{name}", f"{provider}/{name}"
    stripped = _stripped(split, provider)
    for candidate in (combined, name, split, f"{provider}/{stripped}", stripped, prefixed):
        found = mapping.find(candidate)
        if found is not None and _provider_matches(found[1], provider):
            return provider, found[0], found[1]
    return None


def context_window(model: str) -> int | None:
    """The model's input limit, or None when the map does not know it."""
    found = find_model(model)
    if found is None:
        return None
    value = found[2].get("max_input_tokens") or found[2].get("max_tokens")
    return int(value) if isinstance(value, int | float) and value else None


def supports_input(model: str, kind: str) -> bool | None:
    """Whether the map says ``model`` takes ``kind`` input (``"image"``: ``supports_vision``,
    ``"pdf"``: ``supports_pdf_input``); None when the map does not know the model (a custom
    endpoint's): then only the provider can tell."""
    found = find_model(model)
    if found is None:
        return None
    key = "supports_vision" if kind == "image" else "supports_pdf_input"
    return found[2].get(key) is True


@lru_cache(maxsize=256)
def anthropic_max_tokens(model: str) -> int:
    """The ``max_tokens`` LiteLLM sends for an Anthropic model when the caller gives none: the
    model's output limit from the map, else 128,000."""
    mapping = model_map()
    for name in (model, model.removeprefix("anthropic/")):
        found = mapping.entries.get(name)
        if found is not None and "max_output_tokens" in found:
            value = found["max_output_tokens"]
            return int(value) if isinstance(value, int | float) else ANTHROPIC_DEFAULT_MAX_TOKENS
    return ANTHROPIC_DEFAULT_MAX_TOKENS
