// The app every row of benches/node_cluster.sh runs, unmodified: a plain HTTP server on
// $PORT. Under corral and Node's cluster and PM2 alike, listen() asks the primary for the
// socket; nothing here knows about any of them.
'use strict';
const http = require('http');

http.createServer((req, res) => res.end('Hello from worker ' + process.pid)).listen(process.env.PORT || 3000);
