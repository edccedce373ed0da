"""Small writers for test inputs (the tests make their own data; nothing is copied from ../shared)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def box(lon: float, lat: float, half: float = 0.05) -> dict[str, Any]:
    return {
        "type": "Polygon",
        "coordinates": [[[lon - half, lat - half], [lon + half, lat - half], [lon + half, lat + half],
                         [lon - half, lat + half], [lon - half, lat - half]]],
    }


def event_doc(eid: str, **props: Any) -> dict[str, Any]:
    """A valid event Feature; keyword arguments override properties (None removes one)."""
    geometry = props.pop("geometry", box(11.04, 60.07))
    base: dict[str, Any] = {
        "title": f"Event {eid}",
        "description": "A test event.",
        "phenomenon": "landslide",
        "state": "ended",
        "datetime": "2020-12-30T03:00:00Z",
        "datetime_precision": "hour",
        "site": [11.04, 60.07],
        "countries": ["NOR"],
        "hazard_codes": ["LS"],
        "triggered_by": [],
        "references": [{"title": "A page", "href": "https://www.nve.no/"}],
    }
    for k, v in props.items():
        if v is None:
            base.pop(k, None)
        else:
            base[k] = v
    return {"type": "Feature", "id": eid, "geometry": geometry, "properties": base}


def write_event(directory: Path, eid: str, doc: dict[str, Any] | None = None, **props: Any) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{eid}.geojson"
    path.write_text(json.dumps(doc or event_doc(eid, **props), indent=2), encoding="utf-8")
    return path


@contextmanager
def published_to_s3(catalog: Path, cors: bool) -> Iterator[str]:
    """`stac-mmtp publish` to moto's S3 server on 127.0.0.1; the bucket gets the public read policy,
    and its CORS rules only when `cors` (the rules are what STAC Browser needs, nothing else)."""
    saved = dict(os.environ)
    os.environ.update(AWS_ACCESS_KEY_ID="testing-key", AWS_SECRET_ACCESS_KEY="testing-secret",
                      AWS_DEFAULT_REGION="us-east-1", AWS_CONFIG_FILE=os.devnull,
                      AWS_SHARED_CREDENTIALS_FILE=os.devnull, AWS_EC2_METADATA_DISABLED="true",
                      MOTO_DISABLE_GLOBAL_CORS="true")
    import moto.moto_server.werkzeug_app as moto_app
    from moto.server import ThreadedMotoServer

    from stac_mmtp.release.publish import S3Store, public_read_policy, publish, setup_bucket

    moto_app.DISABLE_GLOBAL_CORS = True  # bucket CORS rules apply only without moto's blanket headers
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        url = f"http://{host}:{port}"
        bucket = "release-cors" if cors else "release-no-cors"
        store = S3Store(bucket, "v1", url)
        if cors:
            setup_bucket(store)
        else:
            store.client.create_bucket(Bucket=bucket)
            store.client.put_bucket_policy(Bucket=bucket, Policy=json.dumps(public_read_policy(bucket, "v1")))
        report = publish(catalog, store, public_check=False, validate=False)
        assert report.ok, report.problems
        yield f"{url}/{bucket}/v1/catalog.json"
    finally:
        server.stop()
        os.environ.clear()
        os.environ.update(saved)


@contextmanager
def read_only(directory: Path) -> Iterator[Path]:
    """`directory`, created, that nothing may be written into while the block runs (as root, which
    ignores permissions, it is made immutable with chattr instead)."""
    import subprocess

    directory.mkdir(parents=True, exist_ok=True)
    root = os.geteuid() == 0
    if root:
        subprocess.run(["chattr", "+i", str(directory)], check=True)
    else:
        directory.chmod(0o555)
    try:
        yield directory
    finally:
        subprocess.run(["chattr", "-i", str(directory)], check=True) if root else directory.chmod(0o755)
