"""Adversarial fuzzing of the two doors of a running gateway, over real HTTP: signed webhooks of every
topic with impossible shapes (and lying unsigned headers), and random or hostile `/graphql` requests.
After every request the catalog is unchanged (a full dump: items, counters, the sync's state) and
the process healthy (`/healthz`).

A seeded generator, so a failure replays: the assertion names the seed and the case; set
FUZZ_SEED to try other seeds and FUZZ_CASES for more cases (the defaults keep it to a few seconds).
Every webhook case is built to be refused or harmless: one that the gateway applies is a finding.
"""

from __future__ import annotations

import json
import os
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from shopify_emulator.payloads import bulk_finish_payload, inventory_level_payload, product_payload
from tests.catalog_store.helpers import all_items
from tests.gateway.harness import ADMIN_TOKEN, READ_TOKEN
from tests.gateway.test_webhooks_e2e import CATALOG, SECRET, SHOP, Hooks, hooked, sign

SEED = int(os.environ.get("FUZZ_SEED", "20261202"))
CASES = int(os.environ.get("FUZZ_CASES", "200"))  # per door: ~10 s in all

Json = Any
Mutation = Callable[[dict[str, Any], random.Random], str]  # changes the payload, says how

BAD_IDS: list[Json] = [0, -1, -5, -(2**63), 2**63, 2**64, 10**30, 1.5, 1e30, 3.0, "123", "abc", "", " 1", None,
                       True, False, [], {}, [1], {"id": 1}, "gid://shopify/Product/1", "1" * 400]
BAD_OPTIONAL_IDS = [v for v in BAD_IDS if v is not None]  # for ids a payload may leave null
BAD_MONEY: list[Json] = ["9" * 400, "-1.00", "1e3", "1,00", " 1.00", "1.00 ", "NaN", "Infinity", "0x10", "١٢",
                         "1.0000000001", "1234567890123456789", "", ".5", "5.", 1.5, 12, True, [], {}, "1.2.3"]
BAD_QUANTITIES: list[Json] = [10**10, -(10**10), 1.5, "5", True, [], {}, 2**64]
BAD_TIMES: list[Json] = ["2026-01-01T00:00:00", "9999-12-31T23:59:59Z", "not a date", 12345, True, [], "",
                         "2026-13-01T00:00:00Z", "2026-01-01"]
BAD_TEXT: list[Json] = [5, 1.5, True, [], {}, ["a"], {"a": 1}]
JUNK: list[Json] = [None, 0, -1, 2**63 - 1, "x" * 5000, "\u0000", "\ud83d\ude00" * 50, "<script>", [[[[[]]]]], {"$where": 1},
                    {"__proto__": {"admin": True}}, "'; DROP TABLE items; --", 1e308, -0.0]


def _pick(rng: random.Random, values: list[Json]) -> Json:
    return values[rng.randrange(len(values))]


def _set(key: str, values: list[Json]) -> Mutation:
    def mutate(payload: dict[str, Any], rng: random.Random) -> str:
        payload[key] = _pick(rng, values)
        return f"{key}={payload[key]!r:.60}"
    return mutate


def _drop(key: str) -> Mutation:
    def mutate(payload: dict[str, Any], rng: random.Random) -> str:
        payload.pop(key, None)
        return f"no {key}"
    return mutate


def _variant(key: str, values: list[Json]) -> Mutation:
    """Set `key` of one variant, or of every variant, to a bad value."""
    def mutate(payload: dict[str, Any], rng: random.Random) -> str:
        variants = payload.get("variants")
        if not isinstance(variants, list) or not variants or not all(isinstance(v, dict) for v in variants):
            variants = payload["variants"] = [{"id": 44000000000000, "price": "1.00"}]
        chosen = variants if rng.random() < 0.5 else [variants[rng.randrange(len(variants))]]
        value = _pick(rng, values)
        for variant in chosen:
            variant[key] = value
        return f"{len(chosen)} variants' {key}={value!r:.60}"
    return mutate


def _future(payload: dict[str, Any], rng: random.Random) -> str:
    payload["updated_at"] = (datetime.now(UTC) + timedelta(hours=rng.choice([1, 24, 24 * 365 * 100]))).isoformat()
    return f"updated_at={payload['updated_at']}"


