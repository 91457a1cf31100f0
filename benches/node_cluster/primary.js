// Node's own cluster for benches/node_cluster.sh: a primary that forks WORKERS workers
// running app.js (the same file corral and PM2 run), nothing else. The scheduling policy
// comes from NODE_CLUSTER_SCHED_POLICY (rr, Node's default on Linux, or none), read by
// cluster. SIGTERM/SIGINT: disconnect every worker and exit once they are gone (bounded).
//
//   PORT=3000 NODE_CLUSTER_SCHED_POLICY=rr node primary.js [workers=2]
'use strict';
const cluster = require('cluster');
const path = require('path');

const WORKERS = Number(process.argv[2] || 2);

cluster.setupPrimary({ exec: path.join(__dirname, 'app.js') });
const policy = cluster.schedulingPolicy === cluster.SCHED_RR ? 'rr' : 'none';
for (let i = 0; i < WORKERS; i++) {
  const w = cluster.fork();
  console.log(JSON.stringify({ event: 'spawned', pid: w.process.pid, policy }));
}

let stopping = false;
function shutdown() {
  if (stopping) process.exit(1);
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
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
