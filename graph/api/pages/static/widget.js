/* The storefront chat widget (served at /, usually inside the iframe embed.js inserts).
 *
 * The shopper's JWT comes from the URL fragment (#token=..., what embed.js passes: a fragment
 * never reaches a server log) or, for development, from ?token=...; it is then kept in this
 * tab's sessionStorage and removed from the address bar. Every text from the customer, the
 * agent or the server is put into the page with textContent: nothing is parsed as HTML.
 */
(function () {
  "use strict";

  var ROOT = document.querySelector('meta[name="sgr-root"]').content || "";
  var POLL_MS = 2000;

  var $ = function (id) { return document.getElementById(id); };
  var log = $("log");
  var progress = $("progress");
  var notice = $("notice");
  var form = $("composer");
  var input = $("message");
  var send = $("send");
  var card = $("offer");
  var accept = $("accept");
  var announcer = $("announce");

  var memory = {};
  var store = {
    get: function (k) {
      try { return window.sessionStorage.getItem(k); } catch (e) { return memory[k] || null; }
    },
    set: function (k, v) {
      try { window.sessionStorage.setItem(k, v); } catch (e) { memory[k] = v; }
    },
  };

  var token = null;
  var session = null;
  var busy = false;
  var pending = false;
  var pollTimer = null;
  var offer = null; // the offer on the card (StandingOffer)
  var earlier = null; // a code the shopper holds from an earlier conversation (GET /v1/me)
  var shown = new Map(); // turn number -> {replied: bool}
  var lastCardKey = null;

  // -- small helpers -----------------------------------------------------------------------

  function money(x) {
    return Number(x).toLocaleString("en", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  }

  function percent(x) {
    return Number(x).toLocaleString("en", { maximumFractionDigits: 2 }) + "%";
  }

  function randomId() {
    var bytes = new Uint8Array(12);
    window.crypto.getRandomValues(bytes);
    return "w-" + Array.prototype.map.call(bytes, function (b) {
      return b.toString(16).padStart(2, "0");
    }).join("");
  }

  function takeToken() {
    var fromHash = new URLSearchParams(window.location.hash.slice(1)).get("token");
    var fromQuery = new URLSearchParams(window.location.search).get("token");
    var found = fromHash || fromQuery;
    if (found) {
      store.set("sgr-token", found);
      // the token leaves the address bar (and the history entry)
      window.history.replaceState(null, "", window.location.pathname);
      return found;
    }
    return store.get("sgr-token");
  }

  function showNotice(text) {
    notice.textContent = text;
    notice.hidden = !text;
  }

  function announce(text) {
    announcer.textContent = "";
    window.setTimeout(function () { announcer.textContent = text; }, 50);
  }

  function setProgress(text) {
    progress.textContent = text;
    progress.classList.toggle("active", Boolean(text));
  }

  function updateControls() {
    send.disabled = busy || pending || !session;
    input.disabled = !session;
    accept.disabled = busy || pending;
    input.placeholder = pending
      ? "A manager is reviewing your offer…"
      : "Ask about a discount…";
  }

  function addMessage(who, text, extraClass) {
    var item = document.createElement("li");
    item.className = "msg msg-" + who + (extraClass ? " " + extraClass : "");
    var speaker = document.createElement("span");
    speaker.className = "visually-hidden";
    speaker.textContent = who === "customer" ? "You: " : "Assistant: ";
    var body = document.createElement("span");
    body.className = "msg-text";
    body.textContent = text;
    item.appendChild(speaker);
    item.appendChild(body);
    log.appendChild(item);
    log.scrollTop = log.scrollHeight;
    return item;
  }

  function errorText(status, body) {
    var server = body && typeof body.error === "string" ? body.error : "";
    if (status === 401) return "Your session with the shop has ended. Reload the page to continue.";
    if (status === 409) {
      return pending
        ? "A manager is still reviewing your offer; you can write again once it is decided."
        : "Your previous message is still being handled; try again in a moment.";
    }
    if (status === 429) return "You're sending messages quickly; wait a moment and try again.";
    if (status === 503) return "The assistant is unavailable right now; please try again in a moment.";
    if (status === 400 && server) return server;
    if (status === 403) return "This conversation belongs to another account. Reload the page to start a new one.";
    return server || "Something went wrong (HTTP " + status + "). Please try again.";
  }

  // -- the API -------------------------------------------------------------------------------

  function headers(extra) {
    var h = { Authorization: "Bearer " + token };
    Object.keys(extra || {}).forEach(function (k) { h[k] = extra[k]; });
    return h;
  }

  async function getJSON(path) {
    var res = await fetch(ROOT + path, { headers: headers(), cache: "no-store" });
    var body = null;
    try { body = await res.json(); } catch (e) { body = null; }
    return { status: res.status, body: body };
  }

  function parseFrame(frame) {
    var name = "message";
    var data = [];
    frame.split("\n").forEach(function (line) {
      if (line.indexOf("event:") === 0) name = line.slice(6).trim();
      else if (line.indexOf("data:") === 0) data.push(line.slice(5).replace(/^ /, ""));
    });
    if (!data.length) return null;
    try { return { name: name, data: JSON.parse(data.join("\n")) }; } catch (e) { return null; }
  }

  /* One turn over server-sent events (a POST with a header: fetch + ReadableStream, not
   * EventSource). Calls onEvent(name, data) per frame; resolves to {status, body} for a reply
   * that is not a stream (an error before the turn started). */
  async function postTurn(message, key, onEvent) {
    var res = await fetch(ROOT + "/v1/sessions/" + encodeURIComponent(session) + "/turns", {
      method: "POST",
      headers: headers({
        "Content-Type": "application/json",
        Accept: "text/event-stream",
        "Idempotency-Key": key,
      }),
      body: JSON.stringify({ message: message }),
    });
    var type = res.headers.get("content-type") || "";
    if (type.indexOf("text/event-stream") !== 0 || !res.body) {
      var body = null;
      try { body = await res.json(); } catch (e) { body = null; }
      if (res.ok && body) onEvent("turn", body);
      return { status: res.status, body: body };
    }
    var reader = res.body.getReader();
    var decoder = new TextDecoder();
    var buffer = "";
    for (;;) {
      var chunk = await reader.read();
      if (chunk.done) break;
      buffer += decoder.decode(chunk.value, { stream: true }).replace(/\r\n/g, "\n");
      var end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        var frame = parseFrame(buffer.slice(0, end));
        buffer = buffer.slice(end + 2);
        if (frame) onEvent(frame.name, frame.data);
      }
    }
    return { status: res.status, body: null };
  }

  // -- the offer card ------------------------------------------------------------------------

  function remaining(iso) {
    var ms = Date.parse(iso) - Date.now();
    if (!(ms > 0)) return null;
    var s = Math.floor(ms / 1000);
    var h = Math.floor(s / 3600);
    var m = Math.floor((s % 3600) / 60);
    var sec = s % 60;
    if (h >= 1) return h + " h " + String(m).padStart(2, "0") + " min";
    return m + " min " + String(sec).padStart(2, "0") + " s";
  }

  function tick() {
    if (!offer || card.hidden) return;
    var left = remaining(offer.expires_at);
    var expiry = $("offer-expiry");
    if (left === null) {
      expiry.textContent = "This offer has expired.";
      card.dataset.status = "expired";
      accept.hidden = true;
    } else {
      expiry.textContent = (offer.status === "accepted" ? "Valid for " : "Expires in ") + left;
    }
  }

  function renderOffer(next, isPending) {
    var fromEarlier = false;
    if (!next && !isPending && earlier) {
      next = earlier; // this conversation has none: show the code they already hold
      fromEarlier = true;
    }
    var live = next && (next.status === "proposed" || next.status === "accepted");
    offer = live ? next : null;
    card.hidden = !offer && !isPending;
    $("offer-details").hidden = !offer;
    $("offer-title").textContent = offer ? "Your offer" : "Special offer";
    var status = $("offer-status");
    if (offer) {
      $("offer-percent").textContent = percent(offer.discount_percent) + " off";
      $("offer-amount").textContent = "(" + money(offer.amount) + " off your cart)";
      $("offer-code").textContent = offer.code;
    }
    var key = [offer && offer.code, offer && offer.status, isPending].join("|");
    if (isPending) {
      card.dataset.status = "pending";
      status.textContent = offer
        ? "Waiting for a manager to review a better offer; this code stands meanwhile."
        : "Waiting for a manager to review a special offer for you…";
    } else if (offer && offer.status === "accepted") {
      card.dataset.status = "accepted";
      status.textContent = "Accepted: the code is applied to your cart.";
    } else if (offer && fromEarlier) {
      card.dataset.status = "proposed";
      status.textContent = "Your code from an earlier chat: use it at checkout.";
    } else if (offer) {
      card.dataset.status = "proposed";
      status.textContent = "";
    }
    accept.hidden = !(offer && offer.status === "proposed" && !isPending && !fromEarlier);
    tick();
    if (lastCardKey !== null && key !== lastCardKey) {
      if (isPending) announce("A manager is reviewing a special offer for you.");
      else if (offer && offer.status === "accepted") announce("Offer accepted. Code " + offer.code + ".");
      else if (offer) announce("New offer: " + percent(offer.discount_percent) + " off, code " + offer.code + ".");
    }
    lastCardKey = key;
  }

  // -- the conversation ----------------------------------------------------------------------

  function syncTurns(turns) {
    (turns || []).forEach(function (t) {
      var seen = shown.get(t.turn);
      if (!seen) {
        addMessage("customer", t.customer);
        if (t.reply) addMessage("agent", t.reply);
        shown.set(t.turn, { replied: Boolean(t.reply) });
      } else if (!seen.replied && t.reply) {
        addMessage("agent", t.reply);
        seen.replied = true;
      }
    });
  }

  var waitingNote = null;

  function signedOut() {
    // the shop's token expired: nothing more can be sent or polled until a reload
    showNotice(errorText(401));
    session = null;
    if (pollTimer !== null) {
      window.clearInterval(pollTimer);
      pollTimer = null;
    }
    updateControls();
  }

  function setPending(value) {
    if (value && !pending && !waitingNote) {
      waitingNote = addMessage(
        "agent",
        "A manager is reviewing a special offer for you. I'll post it here as soon as it's decided.",
        "msg-hint"
      );
    } else if (!value) {
      waitingNote = null;
    }
    pending = value;
    updateControls();
    if (pending && pollTimer === null && session) {
      pollTimer = window.setInterval(poll, POLL_MS);
    } else if (!pending && pollTimer !== null) {
      window.clearInterval(pollTimer);
      pollTimer = null;
    }
  }

  async function refresh() {
    var r = await getJSON("/v1/sessions/" + encodeURIComponent(session) + "/state");
    if (r.status !== 200 || !r.body) {
      if (r.status === 401) signedOut();
      return null;
    }
    syncTurns(r.body.turns);
    renderOffer(r.body.offer, r.body.approval_pending);
    setPending(r.body.approval_pending);
    return r.body;
  }

  async function poll() {
    try {
      await refresh();
    } catch (e) {
      /* offline for a moment: the next poll tries again */
    }
  }

  var RETRIES = [1000, 3000]; // ms before the second and third attempt of a message

  function sleep(ms) {
    return new Promise(function (resolve) { window.setTimeout(resolve, ms); });
  }

  function newKey() {
    if (window.crypto && window.crypto.randomUUID) return window.crypto.randomUUID();
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return b.toString(16).padStart(2, "0"); }).join("");
  }

  async function say(text) {
    if (busy || pending || !text) return;
    busy = true;
    updateControls();
    showNotice("");
    var mine = addMessage("customer", text);
    setProgress("Sending…");
    var turn = null;
    var failed = null;
    // One key per message: when the connection drops, the message is sent again with it and
    // the shop answers with the turn it already ran (never a second one).
    var key = newKey();
    for (var attempt = 0; attempt <= RETRIES.length; attempt++) {
      turn = failed = null;
      try {
        var r = await postTurn(text, key, function (name, data) {
          if (name === "node") setProgress(data.label + "…");
          else if (name === "accepted") setProgress("Reading your message…");
          else if (name === "turn") turn = data;
          else if (name === "error") failed = data;
        });
        if (!turn && !failed) failed = { status: r.status, error: r.body && r.body.error, body: r.body };
      } catch (e) {
        failed = { network: true };
      }
      // a 409 after a dropped attempt: that attempt still runs; its answer comes next time
      var again = turn === null && failed && (failed.network || (failed.status === 409 && attempt > 0));
      if (!again || attempt === RETRIES.length) break;
      setProgress("Connection lost, trying again…");
      await sleep(RETRIES[attempt]);
    }
    setProgress("");
    if (turn) {
      shown.set(turn.turn, { replied: Boolean(turn.reply) });
      if (turn.reply) addMessage("agent", turn.reply);
    } else {
      mine.classList.add("msg-failed");
      mine.appendChild(document.createTextNode(" (not sent)"));
      if (failed.network) showNotice("Can't reach the shop's assistant. Check your connection and try again.");
      else if (failed.status === 401) signedOut();
      else showNotice(errorText(failed.status || 500, failed.body || failed));
    }
    busy = false;
    updateControls();
    if (!session) return;
    try {
      await refresh();
    } catch (e) {
      /* the card is refreshed by the next turn or poll */
    }
    if (!pending) input.focus();
  }

  // -- start ---------------------------------------------------------------------------------

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var text = input.value.trim();
    if (!text || busy || pending) return;
    input.value = "";
    say(text);
  });

  accept.addEventListener("click", function () {
    say("I accept");
  });

  async function start() {
    token = takeToken();
    if (!token) {
      $("cart").textContent = "";
      showNotice("This chat opens from the shop's cart page, where you are signed in.");
      return;
    }
    var me;
    try {
      me = await getJSON("/v1/me");
    } catch (e) {
      showNotice("Can't reach the shop's assistant. Check your connection and reload the page.");
      return;
    }
    if (me.status !== 200 || !me.body) {
      $("cart").textContent = "";
      showNotice(me.status === 404
        ? "We couldn't find your cart, so there is nothing to discuss yet."
        : errorText(me.status, me.body));
      return;
    }
    $("cart").textContent = "Your cart: " + money(me.body.cart_value);
    earlier = me.body.offer;
    var key = "sgr-session:" + me.body.user_id;
    session = store.get(key);
    if (!session) {
      session = randomId();
      store.set(key, session);
    }
    var state = null;
    try {
      state = await refresh();
    } catch (e) {
      state = null;
    }
    if (!state) renderOffer(null, false);
    if (!state || !state.turns.length) {
      addMessage("agent", "Hi! Ask me anything about your cart or your order.", "msg-hint");
    }
    updateControls();
    if (window.top === window) input.focus();
  }

  window.setInterval(tick, 1000);
  start();
})();
