"""``python -m bench.upstream_process``: a FakeUpstream in a process of its own.

The listener benchmark times code in the bench's own process; a stand-in answering there would take
the GIL from it, which FullStory's and FME's servers never do. Prints one JSON line (the URL), serves
until stdin closes, then prints one more (what it stored) and exits.
"""

from __future__ import annotations

import json
import sys

from bench.common import FakeUpstream

FLAGS = ("checkout_redesign", "new_pricing")


def main() -> None:
    with FakeUpstream() as up:
        for flag in FLAGS:
            up.add_flag(flag, ["on", "off"], percentages={"on": 50, "off": 50})
        print(json.dumps({"url": up.url, "sdk_urls": up.sdk_urls()}), flush=True)
        sys.stdin.read()
        print(json.dumps({"fullstory_events": len(up.fullstory_events())}), flush=True)


if __name__ == "__main__":
    main()
