"""Write ops/schema/releases.py: for each geovisio release on the package registry, the migration its
database's history ends with and how many it holds, so that ``ops db status`` can say which release built a
Panoramax-managed database (``python -m scripts.panoramax_releases 2.1.0 … 2.15.1``; pip fetches each once
into the cache)."""

from __future__ import annotations

import sys
from pathlib import Path

from ops.plan import source
from scripts import panoramax

TARGET = Path(__file__).resolve().parent.parent / "ops" / "schema" / "releases.py"


def main(versions: list[str]) -> None:
    ends: dict[tuple[str, int], list[str]] = {}
    for version in versions:
        migrations = source.read_folder(source.from_version(version, panoramax.CACHE))
        key = (max(m.id for m in migrations), len(migrations))
        ends.setdefault(key, []).append(version)
        print(f"{version}: {len(migrations)} migrations, last {key[0]}", file=sys.stderr)
    rows = "\n".join(f"    ({last!r}, {count}): {tuple(v)!r}," for (last, count), v in sorted(ends.items()))
    TARGET.write_text(f'''"""Which Panoramax release built a database: the last migration id of its history and how many it holds,
for each geovisio release on the package registry (written by ``python -m scripts.panoramax_releases``)."""

RELEASES: dict[tuple[str, int], tuple[str, ...]] = {{
{rows}
}}


def built_by(last_id: str, count: int) -> str | None:
    """The release (or releases, "2.15.0 or 2.15.1") whose migrations end with ``last_id``, ``count`` of them."""
    found = RELEASES.get((last_id, count))
    return " or ".join(found) if found else None
''')


if __name__ == "__main__":
    main(sys.argv[1:])
