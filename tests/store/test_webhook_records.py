"""Webhook deliveries in every store: add (idempotent), claim with a lease (never twice at once,
also across processes' stores on one database), finish an attempt, list with filters."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from opencode_api.store import Store, WebhookDelivery, utcnow
from tests.store.conftest import MakeStore


def delivery(did: str, session_id: str = "ses_a", **fields: object) -> WebhookDelivery:
    values: dict[str, object] = {
        "id": did,
        "event": "turn.completed",
        "session_id": session_id,
        "user_id": "alice",
        "url": "https://hooks.example/in",
        "payload": '{"type":"turn.completed"}',
        "next_attempt_at": utcnow() - timedelta(seconds=1),
    }
    values.update(fields)
    return WebhookDelivery.model_validate(values)


async def test_added_deliveries_are_listed_newest_first_and_adding_twice_is_harmless(
    store: Store,
) -> None:
    now = utcnow()
    first = delivery("whd_1", created_at=now - timedelta(seconds=2))
    second = delivery("whd_2", session_id="ses_b", user_id="bob", created_at=now)
    await store.add_webhook_deliveries([first, second])
    await store.add_webhook_deliveries([first.model_copy(update={"url": "https://other"})])
    listed = await store.list_webhook_deliveries()
    assert [d.id for d in listed] == ["whd_2", "whd_1"]
    assert listed[1].url == "https://hooks.example/in"  # the first write stands
    assert listed[1].payload == first.payload and listed[1].status == "pending"
    assert listed[1].attempts == 0 and listed[1].last_status_code is None
    assert [d.id for d in await store.list_webhook_deliveries(session_id="ses_b")] == ["whd_2"]
    assert [d.id for d in await store.list_webhook_deliveries(user_id="alice")] == ["whd_1"]
    assert await store.list_webhook_deliveries(status="delivered") == []
    assert len(await store.list_webhook_deliveries(limit=1)) == 1


async def test_a_claim_takes_due_deliveries_once_until_its_lease_runs_out(store: Store) -> None:
    now = utcnow()
    later = delivery("whd_later", next_attempt_at=now + timedelta(hours=1))
    await store.add_webhook_deliveries([delivery("whd_1"), delivery("whd_2"), later])
    claimed = await store.claim_webhook_deliveries("p1", limit=10, lease=30, now=now)
    assert [d.id for d in claimed] == ["whd_1", "whd_2"]
    assert await store.claim_webhook_deliveries("p2", limit=10, lease=30, now=now) == []
    # Once the lease ran out (its process died mid-send), another process takes them.
    after = now + timedelta(seconds=31)
    again = await store.claim_webhook_deliveries("p2", limit=1, lease=30, now=after)
    assert [d.id for d in again] == ["whd_1"]
    # The old holder lost it: its outcome is not stored.
    done = claimed[0].model_copy(update={"status": "delivered", "attempts": 1})
    assert not await store.finish_webhook_attempt(done, "p1")
    assert await store.finish_webhook_attempt(done, "p2")


async def test_finishing_an_attempt_stores_its_outcome_and_releases_the_claim(
    store: Store,
) -> None:
    now = utcnow()
    await store.add_webhook_deliveries([delivery("whd_1")])
    (claimed,) = await store.claim_webhook_deliveries("p1", limit=5, lease=30, now=now)
    retry_at = now + timedelta(seconds=10)
    failed_once = claimed.model_copy(
        update={
            "attempts": 1,
            "last_status_code": 500,
            "last_error": "HTTP 500",
            "next_attempt_at": retry_at,
        }
    )
    assert await store.finish_webhook_attempt(failed_once, "p1")
    (stored,) = await store.list_webhook_deliveries()
    assert (stored.status, stored.attempts, stored.last_status_code) == ("pending", 1, 500)
    assert stored.last_error == "HTTP 500" and stored.next_attempt_at is not None
    assert abs((stored.next_attempt_at - retry_at).total_seconds()) < 0.01
    # Not due before its next attempt; due after, even within the first lease's time.
    assert await store.claim_webhook_deliveries("p1", limit=5, lease=30, now=now) == []
    (retried,) = await store.claim_webhook_deliveries(
        "p2", limit=5, lease=30, now=retry_at + timedelta(seconds=1)
    )
    delivered = retried.model_copy(
        update={
            "status": "delivered",
            "attempts": 2,
            "last_status_code": 204,
            "last_error": None,
            "next_attempt_at": None,
        }
    )
    assert await store.finish_webhook_attempt(delivered, "p2")
    (final,) = await store.list_webhook_deliveries(status="delivered")
    assert final.attempts == 2 and final.next_attempt_at is None and final.last_error is None
    later = retry_at + timedelta(hours=2)
    assert await store.claim_webhook_deliveries("p3", limit=5, lease=30, now=later) == []


async def test_concurrent_claims_from_several_stores_never_share_a_delivery(
    make_store: MakeStore,
) -> None:
    stores = [make_store() for _ in range(3)]
    for s in stores:
        await s.open()
    try:
        await stores[0].add_webhook_deliveries([delivery(f"whd_{i:03}") for i in range(60)])
        now = utcnow()

        async def drain(s: Store, owner: str) -> list[str]:
            got: list[str] = []
            while batch := await s.claim_webhook_deliveries(owner, limit=4, lease=60, now=now):
                got += [d.id for d in batch]
            return got

        # Two claimers per store, as several senders of several processes would be.
        results = await asyncio.gather(*(drain(stores[i % 3], f"p{i}") for i in range(6)))
    finally:
        for s in stores:
            await s.close()
    claimed = [did for got in results for did in got]
    assert sorted(claimed) == [f"whd_{i:03}" for i in range(60)]
