"""Each shared backend against its real emulator: the claim rules every instance relies on.

Two store objects are two instances (separate clients, separate processes' worth of state) on one
table or collection.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime

from fs2split.stores.dedup import Claim
from tests.stores.conftest import Backend

KEY = "a" * 64


def test_a_key_claimed_by_one_instance_is_in_flight_for_another(backend: Backend) -> None:
    first, second = backend.store(), backend.store()

    assert first.claim(KEY) is Claim.NEW
    assert second.claim(KEY) is Claim.IN_FLIGHT


def test_a_delivered_key_is_a_duplicate_for_every_instance(backend: Backend) -> None:
    first, second = backend.store(), backend.store()
    first.claim(KEY)

    first.done(KEY)

    assert second.claim(KEY) is Claim.DONE
    assert first.claim(KEY) is Claim.DONE


def test_a_released_key_can_be_claimed_again_so_the_senders_retry_goes_through(backend: Backend) -> None:
    first, second = backend.store(), backend.store()
    first.claim(KEY)

    first.release(KEY)

    assert second.claim(KEY) is Claim.NEW
    assert backend.record(KEY) is not None


def test_exactly_one_of_many_concurrent_claims_from_many_instances_wins(backend: Backend) -> None:
    stores = [backend.store() for _ in range(4)]
    results: list[Claim] = []
    start = threading.Barrier(16)

    def race(n: int) -> None:
        start.wait()
        results.append(stores[n % 4].claim(KEY))

    threads = [threading.Thread(target=race, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(results).count(Claim.NEW) == 1
    assert len(results) == 16


def test_a_claim_whose_lease_ran_out_is_taken_over_by_exactly_one_instance(backend: Backend) -> None:
    crashed = backend.store(lease_s=0.5)
    crashed.claim(KEY)  # and never done() nor release(): its process died
    time.sleep(0.7)
    rivals = [backend.store() for _ in range(4)]
    results: list[Claim] = []
    start = threading.Barrier(4)

    def race(store_index: int) -> None:
        start.wait()
        results.append(rivals[store_index].claim(KEY))

    threads = [threading.Thread(target=race, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(results) == sorted([Claim.NEW, Claim.IN_FLIGHT, Claim.IN_FLIGHT, Claim.IN_FLIGHT])


def test_a_late_release_from_a_timed_out_claim_leaves_the_new_owners_claim_alone(backend: Backend) -> None:
    slow = backend.store(lease_s=0.5)
    slow.claim(KEY)
    time.sleep(0.7)
    taker, third = backend.store(), backend.store()
    assert taker.claim(KEY) is Claim.NEW

    slow.release(KEY)

    assert third.claim(KEY) is Claim.IN_FLIGHT


def test_a_done_record_past_its_window_is_claimable_though_the_ttl_sweep_never_ran(backend: Backend) -> None:
    first = backend.store(done_s=0.5)
    first.claim(KEY)
    first.done(KEY)
    time.sleep(0.7)

    assert backend.record(KEY) is not None  # still stored: expiry is the code's call
    assert backend.store().claim(KEY) is Claim.NEW


def test_a_lease_passed_with_the_claim_outlives_the_stores_own(backend: Backend) -> None:
    drain = backend.store(lease_s=0.3)
    drain.claim(KEY, lease_s=30)
    time.sleep(0.5)

    assert backend.store().claim(KEY) is Claim.IN_FLIGHT


def test_the_record_carries_the_ttl_attribute_the_deploy_sweeps_on(backend: Backend) -> None:
    store = backend.store(done_s=3600)
    store.claim(KEY)
    store.done(KEY)
    now = time.time()

    record = backend.record(KEY)

    assert record is not None
    if backend.name == "dynamodb":
        expires = float(record["expires_at"]["N"])  # type: ignore[index]
    else:
        stamp = record["fields"]["expires_at"]["timestampValue"]  # type: ignore[index]
        expires = datetime.fromisoformat(stamp).timestamp()
    assert now + 3590 < expires < now + 3610
