// XydCharts: the two chart shapes the dashboard needs, drawn as SVG.
// Stacked bars (alerts per day by rule) and bars with a line on a second axis
// (loan volume and overdue ratio per platform). No dependencies, no remote
// assets; labels and numbers come from the page, this file holds no text.
"use strict";
(function () {
  const NS = "http://www.w3.org/2000/svg";
  const PALETTE = ["#0b4f8a", "#d64545", "#c77c02", "#207868", "#7b5ea7", "#2f8fce", "#8d6e63",
    "#52606d"];
  const W = 560, H = 240, PAD = { top: 12, right: 48, bottom: 34, left: 44 };

  function el(name, attrs, parent) {
    const node = document.createElementNS(NS, name);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
    if (parent) parent.appendChild(node);
    return node;
  }

  function text(parent, x, y, value, anchor) {
    const t = el("text", { x, y, "text-anchor": anchor || "middle" }, parent);
    t.textContent = value;
    return t;
  }

  // A "nice" axis top: 1, 2 or 5 times a power of ten, at least the maximum.
  function niceMax(max) {
    if (max <= 0) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(max)));
    for (const m of [1, 2, 5, 10]) if (m * p >= max) return m * p;
    return 10 * p;
  }

  function frame(container, categories, top, format) {
    const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, role: "img" });
    const plotW = W - PAD.left - PAD.right, plotH = H - PAD.top - PAD.bottom;
    const y = (v) => PAD.top + plotH - (v / top) * plotH;
    for (let i = 0; i <= 4; i++) {
      const v = (top * i) / 4, yy = y(v);
      el("line", { x1: PAD.left, x2: PAD.left + plotW, y1: yy, y2: yy, class: i ? "grid" : "axis" },
        svg);
      text(svg, PAD.left - 6, yy + 4, format(v), "end");
    }
    const band = plotW / Math.max(categories.length, 1);
    const every = Math.ceil(categories.length / 10);
    categories.forEach((c, i) => {
      if (i % every === 0) text(svg, PAD.left + band * (i + 0.5), H - PAD.bottom + 16, c);
    });
    container.appendChild(svg);
    return { svg, y, band, plotW, plotH };
  }

  function legend(container, items) {
    const list = document.createElement("ul");
    list.className = "legend";
    for (const { name, color } of items) {
      const li = document.createElement("li");
      li.textContent = name;
      li.style.setProperty("--swatch", color);
      list.appendChild(li);
    }
    container.appendChild(list);
  }

  // Counts: four whole-numbered gridlines.
  function countTop(max) {
    return Math.max(4, Math.ceil(max / 4) * 4);
  }

  function stackedBars(container, data) {
    const days = data.categories;
    const totals = days.map((_, i) => data.series.reduce((s, x) => s + x.values[i], 0));
    const top = countTop(Math.max(0, ...totals));
    const f = frame(container, days, top, (v) => String(Math.round(v)));
    const width = f.band * 0.7;
    days.forEach((day, i) => {
      let base = 0;
      data.series.forEach((s, k) => {
        const v = s.values[i];
        if (!v) return;
        const y0 = f.y(base), y1 = f.y(base + v);
        const r = el("rect", { x: PAD.left + f.band * i + (f.band - width) / 2, y: y1,
          width, height: Math.max(y0 - y1, 1), fill: PALETTE[k % PALETTE.length] }, f.svg);
        el("title", {}, r).textContent = `${day} ${s.name}: ${v}`;
        base += v;
      });
    });
    legend(container, data.series.map((s, k) => ({ name: s.name,
      color: PALETTE[k % PALETTE.length] })));
  }

  function barsWithLine(container, data) {
    const cats = data.categories;
    const top = niceMax(Math.max(0, ...data.bars.values));
    const f = frame(container, cats, top, (v) => v >= 1000 ? `${v / 1000}k` : String(v));
    const ratioTop = Math.max(0.1, niceMax(Math.max(0, ...data.line.values)));
    const yr = (v) => PAD.top + f.plotH - (v / ratioTop) * f.plotH;
    for (let i = 0; i <= 4; i++) {
      const v = (ratioTop * i) / 4;
      text(f.svg, W - PAD.right + 6, yr(v) + 4, `${Math.round(v * 1000) / 10}%`, "start");
    }
    const width = f.band * 0.5;
    cats.forEach((c, i) => {
      const v = data.bars.values[i];
      const r = el("rect", { x: PAD.left + f.band * i + (f.band - width) / 2, y: f.y(v), width,
        height: Math.max(f.y(0) - f.y(v), v ? 1 : 0), fill: PALETTE[0] }, f.svg);
      el("title", {}, r).textContent =
        `${c} ${data.bars.name}: ${v} (${data.counts[i]} ${data.countUnit})`;
    });
    const points = data.line.values.map((v, i) => [PAD.left + f.band * (i + 0.5), yr(v)]);
    if (points.length) {
      el("polyline", { points: points.map((p) => p.join(",")).join(" "), fill: "none",
        stroke: PALETTE[1], "stroke-width": 2 }, f.svg);
      points.forEach(([x, y], i) => {
        const dot = el("circle", { cx: x, cy: y, r: 4, fill: PALETTE[1] }, f.svg);
        el("title", {}, dot).textContent =
          `${cats[i]} ${data.line.name}: ${Math.round(data.line.values[i] * 1000) / 10}%`;
      });
    }
    legend(container, [{ name: data.bars.name, color: PALETTE[0] },
      { name: data.line.name, color: PALETTE[1] }]);
  }

  window.XydCharts = { stackedBars, barsWithLine };
})();
