// pg-boss's side of `scripts/bench-peers`: enqueue N no-op jobs, then time
// workers from start to an empty queue. They fetch in batches and fetch again
// at once while batches come back full (pg-boss's options for throughput).
// Prints one JSON line. Env: DATABASE_URL, JOBS, BATCH, WORKERS.
import { PgBoss } from "pg-boss";
import pg from "pg";

const url = process.env.DATABASE_URL;
const jobs = Number(process.env.JOBS ?? 50000);
const batch = Number(process.env.BATCH ?? 100);
const workers = Number(process.env.WORKERS ?? 4);
const queue = "noop";

const boss = new PgBoss({ connectionString: url, schema: "pgboss_bench", supervise: false, schedule: false });
boss.on("error", (err) => console.error("pg-boss:", err));
await boss.start();
await boss.createQueue(queue);
for (let start = 0; start < jobs; start += 5000) {
  const chunk = [];
  for (let i = start; i < Math.min(jobs, start + 5000); i++) chunk.push({ data: { i } });
  await boss.insert(queue, chunk);
}

const probe = new pg.Client({ connectionString: url });
await probe.connect();
const left = async () =>
  Number((await probe.query(
    "SELECT count(*) AS n FROM pgboss_bench.job WHERE name = $1 AND state <> 'completed'", [queue],
  )).rows[0].n);

let peakRss = 0;
const started = performance.now();
for (let w = 0; w < workers; w++) {
  const options = { batchSize: batch, pollingIntervalSeconds: 0.5, burstWhenBatchFull: true };
  await boss.work(queue, options, async () => {});
}
while ((await left()) > 0) {
  peakRss = Math.max(peakRss, process.memoryUsage().rss);
  await new Promise((resolve) => setTimeout(resolve, 20));
}
const seconds = (performance.now() - started) / 1000;
console.log(JSON.stringify({
  peer: "pg-boss", jobs, batch, workers, seconds,
  per_second: jobs / seconds, peak_rss_mib: peakRss / 1048576,
}));
await probe.end();
await boss.stop({ graceful: false, wait: true });
