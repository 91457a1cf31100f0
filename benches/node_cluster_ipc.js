// The comparison for benches/event_ingest.rs: the same number of messages through Node's
// own cluster IPC (two workers process.send() to a Node primary), measured in one run.
// Prints one JSON line: {"messages", "seconds", "cpu_seconds"} for the primary.
'use strict';
const cluster = require('cluster');

const perWorker = Number(process.argv[2] || 1000000);
const WORKERS = 2;

if (cluster.isPrimary) {
  let received = 0;
  let exited = 0;
  const t0 = process.hrtime.bigint();
  const cpu0 = process.cpuUsage();
  cluster.on('message', () => { received += 1; });
  cluster.on('exit', () => {
    exited += 1;
    if (exited < WORKERS) return;
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    const cpu = process.cpuUsage(cpu0);
    console.log(JSON.stringify({ messages: received, seconds, cpu_seconds: (cpu.user + cpu.system) / 1e6 }));
  });
  for (let i = 0; i < WORKERS; i++) cluster.fork();
} else {
  let n = 0;
  let paused = false;
  const resume = () => { if (paused) { paused = false; pump(); } };
  // process.send() queues without limit when the channel is backed up (it returns false);
  // then the worker pauses until its next 256th message is written, so its memory stays
  // bounded, as corral's buffered sender does by blocking on a full socket.
  const pump = () => {
    while (n < perWorker) {
      n += 1;
      const last = n === perWorker;
      const checkpoint = n % 256 === 0;
      const cb = last ? () => process.disconnect() : (checkpoint ? resume : undefined);
      const more = process.send({ type: 'tick', n }, cb);
      if (!more && checkpoint && !last) {
        paused = true;
        return;
      }
    }
  };
  pump();
}
