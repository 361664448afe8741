"""What goes on the queue: a large impressions webhook becomes several messages under the queue's size limit,
and the drain reads back exactly the impressions the webhook accepted."""

from __future__ import annotations

from fs2split.impressions.event import Impression
from fs2split.queue import message
from fs2split.queue.message import ImpressionsMessage


def test_a_large_impressions_body_is_split_under_the_message_limit_and_read_back_whole() -> None:
    sent = [
        Impression(
            f"customer-{n}", "new_checkout", "on", "default rule", 1667920819383, 1668106790992 + n, None, "Prod"
        )
        for n in range(5000)
    ]

    messages = list(message.impressions(sent))

    assert len(messages) > 1
    assert max(len(m.encode()) for m in messages) <= message.IMPRESSIONS_MESSAGE_BYTES
    read = [message.read(m.encode()) for m in messages]
    assert all(isinstance(r, ImpressionsMessage) for r in read)
    assert [i for r in read if isinstance(r, ImpressionsMessage) for i in r.impressions] == sent


def test_a_message_that_is_not_an_fs2split_envelope_is_unreadable() -> None:
    assert isinstance(message.read(b"not json"), str)
    assert isinstance(message.read(b'{"v": 2, "kind": "fullstory"}'), str)
    assert isinstance(message.read(b'{"v": 1, "kind": "impressions", "items": [{"key": 1}]}'), str)
    assert isinstance(message.read(None), str)
