// The overview's chart: items done and dead-lettered per minute over the
// last hour, from /ui/overview/minutes, redrawn every ten seconds.
(function () {
  const box = document.getElementById("chart");
  if (!box || typeof uPlot === "undefined") return;
  let plot = null;
  function series(rows) {
    const now = Math.floor(Date.now() / 60000) * 60;
    const xs = [], done = [], dead = [];
    const byMinute = new Map(rows.map((r) => [r.minute_ms / 1000, r]));
    for (let t = now - 59 * 60; t <= now; t += 60) {
      const row = byMinute.get(t);
      xs.push(t);
      done.push(row ? row.done : 0);
      dead.push(row ? row.dead : 0);
    }
    return [xs, done, dead];
  }
  function draw() {
    fetch("/ui/overview/minutes", { credentials: "same-origin" })
      .then((r) => (r.ok ? r.json() : Promise.reject(r.status)))
      .then((rows) => {
        const data = series(rows);
        if (plot) {
          plot.setData(data);
          return;
        }
        plot = new uPlot(
          {
            width: Math.max(320, box.clientWidth),
            height: 220,
            series: [
              {},
              { label: "done / min", stroke: "#1a7f37", width: 2 },
              { label: "dead / min", stroke: "#b42318", width: 2 },
            ],
            axes: [{}, { label: "items" }],
          },
          data,
          box
        );
      })
      .catch(() => {});
  }
  draw();
  setInterval(draw, 10000);
})();
