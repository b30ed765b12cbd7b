"""ops.storage.layout: Panoramax's keys, and which picture a key is of."""

from __future__ import annotations

from uuid import UUID

import pytest

from ops.storage.layout import derivates_folder, picture_id_from_key, picture_key, picture_of

PIC = UUID("4366dddb-8a71-4f6e-a3d4-cb6b545476bb")


def test_keys_follow_panoramax_layout_and_lead_back_to_the_picture():
    assert picture_key(PIC) == "43/66/dd/db/8a71-4f6e-a3d4-cb6b545476bb.jpg"
    assert derivates_folder(PIC) == "43/66/dd/db/8a71-4f6e-a3d4-cb6b545476bb"
    assert picture_id_from_key(picture_key(PIC)) == PIC
    assert picture_of("permanent", picture_key(PIC)) == PIC
    assert picture_of("tmp", picture_key(PIC)) == PIC
    assert picture_of("derivates", f"{derivates_folder(PIC)}/tiles/0_0.jpg") == PIC
    assert picture_of("derivates", f"{derivates_folder(PIC)}/sd.jpg") == PIC


@pytest.mark.parametrize(
    "kind, key",
    [
        ("permanent", "README.txt"),
        ("permanent", "43/66/dd/db/not-a-uuid.jpg"),
        ("permanent", "43/66/dd/db/8a71-4f6e-a3d4-cb6b545476bb.png"),
        ("permanent", "43/66/dd/8a71-4f6e-a3d4-cb6b545476bb.jpg"),
        ("permanent", "43/66/dd/db/8a71-4f6e-a3d4-cb6b545476bb/sd.jpg"),
        ("derivates", "43/66/dd/db/8a71-4f6e-a3d4-cb6b545476bb.jpg"),
        ("derivates", "../../etc/passwd/x/y"),
        ("tmp", "4366/dd/db/8a71/x.jpg"),
    ],
)
def test_files_outside_the_layout_belong_to_no_picture(kind, key):
    assert picture_of(kind, key) is None


def test_a_key_is_only_made_from_a_uuid():
    with pytest.raises(ValueError):
        picture_key("../../etc/passwd")  # type: ignore[arg-type]
