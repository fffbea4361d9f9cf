// Progressive enhancement for the dashboard: the chart's points read out on hover, focus or tap.
// The page works without this file; the points carry <title> tooltips too.
(function () {
  "use strict";
  function ready(fn) {
    if (document.readyState !== "loading") fn();
    else document.addEventListener("DOMContentLoaded", fn);
  }
  ready(function () {
    var charts = document.querySelectorAll("svg.daily");
    var readout = document.getElementById("chart-readout");
    if (!charts.length || !readout) return;
    var active = null;
    function show(point) {
      if (active) active.classList.remove("active");
      active = point;
      point.classList.add("active");
      readout.textContent = point.getAttribute("data-label") || "";
      readout.classList.add("live");
    }
    Array.prototype.forEach.call(charts, function (chart) {
      Array.prototype.forEach.call(chart.querySelectorAll("circle.point"), function (point) {
        point.addEventListener("mouseenter", function () { show(point); });
        point.addEventListener("focus", function () { show(point); });
        point.addEventListener("click", function () { show(point); });
      });
      chart.setAttribute("data-ready", "1");
    });
    if (!readout.textContent) readout.textContent = "Point at or tap a dot for that day's numbers.";
  });
})();
