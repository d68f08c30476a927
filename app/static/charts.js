// Dashboard charts: Chart.js (npm chart.js, copied to static/vendor at setup) draws each
// currency's revenue and cost as bars and the margin as a line, from the JSON the page carries.
(function () {
  function draw() {
    var data = document.getElementById("dashboard-charts");
    if (!data || !window.Chart) return;
    var charts = JSON.parse(data.textContent);
    document.querySelectorAll("canvas[data-chart-index]").forEach(function (canvas) {
      if (canvas.dataset.drawn) return;
      var c = charts[Number(canvas.dataset.chartIndex)];
      canvas.dataset.drawn = "1";
      new window.Chart(canvas, {
        data: {
          labels: c.labels,
          datasets: [
            {type: "bar", label: "Revenue (" + c.currency + ")", data: c.revenue, backgroundColor: "#2563eb"},
            {type: "bar", label: "Cost", data: c.cost, backgroundColor: "#f59e0b"},
            {type: "line", label: "Margin", data: c.margin, borderColor: "#16a34a", backgroundColor: "#16a34a", tension: 0.2}
          ]
        },
        options: {animation: false, responsive: true, interaction: {mode: "index", intersect: false},
                  scales: {y: {beginAtZero: true}}}
      });
    });
  }
  document.addEventListener("DOMContentLoaded", draw);
  document.addEventListener("htmx:afterSettle", draw);
})();
