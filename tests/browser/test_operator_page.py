"""The operator page in a real browser, against a real gateway and the Shopify emulator on loopback:
sign in, enable a shop and watch its progress bar reach 100 %, see an error with its fix, browse,
filter and open items, read notifications, disable. Screenshots go to test-artifacts/ at a laptop
and a phone width."""

from __future__ import annotations

import asyncio
import re
import struct
import zlib
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
from playwright.async_api import Browser, BrowserContext, Page, Route, expect

from catalog_store.memory import MemoryCatalogStore
from gateway.settings import Settings
from shopify_emulator import Emulator
from tests.browser.conftest import ARTIFACTS
from tests.gateway.harness import ADMIN_TOKEN, READ_TOKEN, Running, serve_gateway

SHOP = "browser-store.myshopify.com"
DUPES = "dupes-store.myshopify.com"
SHOP_TOKEN = "shpat_browser_token_0123"
DUPES_TOKEN = "shpat_dupes_token_0123"
SECRET = "whsec_browser"
LAPTOP = {"width": 1366, "height": 860}
PHONE = {"width": 390, "height": 844}
TIMEOUT = 30_000  # ms: generous, the machine may be loaded


def png(rgb: tuple[int, int, int], size: int = 8) -> bytes:
    """A small solid PNG, made here: the item images' CDN is not reachable from a test."""
    raw = b"".join(b"\x00" + bytes(rgb) * size for _ in range(size))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


IMAGE = png((204, 120, 64))


@pytest.fixture
async def gateway() -> AsyncIterator[tuple[Running, Emulator]]:
    async with Emulator(SECRET, bulk_duration=1.5) as emulator:
        emulator.add_shop(SHOP, access_token=SHOP_TOKEN, variants=90, seed=11, name="Browser Store")
        dupes = emulator.add_shop(DUPES, access_token=DUPES_TOKEN, variants=30, seed=12, name="Dupes Store")
        first, second = list(dupes.variant_ids())[:2]
        dupes.set_sku(second, dupes.variant(first).sku)  # two variants, one SKU
        settings = Settings(
            admin_token=ADMIN_TOKEN,
            read_token=READ_TOKEN,
            shopify_admin_api_url=emulator.admin_api_url_template,
            shopify_api_secrets=(SECRET,),
            # Other origins only: the page is served by the gateway, so its WebSocket is same-origin.
            allowed_origins=("https://dashboard.example.com",),
        )
        async with serve_gateway(MemoryCatalogStore(), settings=settings,
                                 sync_overrides={"poll_interval": 0.2, "max_poll_interval": 0.5}) as running:
            yield running, emulator


async def open_page(browser: Browser, running: Running, viewport: dict[str, int]) -> tuple[BrowserContext, Page]:
    context = await browser.new_context(viewport=viewport)  # type: ignore[arg-type]
    page = await context.new_page()
    page.set_default_timeout(TIMEOUT)
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    # Console errors, except the 401 of the wrong token the test enters on purpose.
    page.on("console", lambda message: problems.append(message.text) if message.type == "error"
            and "status of 401" not in message.text else None)
    page.problems = problems  # type: ignore[attr-defined]

    async def cdn(route: Route) -> None:
        await route.fulfill(status=200, content_type="image/png", body=IMAGE)

    await page.route(re.compile(r"https://cdn\.shopify\.com/.*"), cdn)
    await page.goto(running.base_url + "/")
    return context, page


async def sign_in(page: Page, token: str = ADMIN_TOKEN) -> None:
    await page.get_by_label("Gateway token").fill(token)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.locator("#app")).to_be_visible()


async def shot(page: Page, name: str) -> None:
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


async def enable_shop(page: Page, shop: str, token: str, identifier: str) -> None:
    enable = page.locator("#enable-card")
    if await enable.get_attribute("open") is None:
        await enable.locator("summary").click()
    await page.get_by_label("Shop domain").fill(shop)
    await page.get_by_label("Admin API access token").fill(token)
    await page.get_by_label(identifier).check()
    await page.get_by_role("button", name="Enable sync").click()


