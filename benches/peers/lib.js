// Shared by the peers benchmark's Node helpers: a supervisor's worker pids from /proc, and
// one bounded HTTP GET to 127.0.0.1 (a fresh connection, so every request also exercises the
// accept path a supervisor is responsible for).
'use strict';
const fs = require('fs');
const http = require('http');

// The direct children of `pid`: corral's workers, a cluster primary's, PM2's God daemon's.
function children(pid) {
  let tasks;
  try {
    tasks = fs.readdirSync(`/proc/${pid}/task`);
  } catch {
    return [];
  }
  const out = new Set();
  for (const t of tasks) {
    let text = '';
    try {
      text = fs.readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8');
    } catch {
      continue;
    }
    for (const c of text.trim().split(/\s+/)) if (c && !isKeeper(c)) out.add(Number(c));
  }
  return [...out].sort((a, b) => a - b);
}

// corral's keeper (`corral __keeper PID`, src/keeper.rs) is a child of corral but no worker:
// not waited for, not killed.
function isKeeper(pid) {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[1] === '__keeper';
  } catch {
    return false;
  }
}

// Resolves to {ok, pid, error}; never rejects. `timeoutMs` bounds the whole request.
function get(port, timeoutMs) {
  return new Promise((resolve) => {
    let done = false;
    const finish = (r) => { if (!done) { done = true; clearTimeout(timer); resolve(r); } };
    const req = http.get({ host: '127.0.0.1', port, path: '/', agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { body += d; });
      res.on('end', () => {
        const m = /^Hello from worker (\d+)/.exec(body);
        if (res.statusCode === 200 && m) finish({ ok: true, pid: Number(m[1]) });
        else finish({ ok: false, error: `HTTP ${res.statusCode}` });
      });
      res.on('error', (e) => finish({ ok: false, error: e.code || e.message }));
    });
    req.on('error', (e) => finish({ ok: false, error: e.code || e.message }));
    const timer = setTimeout(() => { req.destroy(); finish({ ok: false, error: 'timeout' }); }, timeoutMs);
  });
}

// --name value pairs into an object of strings.
function args(argv) {
  const out = {};
  for (let i = 0; i < argv.length; i += 2) out[argv[i].replace(/^--/, '')] = argv[i + 1];
  return out;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

module.exports = { children, get, args, sleep };

// `node lib.js wait-serving PORT PARENT WORKERS TIMEOUT_S`: exit 0 once PARENT has WORKERS
// children and each of them has answered on PORT; exit 1 with a reason at the timeout.
if (require.main === module && process.argv[2] === 'wait-serving') {
  const [port, parent, workers, timeoutS] = process.argv.slice(3).map(Number);
  const deadline = Date.now() + timeoutS * 1000;
  (async () => {
    const seen = new Set();
    let last = 'no answer yet';
    while (Date.now() < deadline) {
      if (!fs.existsSync(`/proc/${parent}`)) {
        console.error(`process ${parent} is gone`);
        process.exit(1);
      }
      const kids = children(parent);
      const r = await get(port, 1000);
      if (r.ok) seen.add(r.pid);
      else last = r.error;
      if (kids.length >= workers && kids.every((k) => seen.has(k))) process.exit(0);
      if (!r.ok) await sleep(20);
    }
    console.error(`not serving on port ${port} with ${workers} workers of ${parent} ` +
      `(children: ${children(parent).join(',') || 'none'}, answered: ${[...seen].join(',') || 'none'}, last: ${last})`);
    process.exit(1);
  })();
}
