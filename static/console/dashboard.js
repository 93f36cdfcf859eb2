// Draws the dashboard's daily bars from the JSON the page carries (id "usage-data").
(function () {
  "use strict";
  var source = document.getElementById("usage-data");
  var canvas = document.getElementById("usage-chart");
  if (!source || !canvas || typeof Chart === "undefined") return;
  var data = JSON.parse(source.textContent);
  new Chart(canvas, {
    data: {
      labels: data.days.map(function (d) { return d.slice(5); }),
      datasets: [
        { type: "bar", label: "Spend (USD)", data: data.spend.map(Number), yAxisID: "spend",
          backgroundColor: "#4f46e5" },
        { type: "bar", label: "Requests", data: data.requests, yAxisID: "requests",
          backgroundColor: "#a5b4fc" }
      ]
    },
    options: {
      responsive: true,
      maintainAspectRatio: false,
      interaction: { mode: "index", intersect: false },
      scales: {
        spend: { position: "left", beginAtZero: true, title: { display: true, text: "USD" },
                 // Plain decimals ("$0.0000025"), never "2.5E-6", on the money axis.
                 ticks: { callback: function (value) {
                   return "$" + Number(value).toFixed(12).replace(/0+$/, "").replace(/\.$/, "");
                 } } },
        requests: { position: "right", beginAtZero: true, grid: { drawOnChartArea: false },
                    ticks: { precision: 0 }, title: { display: true, text: "Requests" } }
      },
      plugins: {
        tooltip: {
          callbacks: {
            // Show the exact decimal the server sent, not the float the bar is drawn from.
            label: function (ctx) {
              return ctx.dataset.yAxisID === "spend"
                ? "Spend: " + data.spend[ctx.dataIndex] + " USD"
                : "Requests: " + data.requests[ctx.dataIndex];
            }
          }
        }
      }
    }
  });
})();
