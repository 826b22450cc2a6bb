"""One process of the live-caps test: reserve one search at a time from a shared account, hold it, commit it.

Usage: python caps_worker.py sqlite|redis TARGET KEY HOLD_MS STOP_FILE
The account is built with a cap of 20 searches; an operator changes it in the store while this runs. Each
granted reservation is committed after HOLD_MS; the process prints how many it committed when STOP_FILE exists.
"""

from __future__ import annotations

import json
import os
import sys
import time

from budgetgraph import RedisBudgetStore, SQLiteBudgetStore


def main() -> None:
    kind, target, key, hold_ms, stop = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
    store = SQLiteBudgetStore(target) if kind == "sqlite" else RedisBudgetStore(target, prefix="live")
    account = store.account(key, {"tool:search": 20}, lease_s=60)
    ok = refused = 0
    print("started", flush=True)
    while not os.path.exists(stop):
        grant = account.try_reserve({"tool:search": 1})
        if not hasattr(grant, "id"):
            refused += 1
            time.sleep(0.005)
            continue
        time.sleep(hold_ms / 1000)
        account.commit(grant, {"tool:search": 1})
        ok += 1
    print(json.dumps({"ok": ok, "refused": refused}), flush=True)
    store.close()


if __name__ == "__main__":
    main()
