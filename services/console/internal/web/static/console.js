// Ticketpulse console: progressive enhancement only; every page works without it.
// Live escalations (server-sent events) and the team page's periodic refresh. Text from the
// server is put into the page with textContent, never as HTML.
"use strict";
(function () {
  function refreshFrom(url, id) {
    return fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) { if (!r.ok) { throw new Error(r.status); } return r.text(); })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        var fresh = doc.getElementById(id), old = document.getElementById(id);
        if (fresh && old) { old.replaceWith(document.importNode(fresh, true)); }
      });
  }

  var live = document.getElementById("live");
  if (live && Number(live.dataset.refresh) > 0) {
    setInterval(function () {
      if (document.visibilityState === "visible") { refreshFrom(live.dataset.src, "live").catch(function () {}); }
    }, Number(live.dataset.refresh) * 1000);
  }

  var status = document.getElementById("live-status");
  if (!status || !status.dataset.events || !window.EventSource) { return; }
  var es = new EventSource(status.dataset.events);
  es.onopen = function () { status.textContent = "Live: changes appear as they happen."; };
  es.onerror = function () { status.textContent = "Live updates paused; reconnecting…"; };
  es.addEventListener("change", function (ev) {
    var c;
    try { c = JSON.parse(ev.data); } catch (e) { return; }
    status.textContent = "Escalation " + c.kind + ": " + c.summary;
    var one = status.dataset.reload;
    if (one) {
      if (one === c.id) { location.reload(); }
      return;
    }
    var table = document.getElementById("escalations");
    if (!table) { return; }
    var rows = table.tBodies[0].rows, row = null;
    for (var i = 0; i < rows.length; i++) { if (rows[i].dataset.id === c.id) { row = rows[i]; break; } }
    if (row) {
      var cell = row.querySelector(".state");
      if (cell) { cell.textContent = c.state; }
      if (c.state !== "open") { row.querySelectorAll("form").forEach(function (f) { f.remove(); }); }
      row.classList.add("changed");
    } else if (c.kind === "triggered") {
      refreshFrom(location.href, "escalations").catch(function () {});
    }
  });
})();
