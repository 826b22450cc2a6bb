"""One process of the budget store's property test: random reservations against one shared key.

Usage: python store_worker.py sqlite|redis TARGET KEY SEED OPS
It prints one line per finished operation ("ok", "refused", "forgot"; "late" for a commit after its lease, which
only a process starved of CPU for a whole lease makes) and exits 0.
"""

from __future__ import annotations

import random
import sys
import time
from decimal import Decimal

from budgetgraph import RedisBudgetStore, SQLiteBudgetStore

LIMITS = "usd=0.4,tokens=120000,search=250"
LEASE_S = 3.0  # long enough that a loaded machine does not starve a worker past its lease


def main() -> None:
    kind, target, key, seed, ops = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
    store = SQLiteBudgetStore(target) if kind == "sqlite" else RedisBudgetStore(target, prefix="prop")
    account = store.account(key, LIMITS, window="day", lease_s=LEASE_S)
    rng = random.Random(seed)
    for _ in range(ops):
        amounts = {
            "usd": Decimal(rng.randint(1, 400)) / Decimal(100000),
            "total_tokens": rng.randint(1, 600),
            "tool:search": rng.randint(0, 2),
            "llm_calls": 1,
        }
        grant = account.try_reserve(amounts)
        if not hasattr(grant, "id"):
            print("refused", flush=True)
            time.sleep(rng.random() / 200)
            continue
        time.sleep(rng.random() / 200)
        pick = rng.random()
        if pick < 0.7:  # a call that used at most what it reserved
            actual = {
                k: (v * Decimal(rng.randint(0, 100)) / 100 if k == "usd" else rng.randint(0, v))
                for k, v in amounts.items()
            }
            print("ok" if account.commit(grant, actual) else "late", flush=True)
        elif pick < 0.9:  # a call that did not run
            account.release(grant)
            print("ok", flush=True)
        else:  # a reservation never committed, as by a crash: its lease must expire
            print("forgot", flush=True)
    store.close()


if __name__ == "__main__":
    main()
