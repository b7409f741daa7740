"""One push in a process of its own, for the kill test (tests/test_push_reliability.py): python _push_child.py
HUB_URL KIND RUN_ID BATCH_SIZE. The target's connection comes from the environment; prints the push's result."""
from __future__ import annotations

import json
import sys

from _push_world import quick_sinks, target

if __name__ == "__main__":
    hub_url, kind, run_id, batch_size = sys.argv[1:5]
    import erp2crm.push
    from hub import HubStore

    erp2crm.push.open_sink = quick_sinks()
    print(json.dumps(erp2crm.push.push(HubStore(hub_url), run_id, target(kind, int(batch_size))), default=str))
