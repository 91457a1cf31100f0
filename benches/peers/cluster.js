// The Node baseline for the peers benchmark: a `cluster` primary running assets/server.js
// as its workers (they listen on $PORT, which cluster shares), as fair to Node as it gets:
//  - a worker that dies is re-forked at once (the article's demo waits 1 s; this does not);
//  - SIGHUP is a rolling reload, the documented zero-downtime pattern: one worker at a time,
//    fork its replacement, wait for its 'listening', then disconnect() the old one and wait
//    for it to exit (it closes its server and finishes what it has in flight);
//  - SIGTERM/SIGINT disconnect every worker and exit once they are gone (bounded).
// The scheduling policy comes from NODE_CLUSTER_SCHED_POLICY (rr or none), read by cluster.
// One JSON line per event on stdout: spawned, exited, reload_started, reload_finished.
//
//   PORT=3000 NODE_CLUSTER_SCHED_POLICY=rr node cluster.js [workers=2]
'use strict';
const cluster = require('cluster');
const path = require('path');

const WORKERS = Number(process.argv[2] || 2);
const STEP_TIMEOUT_MS = 10000;

const log = (event, fields = {}) =>
  console.log(JSON.stringify({ ts: new Date().toISOString(), event, ...fields }));

cluster.setupPrimary({ exec: path.join(__dirname, '..', '..', 'assets', 'server.js') });

let stopping = false;
let reloading = false;
const retiring = new Set(); // workers being replaced by a reload: not re-forked

function fork() {
  const w = cluster.fork();
  log('spawned', { pid: w.process.pid, policy: cluster.schedulingPolicy === cluster.SCHED_RR ? 'rr' : 'none' });
  return w;
}

cluster.on('exit', (w, code, signal) => {
  log('exited', { pid: w.process.pid, code, signal });
  if (stopping || retiring.delete(w)) return;
  fork();
});

// Resolves true when `emitter` emits `event` within the step timeout, false otherwise.
const once = (emitter, event) => new Promise((resolve) => {
  const t = setTimeout(() => { emitter.removeListener(event, on); resolve(false); }, STEP_TIMEOUT_MS);
  const on = () => { clearTimeout(t); resolve(true); };
  emitter.once(event, on);
});

async function reload() {
  if (reloading || stopping) return;
  reloading = true;
  log('reload_started');
  for (const old of Object.values(cluster.workers)) {
    if (stopping) break;
    const fresh = fork();
    if (!(await once(fresh, 'listening'))) log('reload_step_timeout', { pid: fresh.process.pid });
    retiring.add(old);
    const gone = once(old, 'exit');
    old.disconnect();
    if (!(await gone)) old.process.kill('SIGKILL');
  }
  reloading = false;
  log('reload_finished');
}

function shutdown() {
  if (stopping) process.exit(1); // asked twice
  stopping = true;
  for (const w of Object.values(cluster.workers)) w.disconnect();
  const t = setTimeout(() => {
    for (const w of Object.values(cluster.workers)) w.process.kill('SIGKILL');
    process.exit(1);
  }, 5000);
  const check = () => {
    if (Object.values(cluster.workers).every((w) => w.isDead())) { clearTimeout(t); process.exit(0); }
  };
  cluster.on('exit', check);
  check();
}

process.on('SIGHUP', () => { reload(); });
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);

for (let i = 0; i < WORKERS; i++) fork();