# Changes each of which a Shopify payload of the topic never has: a payload with one is refused.
PRODUCT_VIOLATIONS: list[Mutation] = [
    _set("id", BAD_IDS), _drop("id"), _set("variants", [None, [], {}, "x", [None], [1], [{}], [[]]]), _drop("variants"),
    _variant("price", BAD_MONEY), _variant("compare_at_price", [m for m in BAD_MONEY]), _variant("id", BAD_IDS),
    _variant("inventory_quantity", BAD_QUANTITIES), _variant("inventory_item_id", BAD_OPTIONAL_IDS),
    _variant("option1", BAD_TEXT), _variant("sku", BAD_TEXT), _variant("image_id", BAD_OPTIONAL_IDS),
    _set("updated_at", BAD_TIMES), _drop("updated_at"), _future, _set("title", [None, *BAD_TEXT]), _drop("title"),
    _set("status", [None, *BAD_TEXT]), _set("options", ["x", 5, [{"name": 5}], [1], [{}]]),
    _set("images", ["x", [{"id": "a"}], [{"id": -1}], [5]]), _set("media", [5, "x", [{"variant_ids": ["a"]}],
                                                                             [{"preview_image": "x"}], [7]]),
    _set("image", ["x", 5, {"id": -3}]), _set("handle", BAD_TEXT), _set("variant_gids", ["x", 5, {}]),
]
DELETE_VIOLATIONS: list[Mutation] = [_set("id", BAD_IDS), _drop("id"), _set("title", JUNK + ["x"]),
                                     _set("variants", [[], None]), _set("updated_at", ["2026-01-01T00:00:00Z"])]
INVENTORY_VIOLATIONS: list[Mutation] = [
    _set("inventory_item_id", BAD_IDS), _drop("inventory_item_id"), _set("location_id", BAD_IDS),
    _drop("location_id"), _set("available", BAD_QUANTITIES), _set("updated_at", [t for t in BAD_TIMES if t != "9999-12-31T23:59:59Z"]),
]
FINISH_VIOLATIONS: list[Mutation] = [
    _set("admin_graphql_api_id", [None, 5, "gid://shopify/Product/1", "gid://shopify/BulkOperation/abc",
                                  "gid://shopify/BulkOperation/1\n", "gid://shopify/BulkOperation/", "", []]),
    _drop("admin_graphql_api_id"), _set("status", [None, 5, "COMPLETED", "x" * 100, [], ""]), _drop("status"),
    _set("error_code", [5, "ACCESS DENIED", [], {}]),
]


@dataclass
class Case:
    what: str
    topic: str
    body: bytes
    headers: dict[str, str]
    expect: str  # "refused" (by the worker), "edge" (4xx at the door) or "ignored" (200, not a topic we take)


def _encode(payload: Json) -> bytes:
    # the standard encoder: it writes integers of any size and lone surrogates escaped, as an attacker may
    return json.dumps(payload).encode()


