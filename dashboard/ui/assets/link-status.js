// The page's own link to its server, shown by the browser.
//
// Everything else on a served page is rendered by the server, so nothing else can say that
// the server is gone (kill -9 leaves a green "Connected" badge behind). This script watches
// the page's Bokeh WebSocket itself and shows its state in a small badge, #dashboard-link,
// in the light DOM (data-state: connecting, connected, disconnected, reloading, refused).
//
// When the socket closes, it asks the server's probe URL (?probe=, /api/health by default)
// every 0.5-2 s whether the server is back. The old session died with the connection (a
// restarted server never had it), so recovering means loading the page again: the script
// keeps what the user typed but did not send (text inputs and text areas, never passwords)
// in sessionStorage, reloads, and puts it back into the same fields. A server that answers
// but refuses the socket gets three reloads in a row, then the badge asks for a manual one.
//
// Why the socket and not Bokeh's "connection_lost" document event: Bokeh sends that event
// only once a session exists, and has no event for "connected" at all.
(function () {
  "use strict";
  if (window.__dashboardLink) {
    return;
  }
  var script = document.currentScript;
  var options = script ? new URL(script.src, location.href).searchParams : new URLSearchParams();
  var PROBE = options.get("probe") || "/api/health";
  var FIRST_DELAY = 500; // ms before the first look at whether the server is back
  var MAX_DELAY = 2000; // ms between looks, at most
  var PROBE_TIMEOUT = 3000; // ms a look may take (a stopped but listening server hangs)
  var DRAFTS = "dashboard-link-drafts"; // sessionStorage key: this tab only
  var RELOADS = "dashboard-link-reloads"; // reloads in a row whose socket never opened
  var MAX_RELOADS = 3; // then the server answers but refuses the page's socket: stop
  var DRAFTS_MAX_AGE = 5 * 60 * 1000; // ms: older drafts belong to another visit
  var RESTORE_FOR = 20000; // ms a reloaded page looks for the fields to put drafts back into
  var MAX_FIELDS = 20;
  var MAX_DRAFT = 20000; // characters per field
  var TEXTS = {
    connecting: "● Connecting…",
    connected: "● Live",
    disconnected: "● Disconnected",
    reloading: "● Server is back: reloading…",
    refused: "● Disconnected: reload the page to retry",
  };
  var TITLES = {
    connecting: "This page is connecting to its server.",
    connected: "This page is connected to its server: what it shows is live.",
    disconnected:
      "This page lost its server: what it shows is not updated. It reloads by itself " +
      "as soon as the server answers again, and keeps what you typed.",
    reloading: "The server answers again: this page reloads.",
    refused:
      "The server answers, but the page could not connect after " + MAX_RELOADS +
      " reloads; it no longer tries by itself.",
  };
  var CSS =
    "#dashboard-link{position:fixed;left:12px;bottom:12px;z-index:2147483000;" +
    "padding:3px 10px;border-radius:999px;font:600 12px/1.6 system-ui,sans-serif;" +
    "box-shadow:0 1px 3px rgba(0,0,0,.25);color:#b45309;background:#fef3c7}" +
    '#dashboard-link[data-state="connected"]{color:#15803d;background:#dcfce7}' +
    // Room below the page's end, so that the badge never covers its last controls (the AI
    // chat's Send on a phone); whichever box scrolls, the page's or the template's main.
    "body,#main{padding-bottom:44px}" +
    '#dashboard-link[data-state="disconnected"],#dashboard-link[data-state="refused"]' +
    "{color:#b91c1c;background:#fee2e2}" +
    // What the server rendered is stale: dim it (opacity keeps fixed elements in place).
    'html[data-dashboard-link="disconnected"] body>:not(#dashboard-link):not(.notyf),' +
    'html[data-dashboard-link="refused"] body>:not(#dashboard-link):not(.notyf)' +
    "{opacity:.5;transition:opacity .3s}";

  var link = { state: "connecting", retries: 0, opened: false };
  window.__dashboardLink = link;
  var badge = null;
  var unloading = false;
  var probing = null;

  function render() {
    document.documentElement.setAttribute("data-dashboard-link", link.state);
    if (badge === null && document.body) {
      var style = document.createElement("style");
      style.textContent = CSS;
      document.head.appendChild(style);
      badge = document.createElement("div");
      badge.id = "dashboard-link";
      badge.setAttribute("role", "status");
      badge.setAttribute("aria-live", "polite");
      document.body.appendChild(badge);
    }
    if (badge !== null) {
      var text = TEXTS[link.state];
      if (link.state === "disconnected" && link.retries > 0) {
        text += " (Retry " + link.retries + ")";
      }
      badge.setAttribute("data-state", link.state);
      badge.title = TITLES[link.state];
      badge.textContent = text;
    }
  }

  function setState(state) {
    link.state = state;
    render();
  }

  // -- the socket -----------------------------------------------------------------------

  function isBokeh(protocols) {
    var list = Array.isArray(protocols) ? protocols : [protocols];
    return list.indexOf("bokeh") >= 0;
  }

  function watch(socket) {
    socket.addEventListener("open", function () {
      link.opened = true;
      forget(RELOADS);
      if (link.state !== "reloading") {
        link.retries = 0;
        setState("connected");
      }
    });
    socket.addEventListener("close", function () {
      // Leaving or reloading the page closes the socket too; that is no loss.
      if (!unloading && link.state !== "reloading") {
        lost();
      }
    });
  }

  var NativeWebSocket = window.WebSocket;
  // Observes, changes nothing: every socket is a native one; Bokeh's is watched.
  var WatchedWebSocket = class extends NativeWebSocket {
    constructor(url, protocols) {
      super(url, protocols);
      if (protocols !== undefined && isBokeh(protocols)) {
        watch(this);
      }
    }
  };
  window.WebSocket = WatchedWebSocket;
  addEventListener("beforeunload", function () {
    unloading = true;
  });
  addEventListener("pageshow", function () {
    unloading = false; // back from the bfcache, or the unload was cancelled
  });

  // -- until the server is back -----------------------------------------------------------

  function lost() {
    if (probing !== null) {
      return;
    }
    link.retries = 0;
    setState("disconnected");
    probing = setTimeout(probe, FIRST_DELAY);
  }

  function nextDelay() {
    var delay = Math.min(MAX_DELAY, FIRST_DELAY * Math.pow(2, link.retries));
    return delay * (0.75 + Math.random() * 0.5); // tabs a restart dropped together spread out
  }

  function probe() {
    link.retries += 1;
    render();
    var controller = new AbortController();
    var timer = setTimeout(function () {
      controller.abort();
    }, PROBE_TIMEOUT);
    fetch(PROBE, { cache: "no-store", credentials: "same-origin", signal: controller.signal })
      .then(function (response) {
        // Any answer but a proxy's "no upstream" (5xx) means the server is there again.
        return response.status < 500;
      })
      .catch(function () {
        return false;
      })
      .then(function (back) {
        clearTimeout(timer);
        if (back) {
          reload();
        } else {
          probing = setTimeout(probe, nextDelay());
        }
      });
  }

  function reload() {
    // A server that answers but refuses the page's socket (an origin or proxy problem) would
    // have the page reload forever: after a few reloads in a row without a socket, stop.
    var reloads = link.opened ? 0 : Number(recall(RELOADS)) || 0;
    if (reloads >= MAX_RELOADS) {
      setState("refused");
      return;
    }
    keep(RELOADS, String(reloads + 1));
    setState("reloading");
    try {
      saveDrafts();
    } catch (error) {
      console.warn("dashboard: could not keep the unsent input", error);
    }
    location.reload();
  }

  function keep(key, value) {
    try {
      sessionStorage.setItem(key, value);
    } catch (error) {
      // storage full or disabled: the page still recovers, it just forgets
    }
  }

  function recall(key) {
    try {
      return sessionStorage.getItem(key);
    } catch (error) {
      return null;
    }
  }

  function forget(key) {
    try {
      sessionStorage.removeItem(key);
    } catch (error) {
      // nothing kept
    }
  }

  // -- unsent input ---------------------------------------------------------------------

  function textFields() {
    // Panel renders into (open) shadow roots: walk them all, in document order.
    var fields = [];
    var seen = {};
    (function walk(root) {
      var elements = root.querySelectorAll("*");
      for (var i = 0; i < elements.length; i++) {
        var element = elements[i];
        if (isTextField(element)) {
          var key = fieldKey(element);
          seen[key] = (seen[key] || 0) + 1;
          fields.push({ key: key + "#" + seen[key], element: element });
        }
        if (element.shadowRoot) {
          walk(element.shadowRoot);
        }
      }
    })(document);
    return fields;
  }

  function isTextField(element) {
    if (element.tagName === "TEXTAREA") {
      return true;
    }
    if (element.tagName !== "INPUT") {
      return false;
    }
    var type = (element.getAttribute("type") || "text").toLowerCase();
    return ["text", "search", "email", "url", "tel"].indexOf(type) >= 0;
  }

  function fieldKey(element) {
    // What identifies a field across page loads: Bokeh's ids change, its labels do not.
    return [
      element.tagName,
      element.getAttribute("placeholder") || "",
      element.getAttribute("name") || "",
      element.getAttribute("aria-label") || "",
    ].join("|");
  }

  function saveDrafts() {
    var drafts = [];
    var fields = textFields();
    for (var i = 0; i < fields.length && drafts.length < MAX_FIELDS; i++) {
      var value = fields[i].element.value;
      if (value && value.length <= MAX_DRAFT) {
        drafts.push({ key: fields[i].key, value: value });
      }
    }
    if (drafts.length > 0) {
      keep(DRAFTS, JSON.stringify({ path: location.pathname, saved: Date.now(), drafts: drafts }));
    }
  }

  function restoreDrafts() {
    var kept;
    try {
      kept = JSON.parse(recall(DRAFTS) || "null");
    } catch (error) {
      kept = null;
    }
    if (kept === null || typeof kept !== "object") {
      return;
    }
    forget(DRAFTS); // once: a later reload starts clean
    if (
      kept.path !== location.pathname ||
      !(Date.now() - kept.saved < DRAFTS_MAX_AGE) ||
      !Array.isArray(kept.drafts)
    ) {
      return;
    }
    var pending = kept.drafts.slice(0, MAX_FIELDS);
    var deadline = Date.now() + RESTORE_FOR;
    (function attempt() {
      var fields = textFields();
      pending = pending.filter(function (draft) {
        for (var i = 0; i < fields.length; i++) {
          var element = fields[i].element;
          if (fields[i].key === draft.key && !element.value) {
            element.value = String(draft.value);
            // Bokeh's view reads "input" into the model (value_input): the server sees the
            // draft as typed, and nothing is sent ("change" and Enter would send).
            element.dispatchEvent(new Event("input", { bubbles: true, composed: true }));
            return false;
          }
        }
        return true;
      });
      if (pending.length > 0 && Date.now() < deadline) {
        setTimeout(attempt, 250);
      }
    })();
  }

  // -- start ------------------------------------------------------------------------------

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () {
      render();
      restoreDrafts();
    });
  } else {
    render();
    restoreDrafts();
  }
})();
