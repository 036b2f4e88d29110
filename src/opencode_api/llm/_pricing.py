"""Cost of one step from LiteLLM's price map, by LiteLLM's rules, without importing LiteLLM.

The rules are those of ``litellm.cost_per_token`` for the usage we record (input tokens counting
the cached ones, output tokens counting the reasoning ones, cache reads and writes), held to it by
a differential test over the map's OpenAI, Anthropic, Gemini, DeepSeek, Mistral and xAI models:

- input: uncached tokens at the input rate, cache reads and writes at their own rates (the input
  rate when the map has none);
- output: at the output rate; reasoning tokens at ``output_cost_per_reasoning_token`` if the model
  has one (xAI bills them as output);
- long prompts: above a ``*_above_<N>k_tokens`` threshold (xAI: at it) every rate of that
  threshold applies to the whole step; a ``tiered_pricing`` table picks one tier for the step;
- off-peak hours (``off_peak_pricing``, DeepSeek) replace the rates they name while open.

Service tiers, batches, regional uplifts, audio and image tokens do not occur in our usage.
An unknown model, or one the map lists without a token price, is unpriced, never guessed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, tzinfo
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from opencode_api.llm._model_map import Entry, ModelMapUnavailableError, find_model
from opencode_api.usage import Usage

_THRESHOLD_PREFIXES = (
    "input_cost_per_token_above_",
    "output_cost_per_token_above_",
    "cache_read_input_token_cost_above_",
    "cache_creation_input_token_cost_above_",
)
# Threshold keys for a service tier or for batches: not ours.
_OTHER_SUFFIXES = ("_auto", "_flex", "_priority", "_balanced", "_ultrafast", "_fast", "_batches")
_INCLUSIVE_THRESHOLDS = frozenset({"xai"})
_F = TypeVar("_F", float, float | None)
_WEEKDAYS = {
    "mon": 1, "monday": 1, "tue": 2, "tues": 2, "tuesday": 2, "wed": 3, "wednesday": 3,
    "thu": 4, "thur": 4, "thurs": 4, "thursday": 4, "fri": 5, "friday": 5,
    "sat": 6, "saturday": 6, "sun": 7, "sunday": 7,
}  # fmt: skip


@dataclass(slots=True)
class _Rates:
    input: float
    output: float
    cache_read: float
    cache_write: float
    reasoning: float = 0.0


def step_cost(model: str, usage: Usage, *, now: datetime | None = None) -> tuple[float, bool]:
    """(cost in USD, priced). ``priced`` is False when the price map does not price the model.

    ``now`` is the billing time for off-peak prices (default: the current time).
    """
    try:
        found = find_model(model)
    except ModelMapUnavailableError:
        return 0.0, False
    if found is None:
        return 0.0, False
    provider, _, entry = found
    if not _prices_tokens(entry):
        return 0.0, False
    prompt = usage.input_tokens
    rates = _rates(entry, prompt, provider in _INCLUSIVE_THRESHOLDS, now or datetime.now(UTC))
    cached = usage.cache_read_tokens + usage.cache_write_tokens
    cost = max(prompt - cached, 0) * rates.input
    cost += (
        usage.cache_read_tokens * rates.cache_read + usage.cache_write_tokens * rates.cache_write
    )
    reasoning = usage.reasoning_tokens if provider != "xai" else 0
    if reasoning > 0:
        cost += max(usage.output_tokens - reasoning, 0) * rates.output
        cost += reasoning * rates.reasoning
    else:
        cost += usage.output_tokens * rates.output
    return cost, True


def _rate(entry: Mapping[str, Any], key: str) -> float | None:
    value = entry.get(key)
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _prices_tokens(entry: Entry) -> bool:
    return (
        (_rate(entry, "input_cost_per_token") or 0.0) > 0
        or (_rate(entry, "output_cost_per_token") or 0.0) > 0
        or entry.get("tiered_pricing") is not None
    )


def _rates(entry: Entry, prompt: int, inclusive: bool, now: datetime) -> _Rates:
    off_peak = _open_off_peak(entry, now)
    tier = _tier(entry, prompt)
    if tier is not None:
        rates = _Rates(
            input=_tier_rate(tier, "input_cost_per_token"),
            output=(
                _tier_rate(tier, "output_cost_per_token")
                if "output_cost_per_token" in tier
                else _rate(entry, "output_cost_per_token") or 0.0
            ),
            cache_read=_tier_rate(tier, "cache_read_input_token_cost", "input_cost_per_token"),
            cache_write=_tier_rate(tier, "cache_creation_input_token_cost", "input_cost_per_token"),
        )
    else:
        rates = _threshold_rates(entry, prompt, inclusive, off_peak)
    if off_peak is not None:
        rates = _Rates(
            input=_or(_rate(off_peak, "input_cost_per_token"), rates.input),
            output=_or(_rate(off_peak, "output_cost_per_token"), rates.output),
            cache_read=_or(_rate(off_peak, "cache_read_input_token_cost"), rates.cache_read),
            cache_write=_or(_rate(off_peak, "cache_creation_input_token_cost"), rates.cache_write),
        )
    rates.reasoning = _reasoning_rate(entry, tier, off_peak, rates.output)
    return rates


def _threshold_rates(
    entry: Entry, prompt: int, inclusive: bool, off_peak: Mapping[str, Any] | None
) -> _Rates:
    """The flat rates, or those of the highest ``*_above_<N>k_tokens`` threshold crossed."""
    input_rate = _rate(entry, "input_cost_per_token") or 0.0
    output_rate = _rate(entry, "output_cost_per_token") or 0.0
    if output_rate == 0.0:
        output_rate = _or(_rate(entry, "output_cost_per_image_token"), output_rate)
    cache_write = _rate(entry, "cache_creation_input_token_cost")
    cache_read = _rate(entry, "cache_read_input_token_cost")
    keys = [
        key
        for key in entry
        if key.startswith(_THRESHOLD_PREFIXES)
        and "_tokens" in key
        and not key.endswith(_OTHER_SUFFIXES)
        and entry[key] is not None
    ]
    for key in sorted(keys, key=_threshold):
        limit = _threshold(key)
        if prompt > limit or (inclusive and prompt == limit):
            at = key.rsplit("_above_", 1)[1].split("_tokens")[0]
            input_rate = _or(_rate(entry, f"input_cost_per_token_above_{at}_tokens"), input_rate)
            output_rate = _or(_rate(entry, f"output_cost_per_token_above_{at}_tokens"), output_rate)
            cache_write = _or(
                _rate(entry, f"cache_creation_input_token_cost_above_{at}_tokens"), cache_write
            )
            cache_read = _or(
                _rate(entry, f"cache_read_input_token_cost_above_{at}_tokens"), cache_read
            )
    # A missing cache rate is the input rate (the off-peak one while off-peak hours are open).
    fallback = input_rate
    if off_peak is not None:
        fallback = _or(_rate(off_peak, "input_cost_per_token"), input_rate)
    return _Rates(
        input=input_rate,
        output=output_rate,
        cache_read=_or(cache_read, fallback),
        cache_write=_or(cache_write, fallback),
    )


def _reasoning_rate(
    entry: Entry, tier: Mapping[str, Any] | None, off_peak: Mapping[str, Any] | None, output: float
) -> float:
    rate = _rate(off_peak, "output_cost_per_reasoning_token") if off_peak is not None else None
    if rate is not None:
        return rate
    if tier is not None and (
        "output_cost_per_reasoning_token" in tier or "output_cost_per_token" in tier
    ):
        return _tier_rate(tier, "output_cost_per_reasoning_token", "output_cost_per_token")
    return _or(_rate(entry, "output_cost_per_reasoning_token"), output)


def _or(value: float | None, default: _F) -> float | _F:
    return default if value is None else value


def _threshold(key: str) -> float:
    """The token count of a ``..._above_<N>k_tokens`` key."""
    text = key.rsplit("_above_", 1)[1].split("_tokens")[0]
    return float(text.replace("k", "")) * (1000 if "k" in text else 1)


def _tier(entry: Entry, prompt: int) -> Mapping[str, Any] | None:
    """The ``tiered_pricing`` tier of a step: the first with ``start < prompt <= end`` by start,
    else the last; only a tier with an input rate counts."""
    tiers = entry.get("tiered_pricing")
    if not isinstance(tiers, list) or not tiers or prompt <= 0:
        return None
    ranged: list[tuple[float, float, Mapping[str, Any]]] = []
    for tier in tiers:
        bounds = tier.get("range") if isinstance(tier, Mapping) else None
        if isinstance(bounds, Sequence) and not isinstance(bounds, str) and len(bounds) == 2:
            try:
                ranged.append((float(bounds[0]), float(bounds[1]), tier))
            except (TypeError, ValueError):
                continue
    if not ranged:
        return None
    ranged.sort(key=lambda item: item[0])
    chosen = next((t for start, end, t in ranged if start < prompt <= end), ranged[-1][2])
    return chosen if "input_cost_per_token" in chosen else None


def _tier_rate(tier: Mapping[str, Any], key: str, fallback: str | None = None) -> float:
    value = tier.get(key)
    if value is None:
        if fallback is None:
            return 0.0
        value = tier.get(fallback, 0)
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


# -- off-peak hours ------------------------------------------------------------------------------


def _open_off_peak(entry: Entry, now: datetime) -> Mapping[str, Any] | None:
    """The model's ``off_peak_pricing`` block when ``now`` falls in one of its windows."""
    block = entry.get("off_peak_pricing")
    if not isinstance(block, Mapping):
        return None
    utc = now.astimezone(UTC) if now.tzinfo is not None else now.replace(tzinfo=UTC)
    if _in_windows(_windows(block.get("hours_utc")), utc.time()):
        return block
    rules = block.get("windows")
    if isinstance(rules, str) or not isinstance(rules, Sequence):
        return None
    calendar = _calendar(block.get("weekday_timezone"))
    for rule in rules:
        if not isinstance(rule, Mapping):
            continue
        hours = _windows(rule.get("hours_utc"))
        if (
            hours
            and _on_weekday(utc, rule.get("weekdays"), calendar)
            and _in_windows(hours, utc.time())
        ):
            return block
    return None


