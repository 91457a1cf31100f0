// Time from a worker's SIGKILL to its replacement accepting, over several kills.
//
//   node restart.js --port P --parent PID [--workers 2] [--kills 20] [--gap-ms 1200]
//                   [--timeout-ms 5000] [--max-seconds 60]
//
// For each kill: wait until PID (the supervisor) has --workers children, SIGKILL one of them
// (in turn), then poll 127.0.0.1:P with fresh connections, two at a time, until a response
// says "Hello from worker <pid>" with a pid that was not alive before the kill: that instant
// minus the kill's is one sample (it includes one request's round trip, ~0.3 ms). A
// replacement that does not answer within --timeout-ms is counted as a timeout. --gap-ms
// separates kills, so each replacement has run a while before it is killed in turn.
// Prints one JSON line: {samples_ms, median_ms, p90_ms, min_ms, max_ms, timeouts, kills}.
'use strict';
const { children, get, args, sleep } = require('./lib');

const a = args(process.argv.slice(2));
const port = Number(a.port);
const parent = Number(a.parent);
const workers = Number(a.workers || 2);
const kills = Number(a.kills || 20);
const gapMs = Number(a['gap-ms'] || 1200);
const timeoutMs = Number(a['timeout-ms'] || 5000);
const maxMs = Number(a['max-seconds'] || 60) * 1000;

const now = () => Number(process.hrtime.bigint()) / 1e6;

async function waitWorkers(untilMs) {
  while (now() < untilMs) {
    const kids = children(parent);
    if (kids.length >= workers) return kids;
    await sleep(5);
  }
  return null;
}

// Resolves to the milliseconds from `t0` to the first answer from a pid outside `old`, or null.
async function firstNewAnswer(old, t0) {
  let found = null;
  const probe = async () => {
    while (found === null && now() - t0 < timeoutMs) {
      const r = await get(port, 1000);
      if (r.ok && !old.includes(r.pid) && found === null) found = now() - t0;
      if (!r.ok) await sleep(1); // refused or reset: don't spin
    }
  };
  await Promise.all([probe(), probe()]);
  return found;
}

const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
const median = (s) => (s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2);

(async () => {
  const start = now();
  const samples = [];
  let timeouts = 0;
  let done = 0;
  for (let k = 0; k < kills && now() - start < maxMs; k++) {
    const old = await waitWorkers(start + maxMs);
    if (!old) break;
    const victim = old[k % old.length];
    const t0 = now();
    try { process.kill(victim, 'SIGKILL'); } catch { continue; }
    done += 1;
    const ms = await firstNewAnswer(old, t0);
    if (ms === null) timeouts += 1;
    else samples.push(Number(ms.toFixed(2)));
    await sleep(gapMs);
  }
  const sorted = [...samples].sort((x, y) => x - y);
  console.log(JSON.stringify({
    samples_ms: samples,
    median_ms: sorted.length ? Number(median(sorted).toFixed(2)) : null,
    p90_ms: sorted.length ? pct(sorted, 0.9) : null,
    min_ms: sorted.length ? sorted[0] : null,
    max_ms: sorted.length ? sorted[sorted.length - 1] : null,
    timeouts,
    kills: done,
  }));
})();
