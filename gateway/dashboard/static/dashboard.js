// The alert list, kept live: rows arrive from /dashboard/stream already
// rendered (and escaped) by the server; this script only places them.
"use strict";
(function () {
  function rowFrom(html) {
    const t = document.createElement("template");
    t.innerHTML = html.trim();
    return t.content.firstElementChild;
  }

  // Worst first, then the most recently seen: the order the server renders.
  function before(a, b) {
    const ra = Number(a.dataset.rank), rb = Number(b.dataset.rank);
    if (ra !== rb) return ra > rb;
    return Number(a.dataset.seen) >= Number(b.dataset.seen);
  }

  function place(tbody, row) {
    for (const other of tbody.rows) {
      if (before(row, other)) { tbody.insertBefore(row, other); return; }
    }
    tbody.appendChild(row);
  }

  function live(table) {
    const tbody = table.tBodies[0];
    const status = document.getElementById("live");
    const empty = document.getElementById("empty");
    const shown = document.getElementById("shown");
    const show = (on) => {
      status.textContent = on ? status.dataset.live : status.dataset.reconnecting;
      status.className = "live " + (on ? "on" : "off");
    };
    const url = new URL(table.dataset.stream, location.href);
    url.searchParams.set("after", table.dataset.revision);
    const source = new EventSource(url);
    source.onopen = () => show(true);
    source.onerror = () => {
      show(false);
      // A refused stream (the session ended) is not retried by the browser.
      if (source.readyState === EventSource.CLOSED) location.reload();
    };
    source.addEventListener("session-ended", () => location.reload());
    source.addEventListener("alert", (message) => {
      const change = JSON.parse(message.data);
      const old = tbody.querySelector(`tr[data-id="${CSS.escape(change.id)}"]`);
      const row = change.match ? rowFrom(change.html) : null;
      // The stream re-sends a little overlap on connect: an unchanged row stays as it is.
      if (old && row && old.innerHTML === row.innerHTML) return;
      if (old) old.remove();
      if (row) {
        row.classList.add("fresh");
        place(tbody, row);
      }
      const delta = (change.match ? 1 : 0) - (old ? 1 : 0);
      shown.dataset.shown = String(Number(shown.dataset.shown) + delta);
      shown.dataset.total = String(Number(shown.dataset.total) + delta);
      shown.textContent = shown.dataset.format.replace("{shown}", shown.dataset.shown)
        .replace("{total}", shown.dataset.total);
      for (const [severity, n] of Object.entries(change.counts || {})) {
        const cell = document.querySelector(`[data-count="${severity}"]`);
        if (cell) cell.textContent = String(n);
      }
      empty.hidden = tbody.rows.length > 0;
    });
  }

  function charts() {
    const holder = document.getElementById("chart-data");
    if (!holder || !window.XydCharts) return;
    const data = JSON.parse(holder.textContent);
    window.XydCharts.stackedBars(document.getElementById("chart-per-day"), data.perDay);
    window.XydCharts.barsWithLine(document.getElementById("chart-per-platform"),
      data.perPlatform);
  }

  document.addEventListener("DOMContentLoaded", () => {
    const table = document.getElementById("alert-table");
    if (table) live(table);
    charts();
  });
})();