def _windows(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, Sequence):
        return tuple(item for item in value if isinstance(item, str))
    return ()


def _in_windows(windows: tuple[str, ...], now: time) -> bool:
    """``HH:MM-HH:MM`` windows, start inclusive, end exclusive, wrapping past midnight; a window
    whose start equals its end is the whole day."""
    for window in windows:
        try:
            start_text, end_text = window.split("-")
            start = datetime.strptime(start_text.strip(), "%H:%M").time()
            end = datetime.strptime(end_text.strip(), "%H:%M").time()
        except ValueError:
            continue
        if start < end:
            if start <= now < end:
                return True
        elif now >= start or now < end:
            return True
    return False


def _calendar(name: object) -> tzinfo:
    if isinstance(name, str) and name.strip():
        try:
            return ZoneInfo(name.strip())
        except (ValueError, ZoneInfoNotFoundError):
            pass
    return UTC


def _on_weekday(utc: datetime, weekdays: object, calendar: tzinfo) -> bool:
    if weekdays is None:
        return True
    if isinstance(weekdays, str) or not isinstance(weekdays, Sequence):
        return False
    allowed = set()
    for day in weekdays:
        if isinstance(day, bool):
            continue
        if isinstance(day, int) and 1 <= day <= 7:
            allowed.add(day)
        elif isinstance(day, str) and day.strip().lower() in _WEEKDAYS:
            allowed.add(_WEEKDAYS[day.strip().lower()])
    return utc.astimezone(calendar).isoweekday() in allowed
