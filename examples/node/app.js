// A plain Node HTTP server that knows nothing of corral: under `corral -w 4 -- node
// examples/node/app.js` its own listen() shares one port across the four workers.
const http = require('http');

const port = Number(process.env.PORT || 3000);
http
  .createServer((req, res) => res.end(`Hello from worker ${process.pid}\n`))
  .listen(port, () => console.log(`listening on ${port}`));