async def test_an_operator_enables_watches_fixes_browses_and_disables(
    browser: Browser, gateway: tuple[Running, Emulator]
) -> None:
    running, emulator = gateway
    context, page = await open_page(browser, running, LAPTOP)

    # The token is asked once, kept for the tab's session: a reload stays signed in.
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    await shot(page, "01-sign-in-laptop")
    await page.get_by_label("Gateway token").fill("not-the-token-at-all")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.locator("#login-error")).to_contain_text("not accepted")
    await sign_in(page)
    await expect(page.locator("#no-shops")).to_be_visible()
    await page.reload()
    await expect(page.locator("#app")).to_be_visible()

    # Enable: the card's progress bar follows syncProgress over the WebSocket up to 100 %.
    await page.evaluate("""() => {
        window.seenProgress = [];
        new MutationObserver(() => {
          const bar = document.querySelector('[data-shop="browser-store.myshopify.com"] .bar');
          if (bar) window.seenProgress.push(Number(bar.getAttribute('aria-valuenow')));
        }).observe(document.getElementById('shop-list'), {subtree: true, attributes: true, childList: true});
    }""")
    await enable_shop(page, SHOP, SHOP_TOKEN, "Shopify variant id")
    card = page.locator(f'[data-shop="{SHOP}"]')
    await expect(card).to_be_visible()
    await expect(card.locator(".shop-status")).to_have_text(re.compile("In progress|Syncing"))
    await shot(page, "02-sync-in-progress-laptop")
    bar = card.get_by_role("progressbar")
    await expect(bar).to_have_attribute("aria-valuenow", "100")
    await expect(card.locator(".shop-status")).to_have_text("Synced")
    await expect(card.locator(".shop-items")).to_have_text("90")
    await expect(card.locator(".shop-storage")).to_contain_text(" of 100 MB")
    seen = await page.evaluate("window.seenProgress")
    assert 0 in seen and seen[-1] == 100, seen  # seen starting, then complete: live, not one final load
    await shot(page, "03-synced-laptop")

    # An error with its fix: duplicate SKUs in SKU mode.
    await enable_shop(page, DUPES, DUPES_TOKEN, "SKU (must be unique)")
    dupes = page.locator(f'[data-shop="{DUPES}"]')
    await expect(dupes.locator(".shop-status")).to_have_text(re.compile("Error"))
    error = dupes.get_by_role("alert")
    await expect(error.locator(".error-code")).to_have_text("DUPLICATE_SKU")
    await expect(error.locator(".error-fix")).to_contain_text("Make every SKU unique in Shopify")
    await expect(page.locator("#error-codes")).to_contain_text("CATALOG_LIMIT_EXCEEDED")
    await dupes.scroll_into_view_if_needed()
    await shot(page, "04-error-with-fix-laptop")

    # Browse: the shop's catalog, search, a status filter in Shopify's spelling, pages, an item.
    await page.get_by_role("combobox", name="Catalog", exact=True).select_option("shopify_browser-store")
    await expect(page.locator("#items-summary")).to_have_text("Items 1–20 of 90")
    first_title = (await page.locator("#items-table tbody tr button.link").first.inner_text()).strip()
    word = first_title.split()[-1]
    await page.get_by_label("Search titles and SKU").fill(word)
    await page.get_by_role("button", name="Apply").click()
    rows = page.locator("#items-table tbody tr")
    await expect(page.locator("#items-summary")).not_to_have_text("Items 1–20 of 90")
    titles = await rows.locator("button.link").all_inner_texts()
    assert titles and all(word.lower() in t.lower() for t in titles), (word, titles)
    await page.get_by_role("button", name="Clear").click()
    await expect(page.locator("#items-summary")).to_have_text("Items 1–20 of 90")
    await page.get_by_label("Status").select_option("ACTIVE")
    await page.get_by_role("button", name="Apply").click()
    await expect(page.locator("#items-summary")).to_have_text(re.compile(r"Items 1–\d+ of \d+"))
    statuses = await rows.locator("td:nth-child(7)").all_inner_texts()
    assert statuses and set(statuses) == {"active"}, statuses
    await page.get_by_label("Status").select_option("")
    await page.get_by_role("button", name="Apply").click()
    await page.get_by_role("button", name="Next →").click()
    await expect(page.locator("#items-summary")).to_have_text("Items 21–40 of 90")
    await expect(page.get_by_role("button", name="← Previous")).to_be_enabled()
    await shot(page, "05-catalog-page-2-laptop")
    opened = (await rows.locator("button.link").first.inner_text()).strip()
    await rows.locator("button.link").first.click()
    dialog = page.get_by_role("dialog")
    await expect(dialog).to_be_visible()
    await expect(dialog.get_by_role("heading")).to_contain_text(opened)
    await expect(dialog.locator("#item-fields")).to_contain_text("Shopify variant")
    image = dialog.locator("#item-images img").first
    if await image.count():
        await expect(image).to_have_js_property("naturalWidth", 8)  # the image loaded (served by the route)
    await shot(page, "06-item-laptop")
    await dialog.get_by_role("button", name="Close").click()
    await expect(dialog).to_be_hidden()

    # Notifications: an unread count, and mark read lowers it.
    badge = page.locator("#unread-count")
    await expect(badge).not_to_have_text("0")
    unread = int(await badge.inner_text())
    await page.locator("#notification-list").get_by_role("button", name=re.compile("^Mark read")).first.click()
    await expect(badge).to_have_text(str(unread - 1))

    # Alerts: the operator turns price drops on; a shopper's subscription (made by a frontend) fires
    # when the price drops in Shopify, and the event shows in the section.
    await expect(page.locator("#alerts-body")).to_be_visible()
    await expect(page.locator("#alerts-unsupported")).to_be_hidden()
    rules = page.locator("#rules-form")
    await rules.get_by_label("Price drop").check()
    await rules.get_by_label("by at least (percent)").fill("10")
    await rules.get_by_role("button", name="Save rules").click()
    await expect(page.locator("#rules-error")).to_have_text("")
    shop = emulator.shop(SHOP)
    variant_id = str(next(iter(shop.variant_ids())))
    for _ in range(100):  # the page saved the rules through the API
        stored = await running.query('{ catalog(name: "shopify_browser-store") { alertRules { priceDrop } } }')
        if stored["catalog"]["alertRules"]["priceDrop"]:
            break
        await asyncio.sleep(0.05)
    await running.query('mutation { subscribeToItemAlerts(input: {catalogName: "shopify_browser-store", '
                        f'itemId: "{variant_id}", userId: "shopper-1", types: [PRICE_DROP]}}) {{ id }} }}')
    old_price = shop.variant(variant_id).price
    shop.set_price(variant_id, (Decimal(old_price) / 2).quantize(Decimal("0.01")))
    events_query = '{ catalog(name: "shopify_browser-store") { alertEvents { type itemId } } }'
    for _ in range(200):
        if (await running.query(events_query))["catalog"]["alertEvents"]:
            break
        await asyncio.sleep(0.05)
    await page.reload()
    await page.get_by_role("combobox", name="Catalog", exact=True).select_option("shopify_browser-store")
    events = page.locator("#alert-events")
    await expect(events).to_contain_text("PRICE_DROP")
    await expect(events).to_contain_text(variant_id)
    await expect(events).to_contain_text("webhook")
    await page.locator("#alerts").scroll_into_view_if_needed()
    await shot(page, "07a-alert-fired-laptop")

    # The phone width: same page, one column.
    phone_context, phone = await open_page(browser, running, PHONE)
    await sign_in(phone)
    await expect(phone.locator(f'[data-shop="{SHOP}"] .shop-status')).to_have_text("Synced")
    await phone.screenshot(path=str(ARTIFACTS / "07-shops-phone.png"))
    await phone.get_by_role("combobox", name="Catalog", exact=True).select_option("shopify_browser-store")
    await expect(phone.locator("#items-summary")).to_have_text("Items 1–20 of 90")
    await phone.evaluate("document.getElementById('catalog').scrollIntoView()")
    await phone.screenshot(path=str(ARTIFACTS / "08-catalog-phone.png"))
    await phone.locator("#items-table tbody tr button.link").first.click()
    await expect(phone.get_by_role("dialog")).to_be_visible()
    await phone.screenshot(path=str(ARTIFACTS / "09-item-phone.png"))
    width = await phone.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the page scrolls sideways on a phone ({width}px)"
    assert not phone.problems, phone.problems  # type: ignore[attr-defined]
    await phone_context.close()

    # Disable: the confirmation says what will be deleted; confirming removes the shop.
    await card.get_by_role("button", name="Disable…").click()
    confirm = page.get_by_role("dialog", name="Disable sync?")
    await expect(confirm).to_be_visible()
    await expect(confirm).to_contain_text("deletes catalog shopify_browser-store: its 90 items")
    await expect(confirm).to_contain_text("alert subscription")
    await shot(page, "10-disable-confirmation-laptop")
    await confirm.get_by_role("button", name="Disable and delete").click()
    await expect(card).to_have_count(0)
    await expect(page.locator("#status")).to_contain_text("90 items")
    assert emulator.shop(SHOP) is not None
    assert not page.problems, page.problems  # type: ignore[attr-defined]
    await context.close()


async def test_a_read_token_sees_the_page_and_a_refused_change_says_why(
    browser: Browser, gateway: tuple[Running, Emulator]
) -> None:
    running, _ = gateway
    context, page = await open_page(browser, running, LAPTOP)
    await sign_in(page, READ_TOKEN)
    await enable_shop(page, SHOP, SHOP_TOKEN, "Shopify variant id")
    await expect(page.locator("#enable-error")).to_contain_text(re.compile("admin", re.IGNORECASE))
    await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    await page.reload()
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()  # signing out forgot the token
    await context.close()
