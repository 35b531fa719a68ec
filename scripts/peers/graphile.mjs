// graphile-worker's side of `scripts/bench-peers`: enqueue N no-op jobs, then
// time a runner (with its local queue) from start to an empty queue. Prints one
// JSON line. Env: DATABASE_URL, JOBS, CONCURRENCY, LOCAL_QUEUE.
import { run, runMigrations } from "graphile-worker";
import pg from "pg";

const url = process.env.DATABASE_URL;
const jobs = Number(process.env.JOBS ?? 50000);
const concurrency = Number(process.env.CONCURRENCY ?? 8);
const localQueue = Number(process.env.LOCAL_QUEUE ?? 500);

await runMigrations({ connectionString: url });
const probe = new pg.Client({ connectionString: url });
await probe.connect();
for (let start = 0; start < jobs; start += 5000) {
  const count = Math.min(jobs, start + 5000) - start;
  await probe.query(
    `SELECT graphile_worker.add_jobs(array(
       SELECT ROW('noop', json_build_object('i', i), NULL, NULL, NULL, NULL, NULL, NULL)::graphile_worker.job_spec
         FROM generate_series(1, $1) AS i))`,
    [count],
  );
}
const left = async () =>
  Number((await probe.query("SELECT count(*) AS n FROM graphile_worker._private_jobs")).rows[0].n);

let peakRss = 0;
const started = performance.now();
const runner = await run({
  connectionString: url,
  concurrency,
  noHandleSignals: true,
  pollInterval: 500,
  logger: undefined,
  taskList: { noop: async () => {} },
  preset: { worker: { localQueue: { size: localQueue } } },
});
while ((await left()) > 0) {
  peakRss = Math.max(peakRss, process.memoryUsage().rss);
  await new Promise((resolve) => setTimeout(resolve, 20));
}
const seconds = (performance.now() - started) / 1000;
console.log(JSON.stringify({
  peer: "graphile-worker", jobs, concurrency, local_queue: localQueue, seconds,
  per_second: jobs / seconds, peak_rss_mib: peakRss / 1048576,
}));
await runner.stop();
await probe.end();
