"""GraphQL over HTTP media types: which one a response is sent as."""

from __future__ import annotations

GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"
JSON = "application/json"


def negotiate_media_type(accept: str | None) -> str:
    """`application/graphql-response+json` when the client prefers (or only accepts) it, else
    `application/json` (also for clients that send no Accept header: legacy GraphQL clients)."""
    if not accept:
        return JSON
    best, best_q = JSON, -1.0
    for part in accept.split(","):
        media, *params = (p.strip() for p in part.split(";"))
        q = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        media = media.lower()
        if media == GRAPHQL_RESPONSE_JSON and q > 0 and q >= best_q:
            best, best_q = GRAPHQL_RESPONSE_JSON, q
        elif media in (JSON, "application/*", "*/*") and q > 0 and q > best_q:
            best, best_q = JSON, q
    return best
