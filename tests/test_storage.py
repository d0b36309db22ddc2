"""Every storage backend keeps one contract: the local directory, and S3 on a real server (SeaweedFS)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import boto3
import pytest
from botocore.exceptions import ClientError
from pydantic import ValidationError

from sojourn.bootstrap import settings_environment
from sojourn.settings import Settings, StorageBackend, StorageSettings
from sojourn.storage import ImageStorage, LocalStorage, make_storage
from sojourn.storage_s3 import S3Storage, StorageUnavailable

UNSAFE_KEYS = ["../x", "/abs", "a/../b", "a b", "", "a//b", ".hidden", "a/", "jobs/x/..", "a\\b", "é.png"]
# Nothing listens on port 1: a request there would fail with an OSError, not a ValueError.
NOWHERE = "http://127.0.0.1:1"


def s3_storage(settings: StorageSettings, **update: object) -> S3Storage:
    return S3Storage.from_settings(settings.model_copy(update=update))


@pytest.fixture(params=[StorageBackend.LOCAL, StorageBackend.S3])
def storage(
    request: pytest.FixtureRequest, tmp_path: Path, s3_storage_settings: StorageSettings
) -> Iterator[ImageStorage]:
    """A fresh, empty store of each backend (S3: a prefix of its own in the run's bucket)."""
    if request.param is StorageBackend.LOCAL:
        yield LocalStorage(tmp_path / "images")
        return
    store = s3_storage(s3_storage_settings, s3_prefix=f"contract/{uuid.uuid4().hex}")
    store.ensure_bucket()
    yield store


def test_put_get_round_trip_and_overwrite(storage: ImageStorage) -> None:
    assert not storage.exists("jobs/1/grid.png")
    assert storage.put("jobs/1/grid.png", b"first") == "jobs/1/grid.png"
    assert storage.exists("jobs/1/grid.png")
    assert storage.get("jobs/1/grid.png") == b"first"
    storage.put("jobs/1/grid.png", b"second, longer")
    assert storage.get("jobs/1/grid.png") == b"second, longer"
    big = os.urandom(3 * 1024 * 1024)  # an SDXL grid's size, past SeaweedFS's 4 MB chunks nearly
    storage.put("jobs/1/image-1.png", big)
    assert storage.get("jobs/1/image-1.png") == big


def test_missing_keys(storage: ImageStorage) -> None:
    with pytest.raises(FileNotFoundError):
        storage.get("jobs/none/grid.png")
    assert not storage.exists("jobs/none/grid.png")
    storage.delete("jobs/none/grid.png")  # deleting what is not there is fine
    storage.put("jobs/2/grid.png", b"x")
    storage.delete("jobs/2/grid.png")
    assert not storage.exists("jobs/2/grid.png")
    with pytest.raises(FileNotFoundError):
        storage.get("jobs/2/grid.png")
    assert not storage.exists("jobs/2")  # a folder of a key is not a key


def test_where_a_key_is(storage: ImageStorage) -> None:
    if isinstance(storage, LocalStorage):
        assert storage.local_path("jobs/3/grid.png") == storage.root / "jobs/3/grid.png"
        assert storage.location("jobs/3/grid.png") == str(storage.root / "jobs/3/grid.png")
    else:
        assert isinstance(storage, S3Storage)
        assert storage.local_path("jobs/3/grid.png") is None
        assert (
            storage.location("jobs/3/grid.png") == f"s3://{storage.bucket}/{storage.prefix}/jobs/3/grid.png"
        )


@pytest.fixture(scope="module")
def s3_nowhere(s3_storage_settings: StorageSettings) -> S3Storage:
    """An S3 store whose server is not there: any request would be an OSError."""
    return s3_storage(s3_storage_settings, s3_endpoint_url=NOWHERE)


@pytest.mark.parametrize("key", UNSAFE_KEYS)
def test_unsafe_keys_are_refused_before_any_request(key: str, tmp_path: Path, s3_nowhere: S3Storage) -> None:
    calls: list[tuple[str, tuple[object, ...]]] = [
        ("put", (b"x",)),
        ("get", ()),
        ("exists", ()),
        ("delete", ()),
        ("local_path", ()),
        ("location", ()),
    ]
    for storage in (LocalStorage(tmp_path / "images"), s3_nowhere):
        for method, arguments in calls:
            with pytest.raises(ValueError, match="unsafe storage key"):
                getattr(storage, method)(key, *arguments)
    assert list(tmp_path.rglob("*")) == []


def test_prefixes_keep_deployments_apart(s3_storage_settings: StorageSettings) -> None:
    run = uuid.uuid4().hex
    blue = s3_storage(s3_storage_settings, s3_prefix=f"{run}/blue/")  # slashes around are dropped
    green = s3_storage(s3_storage_settings, s3_prefix=f"{run}/green")
    unprefixed = s3_storage(s3_storage_settings)
    blue.ensure_bucket()
    blue.put("jobs/1/grid.png", b"blue")
    assert not green.exists("jobs/1/grid.png")
    green.put("jobs/1/grid.png", b"green")
    assert (blue.get("jobs/1/grid.png"), green.get("jobs/1/grid.png")) == (b"blue", b"green")
    green.delete("jobs/1/grid.png")
    assert blue.get("jobs/1/grid.png") == b"blue"
    # In the bucket, the key sits under its prefix, where an unprefixed store finds it.
    assert unprefixed.get(f"{run}/blue/jobs/1/grid.png") == b"blue"
    with pytest.raises(ValueError, match="unsafe storage key"):
        s3_storage(s3_storage_settings, s3_prefix="../up")


def test_make_storage_picks_the_backend_and_makes_the_bucket(
    tmp_path: Path, s3_storage_settings: StorageSettings
) -> None:
    local = make_storage(Settings(data_dir=tmp_path, storage_dir=tmp_path / "pictures"))
    assert isinstance(local, LocalStorage) and local.root == (tmp_path / "pictures").resolve()

    bucket = f"sojourn-new-{uuid.uuid4().hex[:12]}"
    settings = Settings(
        data_dir=tmp_path, storage=s3_storage_settings.model_copy(update={"s3_bucket": bucket})
    )
    secret = s3_storage_settings.s3_secret_access_key
    assert secret is not None
    client = boto3.client(
        "s3",
        endpoint_url=s3_storage_settings.s3_endpoint_url,
        region_name="us-east-1",
        aws_access_key_id=s3_storage_settings.s3_access_key_id,
        aws_secret_access_key=secret.get_secret_value(),
    )
    with pytest.raises(ClientError):
        client.head_bucket(Bucket=bucket)
    storage = make_storage(settings)
    assert isinstance(storage, S3Storage)
    client.head_bucket(Bucket=bucket)  # there now
    storage.put("jobs/1/grid.png", b"png")
    assert isinstance(make_storage(settings), S3Storage)  # the bucket there already: fine
    assert client.get_object(Bucket=bucket, Key="jobs/1/grid.png")["Body"].read() == b"png"


def test_an_unusable_bucket_is_a_clear_error_at_start(
    tmp_path: Path, s3_storage_settings: StorageSettings
) -> None:
    unreachable = s3_storage_settings.model_copy(update={"s3_endpoint_url": NOWHERE})
    with pytest.raises(
        StorageUnavailable, match=r"cannot use S3 bucket 'sojourn-test-\w+' at http://127\.0\.0\.1:1"
    ) as failed:
        make_storage(Settings(data_dir=tmp_path, storage=unreachable))
    secret = s3_storage_settings.s3_secret_access_key
    assert secret is not None and secret.get_secret_value() not in str(failed.value)
    # Missing, and not creatable: the server's reason.
    too_short = s3_storage_settings.model_copy(update={"s3_bucket": "ab"})
    with pytest.raises(StorageUnavailable, match=r"cannot use S3 bucket 'ab' at .*InvalidBucketName"):
        make_storage(Settings(data_dir=tmp_path, storage=too_short))


def test_storage_settings_from_the_environment_reach_a_child_process(tmp_path: Path) -> None:
    environment = {
        "SOJOURN_STORAGE_DIR": str(tmp_path / "pictures"),
        "SOJOURN_STORAGE__BACKEND": "s3",
        "SOJOURN_STORAGE__S3_ENDPOINT_URL": "http://127.0.0.1:8333",
        "SOJOURN_STORAGE__S3_BUCKET": "pictures",
        "SOJOURN_STORAGE__S3_REGION": "eu-west-1",
        "SOJOURN_STORAGE__S3_ACCESS_KEY_ID": "key-id",
        "SOJOURN_STORAGE__S3_SECRET_ACCESS_KEY": "the-secret",
        "SOJOURN_STORAGE__S3_PREFIX": "prod",
    }
    with mock.patch.dict(os.environ, environment):
        settings = Settings(_env_file=None, data_dir=tmp_path)  # type: ignore[call-arg]
    assert settings.storage_dir == tmp_path / "pictures"  # SOJOURN_STORAGE_DIR beside SOJOURN_STORAGE__...
    assert settings.storage.backend is StorageBackend.S3 and settings.storage.s3_prefix == "prod"
    assert "the-secret" not in repr(settings) and "the-secret" not in str(settings.storage)
    # The worker is a child process built from the environment: the settings it gets are the same.
    parent = Settings(_env_file=None, data_dir=tmp_path, storage=settings.storage)  # type: ignore[call-arg]
    with mock.patch.dict(os.environ, settings_environment(parent), clear=True):
        child = Settings(_env_file=None)  # type: ignore[call-arg]
    assert child.storage == parent.storage
    assert child.storage.s3_secret_access_key is not None
    assert child.storage.s3_secret_access_key.get_secret_value() == "the-secret"


def test_the_s3_backend_needs_a_bucket_and_a_whole_key_pair() -> None:
    with pytest.raises(ValidationError, match="S3_BUCKET is required"):
        StorageSettings(backend=StorageBackend.S3)
    with pytest.raises(ValidationError, match="set both"):
        StorageSettings(backend=StorageBackend.S3, s3_bucket="b", s3_access_key_id="id")
