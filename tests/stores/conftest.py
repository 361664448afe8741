"""Both shared backends, each against its real emulator (started once per test session)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import requests

from fs2split.stores.dedup import DedupStore
from fs2split.stores.dynamodb import DynamoDbDedupStore
from fs2split.stores.firestore import FirestoreDedupStore
from fs2split.stores.records import Windows
from tests.support import emulators

StoreMaker = Callable[..., DedupStore]


class Backend:
    """One fresh table or collection on a running emulator; ``store()`` is one more instance on it."""

    def __init__(self, name: str, emulator: emulators.Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
        self.name = name
        self.emulator = emulator
        self.table = emulators.unique("dedup")
        self._sessions: list[requests.Session] = []
        if name == "dynamodb":
            for variable, value in emulators.AWS_TEST_ENV.items():
                monkeypatch.setenv(variable, value)
            emulators.create_table(emulator, self.table)
            self.env = emulators.dynamodb_env(emulator, self.table)
        else:
            self.env = emulators.firestore_env(emulator, self.table)

    def store(self, *, lease_s: float = 30.0, done_s: float = 3600.0) -> DedupStore:
        windows = Windows(lease_s=lease_s, done_s=done_s)
        # Generous timeouts: these tests judge the claim rules, on a machine that may be busy.
        if self.name == "dynamodb":
            return DynamoDbDedupStore(
                table=self.table, windows=windows, env=self.env, connect_timeout_s=10, read_timeout_s=10
            )
        session = requests.Session()
        self._sessions.append(session)
        return FirestoreDedupStore(
            collection=self.table,
            database="(default)",
            windows=windows,
            env=self.env,
            session=session,
            timeouts=(10, 10),
            call_budget_s=20,
        )

    def record(self, key: str) -> dict[str, object] | None:
        if self.name == "dynamodb":
            return emulators.dynamodb_item(self.emulator, self.table, key)
        return emulators.firestore_document(self.emulator, self.table, key)

    def close(self) -> None:
        for session in self._sessions:
            session.close()


@pytest.fixture(params=["dynamodb", "firestore"])
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Backend]:
    emulator = request.getfixturevalue("moto_server" if request.param == "dynamodb" else "firestore_emulator")
    chosen = Backend(request.param, emulator, monkeypatch)
    yield chosen
    chosen.close()
