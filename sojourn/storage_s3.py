"""Images in an S3 bucket, through boto3: AWS, or any server that speaks the S3 API (SeaweedFS, MinIO...).

Synchronous like `ImageStorage`: its callers already run it in threads, and one boto3 client is
safe to share between them. Failures are OSErrors, as a disk's would be, so every caller's handling
of a full or missing disk (retry, refund, "its file is gone") holds unchanged.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from sojourn.settings import StorageSettings
from sojourn.storage import checked_key

MISSING = {"404", "NoSuchKey", "NotFound"}
ALREADY_THERE = {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}


class StorageUnavailable(OSError):
    """The bucket cannot be used: unreachable, refused, or not creatable. Says which and why."""


class S3Storage:
    """Objects in one bucket, under an optional key prefix."""

    def __init__(
        self,
        bucket: str,
        *,
        prefix: str = "",
        endpoint_url: str | None = None,
        region: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
    ) -> None:
        self.bucket = bucket
        self.prefix = checked_key(prefix.strip("/")) if prefix.strip("/") else ""
        self.endpoint_url = endpoint_url
        self.region = region
        config = Config(
            retries={"mode": "standard", "max_attempts": 3},
            connect_timeout=5,
            read_timeout=30,
            max_pool_connections=16,  # the worker's encoder threads and the web's thread pool share it
            # Another server than AWS: bucket names in the path (no DNS per bucket), and checksums
            # only where the API requires them (older servers refuse boto3's default CRC headers).
            **(
                {
                    "s3": {"addressing_style": "path"},
                    "request_checksum_calculation": "when_required",
                    "response_checksum_validation": "when_required",
                }
                if endpoint_url
                else {}
            ),
        )
        self._client: Any = boto3.session.Session().client(
            "s3",
            endpoint_url=endpoint_url,
            region_name=region,
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key,
            config=config,
        )

    @classmethod
    def from_settings(cls, settings: StorageSettings) -> S3Storage:
        if not settings.s3_bucket:
            raise ValueError("the s3 storage backend needs SOJOURN_STORAGE__S3_BUCKET")
        secret = settings.s3_secret_access_key
        return cls(
            settings.s3_bucket,
            prefix=settings.s3_prefix,
            endpoint_url=settings.s3_endpoint_url,
            region=settings.s3_region,
            access_key_id=settings.s3_access_key_id,
            secret_access_key=secret.get_secret_value() if secret else None,
        )

    def ensure_bucket(self) -> None:
        """Create the bucket if it is missing; StorageUnavailable, saying why, if it cannot be used."""
        try:
            self._client.head_bucket(Bucket=self.bucket)
            return
        except ClientError as error:
            if _code(error) not in MISSING:
                raise self._unavailable(error) from error
        except BotoCoreError as error:
            raise self._unavailable(error) from error
        options: dict[str, Any] = {"Bucket": self.bucket}
        if self.region and self.region != "us-east-1":  # AWS's one region that takes no constraint
            options["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
        try:
            self._client.create_bucket(**options)
        except ClientError as error:
            if _code(error) not in ALREADY_THERE:  # made meanwhile by another process starting up
                raise self._unavailable(error) from error
        except BotoCoreError as error:
            raise self._unavailable(error) from error

    def _unavailable(self, error: Exception) -> StorageUnavailable:
        where = self.endpoint_url or "AWS"
        return StorageUnavailable(f"cannot use S3 bucket {self.bucket!r} at {where}: {error}")

    def _object_key(self, key: str) -> str:
        key = checked_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def put(self, key: str, data: bytes) -> str:
        object_key = self._object_key(key)
        try:
            self._client.put_object(Bucket=self.bucket, Key=object_key, Body=data)
        except (ClientError, BotoCoreError) as error:
            raise OSError(f"cannot store {self.location(key)}: {error}") from error
        return key

    def get(self, key: str) -> bytes:
        object_key = self._object_key(key)
        try:
            response = self._client.get_object(Bucket=self.bucket, Key=object_key)
            data: bytes = response["Body"].read()
        except ClientError as error:
            if _code(error) in MISSING:
                raise FileNotFoundError(f"{self.location(key)} is not in storage") from error
            raise OSError(f"cannot read {self.location(key)}: {error}") from error
        except BotoCoreError as error:
            raise OSError(f"cannot read {self.location(key)}: {error}") from error
        return data

    def exists(self, key: str) -> bool:
        object_key = self._object_key(key)
        try:
            self._client.head_object(Bucket=self.bucket, Key=object_key)
        except ClientError as error:
            if _code(error) in MISSING:
                return False
            raise OSError(f"cannot look up {self.location(key)}: {error}") from error
        except BotoCoreError as error:
            raise OSError(f"cannot look up {self.location(key)}: {error}") from error
        return True

    def delete(self, key: str) -> None:
        object_key = self._object_key(key)
        try:
            self._client.delete_object(Bucket=self.bucket, Key=object_key)  # a missing key is fine
        except (ClientError, BotoCoreError) as error:
            raise OSError(f"cannot delete {self.location(key)}: {error}") from error

    def local_path(self, key: str) -> Path | None:
        self._object_key(key)  # refuses an unsafe key, as every backend does
        return None

    def location(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._object_key(key)}"


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))
