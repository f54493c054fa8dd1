#!/usr/bin/env node
// Signs requests with @smithy/signature-v4 (the AWS SDK for JavaScript's signer), as an
// independent check of fruitpipe's SigV4 signer. Reads JSON from stdin:
//   {"accessKeyId", "secretAccessKey", "sessionToken"?, "region", "service", "date": ISO-8601,
//    "requests": [{"method", "host", "path": raw (not encoded), "query": {name: value},
//                  "headers": {name: value}, "payloadSha256"}]}
// and prints a JSON array with each request's authorization header.
import { createRequire } from 'node:module';
import { createHash, createHmac } from 'node:crypto';

const require = createRequire(new URL('../../tools/node/package.json', import.meta.url));
const { SignatureV4 } = require('@smithy/signature-v4');

// The hash interface the signer expects: new Sha256(secret?) -> update(data) -> digest().
class Sha256 {
  constructor(secret) {
    this.hash = secret === undefined ? createHash('sha256') : createHmac('sha256', secret);
  }
  update(data) {
    this.hash.update(data);
  }
  async digest() {
    return new Uint8Array(this.hash.digest());
  }
}

// S3 paths are encoded once per segment (the SDK does this before signing, with
// uriEscapePath: false); RFC 3986 unreserved characters stay as they are.
const escape = (s) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
const encodePath = (p) => p.split('/').map(escape).join('/');

let input = '';
for await (const chunk of process.stdin) input += chunk;
const job = JSON.parse(input);
const signer = new SignatureV4({
  service: job.service,
  region: job.region,
  credentials: {
    accessKeyId: job.accessKeyId,
    secretAccessKey: job.secretAccessKey,
    ...(job.sessionToken ? { sessionToken: job.sessionToken } : {}),
  },
  sha256: Sha256,
  uriEscapePath: false,
  applyChecksum: true,
});
const out = [];
for (const r of job.requests) {
  const signed = await signer.sign(
    {
      method: r.method,
      protocol: 'https:',
      hostname: r.host,
      path: encodePath(r.path),
      query: r.query,
      headers: { host: r.host, 'x-amz-content-sha256': r.payloadSha256, ...r.headers },
    },
    { signingDate: new Date(job.date) },
  );
  out.push(signed.headers.authorization);
}
process.stdout.write(`${JSON.stringify(out)}\n`);
