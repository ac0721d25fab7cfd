"""Every documented read of the MongoDB store uses an index: the page and the `totalCount` of each
`CatalogItemFilter` path, the default order and `item(id:)`, on 10,000 items. The commands the store
really sends are captured (PyMongo command monitoring) and explained on the server."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from pymongo import monitoring

from catalog_store.models import ItemFilter
from catalog_store.mongo.store import MongoCatalogStore
from tests.catalog_store.helpers import CATALOG, SHOP, make_item, plan_nodes, plan_stages

ITEMS = 10_000
VENDORS = ("Acme", "Globex", "Initech", "Umbrella", "Hooli")
TYPES = ("Shirt", "Mug", "Poster", "Cap")
STATUSES = ("active", "draft", "archived")


class _Recorder(monitoring.CommandListener):
    """Keeps the read commands sent on `items` while recording."""

    def __init__(self) -> None:
        self.recording = False
        self.commands: list[dict[str, Any]] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        command = event.command
        if self.recording and event.command_name in ("find", "aggregate", "count") and \
                command.get(event.command_name) == "items":
            self.commands.append({k: v for k, v in command.items() if k not in ("lsid", "$db", "$clusterTime")})

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None: ...

    def failed(self, event: monitoring.CommandFailedEvent) -> None: ...

    @contextlib.contextmanager
    def capture(self) -> Iterator[list[dict[str, Any]]]:
        self.recording, self.commands = True, []
        try:
            yield self.commands
        finally:
            self.recording = False


_RECORDER = _Recorder()
monitoring.register(_RECORDER)  # applies to clients created after this import; records only in capture()


@pytest.fixture(scope="module")
async def catalog(mongodb_uri: str) -> Any:
    name = f"test_indexes_{uuid.uuid4().hex[:12]}"
    store = MongoCatalogStore(mongodb_uri, name)
    await store.start()
    await store.ensure_catalog(CATALOG, SHOP, "Demo Store")
    batch = []
    for n in range(ITEMS):
        batch.append(make_item(
            str(44_000_000_000_000 + n), product=str(8_000_000 + n // 4), sku=f"SKU-{n:05d}",
            title=f"{TYPES[n % 4]} {n}", vendor=VENDORS[n % 5], product_type=TYPES[n % 4],
            status=STATUSES[n % 3], price=f"{n % 200}.99", quantity=(n % 7) - 1,
        ))
        if len(batch) == 1000:
            await store.write_items(CATALOG, batch)
            batch = []
    yield store
    await store.database.client.drop_database(name)
    await store.close()


FILTERS: dict[str, ItemFilter | None] = {
    "default order": None,
    "status": ItemFilter(status="draft"),
    "vendor": ItemFilter(vendor="Globex"),
    "productType": ItemFilter(product_type="Mug"),
    "inStock: true": ItemFilter(in_stock=True),
    "inStock: false": ItemFilter(in_stock=False),
    "priceMin": ItemFilter(price_min=Decimal("150")),
    "priceMax": ItemFilter(price_max=Decimal("50")),
    "price range": ItemFilter(price_min=Decimal("10"), price_max=Decimal("20")),
    "search": ItemFilter(search="mug 1"),
    "search, one short word": ItemFilter(search="12"),
    "vendor + search": ItemFilter(vendor="Hooli", search="poster"),
    "vendor + priceMax + inStock": ItemFilter(vendor="Acme", price_max=Decimal("50"), in_stock=True),
    "status + productType + search": ItemFilter(status="active", product_type="Cap", search="3"),
}


@pytest.mark.parametrize("after", [None, "44000000005000"], ids=["first page", "later page"])
@pytest.mark.parametrize("name", list(FILTERS))
async def test_each_filter_path_reads_through_an_index(catalog: MongoCatalogStore, name: str,
                                                       after: str | None) -> None:
    with _RECORDER.capture() as commands:
        page = await catalog.list_items(CATALOG, first=50, after=after, filter=FILTERS[name])
    assert page.total_count > 0 and commands, "the filter matches items and the store sent its reads"
    for command in commands:
        explained = await catalog.database.command("explain", command, verbosity="queryPlanner")
        stages = set(plan_stages(explained))
        assert "IXSCAN" in stages and "COLLSCAN" not in stages, (name, command, stages)


async def test_item_by_id_reads_through_an_index(catalog: MongoCatalogStore) -> None:
    with _RECORDER.capture() as commands:
        item = await catalog.get_item(CATALOG, "44000000000042")
    assert item is not None and item.sku == "SKU-00042"
    (command,) = commands
    stages = set(plan_stages(await catalog.database.command("explain", command, verbosity="queryPlanner")))
    assert "IXSCAN" in stages and "COLLSCAN" not in stages, stages


@pytest.mark.parametrize("after", [None, "44000000001500"], ids=["first page", "later page"])
async def test_search_reads_through_the_trigram_index(catalog: MongoCatalogStore, after: str | None) -> None:
    """A text with a word of three characters or more reads the items holding its trigrams, not the
    catalog: the page, its next page and the count."""
    with _RECORDER.capture() as commands:
        page = await catalog.list_items(CATALOG, first=50, after=after, filter=ItemFilter(search="MUG 1"))
    assert page.items and all("mug 1" in i.product_title.lower() for i in page.items)
    assert len(commands) == 2
    for command in commands:
        explained = await catalog.database.command("explain", command, verbosity="queryPlanner")
        assert {n["indexName"] for n in plan_nodes(explained) if n["stage"] == "IXSCAN"} == {"catalog_search"}, command
