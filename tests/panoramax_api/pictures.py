"""Pictures as a camera writes them, for Panoramax's own API: JPEG files with the EXIF (GPS, capture time,
heading) and XMP (equirectangular) that Panoramax reads. Run by the Python of Panoramax's own virtualenv
(tests/panoramax_api/__init__.py), which has Pillow and pyexiv2: ``python pictures.py '<json list>'``."""

import json
import sys

import pyexiv2  # type: ignore[import-not-found]
from PIL import Image  # type: ignore[import-not-found]


def deg(v: float) -> str:
    v = abs(v)
    d = int(v)
    m = int((v - d) * 60)
    s = round(((v - d) * 60 - m) * 60 * 10000)
    return f"{d}/1 {m}/1 {s}/10000"


# [{"path", "lat", "lon", "ts": "2024:01:01 10:00:00", "pano": bool, "heading": int | None}]
for p in json.loads(sys.argv[1]):
    size = (512, 256) if p.get("pano") else (400, 300)
    Image.new("RGB", size, (p.get("shade", 120), 90, 60)).save(p["path"], "JPEG", quality=80)
    with pyexiv2.Image(p["path"]) as img:
        exif = {
            "Exif.Image.Make": "OpsTest",
            "Exif.Image.Model": "Cam1",
            "Exif.Photo.DateTimeOriginal": p["ts"],
            "Exif.GPSInfo.GPSLatitudeRef": "N" if p["lat"] >= 0 else "S",
            "Exif.GPSInfo.GPSLatitude": deg(p["lat"]),
            "Exif.GPSInfo.GPSLongitudeRef": "E" if p["lon"] >= 0 else "W",
            "Exif.GPSInfo.GPSLongitude": deg(p["lon"]),
        }
        if p.get("heading") is not None:
            exif["Exif.GPSInfo.GPSImgDirection"] = f"{p['heading']}/1"
            exif["Exif.GPSInfo.GPSImgDirectionRef"] = "T"
        img.modify_exif(exif)
        if p.get("pano"):
            img.modify_xmp(
                {
                    "Xmp.GPano.ProjectionType": "equirectangular",
                    "Xmp.GPano.UsePanoramaViewer": "True",
                    "Xmp.GPano.FullPanoWidthPixels": "512",
                    "Xmp.GPano.FullPanoHeightPixels": "256",
                    "Xmp.GPano.CroppedAreaImageWidthPixels": "512",
                    "Xmp.GPano.CroppedAreaImageHeightPixels": "256",
                    "Xmp.GPano.CroppedAreaLeftPixels": "0",
                    "Xmp.GPano.CroppedAreaTopPixels": "0",
                }
            )
