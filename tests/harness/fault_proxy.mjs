#!/usr/bin/env node
// A loopback HTTP proxy in front of an S3 server that injects the failures fruitpipe's S3
// client must survive, and logs what it forwarded (never the Authorization header's value).
//
//   node tests/harness/fault_proxy.mjs --target 127.0.0.1:PORT [--every N] [--modes LIST]
//        [--match REGEX] [--after M] [--max-consecutive K] [--delay-ms MS] [--slow-ms MS]
//        [--log FILE]
//
// Every N-th request whose "METHOD /path?query" matches REGEX (default: all) gets a fault
// instead of being forwarded; the faults cycle through LIST (default "503"):
//   503          503 SlowDown XML error       500   500 InternalError XML error
//   unavailable  503 ServiceUnavailable XML error
//   reset        the connection is destroyed before any response
//   slow         forwarded, but only after --slow-ms (default 1000) ms: a latency spike
// --every 1 fails every matching request. --after M lets the first M matching requests
// through untouched, so an outage can start in the middle of a run. --max-consecutive K never fails the same
// "METHOD /path?query" more than K times in a row, so a client with more than K attempts
// always gets through however its retries interleave with other requests. --delay-ms holds
// each forwarded request back that long, to model the round trip to a remote S3 region on
// loopback (benchmarks). The log holds one JSON line per request:
// {"method","host","url","conn" (client port: one per connection),"fault","sse","sseKmsKeyId",
//  "contentSha256","signed"}.
// Prints {"port": N} once listening; stops on SIGTERM/SIGINT or when stdin closes if
// --stop-on-stdin-close is given.
import http from 'node:http';
import { appendFileSync } from 'node:fs';

const opts = {
  every: 0, modes: ['503'], match: null, after: 0, maxConsecutive: Infinity, delayMs: 0, slowMs: 1000, log: null,
  target: null, stopOnStdinClose: false,
};
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  const v = () => argv[++i];
  if (a === '--target') opts.target = v();
  else if (a === '--every') opts.every = Number(v());
  else if (a === '--modes') opts.modes = v().split(',');
  else if (a === '--match') opts.match = new RegExp(v());
  else if (a === '--after') opts.after = Number(v());
  else if (a === '--max-consecutive') opts.maxConsecutive = Number(v());
  else if (a === '--delay-ms') opts.delayMs = Number(v());
  else if (a === '--slow-ms') opts.slowMs = Number(v());
  else if (a === '--log') opts.log = v();
  else if (a === '--stop-on-stdin-close') opts.stopOnStdinClose = true;
  else {
    console.error(`fault_proxy.mjs: unknown option ${a}`);
    process.exit(2);
  }
}
const knownModes = new Set(['503', '500', 'unavailable', 'reset', 'slow']);
for (const m of opts.modes) {
  if (!knownModes.has(m)) {
    console.error(`fault_proxy.mjs: unknown fault mode ${m}`);
    process.exit(2);
  }
}
if (!opts.target) {
  console.error('fault_proxy.mjs: --target host:port is required');
  process.exit(2);
}
const [targetHost, targetPort] = opts.target.split(':');

let matching = 0;
let faultIndex = 0;
const consecutive = new Map();  // "METHOD url" -> faults in a row

function xmlError(code, message) {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message><RequestId>fault-proxy</RequestId></Error>`;
}

const server = http.createServer((req, res) => {
  const line = `${req.method} ${req.url}`;
  let fault = null;
  if (opts.every > 0 && (!opts.match || opts.match.test(line))) {
    matching += 1;
    if (matching > opts.after && (matching - opts.after) % opts.every === 0 && (consecutive.get(line) ?? 0) < opts.maxConsecutive) {
      fault = opts.modes[faultIndex++ % opts.modes.length];
    }
  }
  if (fault) consecutive.set(line, (consecutive.get(line) ?? 0) + 1);
  else consecutive.delete(line);
  if (opts.log) {
    const entry = {
      method: req.method,
      host: req.headers.host ?? null,
      url: req.url,
      conn: req.socket.remotePort,
      fault,
      sse: req.headers['x-amz-server-side-encryption'] ?? null,
      sseKmsKeyId: req.headers['x-amz-server-side-encryption-aws-kms-key-id'] ?? null,
      contentSha256: req.headers['x-amz-content-sha256'] ?? null,
      signed: typeof req.headers.authorization === 'string',
    };
    appendFileSync(opts.log, `${JSON.stringify(entry)}\n`);
  }
  if (fault === 'reset') {
    req.socket.destroy();
    return;
  }
  const errors = {
    503: [503, 'SlowDown', 'Please reduce your request rate.'],
    unavailable: [503, 'ServiceUnavailable', 'Service is unable to handle request.'],
    500: [500, 'InternalError', 'We encountered an internal error. Please try again.'],
  };
  if (errors[fault]) {
    const [status, code, message] = errors[fault];
    // Drain the body first so the client sees the response rather than a broken pipe.
    req.resume();
    req.on('end', () => {
      const body = xmlError(code, message);
      res.writeHead(status, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    });
    return;
  }
  const delay = opts.delayMs + (fault === 'slow' ? opts.slowMs : 0);
  if (delay > 0) {
    req.pause();
    setTimeout(() => forward(req, res), delay);
  } else {
    forward(req, res);
  }
});

function forward(req, res) {
  // A fresh upstream connection per request: a pooled one the server has just closed would
  // turn into a reset the test did not ask for.
  const upstream = http.request(
    { host: targetHost, port: Number(targetPort), method: req.method, path: req.url, headers: req.headers, agent: false },
    (up) => {
      // Hop-by-hop headers describe the upstream connection, not the client's: passing on
      // "connection: close" would stop the client from reusing its connection.
      const headers = { ...up.headers };
      delete headers.connection;
      delete headers['keep-alive'];
      res.writeHead(up.statusCode, headers);
      up.pipe(res);
    },
  );
  upstream.on('error', (err) => {
    if (opts.log) appendFileSync(opts.log, `${JSON.stringify({ method: req.method, url: req.url, upstreamError: err.message })}\n`);
    req.socket.destroy();
  });
  req.pipe(upstream);
}
server.keepAliveTimeout = 30000;
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: server.address().port })}\n`);
});
const stop = () => server.close(() => process.exit(0)) && setTimeout(() => process.exit(0), 200);
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
if (opts.stopOnStdinClose) {
  process.stdin.on('end', stop);
  process.stdin.on('error', stop);
  process.stdin.resume();
}
