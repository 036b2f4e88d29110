"""Auth: Basic password, Supabase JWTs (HS256, ES256 via JWKS), refusals, per-user scoping."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

import jwt
import pytest
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tests.http.conftest import (
    JWT_SECRET,
    ClientFactory,
    basic,
    bearer,
    hs256_token,
    read_frame,
)

# (method, path) of every protected route; {sid} is replaced with a real session id.
PROTECTED = [
    ("GET", "/session"),
    ("POST", "/session"),
    ("GET", "/session/{sid}"),
    ("PATCH", "/session/{sid}"),
    ("DELETE", "/session/{sid}"),
    ("GET", "/session/{sid}/message"),
    ("POST", "/session/{sid}/message"),
    ("POST", "/session/{sid}/abort"),
    ("POST", "/session/{sid}/generate-title"),
    ("GET", "/session/{sid}/cost"),
    ("POST", "/session/{sid}/compact"),
    ("GET", "/session/{sid}/compaction-status"),
    ("GET", "/session/{sid}/todo"),
    ("GET", "/session/{sid}/stream"),
    ("GET", "/event"),
    ("GET", "/question"),
    ("POST", "/question/que_x/reply"),
    ("POST", "/question/que_x/reject"),
    ("GET", "/provider"),
    ("GET", "/provider/openai"),
    ("GET", "/provider/openai/model"),
    ("GET", "/openapi.json"),
    ("GET", "/docs"),
    ("GET", "/redoc"),
    ("GET", "/metrics"),
]


async def test_basic_auth_on_every_route(make_client: ClientFactory) -> None:
    client = await make_client(opencode_server_password="s3cret")
    good = basic("opencode", "s3cret")
    sid = (await (await client.post("/session", headers=good)).json())["id"]
    for method, path in PROTECTED:
        url = path.format(sid=sid)
        for headers in ({}, basic("opencode", "wrong"), basic("other", "s3cret")):
            response = await client.request(method, url, headers=headers, json={"content": "x"})
            assert response.status == 401, (method, url, headers)
            assert response.headers["WWW-Authenticate"].startswith("Basic")
            assert (await response.json())["error"]["type"] == "unauthorized"
    assert (await client.get("/health")).status == 200
    assert (await client.get(f"/session/{sid}", headers=good)).status == 200
    assert (await client.options("/session")).status != 401  # CORS preflight passes


@pytest.fixture
def jwt_client(make_client: ClientFactory) -> Any:
    async def build(**overrides: Any) -> Any:
        return await make_client(supabase_jwt_secret=JWT_SECRET, **overrides)

    return build


async def test_users_see_only_their_sessions(jwt_client: Any) -> None:
    client = await jwt_client(auth_required=True)
    alice, bob = bearer(hs256_token("alice")), bearer(hs256_token("bob"))
    session = await (await client.post("/session", headers=alice)).json()
    assert session["user_id"] == "alice"
    sid = session["id"]
    assert await (await client.get("/session", headers=bob)).json() == []
    for method, path in PROTECTED:
        if "{sid}" not in path:
            continue
        response = await client.request(
            method, path.format(sid=sid), headers=bob, json={"content": "x"}
        )
        assert response.status == 404, (method, path)
    assert (await client.get(f"/session/{sid}", headers=alice)).status == 200
    # Unauthenticated under AUTH_REQUIRED: refused, naming the scheme.
    response = await client.get("/session")
    assert response.status == 401 and response.headers["WWW-Authenticate"].startswith("Bearer")
    # The playground's page and files hold no data: they load without a token, its calls do not.
    assert (await client.get("/")).status == 200
    assert (await client.get("/playground/style.css")).status == 200
    assert (await client.get("/sessionx")).status in (401, 404)
    # Bus events of alice's sessions are not shown to bob (checked in the turn tests too).
    assert (await client.get("/session/" + sid + "/stream", headers=bob)).status == 404


def _token(key: Any, alg: str, **claims: Any) -> str:
    payload: dict[str, Any] = {"sub": "mallory", "aud": "authenticated", "exp": time.time() + 60}
    payload.update(claims)
    return jwt.encode(payload, key, algorithm=alg)


@pytest.mark.parametrize(
    "token",
    [
        pytest.param(_token("another-secret-" + "z" * 60, "HS256"), id="forged"),
        pytest.param(_token(JWT_SECRET, "HS256", exp=time.time() - 3600), id="expired"),
        pytest.param(_token(JWT_SECRET, "HS256", aud="anon"), id="wrong-aud"),
        pytest.param(
            jwt.encode({"sub": "x", "aud": "authenticated"}, JWT_SECRET, algorithm="HS256"),
            id="no-exp",
        ),
        pytest.param(
            jwt.encode(
                {"sub": "x", "aud": "authenticated", "exp": time.time() + 60},
                None,  # type: ignore[arg-type]
                algorithm="none",
            ),
            id="alg-none",
        ),
        pytest.param(_token(JWT_SECRET, "HS512"), id="hs512"),
        pytest.param("not.a.jwt", id="garbage"),
    ],
)
async def test_bad_tokens_refused(jwt_client: Any, token: str) -> None:
    client = await jwt_client()  # even when auth is optional, a bad token is never ignored
    response = await client.get("/session", headers=bearer(token))
    assert response.status == 401
    assert "invalid_token" in response.headers["WWW-Authenticate"]


async def test_query_token_only_on_sse_routes(jwt_client: Any) -> None:
    client = await jwt_client(auth_required=True)
    token = hs256_token("alice")
    sid = (await (await client.post("/session", headers=bearer(token))).json())["id"]
    assert (await client.get(f"/session?access_token={token}")).status == 401
    async with client.get(f"/event?access_token={token}") as response:
        assert response.status == 200
        assert "server.connected" in (await read_frame(response))["data"]
    async with client.get(f"/session/{sid}/stream?access_token={token}") as response:
        assert response.status == 200
    forged = _token("another-secret-" + "z" * 60, "HS256")
    assert (await client.get(f"/event?access_token={forged}")).status == 401


@pytest.fixture
async def jwks_server(aiohttp_server: Any) -> AsyncIterator[tuple[Any, Any, list[int]]]:
    ec_key = ec.generate_private_key(ec.SECP256R1())
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    fetches: list[int] = []

    def jwk(key: Any, alg: str, kid: str) -> dict[str, Any]:
        algorithm = jwt.get_algorithm_by_name(alg)
        data: dict[str, Any] = json.loads(algorithm.to_jwk(key.public_key()))
        data.update(kid=kid, alg=alg, use="sig")
        return data

    async def handler(request: web.Request) -> web.Response:
        fetches.append(1)
        return web.json_response(
            {"keys": [jwk(ec_key, "ES256", "ec1"), jwk(rsa_key, "RS256", "rsa1")]}
        )

    app = web.Application()
    app.router.add_get("/auth/v1/.well-known/jwks.json", handler)
    server = await aiohttp_server(app)
    yield server, (ec_key, rsa_key), fetches


async def test_jwks_tokens(make_client: ClientFactory, jwks_server: Any) -> None:
    server, (ec_key, rsa_key), fetches = jwks_server
    client = await make_client(
        supabase_url=str(server.make_url("/")).rstrip("/"), auth_required=True
    )
    ok_ec = _token(ec_key, "ES256", sub="eve")
    ok_ec = jwt.encode(
        jwt.decode(ok_ec, options={"verify_signature": False}),
        ec_key,
        algorithm="ES256",
        headers={"kid": "ec1"},
    )
    response = await client.post("/session", headers=bearer(ok_ec))
    assert response.status == 200 and (await response.json())["user_id"] == "eve"
    claims = {"sub": "rita", "aud": "authenticated", "exp": time.time() + 60}
    ok_rsa = jwt.encode(claims, rsa_key, algorithm="RS256", headers={"kid": "rsa1"})
    assert (await client.get("/session", headers=bearer(ok_rsa))).status == 200
    assert len(fetches) == 1  # cached
    # Algorithm confusion: an RS256 kid used for an ES256 header, HS256 signed with a public key.
    wrong_type = jwt.encode(claims, ec_key, algorithm="ES256", headers={"kid": "rsa1"})
    assert (await client.get("/session", headers=bearer(wrong_type))).status == 401
    other_key = ec.generate_private_key(ec.SECP256R1())
    forged = jwt.encode(claims, other_key, algorithm="ES256", headers={"kid": "ec1"})
    assert (await client.get("/session", headers=bearer(forged))).status == 401
    hs = jwt.encode(claims, "x" * 40, algorithm="HS256")  # no HS256 secret configured here
    assert (await client.get("/session", headers=bearer(hs))).status == 401


async def test_password_and_user_tokens_together(jwt_client: Any) -> None:
    client = await jwt_client(opencode_server_password="s3cret")
    password = basic("opencode", "s3cret")
    alice_token = hs256_token("alice")
    # A user's token cannot stand in for the server password.
    response = await client.get("/session", headers=bearer(alice_token))
    assert response.status == 401
    assert response.headers["WWW-Authenticate"].startswith("Basic")
    # With the password, the user's token rides in X-User-Authorization and scopes the request.
    alice = {**password, "X-User-Authorization": f"Bearer {alice_token}"}
    session = await (await client.post("/session", headers=alice)).json()
    assert session["user_id"] == "alice"
    anonymous = await (await client.get("/session", headers=password)).json()
    assert anonymous == []
    forged = {**password, "X-User-Authorization": "Bearer not.a.token"}
    assert (await client.get("/session", headers=forged)).status == 401
