// GraphiQL for catalog-gateway: queries and mutations over HTTP, subscriptions over WebSocket
// (graphql-transport-ws). The Authorization header from the Headers editor is sent with every HTTP
// request and as the WebSocket connection_init payload {"Authorization": "Bearer <token>"}.
(function () {
  "use strict";
  var httpUrl = window.location.pathname;
  var wsUrl = (window.location.protocol === "https:" ? "wss://" : "ws://") + window.location.host + httpUrl;
  var authorization = null;

  function findAuthorization(headers) {
    for (var key in headers || {}) {
      if (Object.prototype.hasOwnProperty.call(headers, key) && key.toLowerCase() === "authorization") {
        return headers[key];
      }
    }
    return null;
  }

  var wsClient = graphqlWs.createClient({
    url: wsUrl,
    lazy: true,
    retryAttempts: 0,
    connectionParams: function () {
      return authorization ? { Authorization: authorization } : {};
    },
  });
  var httpAndWsFetcher = GraphiQL.createFetcher({ url: httpUrl, wsClient: wsClient });

  function fetcher(params, options) {
    var next = findAuthorization(options && options.headers);
    if (next !== authorization) {
      authorization = next;
      wsClient.terminate(); // the next subscription reconnects with the new token
    }
    return httpAndWsFetcher(params, options);
  }

  var defaultQuery = [
    "# catalog-gateway. Put your token in the Headers tab below:",
    '#   {"Authorization": "Bearer <GATEWAY_ADMIN_TOKEN or GATEWAY_READ_TOKEN>"}',
    "",
    "query Syncs {",
    "  shopifySyncs {",
    "    shopDomain catalogName status errorCode errorMessage",
    "    lastRun { status phase objectCount itemsWritten itemsSkipped }",
    "  }",
    "}",
    "",
    "query Items {",
    "  catalogs {",
    "    name itemCount",
    "    items(first: 5) { totalCount edges { node { id productTitle variantTitle price inventoryQuantity } } }",
    "  }",
    "}",
    "",
    "# The last run at once, then every change and every later re-sync until you press stop;",
    "# a run's final snapshot has a status other than RUNNING.",
    "subscription Progress {",
    '  syncProgress(shopDomain: "demo.myshopify.com") { phase objectCount bytesDownloaded fileSize itemsWritten status }',
    "}",
    "",
  ].join("\n");

  // The demo puts its admin token in a meta tag: the Headers tab starts with it.
  var tokenMeta = document.querySelector('meta[name="catalog-gateway-token"]');
  var presetHeaders = tokenMeta
    ? JSON.stringify({ Authorization: "Bearer " + tokenMeta.getAttribute("content") }, null, 2)
    : null;

  var root = ReactDOM.createRoot(document.getElementById("graphiql"));
  root.render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultQuery: defaultQuery,
      defaultHeaders: presetHeaders || JSON.stringify({ Authorization: "Bearer <token>" }, null, 2),
      headers: presetHeaders || undefined,
      shouldPersistHeaders: true,
      isHeadersEditorEnabled: true,
      defaultEditorToolsVisibility: "headers",
    })
  );
})();
