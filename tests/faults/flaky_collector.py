"""The real collector (server, service, chDB store) whose store fails while a flag file exists:
a ClickHouse outage on demand, for fault tests.

    python -m tests.faults.flaky_collector --listen 127.0.0.1:PORT --store chdb://PATH --down-file FILE
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from pathlib import Path

from siliconbench.collector.errors import StoreUnavailable
from siliconbench.collector.server import serve
from siliconbench.collector.store import Store


class FlakyStore(Store):
    down_file: Path

    def insert_arrow(self, table, columns, dedup_token):
        if self.down_file.exists():
            raise StoreUnavailable(f"ClickHouse at {self.location.shown} is down (fault injected)")
        super().insert_arrow(table, columns, dedup_token)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--listen", required=True)
    parser.add_argument("--store", required=True)
    parser.add_argument("--down-file", required=True)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    store = FlakyStore.open(args.store)
    store.down_file = Path(args.down_file)
    asyncio.run(serve(store, args.listen))
