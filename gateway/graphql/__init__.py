"""The GraphQL API: schema, types, request context, live subscriptions, pagination, auth, the
document limits and the HTTP/WebSocket view."""
