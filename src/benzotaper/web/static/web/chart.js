// Draws the Plotly figure whose JSON sits in the <script type="application/json"> named by data-figure
// (plus the traces in the block named by data-extra, e.g. the diary, which is read fresh).
// Kept in a file (no inline script) so the Content-Security-Policy can forbid inline code.
(function () {
  "use strict";
  document.querySelectorAll("[data-figure]").forEach(function (el) {
    var source = document.getElementById(el.getAttribute("data-figure"));
    if (!source || typeof Plotly === "undefined") { return; }
    var figure = JSON.parse(source.textContent);
    var extra = document.getElementById(el.getAttribute("data-extra") || "");
    if (extra) { figure.data = figure.data.concat(JSON.parse(extra.textContent)); }
    Plotly.newPlot(el, figure.data, figure.layout, { responsive: true, displaylogo: false });
    el.setAttribute("data-ready", "1");
  });
})();