class WebhookFuzzer:
    """Builds one adversarial delivery per call, from the shop's genuine payloads."""

    def __init__(self, hooks: Hooks, rng: random.Random) -> None:
        self.rng = rng
        shop = hooks.shop
        self.products = [product_payload(p, shop.tz) for p in shop.products()]
        variants = [v for p in shop.products() for v in p.variants]
        self.levels = [inventory_level_payload(v, shop.tz) for v in variants]
        operation = shop.current_bulk_operation()
        assert operation is not None
        self.finish = bulk_finish_payload(operation, shop.tz)

    def genuine(self, topic: str) -> dict[str, Any]:
        rng = self.rng
        if topic in ("products/create", "products/update"):
            payload = json.loads(json.dumps(_pick(rng, self.products)))
            # later than the stored items: were it applied, the dump would change
            payload["updated_at"] = (datetime.fromisoformat(payload["updated_at"]) + timedelta(seconds=1)).isoformat()
            return payload
        if topic == "products/delete":
            return {"id": _pick(rng, self.products)["id"]}
        if topic == "inventory_levels/update":
            return dict(_pick(rng, self.levels))
        return dict(self.finish)

    def case(self) -> Case:
        rng = self.rng
        kind = rng.random()
        topic = _pick(rng, ["products/create", "products/update", "products/delete", "inventory_levels/update",
                            "bulk_operations/finish"])
        headers = self.headers()
        if kind < 0.15:  # a genuine body of one topic sent under another (the topic header is not signed)
            source = _pick(rng, [t for t in ("products/update", "products/delete", "inventory_levels/update",
                                             "bulk_operations/finish") if t != topic and
                                 {t, topic} != {"products/create", "products/update"}])
            return Case(f"{source} body as {topic}", topic, _encode(self.genuine(source)), headers, "refused")
        if kind < 0.22:  # the door: bad signature, missing headers, bodies that are not a JSON object
            return self.door_case(topic, headers)
        payload = self.genuine(topic)
        violations = {"products/create": PRODUCT_VIOLATIONS, "products/update": PRODUCT_VIOLATIONS,
                      "products/delete": DELETE_VIOLATIONS, "inventory_levels/update": INVENTORY_VIOLATIONS,
                      "bulk_operations/finish": FINISH_VIOLATIONS}[topic]
        applied = []
        for _ in range(1 + rng.randrange(3)):
            applied.append(_pick(rng, violations)(payload, rng))
        if topic != "products/delete" and rng.random() < 0.3:  # unknown fields are allowed: junk in them
            payload[f"x_{rng.randrange(1000)}"] = _pick(rng, JUNK)
        return Case(f"{topic} with {applied}: {json.dumps(payload)[:300]}", topic, _encode(payload), headers,
                    "refused")

    def door_case(self, topic: str, headers: dict[str, str]) -> Case:
        rng = self.rng
        body = _encode(self.genuine(topic))
        choice = rng.randrange(6)
        if choice == 0:
            headers["X-Shopify-Hmac-Sha256"] = _pick(rng, ["", "x", sign(body, "whsec_guess"), sign(body + b" ", SECRET)])
            return Case("bad signature", topic, body, headers, "edge")
        if choice == 1:
            headers["X-Shopify-Shop-Domain"] = _pick(rng, ["", "evil.example.com", "../../etc", "x" * 300])
            return Case("bad shop domain", topic, body, headers, "edge")
        if choice == 2:
            raw = _pick(rng, [b"", b"[]", b"null", b"\"text\"", b"{", b"\xff\xfe{}", b"{\"id\": 1}" * 2, b"1e999"])
            headers["X-Shopify-Hmac-Sha256"] = sign(raw, SECRET)
            return Case(f"body {raw!r}", topic, raw, headers, "edge")
        if choice == 3:
            headers["X-Shopify-Topic"] = ""
            return Case("no topic", "", body, headers, "edge")
        if choice == 4:
            other = _pick(rng, ["orders/create", "products/Update", "app/uninstalled", "x" * 200, "products/delete/", "PRODUCTS_DELETE"])
            headers["X-Shopify-Topic"] = other
            return Case(f"topic {other[:40]!r}", other, body, headers, "ignored")
        deep = body
        for _ in range(rng.choice([100, 5000])):  # nesting that a recursive decoder would not survive
            deep = b'{"a":' + deep + b"}"
        headers["X-Shopify-Hmac-Sha256"] = sign(deep, SECRET)
        return Case("deeply nested body", topic, deep, headers, "refused_or_edge")

    def headers(self) -> dict[str, str]:
        rng = self.rng
        triggered = _pick(rng, ["2099-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "1970-01-01T00:00:00Z", "garbage", "",
                                datetime.now(UTC).isoformat()])
        return {"Content-Type": "application/json", "X-Shopify-Shop-Domain": SHOP,
                "X-Shopify-Webhook-Id": str(uuid.uuid4()), "X-Shopify-Triggered-At": triggered,
                "X-Shopify-API-Version": "2026-01"}


def _who(token: str | None) -> str:
    return {READ_TOKEN: "read token", ADMIN_TOKEN: "admin token", None: "no token"}.get(token, "bad token")


