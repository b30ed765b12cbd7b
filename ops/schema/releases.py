"""Which Panoramax release built a database: the last migration id of its history and how many it holds,
for each geovisio release on the package registry (written by ``python -m scripts.panoramax_releases``)."""

RELEASES: dict[tuple[str, int], tuple[str, ...]] = {
    ("20230711_01_JGSPB-inserted-at-index", 19): ("2.1.0",),
    ("20230803_01_aXusm-fix-sequence-computed", 21): ("2.1.1", "2.2.0"),
    ("20231121_02_1uZXT-deleted-tag", 26): ("2.3.0",),
    ("20240115_01_FatLR-token-delete-cascade", 27): ("2.4.0",),
    ("20240229_01_SgfQY-sequence-geom-multi-linestring", 30): ("2.5.0",),
    ("20240514_01_IT7DD-picture-delete-cascade", 38): ("2.6.0",),
    ("20240912_01_dAALm-account-index", 58): ("2.7.0",),
    ("20241104_01_yhRVu-rejection-details", 63): ("2.7.1",),
    ("20250123_01_Ececu-tos-acceptance", 70): ("2.8.0", "2.8.1"),
    ("20250509_01_s3hYk-semantic-delete-cascade", 76): ("2.9.0",),
    ("20250825_01_nCgkN-file-deletion-after-delete-no-dup", 88): ("2.10.0",),
    ("20251202_01_Q3g59-pictures-grid-logged-only", 94): ("2.11.0", "2.12.0"),
    ("20260219_01_1ub94-picture-grid-table-populate", 96): ("2.13.0",),
    ("20260427_01_5Zx2c-remove-semantic-updated-at-triggers", 98): ("2.14.0",),
    ("20260518_01_kmXbv-file-rejection-status-id-conflict", 99): ("2.15.0",),
    ("20260708_01_TZp6q-excluded-area-rejection-status", 102): ("2.15.1",),
}


def built_by(last_id: str, count: int) -> str | None:
    """The release (or releases, "2.15.0 or 2.15.1") whose migrations end with ``last_id``, ``count`` of them."""
    found = RELEASES.get((last_id, count))
    return " or ".join(found) if found else None
