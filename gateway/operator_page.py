"""`/`: the operator page (static HTML, CSS and JS from gateway/static/operator, no build step and
nothing from another origin). It talks to /graphql like any client: over HTTP, and over
graphql-transport-ws for live progress; the token lives in the browser tab's sessionStorage."""

from __future__ import annotations

from importlib import resources

from starlette.responses import HTMLResponse

from gateway.graphql.http import with_browser_token

# Scripts and styles from this origin only; item images may come from Shopify's CDN; the page
# connects back to this origin (HTTP and WebSocket).
OPERATOR_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: https: http:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'"
)


def operator_html() -> str:
    return resources.files("gateway").joinpath("static/operator/index.html").read_text(encoding="utf-8")


def operator_page(browser_token: str | None) -> HTMLResponse:
    return HTMLResponse(
        with_browser_token(operator_html(), browser_token),
        headers={"Content-Security-Policy": OPERATOR_CSP, "X-Content-Type-Options": "nosniff",
                 "Referrer-Policy": "no-referrer", "Cache-Control": "no-store"},
    )
