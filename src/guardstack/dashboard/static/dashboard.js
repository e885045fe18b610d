// Charts from JSON data blocks the server rendered (no inline script: the
// Content-Security-Policy allows scripts from this origin only). Text from
// the store never reaches innerHTML here: Chart.js draws labels on a canvas.
(function () {
  "use strict";
  if (typeof Chart === "undefined") { return; }
  var palette = ["#1f77b4", "#d62728", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b",
                 "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];
  function data(id) {
    var el = document.getElementById(id);
    return el ? JSON.parse(el.textContent) : null;
  }
  function color(i) { return palette[i % palette.length]; }

  var overview = data("overview-data");
  if (overview && overview.days && overview.days.length) {
    var sets = [], i = 0;
    Object.keys(overview.traffic).sort().forEach(function (role) {
      Object.keys(overview.traffic[role]).sort().forEach(function (decision) {
        sets.push({label: role + " " + decision, data: overview.traffic[role][decision],
                   backgroundColor: color(i++), stack: role});
      });
    });
    new Chart(document.getElementById("chart-traffic"), {
      type: "bar", data: {labels: overview.days, datasets: sets},
      options: {animation: false, scales: {x: {stacked: true}, y: {stacked: true}}}
    });
    var rates = [], j = 0;
    Object.keys(overview.rates).sort().forEach(function (role) {
      Object.keys(overview.rates[role]).sort().forEach(function (decision) {
        rates.push({label: role + " " + decision + " rate", data: overview.rates[role][decision],
                    borderColor: color(j), backgroundColor: color(j++), fill: false});
      });
    });
    new Chart(document.getElementById("chart-rates"), {
      type: "line", data: {labels: overview.days, datasets: rates},
      options: {animation: false, scales: {y: {min: 0, ticks: {callback: function (v) {
        return Math.round(v * 1000) / 10 + "%"; }}}}}
    });
    var cats = Object.keys(overview.categories).sort().map(function (name, k) {
      return {label: name, data: overview.categories[name], backgroundColor: color(k)};
    });
    new Chart(document.getElementById("chart-categories"), {
      type: "bar", data: {labels: overview.days, datasets: cats},
      options: {animation: false, scales: {x: {stacked: true}, y: {stacked: true}},
                plugins: {legend: {position: "bottom", labels: {boxWidth: 12}}}}
    });
  }

  var timeline = data("timeline-data");
  if (timeline && timeline.length) {
    new Chart(document.getElementById("chart-timeline"), {
      type: "scatter",
      data: {datasets: [{label: "highest score in session", data: timeline,
                         backgroundColor: timeline.map(function (p) {
                           return p.y >= 0.5 ? "#d62728" : "#1f77b4"; }),
                         pointRadius: timeline.map(function (p) {
                           return Math.min(12, 3 + Math.sqrt(p.n)); })}]},
      options: {animation: false, scales: {
        y: {min: 0, max: 1},
        x: {ticks: {callback: function (v) { return new Date(v).toISOString().slice(0, 10); }}}
      }}
    });
  }
})();