def graphql_case(rng: random.Random) -> tuple[str, dict[str, Any]]:
    """A hostile `/graphql` request: (description, httpx.request keyword arguments)."""
    token = _pick(rng, [READ_TOKEN, READ_TOKEN, None, "garbage", ADMIN_TOKEN])
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    shop = f'"{SHOP}"'
    mutations = ["mutation { disableShopifySync(shopDomain: " + shop + ") { deletedItems } }",
                 "mutation { resyncShopifyCatalog(shopDomain: " + shop + ") { id } }",
                 "mutation { enableShopifySync(input: {shopDomain: " + shop + ', accessToken: "shpat_x", '
                 "identifier: SKU}) { status } }"]
    read_queries = [
        "{ catalogs { name itemCount } }",
        '{ catalog(name: "' + CATALOG + '") { items(first: 250) { edges { node { id price } } } } }',
        "{ __schema { types { name fields { name } } } }",
    ]
    choice = rng.randrange(12)
    if choice == 0 or (choice == 1 and token == ADMIN_TOKEN):
        # a mutation: refused for the read token; with the admin token only in a form that cannot run
        query = _pick(rng, mutations)
        if token == ADMIN_TOKEN:
            query = query.replace("shopDomain:", "shopDomain: 5, x:", 1)
        return f"mutation {query[:60]} ({_who(token)})", {"json": {"query": query}, "headers": headers}
    if choice == 1:
        return "read query", {"json": {"query": _pick(rng, read_queries)}, "headers": headers}
    if choice == 2:  # random characters, as a query
        alphabet = "{}()[]:$!@#.,\"' \n\tabcdefghijklmnopqrstuvwxyz_0123456789…\u0000\ud7ff"
        query = "".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 400)))
        return f"random query {query[:40]!r}", {"json": {"query": query}, "headers": headers}
    if choice == 3:  # deep nesting and many aliases
        depth = rng.choice([50, 500, 5000])
        query = "{" * depth + "catalogs { name }" + "}" * depth
        if rng.random() < 0.5:
            query = "{ " + " ".join(f"a{n}: catalogs {{ name }}" for n in range(rng.choice([100, 5000]))) + " }"
        return f"deep/wide query ({len(query)} chars)", {"json": {"query": query}, "headers": headers}
    if choice == 4:  # fragment cycles and doubling fragments
        n = rng.choice([5, 20, 40])
        fragments = " ".join(f"fragment F{i} on Query {{ ...F{i + 1} ...F{i + 1} }}" for i in range(n))
        query = "{ ...F0 } " + fragments + f" fragment F{n} on Query {{ catalogs {{ name }} }}"
        if rng.random() < 0.3:
            query += " fragment F1 on Query { ...F0 }"
        return f"fragment bomb n={n}", {"json": {"query": query}, "headers": headers}
    if choice == 5:  # variables of the wrong type and size
        query = "query($n: String!, $f: Int) { catalog(name: $n) { items(first: $f) { totalCount } } }"
        variables = {"n": _pick(rng, JUNK + [CATALOG]), "f": _pick(rng, [2**64, -1, 10**9, 1.5, "1", None, []])}
        return f"variables {str(variables)[:60]}", {"json": {"query": query, "variables": variables},
                                                    "headers": headers}
    if choice == 6:  # bodies that are not a GraphQL request
        raw = _pick(rng, [b"", b"{", b"[]", b"null", b"\xff\xfe\xfd", b'{"query": 5}', b'{"query": null}',
                          b'[{"query": "{ catalogs { name } }"}]', b'{"query": "{ catalogs { name } }", "variables": 5}',
                          b'{"query": "{ catalogs { name } }", "operationName": 7}', b" " * 100_000])
        return f"raw body {raw[:30]!r}", {"content": raw, "headers": {**headers, "Content-Type": "application/json"}}
    if choice == 7:  # content types and methods
        return "form body", {"content": b"query=%7Bcatalogs%7Bname%7D%7D",
                             "headers": {**headers, "Content-Type": _pick(rng, ["application/x-www-form-urlencoded",
                                                                                 "text/plain", "multipart/form-data",
                                                                                 "application/graphql"])}}
    if choice == 8:  # GET, where mutations must not run
        query = _pick(rng, mutations + read_queries)
        return f"GET {query[:40]}", {"method": "GET", "params": {"query": query}, "headers": headers}
    if choice == 9:  # a mutation hidden behind an operation name (the admin token may run mutations)
        mutation = _pick(rng, mutations).replace("mutation", "mutation B", 1)
        if token == ADMIN_TOKEN:
            mutation = mutation.replace("shopDomain:", "shopDomain: 5, x:", 1)
        return f"mutation by operationName ({_who(token)})", {
            "json": {"query": "query A { catalogs { name } } " + mutation, "operationName": "B"}, "headers": headers}
    if choice == 10:  # invalid UTF-8 in a JSON string
        return "invalid UTF-8", {"content": b'{"query": "{ catalogs { name \xc3\x28 } }"}',
                                 "headers": {**headers, "Content-Type": "application/json"}}
    # an unknown or overlong field, directive or argument
    field = _pick(rng, ["nope", "x" * 10_000, "catalogs @skip(if: 5)", "catalog(name: 1e999) { name }",
                        'catalog(name: "\\u0000") { name }', "catalogs { items }"])
    return f"bad selection {field[:40]}", {"json": {"query": "{ " + field + " }"}, "headers": headers}


