"""The console script: argument handling and refusals (the long-running commands are covered by the
end-to-end tests through the same code: Gateway, create_app, SyncService)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from pymongo import MongoClient

from catalog_store.documents import sync_to_document
from catalog_store.items import Identifier
from catalog_store.models import SyncConfig
from catalog_store.token_cipher import TokenCipher
from gateway.cli import _RedactQueryStrings, build_parser, main
from gateway.cli.demo import DEFAULT_INVENTORY_SHARE
from gateway.graphql.schema import sdl
from shopify_emulator import changes
from tests.keys import OTHER_SECRET_KEY, TEST_SECRET_KEY
from tests.secantus import free_port

ENV = ("GATEWAY_ADMIN_TOKEN", "GATEWAY_READ_TOKEN", "MONGODB_URI", "GATEWAY_PORT", "SHOPIFY_ACCESS_TOKEN",
       "SMTP_HOST", "SMTP_FROM", "NOTIFY_EMAILS", "GATEWAY_SECRET_KEY", "MONGODB_DATABASE")


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


def test_serve_on_mongodb_refuses_to_start_without_a_secret_key(monkeypatch: pytest.MonkeyPatch,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("GATEWAY_ADMIN_TOKEN", "x" * 32)
    monkeypatch.setenv("MONGODB_URI", "mongodb://127.0.0.1:1")
    assert main(["serve"]) == 2
    err = capsys.readouterr().err
    assert "GATEWAY_SECRET_KEY is not set" in err
    assert 'python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"' in err


def test_serve_with_a_wrong_secret_key_says_so_and_how_to_fix_it(
        mongodb_uri: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    database = f"test_cli_{uuid.uuid4().hex[:12]}"
    token = "shpat_canary_cli_7a7a7a"
    client: MongoClient[dict[str, Any]] = MongoClient(mongodb_uri)
    try:
        doc = sync_to_document(SyncConfig("cli.myshopify.com", "shopify_cli", Identifier.SKU, token))
        client[database]["syncs"].insert_one({**doc, "access_token": TokenCipher([OTHER_SECRET_KEY]).seal(token)})
        for name, value in {"GATEWAY_ADMIN_TOKEN": "x" * 32, "MONGODB_URI": mongodb_uri, "MONGODB_DATABASE": database,
                            "GATEWAY_SECRET_KEY": TEST_SECRET_KEY, "GATEWAY_PORT": str(free_port())}.items():
            monkeypatch.setenv(name, value)
        assert main(["serve"]) == 1  # refused before it listens
        out = capsys.readouterr()
        assert "cannot be decrypted with GATEWAY_SECRET_KEY" in out.err and "fix: Set GATEWAY_SECRET_KEY" in out.err
        assert "Traceback" not in out.err + out.out and token not in out.err + out.out
    finally:
        client.drop_database(database)
        client.close()


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


def test_demo_and_emulator_take_a_change_rate_and_an_inventory_share() -> None:
    parser = build_parser()
    demo = parser.parse_args(["demo", "--changes-per-second", "50", "--inventory-share", "0.2"])
    assert (demo.changes_per_second, demo.inventory_share) == (50.0, 0.2)
    still = parser.parse_args(["emulator"])
    assert still.changes_per_second is None and still.inventory_share == DEFAULT_INVENTORY_SHARE
    assert parser.parse_args(["demo"]).changes_per_second > 0  # the demo's store keeps changing


@pytest.mark.parametrize("bad, said", [(["--changes-per-second", "0"], "positive number of changes per second"),
                                       (["--changes-per-second", "nan"], "positive number of changes per second"),
                                       (["--inventory-share", "1.5"], "between 0 and 1"),
                                       (["--inventory-share", "-0.1"], "between 0 and 1")])
@pytest.mark.parametrize("command", ["demo", "emulator"])
def test_a_bad_change_rate_or_share_is_refused_before_anything_starts(
        command: str, bad: list[str], said: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([command, *bad]) == 2
    err = capsys.readouterr().err
    assert said in err and f"catalog-gateway {command}" in err


def test_a_change_rate_that_is_no_number_is_a_usage_error() -> None:
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args(["emulator", "--changes-per-second", "fast"])
    assert info.value.code == 2


def test_the_cli_default_share_is_the_emulators() -> None:
    assert DEFAULT_INVENTORY_SHARE == changes.DEFAULT_INVENTORY_SHARE

