"""Authentication: HTTP Basic (the server password) and Supabase user JWTs (HS256 or JWKS).

The verified token's ``sub`` becomes the request's user id, which scopes every runtime call.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import structlog
from aiohttp import ClientSession, ClientTimeout, web

from opencode_api.http._errors import UnauthorizedError
from opencode_api.settings import Settings

if TYPE_CHECKING:
    import jwt

log = structlog.get_logger("opencode_api.http.auth")

USER_ID = web.RequestKey("user_id", str)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

AUDIENCE = "authenticated"
# Pinned per key type so a token can never pick how it is verified (algorithm confusion):
# HS256 only with the shared secret; asymmetric algorithms only with a JWKS key of their type.
_JWKS_ALGORITHMS = {"ES256": "EC", "RS256": "RSA"}
# Routes a browser EventSource calls: it cannot set headers, so the token may be in the query.
# With a server password, the user's bearer token goes in this header (Authorization holds Basic).
USER_TOKEN_HEADER = "X-User-Authorization"
# The owner of sessions created without a token when accounts are optional.
ANONYMOUS_USER_ID = "anonymous"
SSE_ROUTES = frozenset({"send_message", "session_stream", "events"})
OPEN_PATHS = frozenset({"/health"})
# Documentation, metrics and the playground's page and files hold no user data: AUTH_REQUIRED (a
# user token) does not gate them (a browser's page load carries no token; the page then sends the
# one typed in), the server password does.
_SERVICE_PREFIXES = ("/openapi.json", "/docs", "/redoc", "/metrics", "/playground/")


class JWKSCache:
    """The project's JSON Web Key Set, fetched with aiohttp and kept for ``ttl`` seconds.

    An unknown ``kid`` triggers a refetch (key rotation), at most once per ``min_refresh``
    seconds so forged kids cannot make us hammer the endpoint.
    """

    def __init__(self, url: str, *, ttl: float, min_refresh: float = 30.0) -> None:
        self.url = url
        self.ttl = ttl
        self.min_refresh = min_refresh
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at = float("-inf")
        self._attempted_at = float("-inf")
        self._lock = asyncio.Lock()
        self._session: ClientSession | None = None

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def key(self, kid: str | None) -> jwt.PyJWK | None:
        if self._needs_refresh(kid):
            async with self._lock:
                # Another request may have refreshed while this one waited for the lock.
                if self._needs_refresh(kid):
                    await self._refresh()
        if kid:
            return self._keys.get(kid)
        # A token without kid is accepted only when the set holds exactly one key.
        return next(iter(self._keys.values())) if len(self._keys) == 1 else None

    def _needs_refresh(self, kid: str | None) -> bool:
        now = time.monotonic()
        missing = kid not in self._keys if kid else not self._keys
        wanted = now - self._fetched_at > self.ttl or missing
        return wanted and now - self._attempted_at > self.min_refresh

    async def _refresh(self) -> None:
        self._attempted_at = time.monotonic()
        if self._session is None:
            self._session = ClientSession(timeout=ClientTimeout(total=10))
        try:
            async with self._session.get(self.url) as response:
                response.raise_for_status()
                document: Any = await response.json(content_type=None)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # Keep serving the keys we have; the next attempt waits min_refresh.
            log.warning("JWKS fetch failed", url=self.url, error=str(exc))
            return
        import jwt  # with cryptography, ~70 ms: loaded when user tokens are first checked

        keys: dict[str, jwt.PyJWK] = {}
        entries = document.get("keys", []) if isinstance(document, dict) else []
        for index, entry in enumerate(entries):
            try:
                key = jwt.PyJWK(entry)
            except jwt.PyJWTError:
                continue  # a key type or curve we do not support
            keys[str(entry.get("kid", index))] = key
        self._keys = keys
        self._fetched_at = time.monotonic()


class Authenticator:
    """Checks the credentials of one request; built once per app from the settings."""

    def __init__(self, settings: Settings, *, jwks_min_refresh: float = 30.0) -> None:
        password = settings.opencode_server_password
        self.password = password.get_secret_value().encode() if password else None
        self.username = settings.opencode_server_username.encode()
        secret = settings.supabase_jwt_secret
        self.jwt_secret = secret.get_secret_value() if secret else None
        self.jwks = (
            JWKSCache(
                settings.supabase_url.rstrip("/") + "/auth/v1/.well-known/jwks.json",
                ttl=settings.jwks_cache_ttl,
                min_refresh=jwks_min_refresh,
            )
            if settings.supabase_url
            else None
        )
        self.auth_required = settings.auth_required

    @property
    def jwt_enabled(self) -> bool:
        return self.jwt_secret is not None or self.jwks is not None

    async def aclose(self) -> None:
        if self.jwks is not None:
            await self.jwks.aclose()

    async def authenticate(self, request: web.Request) -> str | None:
        """The request's user id; raises ``UnauthorizedError``.

        None only when no user accounts are configured (a single-tenant server: no scoping).
        """
        header = request.headers.get("Authorization", "")
        scheme, _, credentials = header.partition(" ")
        scheme = scheme.lower()
        token: str | None = None
        if self.password is not None:
            # The server password gates every route (API.md), whoever the user is: a user's
            # token cannot stand in for it, so it travels in its own header.
            if scheme != "basic" or not self._basic_ok(credentials):
                raise UnauthorizedError(
                    "authentication required", challenge='Basic realm="opencode", charset="UTF-8"'
                )
            user_scheme, _, user_token = request.headers.get(USER_TOKEN_HEADER, "").partition(" ")
            if user_scheme.lower() == "bearer" and user_token.strip():
                token = user_token.strip()
        elif scheme == "bearer" and credentials:
            token = credentials.strip()
        if token is None and request.match_info.route.name in SSE_ROUTES:
            # Browsers' EventSource cannot set headers: SSE routes accept ?access_token=.
            token = request.query.get("access_token") or None
        if token is not None and self.jwt_enabled:
            # A token that is present is always checked: a bad one is refused, never ignored.
            return await self.verify_token(token)
        if (
            self.auth_required
            and request.path != "/"
            and not request.path.startswith(_SERVICE_PREFIXES)
        ):
            raise UnauthorizedError(
                "a valid bearer token is required", challenge='Bearer realm="opencode"'
            )
        if self.jwt_enabled:
            # With user accounts configured, a request without a token is scoped to one shared
            # anonymous owner: it sees only anonymous sessions, never a signed-in user's.
            return ANONYMOUS_USER_ID
        return None

    def _basic_ok(self, credentials: str) -> bool:
        assert self.password is not None
        try:
            decoded = base64.b64decode(credentials.strip(), validate=True)
        except (binascii.Error, ValueError):
            return False
        username, sep, password = decoded.partition(b":")
        # Both compared in full, constant time, so timing tells nothing about either.
        user_ok = hmac.compare_digest(username, self.username)
        password_ok = hmac.compare_digest(password, self.password)
        return bool(sep) and user_ok and password_ok

    async def verify_token(self, token: str) -> str:
        import jwt  # with cryptography, ~70 ms: loaded when user tokens are first checked

        challenge = 'Bearer realm="opencode", error="invalid_token"'
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise UnauthorizedError("malformed token", challenge=challenge) from None
        alg = header.get("alg")
        key: Any
        if alg == "HS256" and self.jwt_secret is not None:
            key = self.jwt_secret
        elif alg in _JWKS_ALGORITHMS and self.jwks is not None:
            jwk = await self.jwks.key(header.get("kid"))
            if jwk is None or jwk.key_type != _JWKS_ALGORITHMS[alg]:
                raise UnauthorizedError("unknown signing key", challenge=challenge)
            key = jwk.key
        else:
            raise UnauthorizedError(f"token algorithm not accepted: {alg}", challenge=challenge)
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[alg],
                audience=AUDIENCE,
                options={"require": ["exp", "sub", "aud"]},
                leeway=5,
            )
        except jwt.ExpiredSignatureError:
            raise UnauthorizedError("token expired", challenge=challenge) from None
        except jwt.PyJWTError as exc:
            raise UnauthorizedError(f"invalid token: {exc}", challenge=challenge) from None
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject:
            raise UnauthorizedError("token has no subject", challenge=challenge)
        return subject


def auth_middleware(authenticator: Authenticator) -> Any:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        # CORS preflights carry no credentials by design; /health is for load balancers.
        if request.method == "OPTIONS" or request.path in OPEN_PATHS:
            return await handler(request)
        user_id = await authenticator.authenticate(request)
        if user_id is not None:
            request[USER_ID] = user_id
            structlog.contextvars.bind_contextvars(user_id=user_id)
        return await handler(request)

    return middleware


def user_id_of(request: web.Request) -> str | None:
    return request.get(USER_ID)
