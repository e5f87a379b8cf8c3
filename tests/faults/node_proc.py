"""A process of node agents on mock pins, driven over stdin, so a test can SIGKILL it.

    python -m tests.faults.node_proc BROKER_URL DATA_ROOT COUNT HAMLETS

Prints {"ready": true} once every node is connected, then answers one JSON line
per command line: `press NODE BUTTON` (held until the button callback fires),
`gongs` (presses whose gong struck), `pending` (alarms in the outboxes),
`stop` (graceful). Killing the process with SIGKILL is the point: the outboxes on
disk are what a kill -9 of a real agent leaves behind.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path

from tests.faults.rig import Nodes


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.ERROR)
    broker_url, data_root, count, hamlets = argv[0], Path(argv[1]), int(argv[2]), int(argv[3])
    nodes = Nodes(broker_url, data_root, count, hamlets, headless=False).start()
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        if words[0] == "press":
            before = len(nodes.presses)
            nodes[words[1]].press(int(words[2]))   # blocking: the hold is over
            deadline = time.monotonic() + 5
            while len(nodes.presses) == before and time.monotonic() < deadline:
                time.sleep(0.01)
            print(json.dumps({"pressed": len(nodes.presses)}), flush=True)
        elif words[0] == "gongs":
            print(json.dumps({"fired": nodes.gongs_fired(), "presses": len(nodes.presses)}),
                  flush=True)
        elif words[0] == "pending":
            print(json.dumps({"pending": nodes.pending()}), flush=True)
        elif words[0] == "stop":
            break
    nodes.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
