#!/usr/bin/env node
// Starts @20minutes/s3rver (an S3 server that verifies SigV4) on loopback for fruitpipe's tests
// and benchmarks, and prints one JSON line {"port": N, "address": "127.0.0.1"} once it listens.
//
//   node --openssl-legacy-provider tests/harness/s3rver.mjs --directory DIR [--port 0]
//        [--bucket NAME]... [--credentials KEY:SECRET]...
//
// s3rver encrypts ListObjectsV2 continuation tokens with single DES, which OpenSSL 3 only
// offers in its legacy provider: without the flag, listing more than 1,000 keys fails with
// 500 InternalError, so the script refuses to start.
//
// It accepts the access key S3RVER with secret S3RVER, plus any --credentials pairs. It stops
// on SIGTERM/SIGINT, and when its standard input closes if --stop-on-stdin-close is given (so
// a crashed parent does not leave it running).
import { createRequire } from 'node:module';
import { mkdirSync } from 'node:fs';
import { createCipheriv } from 'node:crypto';

const require = createRequire(new URL('../../tools/node/package.json', import.meta.url));

function parseArgs(argv) {
  const opts = { port: 0, address: '127.0.0.1', buckets: [], credentials: [], stopOnStdinClose: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--directory') opts.directory = next();
    else if (a === '--port') opts.port = Number(next());
    else if (a === '--address') opts.address = next();
    else if (a === '--bucket') opts.buckets.push(next());
    else if (a === '--credentials') opts.credentials.push(next());
    else if (a === '--stop-on-stdin-close') opts.stopOnStdinClose = true;
    else throw new Error(`unknown option ${a}`);
  }
  if (!opts.directory) throw new Error('--directory is required');
  return opts;
}

let opts;
try {
  opts = parseArgs(process.argv.slice(2));
} catch (e) {
  console.error(`s3rver.mjs: ${e.message}`);
  process.exit(2);
}

try {
  createCipheriv('des', Buffer.alloc(8), Buffer.alloc(8));
} catch {
  console.error('s3rver.mjs: DES is unavailable (s3rver needs it for continuation tokens): run node --openssl-legacy-provider');
  process.exit(2);
}

const S3rver = require('@20minutes/s3rver');
const { DUMMY_ACCOUNT } = require('@20minutes/s3rver/lib/models/account');
for (const pair of opts.credentials) {
  const colon = pair.indexOf(':');
  DUMMY_ACCOUNT.createKeyPair(pair.slice(0, colon), pair.slice(colon + 1));
}

mkdirSync(opts.directory, { recursive: true });
const server = new S3rver({
  port: opts.port,
  address: opts.address,
  silent: true,
  directory: opts.directory,
  configureBuckets: opts.buckets.map((name) => ({ name })),
});
const { port, address } = await server.run();
process.stdout.write(`${JSON.stringify({ port, address })}\n`);

const stop = () => server.close().finally(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
if (opts.stopOnStdinClose) {
  process.stdin.on('end', stop);
  process.stdin.on('error', stop);
  process.stdin.resume();
}
