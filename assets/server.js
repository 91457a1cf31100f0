// The article's HTTP worker, adapted to run under corral:
//   corral -w 4 --listen 3000 -- node assets/server.js
// It serves on the socket corral bound and passed as fd 3 (LISTEN_FDS), tells corral
// when it is ready and what it is doing through process.send (corral announces its
// event channel as Node's IPC channel), and exits when corral goes away or asks it to.
'use strict';
const http = require('http');

let requests = 0;
const server = http.createServer((req, res) => {
  requests += 1;
  res.writeHead(200, { 'Content-Type': 'text/plain' });
  res.end(`Hello from worker ${process.pid}\n`);
});

const send = (msg) => { if (process.send && process.connected) process.send(msg); };

// Inherited socket when run under `corral --listen`, a port of our own otherwise.
const listenOn = process.env.LISTEN_FDS ? { fd: 3 } : Number(process.env.PORT || 3000);
server.listen(listenOn, () => {
  console.log(`Worker ${process.pid} listening`);
  send('ready'); // PM2's form; {"type":"ready"} works too
});

const status = setInterval(() => {
  send({ type: 'heartbeat' });
  send({ type: 'metric', name: 'requests', value: requests });
  send({ type: 'status', text: `serving, ${requests} requests` });
}, 1000);

function shutdown(why) {
  console.log(`Worker ${process.pid} shutting down gracefully (${why})`);
  clearInterval(status);
  server.close(() => process.exit(0));
  // Keep-alive connections can hold close() open; corral's kill timeout is the backstop.
  setTimeout(() => process.exit(0), 2000).unref();
}

process.on('SIGTERM', () => shutdown('SIGTERM'));
// corral writes {"type":"shutdown"} just before the stop signal.
process.on('message', (msg) => { if (msg && msg.type === 'shutdown') shutdown('shutdown message'); });
// The channel closes when corral is gone: a worker with a live server would otherwise
// keep running (Node only exits on disconnect when nothing else keeps it alive).
process.on('disconnect', () => shutdown('primary gone'));
