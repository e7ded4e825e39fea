"""The object stores the gateway reads images from: one per region, open for the
process's life, and the way from an item's recorded URI to the store and key that hold it.

An item's URI (its status's `uri`) names the object; the gateway never trusts it blindly:
it must lie in one of the configured stores, below the batch's own prefix
(`<tenant>/<batch uid>/`), or the image is reported missing.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterator

from imagegen.api import objectstore
from imagegen.gateway import settings
from imagegen.storage import base, stores

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Located:
    """Where one image is."""

    store: base.Store
    key: str
    presign_seconds: int | None
    """How long a presigned link may live; None when the store has none (a folder)."""


@dataclasses.dataclass(kw_only=True)
class ImageStores:
    """Every region's store, and a folder store for regions without one."""

    by_region: dict[str, base.Store]
    configs: dict[str, objectstore.ObjectStore]
    fallback: base.Store | None = None

    def locate(self, *, uri: str, region: str | None, prefix: str) -> Located | None:
        """The store and key of `uri` if it lies below `prefix` in a store the gateway
        knows (the batch's region first: a failed-over batch has images in two)."""
        order = [region] if region in self.by_region else []
        order += [name for name in self.by_region if name != region]
        candidates: list[tuple[base.Store, int | None]] = [
            (self.by_region[name], self.configs[name].presign_seconds) for name in order
        ]
        if self.fallback is not None:
            candidates.append((self.fallback, None))
        for store, seconds in candidates:
            key = store.key_of(uri=uri)
            if key is not None and key.startswith(prefix) and "/" not in key[len(prefix) :]:
                return Located(store=store, key=key, presign_seconds=seconds)
        return None


@contextlib.asynccontextmanager
async def opened(config: settings.GatewaySettings) -> AsyncIterator[ImageStores]:
    """Open every configured store (an S3 client each; nothing is contacted yet)."""
    async with contextlib.AsyncExitStack() as stack:
        by_region: dict[str, base.Store] = {}
        for region, store_config in config.stores.items():
            by_region[region] = await stack.enter_async_context(
                stores.open_store(
                    config=store_config, credentials=_credentials(config=config, region=region)
                )
            )
        fallback = None
        if config.images_dir is not None:
            fallback = await stack.enter_async_context(
                stores.open_store(
                    config=objectstore.ObjectStore(url=config.images_dir.resolve().as_uri())
                )
            )
        yield ImageStores(by_region=by_region, configs=dict(config.stores), fallback=fallback)


def _credentials(*, config: settings.GatewaySettings, region: str) -> stores.Credentials | None:
    if config.store_credentials_dir is None:
        return None
    folder = config.store_credentials_dir / region
    if not folder.is_dir():
        return None
    return stores.Credentials.from_files(folder)
