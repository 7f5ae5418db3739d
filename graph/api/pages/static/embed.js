/* The chat widget for a shop's cart page. Paste one tag where the chat should appear:
 *
 *   <script src="https://AGENT/static/embed.js" data-token="JWT" async></script>
 *
 * It inserts an <iframe> of https://AGENT/ right after itself (or into the element named by
 * data-target="#some-id") and hands the shopper's JWT over in the URL fragment
 * (#token=...): a fragment is never sent to a server, so the token stays out of every log.
 * Optional: data-height (default 560px), data-title (the frame's accessible name).
 * The agent must list the shop's origin in SGR_ALLOWED_ORIGINS (its frame-ancestors).
 */
(function () {
  "use strict";
  var script = document.currentScript ||
    document.querySelector('script[src*="/static/embed.js"][data-token]');
  if (!script) return;
  var token = script.getAttribute("data-token") || "";
  var agent = new URL(script.src, window.location.href);
  var frame = document.createElement("iframe");
  frame.src = agent.origin + agent.pathname.replace(/\/static\/embed\.js$/, "/") +
    "#token=" + encodeURIComponent(token);
  frame.title = script.getAttribute("data-title") || "Chat with us about your cart";
  frame.setAttribute("referrerpolicy", "no-referrer");
  frame.style.width = "100%";
  frame.style.maxWidth = "440px";
  var height = script.getAttribute("data-height") || "560px";
  frame.style.height = /^[0-9]+$/.test(height) ? height + "px" : height;
  frame.style.border = "1px solid #d9dee5";
  frame.style.borderRadius = "12px";
  frame.style.display = "block";
  frame.style.background = "#ffffff";
  var target = script.getAttribute("data-target");
  var host = target ? document.querySelector(target) : null;
  if (host) host.appendChild(frame);
  else script.parentNode.insertBefore(frame, script.nextSibling);
})();