async def dump(hooks: Hooks) -> tuple[Any, ...]:
    store = hooks.store
    config = await store.get_sync(SHOP)
    info = await store.get_catalog(CATALOG)
    assert config is not None and info is not None
    return (await all_items(store, CATALOG), info.item_count, info.storage_bytes,
            config.active, config.status, config.error_code, config.access_token, len(await store.list_runs(SHOP)))


async def assert_healthy(http: httpx.AsyncClient, what: str) -> None:
    response = await http.get("/healthz")
    assert response.status_code == 200 and response.json()["status"] == "ok", f"unhealthy after {what}"


async def test_adversarial_webhooks_and_graphql_requests_change_nothing() -> None:
    rng = random.Random(SEED)
    async with hooked() as hooks:
        fuzzer = WebhookFuzzer(hooks, rng)
        before = await dump(hooks)
        assert len(before[0]) > 0
        refused = hooks.processor.stats["refused"]
        async with httpx.AsyncClient(base_url=hooks.running.base_url, timeout=60.0) as http:
            for number in range(CASES):
                case = fuzzer.case()
                headers = dict(case.headers)
                headers.setdefault("X-Shopify-Topic", case.topic)
                headers.setdefault("X-Shopify-Hmac-Sha256", sign(case.body, SECRET))
                response = await http.post("/webhooks/shopify", content=case.body, headers=headers)
                await hooks.settle()
                where = f"seed {SEED}, webhook case {number}: {case.what}"
                if case.expect == "edge":
                    assert 400 <= response.status_code < 500, f"{where}: {response.status_code}"
                elif case.expect == "ignored":
                    assert response.status_code == 200 and response.json() == {"status": "ignored"}, where
                elif case.expect == "refused":
                    assert response.status_code == 200, f"{where}: {response.status_code} {response.text[:200]}"
                    assert hooks.processor.stats["refused"] == refused + 1, f"{where}: not refused"
                else:
                    assert response.status_code < 500, f"{where}: {response.status_code}"
                refused = hooks.processor.stats["refused"]
                assert await dump(hooks) == before, f"{where}: the catalog changed"
                await assert_healthy(http, where)
            for number in range(CASES):
                what, request = graphql_case(rng)
                where = f"seed {SEED}, graphql case {number}: {what}"
                method = request.pop("method", "POST")
                if "json" in request:  # escaped as ASCII: lone surrogates included, as a hostile client may send
                    request["content"] = json.dumps(request.pop("json")).encode()
                    request["headers"] = {**request["headers"], "Content-Type": "application/json"}
                response = await http.request(method, "/graphql", **request)
                assert response.status_code < 500, f"{where}: {response.status_code} {response.text[:300]}"
                assert "Traceback" not in response.text, where
                if response.headers.get("content-type", "").startswith("application/"):
                    response.json()  # a JSON answer, whatever the request
                assert await dump(hooks) == before, f"{where}: the catalog changed"
                await assert_healthy(http, where)
        assert hooks.processor.stats["failed"] == 0  # refused, never crashed the worker
