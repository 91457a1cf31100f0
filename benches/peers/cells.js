// Table cells for run.sh from the helpers' JSON results (keeps JavaScript out of the shell).
//
//   node cells.js reload FILE        failed of total
//   node cells.js chaos FILE         ok / total (percent)
//   node cells.js restart FILE N     median (p90), timeouts, how many samples of N kills
//   node cells.js restart-samples FILE
//   pm2 jlist | node cells.js pm2-status
'use strict';
const fs = require('fs');

const [what, file, n] = process.argv.slice(2);
const read = () => JSON.parse(fs.readFileSync(file, 'utf8'));

const cells = {
  reload: () => { const r = read(); return `${r.failed} of ${r.total}`; },
  chaos: () => {
    const r = read();
    return `${r.ok} / ${r.total} (${(100 * r.ok / Math.max(1, r.total)).toFixed(2)} %), ${r.kills} kills`;
  },
  restart: () => {
    const r = read();
    if (r.median_ms === null) return 'no replacement answered';
    let s = `${r.median_ms.toFixed(1)} ms (p90 ${r.p90_ms.toFixed(1)})`;
    if (r.timeouts) s += `, ${r.timeouts} of ${r.kills} not back within 5 s`;
    if (r.samples_ms.length < Number(n)) s += `, n=${r.samples_ms.length}`;
    return s;
  },
  'restart-samples': () => {
    const r = read();
    return `${r.samples_ms.join(', ')}; timeouts: ${r.timeouts}`;
  },
  'pm2-status': () => {
    const s = fs.readFileSync(0, 'utf8');
    const list = JSON.parse(s.slice(s.indexOf('[')));
    return list.map((p) => `${p.name}#${p.pm_id} ${p.pm2_env.status}, ` +
      `${p.pm2_env.restart_time} restarts, ${p.pm2_env.unstable_restarts} unstable`).join('; ');
  },
};

if (!cells[what]) {
  console.error(`cells.js: unknown cell '${what}'`);
  process.exit(2);
}
console.log(cells[what]());
