// Live alerts: server-sent events from /alerts/stream; each message is a rendered alert card.
(function () {
  "use strict";
  var list = document.getElementById("alerts");
  var live = document.getElementById("live");
  if (!list || !live || !window.EventSource) { return; }
  var after = live.getAttribute("data-after") || "0";
  var source = new EventSource("/alerts/stream?after=" + encodeURIComponent(after));
  source.addEventListener("alert", function (msg) {
    var holder = document.createElement("div");
    holder.innerHTML = msg.data;            // rendered and escaped by the server
    var card = holder.firstElementChild;
    if (!card) { return; }
    var old = document.getElementById(card.id);
    var none = document.getElementById("none");
    if (none) { none.remove(); }
    if (old) {                                // an update (resolved elsewhere): in place
      if (old.contains(document.activeElement)) { return; }   // never under the user's hands
      old.replaceWith(card);
      return;
    }
    card.classList.add("new");
    list.insertBefore(card, list.firstChild);
    live.textContent = "New alert: " + (card.querySelector("h2") || card).textContent;
  });
  source.onerror = function () { live.textContent = "Live updates reconnecting..."; };
  source.onopen = function () { live.textContent = "Live: new alerts appear here."; };
})();
