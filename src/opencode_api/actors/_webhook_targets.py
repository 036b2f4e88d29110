"""Where webhooks may go: the SSRF policy of ``webfetch`` applied to webhook URLs.

A URL is checked when it is set (scheme, host, an IP-literal or ``localhost`` host) and again
at every send: the sender's connector resolves names through ``VettingResolver``, so the
address vetted is the address connected to (DNS rebinding gains nothing). ``WEBHOOK_ALLOW_PRIVATE``
turns both checks off, for receivers on a private network.
"""

from __future__ import annotations

import aiohttp
from yarl import URL

from opencode_api.actors._errors import InvalidRequestError
from opencode_api.settings import Settings
from opencode_api.tools import AddressBlocked, AddressPolicy, VettingResolver

_MAX_URL = 2048
_PRIVATE = (
    "webhook_url must be a public address: private, loopback and link-local targets are "
    "refused (WEBHOOK_ALLOW_PRIVATE=true allows them)"
)


def check_webhook_url(url: str, *, allow_private: bool) -> str:
    """``url`` if webhooks may be sent there; else ``InvalidRequestError`` (422) naming
    ``webhook_url``. Host names are vetted again, as resolved, at every send."""
    try:
        parsed = URL(url)
    except (ValueError, TypeError):
        parsed = None
    if parsed is None or len(url) > _MAX_URL or not parsed.absolute:
        raise InvalidRequestError("webhook_url must be an absolute URL", field="webhook_url")
    if parsed.scheme not in ("http", "https"):
        raise InvalidRequestError("webhook_url must be an http(s) URL", field="webhook_url")
    host = (parsed.raw_host or "").lower().rstrip(".")
    if not host:
        raise InvalidRequestError("webhook_url has no host", field="webhook_url")
    if allow_private:
        return url
    if host == "localhost" or host.endswith(".localhost"):
        raise InvalidRequestError(
            "webhook_url must not point to this machine (set WEBHOOK_ALLOW_PRIVATE=true to allow "
            "private targets)",
            field="webhook_url",
        )
    if refused(url, allow_private=False) is not None:
        raise InvalidRequestError(_PRIVATE, field="webhook_url")
    return url


def refused(url: str, *, allow_private: bool) -> str | None:
    """Why a send to ``url`` must not even start (an IP literal the policy refuses), or None.
    aiohttp resolves no IP literal, so the connector's resolver never sees these."""
    if allow_private:
        return None
    try:
        AddressPolicy().check_url(URL(url))
    except AddressBlocked:
        return _PRIVATE
    except ValueError:
        return "not a valid URL"
    return None


def webhook_connector(settings: Settings) -> aiohttp.TCPConnector:
    """The sender's connector: every connection goes to an address the policy accepts."""
    limit = settings.webhook_concurrency
    if settings.webhook_allow_private:
        return aiohttp.TCPConnector(limit=limit)
    return aiohttp.TCPConnector(limit=limit, resolver=VettingResolver(AddressPolicy()))


def blocked_error(exc: BaseException) -> str | None:
    """``_PRIVATE`` when a connection error is the policy refusing the resolved address."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, AddressBlocked) or isinstance(
            getattr(seen, "os_error", None), AddressBlocked
        ):
            return _PRIVATE
        seen = seen.__cause__ or seen.__context__
    return None
