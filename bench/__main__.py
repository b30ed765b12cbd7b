"""`python -m bench` (make bench): run the benchmarks, save JSON under bench/results/, print a table."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

from bench.common import machine, save, table
from bench.startup import bench_startup
from ops import migrations
from ops.localdb import LocalCluster


def main() -> int:
    base = Path(tempfile.mkdtemp(prefix="ops-bench-", dir="/var/tmp"))
    base.chmod(0o755)
    cluster = LocalCluster(base / "pg", fast=True)
    try:
        url = cluster.start()
        migrations.upgrade(url)
        results = bench_startup(url)
        path = save(results)
        print(f"machine: {machine()}")
        print(table(results))
        print(f"saved {path}", file=sys.stderr)
        return 0 if all(r.passed for r in results) else 1
    finally:
        cluster.destroy()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    os.environ.pop("DB_URL", None)
    sys.exit(main())
