"""Object storage shared by the services: results, Studio exports, files the gateway serves.

One async contract (`ObjectStore`) with two backends: `S3Store` (boto3: AWS, MinIO, R2 …) and
`LocalDirStore` (a directory; the embedded default). `from_env()` picks one. See docs/storage.md.
"""

from aigen.objectstore.base import (
    ObjectInfo,
    ObjectNotFound,
    ObjectReader,
    ObjectStore,
    ObjectStoreError,
    ObjectUrl,
    StoredObject,
)
from aigen.objectstore.keys import InvalidKey, validate_key, validate_prefix
from aigen.objectstore.local import LocalDirStore
from aigen.objectstore.s3 import S3Store
from aigen.objectstore.settings import StoreConfigError, from_env, url_signer_from_env
from aigen.objectstore.signing import UrlSigner

__all__ = [
    "InvalidKey",
    "LocalDirStore",
    "ObjectInfo",
    "ObjectNotFound",
    "ObjectReader",
    "ObjectStore",
    "ObjectStoreError",
    "ObjectUrl",
    "S3Store",
    "StoreConfigError",
    "StoredObject",
    "UrlSigner",
    "from_env",
    "url_signer_from_env",
    "validate_key",
    "validate_prefix",
]
