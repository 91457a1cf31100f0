// A bounded HTTP load client that counts every request's outcome, for the measures wrk
// cannot attribute per request: success while workers are being killed, and failures during
// a rolling reload.
//
//   node load.js --port P [--concurrency 8] [--seconds 10] [--max-requests 500000]
//                [--timeout-ms 2000] [--kill-parent PID --kill-every-ms 500]
//
// Runs until --seconds pass, --max-requests are sent, or SIGINT/SIGTERM; then prints one JSON
// line: {ok, failed, total, errors: {kind: count}, kills, seconds}. Each request is a fresh
// connection to 127.0.0.1. With --kill-parent, one of that process's children (a worker) is
// SIGKILLed every --kill-every-ms, taking them in turn.
'use strict';
const { children, get, args, sleep } = require('./lib');

const a = args(process.argv.slice(2));
const port = Number(a.port);
const concurrency = Number(a.concurrency || 8);
const seconds = Number(a.seconds || 10);
const maxRequests = Number(a['max-requests'] || 500000);
const timeoutMs = Number(a['timeout-ms'] || 2000);
const killParent = a['kill-parent'] ? Number(a['kill-parent']) : null;
const killEvery = Number(a['kill-every-ms'] || 500);

let stop = false;
let sent = 0;
let ok = 0;
let failed = 0;
let kills = 0;
const errors = {};
const t0 = Date.now();
const deadline = setTimeout(() => { stop = true; }, seconds * 1000);
process.on('SIGINT', () => { stop = true; });
process.on('SIGTERM', () => { stop = true; });

async function loop() {
  while (!stop && sent < maxRequests) {
    sent += 1;
    const r = await get(port, timeoutMs);
    if (r.ok) ok += 1;
    else {
      failed += 1;
      errors[r.error] = (errors[r.error] || 0) + 1;
    }
  }
}

async function killer() {
  let turn = 0;
  while (!stop) {
    const kids = children(killParent);
    if (kids.length > 0) {
      try {
        process.kill(kids[turn % kids.length], 'SIGKILL');
        kills += 1;
      } catch { /* already gone */ }
      turn += 1;
    }
    await sleep(killEvery);
  }
}

(async () => {
  const tasks = [];
  for (let i = 0; i < concurrency; i++) tasks.push(loop());
  if (killParent) tasks.push(killer());
  await Promise.all(tasks);
  clearTimeout(deadline);
  const s = (Date.now() - t0) / 1000;
  console.log(JSON.stringify({ ok, failed, total: ok + failed, errors, kills, seconds: s }));
})();
