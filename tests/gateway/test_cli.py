"""The console script: argument handling and refusals (the long-running commands are covered by the
end-to-end tests through the same code: Gateway, create_app, SyncService)."""

from __future__ import annotations

import random

import pytest

from gateway.cli import _RedactQueryStrings, main
from gateway.cli.demo import change_store
from gateway.graphql.schema import sdl
from shopify_emulator import Emulator

ENV = ("GATEWAY_ADMIN_TOKEN", "GATEWAY_READ_TOKEN", "MONGODB_URI", "GATEWAY_PORT", "SHOPIFY_ACCESS_TOKEN",
       "SMTP_HOST", "SMTP_FROM", "NOTIFY_EMAILS")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV:
        monkeypatch.delenv(name, raising=False)


def test_export_schema_prints_the_sdl(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export-schema"]) == 0
    assert capsys.readouterr().out == sdl()


def test_serve_refuses_to_start_without_an_admin_token(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve"]) == 2
    err = capsys.readouterr().err
    assert "GATEWAY_ADMIN_TOKEN is not set" in err and "--no-auth" in err


def test_serve_reports_configuration_mistakes(monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("GATEWAY_PORT", "eighty")
    monkeypatch.setenv("GATEWAY_ADMIN_TOKEN", "x" * 32)
    assert main(["serve"]) == 2
    assert "GATEWAY_PORT='eighty' is not a whole number" in capsys.readouterr().err


def test_sync_needs_an_access_token(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sync", "demo.myshopify.com"]) == 2
    assert "SHOPIFY_ACCESS_TOKEN" in capsys.readouterr().err


def test_sync_refuses_a_bad_shop_domain(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sync", "not a shop", "--access-token", "shpat_x"]) == 2
    assert "is not a Shopify shop domain" in capsys.readouterr().err


def test_unknown_command_is_a_usage_error() -> None:
    with pytest.raises(SystemExit) as info:
        main(["frobnicate"])
    assert info.value.code == 2


def test_access_log_hides_query_strings() -> None:
    import logging

    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
                               ("127.0.0.1:5", "GET", "/graphql?query=%7Bsecret%7D", "1.1", 200), None)
    assert _RedactQueryStrings().filter(record)
    assert "secret" not in record.getMessage() and "/graphql?…" in record.getMessage()


def test_demo_changes_the_store() -> None:
    emulator = Emulator("whsec_x")
    shop = emulator.add_shop("demo.myshopify.com", access_token="shpat_x", variants=50, seed=3)
    before = {v: (shop.variant(v).price, shop.variant(v).inventory_quantity) for v in shop.variant_ids()}
    lines = change_store(shop, random.Random(1), count=6)
    after = {v: (shop.variant(v).price, shop.variant(v).inventory_quantity) for v in shop.variant_ids()}
    assert len(lines) == 6
    assert sum(1 for v in before if before[v] != after[v]) >= 1
