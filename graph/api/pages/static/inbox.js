/* The manager inbox (/manager): pending approvals, kept live by polling GET /v1/approvals.
 *
 * Signed in by the HttpOnly cookie; decisions are POSTs carrying the page's CSRF token
 * (<meta name="csrf-token">) as X-CSRF-Token. A decision another manager took first answers
 * 409 and the card shows it as taken. Every value is put in the page with textContent.
 */
(function () {
  "use strict";

  var ROOT = document.querySelector('meta[name="sgr-root"]').content || "";
  var CSRF = document.querySelector('meta[name="csrf-token"]').content;
  var POLL_MS = 2000;
  var KEEP_DECIDED_MS = 30000;

  var list = document.getElementById("approvals");
  var status = document.getElementById("inbox-status");
  var decidedSection = document.getElementById("decided-section");
  var decidedList = document.getElementById("decided");

  var cards = new Map(); // session -> {node, item, state}
  var signedOut = false;
  var timer = null;

  // -- helpers -------------------------------------------------------------------------------

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function money(x) {
    if (x === null || x === undefined) return "–";
    return Number(x).toLocaleString("en", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  }

  function pct(x) {
    if (x === null || x === undefined) return "–";
    return Number(x).toLocaleString("en", { maximumFractionDigits: 2 }) + "%";
  }

  function share(x) {
    if (x === null || x === undefined) return "–";
    return Math.round(Number(x) * 100) + "%";
  }

  function ago(iso) {
    var s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
    if (s < 60) return "just now";
    if (s < 3600) return Math.floor(s / 60) + " min ago";
    if (s < 86400) return Math.floor(s / 3600) + " h ago";
    return Math.floor(s / 86400) + " d ago";
  }

  function humanize(key) {
    var text = key.replace(/_/g, " ");
    return text.charAt(0).toUpperCase() + text.slice(1);
  }

  function fact(dl, term, value) {
    var row = el("div", "fact");
    row.appendChild(el("dt", null, term));
    row.appendChild(el("dd", null, value));
    dl.appendChild(row);
  }

  function setStatus() {
    if (signedOut) return;
    var n = 0;
    cards.forEach(function (c) { if (c.state === "pending") n += 1; });
    status.textContent = n === 0
      ? "No approvals waiting. New ones appear here by themselves."
      : n === 1 ? "1 approval waiting." : n + " approvals waiting.";
  }

  function signOutNotice() {
    signedOut = true;
    status.textContent = "";
    status.appendChild(document.createTextNode("Your sign-in has expired. "));
    var link = el("a", null, "Sign in again");
    link.href = ROOT + "/manager";
    status.appendChild(link);
    if (timer !== null) window.clearInterval(timer);
  }

  // -- a card --------------------------------------------------------------------------------

  function build(a) {
    var node = el("article", "approval card");
    node.setAttribute("data-testid", "approval");
    node.dataset.session = a.session;
    node.dataset.state = "pending";
    var headingId = "approval-" + cards.size + "-" + Math.random().toString(36).slice(2, 8);
    node.setAttribute("aria-labelledby", headingId);

    var head = el("header", "approval-head");
    var title = el("h2", "approval-title");
    title.id = headingId;
    title.appendChild(el("span", "approval-customer", a.user_id));
    title.appendChild(document.createTextNode(" asks for "));
    title.appendChild(el("span", "approval-percent", pct(a.proposed_percent)));
    head.appendChild(title);
    if (a.churn_band) head.appendChild(el("span", "badge badge-" + a.churn_band, a.churn_band + " churn"));
    var when = el("p", "approval-when muted", "");
    head.appendChild(when);
    node.appendChild(head);

    var proposal = el("p", "approval-proposal");
    proposal.appendChild(document.createTextNode("Proposal: "));
    proposal.appendChild(el("strong", null, pct(a.proposed_percent) + " off = " + money(a.amount)));
    proposal.appendChild(document.createTextNode(" on a cart of " + money(a.cart_value) +
      " · policy cap " + pct(a.cap_percent)));
    node.appendChild(proposal);

    if (a.reasons && a.reasons.length) {
      var reasons = el("ul", "approval-reasons");
      reasons.setAttribute("aria-label", "Why it needs approval");
      a.reasons.forEach(function (r) { reasons.appendChild(el("li", null, r)); });
      node.appendChild(reasons);
    }

    var c = a.customer || {};
    var facts = el("dl", "facts");
    fact(facts, "Customer", a.user_id);
    fact(facts, "Cart", money(c.cart_value !== undefined && c.cart_value !== null ? c.cart_value : a.cart_value));
    fact(facts, "Margin", share(c.margin));
    fact(facts, "Policy cap", pct(a.cap_percent));
    fact(facts, "Churn risk", share(c.churn_probability) + (a.churn_band ? " (" + a.churn_band + ")" : ""));
    fact(facts, "Lifetime value", money(c.lifetime_value));
    fact(facts, "Inventory", c.inventory || "–");
    fact(facts, "Orders every", c.avg_days_between_orders ? Math.round(c.avg_days_between_orders) + " days" : "–");
    var standing = a.standing_offer;
    fact(facts, "Standing offer", standing
      ? pct(standing.discount_percent) + " · " + standing.code + " (" + standing.status + ")"
      : "none");
    node.appendChild(facts);

    var reasoning = a.reasoning || {};
    var keys = Object.keys(reasoning);
    if (keys.length) {
      var details = el("details", "reasoning");
      details.open = true;
      details.appendChild(el("summary", null, "The model's reasoning"));
      var rdl = el("dl", null);
      keys.forEach(function (k) { fact(rdl, humanize(k), reasoning[k]); });
      details.appendChild(rdl);
      node.appendChild(details);
    }

    var convo = el("details", "conversation");
    convo.appendChild(el("summary", null, "Conversation"));
    var turns = el("ol", "turns");
    convo.appendChild(turns);
    convo.addEventListener("toggle", function () {
      if (convo.open && !turns.dataset.loaded) loadConversation(a.session, turns);
    });
    node.appendChild(convo);

    var formEl = el("form", "decide");
    formEl.noValidate = true; // the percent is checked below, with a message in the card
    var label = el("label", "percent-field");
    label.appendChild(el("span", null, "Percent"));
    var input = el("input");
    input.type = "number";
    input.name = "percent";
    input.min = "0";
    input.max = String(a.proposed_percent);
    input.step = "0.5";
    input.value = String(a.proposed_percent);
    input.inputMode = "decimal";
    label.appendChild(input);
    formEl.appendChild(label);
    var approve = el("button", "primary", "Approve");
    approve.type = "submit";
    var reject = el("button", "danger", "Reject");
    reject.type = "button";
    formEl.appendChild(approve);
    formEl.appendChild(reject);
    node.appendChild(formEl);
    var outcome = el("p", "outcome");
    outcome.setAttribute("role", "status");
    node.appendChild(outcome);

    var card = { node: node, item: a, state: "pending", when: when, outcome: outcome,
      buttons: [approve, reject], input: input };
    formEl.addEventListener("submit", function (event) {
      event.preventDefault();
      decide(card, "approve");
    });
    reject.addEventListener("click", function () { decide(card, "reject"); });
    refreshWhen(card);
    return card;
  }

  function refreshWhen(card) {
    var a = card.item;
    var left = Math.max(0, Date.parse(a.expires_at) - Date.now()) / 3600000;
    card.when.textContent = "Asked " + ago(a.created_at) + " · expires in " +
      (left >= 1 ? Math.floor(left) + " h" : Math.ceil(left * 60) + " min");
  }

  async function loadConversation(session, turns) {
    turns.dataset.loaded = "1";
    turns.textContent = "";
    turns.appendChild(el("li", "muted", "Loading…"));
    try {
      var res = await fetch(ROOT + "/v1/sessions/" + encodeURIComponent(session), {
        credentials: "same-origin", cache: "no-store",
      });
      var body = await res.json();
      turns.textContent = "";
      if (!res.ok) {
        turns.appendChild(el("li", "muted", body.error || "Could not load the conversation."));
        return;
      }
      body.forEach(function (t) {
        var li = el("li", null);
        li.appendChild(el("p", "turn-customer", "Customer: " + t.customer));
        if (t.reply) li.appendChild(el("p", "turn-reply", "Agent: " + t.reply));
        turns.appendChild(li);
      });
    } catch (e) {
      turns.dataset.loaded = "";
      turns.textContent = "";
      turns.appendChild(el("li", "muted", "Could not load the conversation."));
    }
  }

  function finish(card, state, text) {
    card.state = state;
    card.node.dataset.state = state;
    card.node.classList.add("is-decided");
    card.buttons.forEach(function (b) { b.disabled = true; });
    card.input.disabled = true;
    card.outcome.textContent = text;
    card.outcome.className = "outcome outcome-" + state;
    setStatus();
    window.setTimeout(function () { retire(card); }, KEEP_DECIDED_MS);
  }

  function retire(card) {
    if (!cards.has(card.item.session) || cards.get(card.item.session) !== card) return;
    cards.delete(card.item.session);
    card.node.remove();
    var li = el("li", "decided-item");
    li.setAttribute("data-testid", "decided");
    li.appendChild(el("span", null, card.item.user_id + " · " + pct(card.item.proposed_percent) + " asked: "));
    li.appendChild(el("span", "outcome-" + card.state, card.outcome.textContent));
    decidedList.insertBefore(li, decidedList.firstChild);
    while (decidedList.children.length > 10) decidedList.lastChild.remove();
    decidedSection.hidden = false;
    setStatus();
  }

  async function decide(card, decision) {
    if (card.state !== "pending") return;
    var body = { decision: decision };
    if (decision === "approve") {
      var raw = card.input.value.trim();
      var value = raw === "" ? card.item.proposed_percent : Number(raw);
      if (!(value >= 0) || value > card.item.proposed_percent) {
        card.outcome.textContent = "Enter a percent from 0 to " + pct(card.item.proposed_percent) + ".";
        card.outcome.className = "outcome outcome-error";
        card.input.focus();
        return;
      }
      if (value !== card.item.proposed_percent) body.percent = value;
    }
    card.state = "sending";
    card.buttons.forEach(function (b) { b.disabled = true; });
    card.outcome.className = "outcome";
    card.outcome.textContent = decision === "approve" ? "Approving…" : "Rejecting…";
    var res;
    var reply = null;
    try {
      res = await fetch(ROOT + "/v1/approvals/" + encodeURIComponent(card.item.session), {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": CSRF },
        body: JSON.stringify(body),
      });
      try { reply = await res.json(); } catch (e) { reply = null; }
    } catch (e) {
      card.state = "pending";
      card.buttons.forEach(function (b) { b.disabled = false; });
      card.outcome.className = "outcome outcome-error";
      card.outcome.textContent = "Could not reach the server; try again.";
      return;
    }
    if (res.ok || res.status === 503) {
      var offer = reply && reply.offer;
      if (decision === "approve") {
        finish(card, "approved", "Approved " + pct(offer ? offer.discount_percent : value) +
          (offer && offer.code ? " · code " + offer.code : "") + ". The customer has been told.");
      } else {
        finish(card, "rejected", "Rejected. The customer has been told" +
          (offer && offer.code ? " (they keep " + pct(offer.discount_percent) + ", code " + offer.code + ")" : "") + ".");
      }
    } else if (res.status === 409) {
      finish(card, "taken", "Taken: another manager already decided this one.");
    } else if (res.status === 401) {
      signOutNotice();
    } else {
      card.state = "pending";
      card.buttons.forEach(function (b) { b.disabled = false; });
      card.outcome.className = "outcome outcome-error";
      card.outcome.textContent = (reply && reply.error) || "The decision failed (HTTP " + res.status + ").";
    }
  }

  // -- the list ------------------------------------------------------------------------------

  function place(pending) {
    var wanted = new Set(pending.map(function (a) { return a.session; }));
    cards.forEach(function (card, session) {
      if (card.state === "pending" && !wanted.has(session)) {
        finish(card, "taken", "Taken: another manager already decided this one.");
      }
    });
    var anchor = skip(list.firstChild);
    pending.forEach(function (a) {
      var card = cards.get(a.session);
      if (card && card.item.code !== a.code && card.state !== "pending") {
        retire(card); // a new proposal in the same session: a fresh card
        card = null;
      }
      if (!card) {
        card = build(a);
        cards.set(a.session, card);
        list.insertBefore(card.node, anchor);
        return;
      }
      card.item = a;
      refreshWhen(card);
      if (card.node.dataset.state !== "pending") return; // decided here: it stays put
      if (card.node === anchor) anchor = skip(anchor.nextSibling);
      else list.insertBefore(card.node, anchor); // only when the order changed
    });
    setStatus();
  }

  function skip(node) {
    while (node && node.dataset.state !== "pending") node = node.nextSibling;
    return node;
  }

  async function poll() {
    if (signedOut) return;
    try {
      var res = await fetch(ROOT + "/v1/approvals", { credentials: "same-origin", cache: "no-store" });
      if (res.status === 401) {
        signOutNotice();
        return;
      }
      if (!res.ok) return;
      place(await res.json());
    } catch (e) {
      /* a moment offline: the next poll tries again */
    }
  }

  poll();
  timer = window.setInterval(poll, POLL_MS);
})();
