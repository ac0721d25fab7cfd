// catalog-gateway operator page: plain JS over /graphql (HTTP for queries and mutations,
// graphql-transport-ws for live progress and notifications). The token is kept in sessionStorage:
// entered once per browser tab, gone when the tab closes.
(function () {
  "use strict";

  var TOKEN_KEY = "catalog-gateway-token";
  var PAGE_SIZE = 20;
  var STATUS_LABELS = { IN_PROGRESS: "In progress", SYNCED: "Synced", ERROR: "Error" };

  var state = {
    token: null,
    caps: { realtime: false, alerts: false, storageLimit: false },
    shops: {},          // shopDomain -> last ShopifySync
    cards: {},          // shopDomain -> card element
    progress: {},       // shopDomain -> unsubscribe function
    catalogs: [],
    cursors: [null],    // the `after` of each page seen
    pageIndex: 0,
    ws: null,
    notificationsSub: null,
    refreshTimer: null,
  };

  var $ = function (selector, root) { return (root || document).querySelector(selector); };

  // -- utilities ---------------------------------------------------------------------------------

  function text(el, value) { el.textContent = value == null ? "" : String(value); return el; }

  function make(tag, attrs, children) {
    var el = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) {
      if (key === "text") el.textContent = attrs[key];
      else if (key === "class") el.className = attrs[key];
      else el.setAttribute(key, attrs[key]);
    });
    (children || []).forEach(function (child) { if (child) el.appendChild(child); });
    return el;
  }

  function number(n) { return n == null ? "–" : Number(n).toLocaleString(); }

  function bytes(n) {
    if (n == null) return "–";
    var units = ["B", "KB", "MB", "GB", "TB"];
    var i = 0;
    var v = Number(n);
    while (v >= 1024 && i < units.length - 1) { v /= 1024; i += 1; }
    return (i === 0 ? v : v.toFixed(v < 10 ? 1 : 0)) + " " + units[i];
  }

  function when(iso) {
    if (!iso) return "";
    var d = new Date(iso);
    return isNaN(d.getTime()) ? iso : d.toLocaleString();
  }

  function say(message) {
    var box = $("#status");
    text(box, message);
    clearTimeout(say.timer);
    say.timer = setTimeout(function () { text(box, ""); }, 8000);
  }

  function problem(error) {
    var parts = [error.message || String(error)];
    if (error.fix) parts.push("Fix: " + error.fix);
    return parts.join(" ");
  }

  // -- GraphQL over HTTP -----------------------------------------------------------------------

  function gql(query, variables) {
    return fetch("/graphql", {
      method: "POST",
      headers: {
        "Content-Type": "application/json",
        Accept: "application/graphql-response+json, application/json",
        Authorization: "Bearer " + state.token,
      },
      body: JSON.stringify({ query: query, variables: variables || {} }),
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (body) {
        var errors = body.errors || [];
        if (response.status === 401 || (errors[0] && (errors[0].extensions || {}).code === "UNAUTHENTICATED")) {
          signOut("That token was not accepted: enter the gateway's admin or read token.");
          throw Object.assign(new Error("not signed in"), { silent: true });
        }
        if (errors.length) {
          var first = errors[0];
          var ext = first.extensions || {};
          throw Object.assign(new Error(first.message), { code: ext.code, fix: ext.fix, data: body.data });
        }
        if (!response.ok) throw new Error("The gateway answered HTTP " + response.status + ".");
        return body.data;
      });
    });
  }

  function report(where) {
    return function (error) {
      if (error && error.silent) return;
      var target = where ? $(where) : null;
      if (target) text(target, problem(error));
      else say(problem(error));
    };
  }

  // -- sign in ---------------------------------------------------------------------------------

  function presetToken() {
    var meta = document.querySelector('meta[name="catalog-gateway-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  function showApp(signedIn) {
    $("#login").hidden = signedIn;
    $("#app").hidden = !signedIn;
    $("#nav").hidden = !signedIn;
    $("#sign-out").hidden = !signedIn;
  }

  function signOut(message) {
    sessionStorage.removeItem(TOKEN_KEY);
    state.token = null;
    Object.keys(state.progress).forEach(function (shop) { state.progress[shop](); });
    state.progress = {};
    if (state.ws) { state.ws.dispose(); state.ws = null; }
    state.notificationsSub = null;
    showApp(false);
    text($("#login-error"), message || "");
    var input = $("#token");
    input.value = presetToken();
    input.focus();
  }

  function signIn(token) {
    state.token = token;
    return gql(
      "query Capabilities { sync: __type(name: \"ShopifySync\") { fields { name } }" +
        " catalog: __type(name: \"Catalog\") { fields { name } } alerts: __type(name: \"AlertRules\") { name } }"
    ).then(function (data) {
      sessionStorage.setItem(TOKEN_KEY, token);
      var names = function (type) { return ((type && type.fields) || []).map(function (f) { return f.name; }); };
      state.caps.realtime = names(data.sync).indexOf("realtime") >= 0;
      state.caps.errorFix = names(data.sync).indexOf("errorFix") >= 0;
      state.caps.storageLimit = names(data.catalog).indexOf("storageLimitBytes") >= 0;
      state.caps.alerts = !!data.alerts;
      showApp(true);
      connectSocket();
      loadAll();
    });
  }

  // -- live updates (graphql-transport-ws) -----------------------------------------------------

  function connectSocket() {
    var url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/graphql";
    state.ws = graphqlWs.createClient({
      url: url,
      lazy: true,
      retryAttempts: 1000,
      shouldRetry: function () { return state.token !== null; },
      connectionParams: function () { return { Authorization: "Bearer " + state.token }; },
    });
    state.notificationsSub = state.ws.subscribe(
      { query: "subscription { notifications { id } }" },
      { next: function () { loadNotifications(); }, error: function () {}, complete: function () {} }
    );
  }

  var PROGRESS = "subscription Progress($shop: String!) { syncProgress(shopDomain: $shop) {" +
    " id status phase objectCount bytesDownloaded fileSize itemsWritten itemsSkipped } }";

  function follow(shop) {
    if (!state.ws || state.progress[shop]) return;
    var stop = state.ws.subscribe(
      { query: PROGRESS, variables: { shop: shop } },
      {
        next: function (message) {
          var run = message.data && message.data.syncProgress;
          if (!run) return;
          var card = state.cards[shop];
          if (card) showProgress(card, run);
          var previous = (state.shops[shop] || {}).lastRun || {};
          if (run.status !== "RUNNING" || previous.status !== run.status || previous.id !== run.id) {
            soon(run.status !== "RUNNING");
          }
        },
        error: function () { delete state.progress[shop]; },
        // Without later runs to follow the subscription ends with its run; a re-sync follows again.
        complete: function () { delete state.progress[shop]; soon(true); },
      }
    );
    state.progress[shop] = stop;
  }

  function soon(runEnded) {
    state.catalogsStale = state.catalogsStale || !!runEnded;
    clearTimeout(state.refreshTimer);
    state.refreshTimer = setTimeout(function () {
      loadShops();
      loadNotifications();
      if (state.catalogsStale) { state.catalogsStale = false; loadCatalogs(true); }  // counts, items
    }, 300);
  }

  // -- shops -----------------------------------------------------------------------------------

  function shopsQuery() {
    var run = "id status phase objectCount bytesDownloaded fileSize itemsWritten itemsSkipped" +
      " skipped { reason count examples } errorCode errorMessage" + (state.caps.errorFix ? " errorFix" : "");
    return "query Shops { shopifySyncs { shopDomain catalogName identifier status active errorCode errorMessage" +
      (state.caps.errorFix ? " errorFix" : "") +
      " lastRun { " + run + " } catalog { name itemCount storageBytes" +
      (state.caps.storageLimit ? " storageLimitBytes" : "") + " }" +
      (state.caps.realtime ? " realtime { backlog lagSeconds lastAppliedAt appliedTotal failedTotal healthy }" : "") +
      " } }";
  }

  function loadAll() {
    loadShops();
    loadNotifications();
    loadCatalogs();
    loadHelp();
  }

  function loadShops() {
    return gql(shopsQuery()).then(function (data) {
      var seen = {};
      data.shopifySyncs.forEach(function (sync) {
        seen[sync.shopDomain] = true;
        state.shops[sync.shopDomain] = sync;
        renderShop(sync);
        follow(sync.shopDomain);
      });
      Object.keys(state.cards).forEach(function (shop) {
        if (!seen[shop]) {
          state.cards[shop].remove();
          delete state.cards[shop];
          delete state.shops[shop];
          if (state.progress[shop]) { state.progress[shop](); delete state.progress[shop]; }
        }
      });
      $("#no-shops").hidden = data.shopifySyncs.length > 0;
    }).catch(report());
  }

  function statusOf(sync) {
    var running = sync.lastRun && sync.lastRun.status === "RUNNING";
    if (sync.status === "ERROR") return { label: sync.active ? "Error" : "Error · inactive", cls: "bad" };
    if (sync.status === "IN_PROGRESS") return { label: "In progress", cls: "busy" };
    if (running) return { label: "Syncing", cls: "busy" };
    if (!sync.active) return { label: "Inactive", cls: "warn" };
    return { label: STATUS_LABELS[sync.status] || sync.status, cls: "ok" };
  }

  function renderShop(sync) {
    var card = state.cards[sync.shopDomain];
    if (!card) {
      card = $("#shop-template").content.firstElementChild.cloneNode(true);
      card.dataset.shop = sync.shopDomain;
      $(".act-resync", card).addEventListener("click", function () { resync(sync.shopDomain); });
      $(".act-cancel", card).addEventListener("click", function () { cancelRun(sync.shopDomain); });
      $(".act-disable", card).addEventListener("click", function () { confirmDisable(sync.shopDomain); });
      $("#shop-list").appendChild(card);
      state.cards[sync.shopDomain] = card;
    }
    text($(".shop-domain", card), sync.shopDomain);
    var status = statusOf(sync);
    var badge = $(".shop-status", card);
    text(badge, status.label);
    badge.className = "badge shop-status " + status.cls;
    text($(".shop-identifier", card), sync.identifier === "SKU" ? "SKU" : "Shopify variant id");
    text($(".shop-catalog", card), sync.catalogName);
    var catalog = sync.catalog || { itemCount: 0, storageBytes: 0 };
    text($(".shop-items", card), number(catalog.itemCount));
    var limit = catalog.storageLimitBytes;
    var share = limit ? Math.min(100, (100 * catalog.storageBytes) / limit) : 0;
    text($(".shop-storage", card), bytes(catalog.storageBytes) + (limit ? " of " + bytes(limit) + " (" +
      (share < 1 && share > 0 ? "<1" : Math.round(share)) + " %)" : ""));
    $(".meter-fill", card).style.width = share.toFixed(1) + "%";
    $(".meter", card).classList.toggle("high", share >= 90);

    var realtime = $(".realtime", card);
    realtime.hidden = !sync.realtime;
    if (sync.realtime) {
      var r = sync.realtime;
      text($(".shop-realtime", card), (r.healthy ? "healthy" : "lagging") + " · backlog " + number(r.backlog) +
        " · lag " + Number(r.lagSeconds).toFixed(1) + " s · applied " + number(r.appliedTotal) +
        (r.failedTotal ? " · failed " + number(r.failedTotal) : ""));
      realtime.classList.toggle("lagging", !r.healthy);
    }

    if (sync.lastRun) showProgress(card, sync.lastRun);
    var code = sync.errorCode || (sync.lastRun && sync.lastRun.errorCode);
    var errorBox = $(".shop-error", card);
    errorBox.hidden = !(sync.status === "ERROR" && (code || sync.errorMessage));
    if (!errorBox.hidden) {
      text($(".error-code", card), code || "");
      text($(".error-message", card), sync.errorMessage || (sync.lastRun && sync.lastRun.errorMessage) || "");
      text($(".error-fix", card), sync.errorFix || (sync.lastRun && sync.lastRun.errorFix) ||
        state.fixes[code] || "Re-sync; if it fails again, read the gateway log.");
    }

    var skipped = (sync.lastRun && sync.lastRun.skipped) || [];
    var details = $(".skipped", card);
    details.hidden = skipped.length === 0;
    text($(".skipped-count", card), number(sync.lastRun ? sync.lastRun.itemsSkipped : 0) + " variants");
    var list = $(".skip-list", card);
    list.replaceChildren.apply(list, skipped.map(function (s) {
      var examples = make("ul", {}, s.examples.slice(0, 3).map(function (e) {
        return make("li", {}, [make("code", { text: e })]);
      }));
      return make("li", {}, [make("strong", { text: s.reason }), document.createTextNode(" · " + number(s.count)),
        examples]);
    }));
  }

  function showProgress(card, run) {
    var bar = $(".bar", card);
    var percent = 0;
    if (run.status === "COMPLETED") percent = 100;
    else if (run.fileSize) percent = Math.min(99, Math.floor((100 * run.bytesDownloaded) / run.fileSize));
    bar.setAttribute("aria-valuenow", String(percent));
    bar.setAttribute("aria-valuetext", percent + " % · " + run.phase);
    bar.setAttribute("aria-label", "Sync progress of " + card.dataset.shop);
    bar.classList.toggle("done", run.status === "COMPLETED");
    bar.classList.toggle("failed", run.status === "FAILED" || run.status === "CANCELED");
    $(".bar-fill", bar).style.width = percent + "%";
    var ended = run.status.toLowerCase();
    text($(".progress-phase", card), run.status === "RUNNING" || run.phase === ended ? run.phase : run.phase + " · " + ended);
    text($(".progress-text", card), percent + " % · " + number(run.itemsWritten) + " written, " +
      number(run.itemsSkipped) + " skipped");
    $(".act-cancel", card).hidden = run.status !== "RUNNING";
    $(".act-resync", card).disabled = run.status === "RUNNING";
  }

  function resync(shop) {
    gql("mutation Resync($shop: String!) { resyncShopifyCatalog(shopDomain: $shop) { id status } }", { shop: shop })
      .then(function () { say("Re-sync of " + shop + " started."); follow(shop); soon(); })
      .catch(report());
  }

  function cancelRun(shop) {
    gql("mutation Cancel($shop: String!) { cancelShopifySync(shopDomain: $shop) { id status } }", { shop: shop })
      .then(function () { say("Cancel requested for " + shop + "."); soon(); })
      .catch(report());
  }

  function confirmDisable(shop) {
    var sync = state.shops[shop] || {};
    var items = (sync.catalog || {}).itemCount || 0;
    var counting = state.caps.alerts
      ? gql("query Subs($name: String!) { catalog(name: $name) { alertSubscriptions(first: 250) { id } } }",
            { name: sync.catalogName })
          .then(function (data) { return ((data.catalog || {}).alertSubscriptions || []).length; })
          .catch(function () { return null; })
      : Promise.resolve(null);
    counting.then(function (subs) {
      var what = subs === null
        ? "and every alert subscription on its items"
        : "and its " + (subs >= 250 ? "250 or more" : number(subs)) + " alert subscription" + (subs === 1 ? "" : "s");
      text($("#disable-text"), "This stops syncing " + shop + " and deletes catalog " + sync.catalogName +
        ": its " + number(items) + " item" + (items === 1 ? "" : "s") + " " + what +
        ". The shop's webhooks are removed. Enabling again starts a full sync.");
      var dialog = $("#disable-dialog");
      dialog.returnValue = "";
      dialog.onclose = function () {
        if (dialog.returnValue !== "confirm") return;
        gql("mutation Disable($shop: String!) { disableShopifySync(shopDomain: $shop) {" +
            " shopDomain itemsDeleted alertSubscriptionsAffected } }", { shop: shop })
          .then(function (data) {
            var r = data.disableShopifySync;
            say("Sync of " + r.shopDomain + " disabled: " + number(r.itemsDeleted) + " items and " +
              number(r.alertSubscriptionsAffected) + " alert subscriptions deleted.");
            loadShops();
            loadCatalogs();
          })
          .catch(report());
      };
      dialog.showModal();
    });
  }

  function enable(event) {
    event.preventDefault();
    var form = event.target;
    text($("#enable-error"), "");
    var input = {
      shopDomain: form.shopDomain.value.trim(),
      accessToken: form.accessToken.value.trim(),
      identifier: form.identifier.value,
    };
    gql("mutation Enable($input: EnableShopifySyncInput!) { enableShopifySync(input: $input) { shopDomain status } }",
        { input: input })
      .then(function (data) {
        form.accessToken.value = "";
        say("Sync of " + data.enableShopifySync.shopDomain + " enabled: the first sync runs.");
        loadShops().then(function () { follow(data.enableShopifySync.shopDomain); loadCatalogs(); });
      })
      .catch(report("#enable-error"));
  }

  // -- notifications ---------------------------------------------------------------------------

  function loadNotifications() {
    return gql("query Notes { notifications(first: 30) { id shopDomain level title message createdAt read }" +
               " unread: notifications(first: 250, unreadOnly: true) { id } }")
      .then(function (data) {
        var unread = data.unread.length;
        var badge = $("#unread-count");
        text(badge, unread >= 250 ? "250+" : unread);
        badge.classList.toggle("zero", unread === 0);
        badge.setAttribute("aria-label", unread + " unread");
        var list = $("#notification-list");
        list.replaceChildren.apply(list, data.notifications.map(function (n) {
          var body = make("div", {}, [
            make("div", { class: "n-level", text: n.level + (n.shopDomain ? " · " + n.shopDomain : "") }),
            make("strong", { class: "n-title", text: n.title }),
            make("p", { class: "n-body", text: n.message }),
            make("time", { datetime: n.createdAt, text: when(n.createdAt) }),
          ]);
          var li = make("li", { class: "notification" + (n.read ? "" : " unread") }, [body]);
          if (!n.read) {
            var button = make("button", { type: "button", class: "quiet", text: "Mark read" });
            button.setAttribute("aria-label", "Mark read: " + n.title);
            button.addEventListener("click", function () {
              gql("mutation Read($id: ID!) { markNotificationRead(id: $id) { id read } }", { id: n.id })
                .then(loadNotifications).catch(report());
            });
            li.appendChild(button);
          }
          return li;
        }));
      })
      .catch(report());
  }

  // -- catalog browser -------------------------------------------------------------------------

  function loadCatalogs(keepPage) {
    return gql("query Catalogs { catalogs { name storeName itemCount } }").then(function (data) {
      state.catalogs = data.catalogs;
      var select = $("#f-catalog");
      var current = select.value;
      select.replaceChildren.apply(select, data.catalogs.map(function (c) {
        return make("option", { value: c.name, text: c.storeName + " · " + c.name + " · " + number(c.itemCount) + " items" });
      }));
      var kept = current && data.catalogs.some(function (c) { return c.name === current; });
      if (kept) select.value = current;
      if (!(keepPage && kept)) resetPages();
      loadItems();
      loadAlerts();
    }).catch(report());
  }

  function currentFilter() {
    var form = $("#filter-form");
    var filter = {};
    ["search", "status", "vendor", "productType", "priceMin", "priceMax"].forEach(function (name) {
      var value = form[name].value.trim();
      if (value) filter[name] = value;
    });
    if (form.inStock.value) filter.inStock = form.inStock.value === "true";
    return filter;
  }

  function resetPages() { state.cursors = [null]; state.pageIndex = 0; }

  var ITEM_ROW = "id productTitle variantTitle sku price inventoryQuantity status productImageUrl variantImageUrl";

  function loadItems() {
    var name = $("#f-catalog").value;
    var tbody = $("#items-table tbody");
    text($("#items-error"), "");
    if (!name) {
      tbody.replaceChildren();
      text($("#items-summary"), "No catalog yet.");
      $("#prev-page").disabled = $("#next-page").disabled = true;
      return Promise.resolve();
    }
    var after = state.cursors[state.pageIndex];
    return gql("query Items($name: String!, $first: Int!, $after: String, $filter: CatalogItemFilter) {" +
               " catalog(name: $name) { items(first: $first, after: $after, filter: $filter) { totalCount" +
               " pageInfo { hasNextPage endCursor } edges { node { " + ITEM_ROW + " } } } } }",
               { name: name, first: PAGE_SIZE, after: after, filter: currentFilter() })
      .then(function (data) {
        if (!data.catalog) { tbody.replaceChildren(); text($("#items-summary"), "This catalog is gone."); return; }
        var page = data.catalog.items;
        tbody.replaceChildren.apply(tbody, page.edges.map(function (edge) { return itemRow(name, edge.node); }));
        var start = state.pageIndex * PAGE_SIZE;
        text($("#items-summary"), page.totalCount === 0 ? "No items match." :
          "Items " + number(start + 1) + "–" + number(start + page.edges.length) + " of " + number(page.totalCount));
        state.cursors[state.pageIndex + 1] = page.pageInfo.endCursor;
        $("#next-page").disabled = !page.pageInfo.hasNextPage;
        $("#prev-page").disabled = state.pageIndex === 0;
      })
      .catch(report("#items-error"));
  }

  function image(url, alt, cls) {
    if (!url) return make("span", { class: cls || "thumb", "aria-hidden": "true" });
    var img = make("img", { src: url, alt: alt, class: cls || "", loading: "lazy", referrerpolicy: "no-referrer" });
    img.addEventListener("error", function () {
      img.replaceWith(make("span", { class: cls === "thumb" ? "thumb" : "no-image", text: cls === "thumb" ? "" :
        "image unavailable" }));
    });
    return img;
  }

  function itemRow(catalog, item) {
    var open = make("button", { type: "button", class: "link", text: item.productTitle });
    open.addEventListener("click", function () { openItem(catalog, item.id); });
    return make("tr", {}, [
      make("td", {}, [image(item.variantImageUrl || item.productImageUrl, "", "thumb")]),
      make("td", {}, [open]),
      make("td", { text: item.variantTitle || "" }),
      make("td", {}, [make("code", { text: item.sku || "–" })]),
      make("td", { class: "num", text: item.price }),
      make("td", { class: "num", text: item.inventoryQuantity == null ? "–" : number(item.inventoryQuantity) }),
      make("td", { text: item.status }),
    ]);
  }

  var ITEM_FIELDS = [
    ["id", "Id"], ["sku", "SKU"], ["productTitle", "Product"], ["variantTitle", "Variant"], ["status", "Status"],
    ["price", "Price"], ["compareAtPrice", "Compare at"], ["inventoryQuantity", "Inventory"], ["vendor", "Vendor"],
    ["productType", "Product type"], ["productHandle", "Handle"], ["productUrl", "URL"],
    ["publishedScope", "Published"], ["options", "Options"], ["optionValues", "Option values"],
    ["shopifyProductId", "Shopify product"], ["shopifyVariantId", "Shopify variant"], ["storeName", "Store"],
  ];

  function openItem(catalog, id) {
    var fields = ITEM_FIELDS.map(function (f) { return f[0]; }).join(" ") + " productImageUrl variantImageUrl";
    gql("query Item($name: String!, $id: String!) { catalog(name: $name) { item(id: $id) { " + fields + " } } }",
        { name: catalog, id: id })
      .then(function (data) {
        var item = data.catalog && data.catalog.item;
        if (!item) { say("That item is no longer in the catalog."); return; }
        text($("#item-title"), item.productTitle + (item.variantTitle ? " · " + item.variantTitle : ""));
        var images = $("#item-images");
        var urls = [item.variantImageUrl, item.productImageUrl].filter(function (u, i, all) {
          return u && all.indexOf(u) === i;
        });
        images.replaceChildren.apply(images, urls.length ? urls.map(function (u, i) {
          return image(u, (i === 0 && item.variantImageUrl ? "Variant image of " : "Product image of ") + item.productTitle);
        }) : [make("span", { class: "no-image", text: "no image" })]);
        var dl = $("#item-fields");
        var rows = [];
        ITEM_FIELDS.forEach(function (f) {
          var value = item[f[0]];
          if (Array.isArray(value)) value = value.join(", ");
          rows.push(make("dt", { text: f[1] }), make("dd", { text: value == null || value === "" ? "–" : value }));
        });
        dl.replaceChildren.apply(dl, rows);
        $("#item-dialog").showModal();
      })
      .catch(report());
  }

  // -- alerts ----------------------------------------------------------------------------------

  function loadAlerts() {
    $("#alerts-unsupported").hidden = state.caps.alerts;
    $("#alerts-body").hidden = !state.caps.alerts;
    var name = $("#f-catalog").value;
    if (!state.caps.alerts || !name) return;
    text($("#alerts-catalog"), name);
    gql("query Alerts($name: String!) { catalog(name: $name) {" +
        " alertRules { backInStock backInStockThreshold priceDrop priceDropMinPercent priceDropMinAmount maxEventsPerMinute }" +
        " alertSubscriptions(first: 50) { id itemId userId types createdAt expiresAt }" +
        " alertEvents(first: 20) { id itemId type previousValue newValue userIds source createdAt } } }",
        { name: name })
      .then(function (data) {
        var catalog = data.catalog;
        if (!catalog) return;
        var rules = catalog.alertRules;
        var form = $("#rules-form");
        form.backInStock.checked = rules.backInStock;
        form.backInStockThreshold.value = rules.backInStockThreshold;
        form.priceDrop.checked = rules.priceDrop;
        form.priceDropMinPercent.value = rules.priceDropMinPercent == null ? "" : rules.priceDropMinPercent;
        form.priceDropMinAmount.value = rules.priceDropMinAmount == null ? "" : rules.priceDropMinAmount;
        form.maxEventsPerMinute.value = rules.maxEventsPerMinute;
        var subs = $("#alert-subscriptions");
        subs.replaceChildren.apply(subs, catalog.alertSubscriptions.map(function (s) {
          return make("li", {}, [make("strong", { text: s.types.join(", ") }),
            document.createTextNode(" on " + s.itemId + " for " + s.userId + " · expires " + when(s.expiresAt))]);
        }));
        var events = $("#alert-events");
        events.replaceChildren.apply(events, catalog.alertEvents.map(function (e) {
          return make("li", { class: "alert-event" }, [make("strong", { text: e.type }),
            document.createTextNode(" · " + e.itemId + ": " + e.previousValue + " → " + e.newValue + " · " +
              e.userIds.length + " user" + (e.userIds.length === 1 ? "" : "s") + " · " + e.source + " · " +
              when(e.createdAt))]);
        }));
      })
      .catch(report("#rules-error"));
  }

  function saveRules(event) {
    event.preventDefault();
    var form = event.target;
    text($("#rules-error"), "");
    var optional = function (value) { value = value.trim(); return value === "" ? null : value; };
    var rules = {
      backInStock: form.backInStock.checked,
      backInStockThreshold: parseInt(form.backInStockThreshold.value || "0", 10),
      priceDrop: form.priceDrop.checked,
      priceDropMinPercent: optional(form.priceDropMinPercent.value) === null ? null : Number(form.priceDropMinPercent.value),
      priceDropMinAmount: optional(form.priceDropMinAmount.value),
      maxEventsPerMinute: parseInt(form.maxEventsPerMinute.value || "1000", 10),
    };
    gql("mutation Rules($name: String!, $rules: AlertRulesInput!) { setAlertRules(catalogName: $name, rules: $rules) {" +
        " backInStock } }", { name: $("#f-catalog").value, rules: rules })
      .then(function () { say("Alert rules saved."); loadAlerts(); })
      .catch(report("#rules-error"));
  }

  // -- help ------------------------------------------------------------------------------------

  state.fixes = {};

  function loadHelp() {
    gql("query Help { syncErrorCodes { code fix } }").then(function (data) {
      var dl = $("#error-codes");
      var rows = [];
      data.syncErrorCodes.forEach(function (e) {
        state.fixes[e.code] = e.fix;
        rows.push(make("dt", { text: e.code }), make("dd", { text: e.fix }));
      });
      dl.replaceChildren.apply(dl, rows);
    }).catch(function () { /* an older gateway: the shop cards still show each error's fix */ });
  }

  // -- wiring ----------------------------------------------------------------------------------

  document.addEventListener("DOMContentLoaded", function () {
    $("#login-form").addEventListener("submit", function (event) {
      event.preventDefault();
      text($("#login-error"), "");
      var token = $("#token").value.trim();
      signIn(token).catch(function (error) { if (!error.silent) text($("#login-error"), problem(error)); });
    });
    $("#sign-out").addEventListener("click", function () { signOut(""); });
    $("#refresh").addEventListener("click", function () { loadAll(); });
    $("#enable-form").addEventListener("submit", enable);
    $("#rules-form").addEventListener("submit", saveRules);
    $("#filter-form").addEventListener("submit", function (event) {
      event.preventDefault(); resetPages(); loadItems();
    });
    $("#filter-form").addEventListener("reset", function () { setTimeout(function () {
      loadCatalogsKeep(); }, 0); });
    $("#f-catalog").addEventListener("change", function () { resetPages(); loadItems(); loadAlerts(); });
    $("#next-page").addEventListener("click", function () { state.pageIndex += 1; loadItems(); });
    $("#prev-page").addEventListener("click", function () {
      state.pageIndex = Math.max(0, state.pageIndex - 1); loadItems();
    });

    var saved = sessionStorage.getItem(TOKEN_KEY);
    if (saved) {
      signIn(saved).catch(function () { signOut("Sign in again."); });
    } else {
      signOut("");
    }
  });

  function loadCatalogsKeep() {
    // A reset clears the catalog choice too: keep the chosen catalog, clear only the filters.
    var select = $("#f-catalog");
    if (!select.value && state.catalogs.length) select.value = state.catalogs[0].name;
    resetPages();
    loadItems();
  }
})();
