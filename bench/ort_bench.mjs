// The peer for bench/engine_bench: ONNX Runtime (onnxruntime-node, its own Linux binary) on the
// same ONNX file, inference only, images/s. Prints one tab-separated line per measurement:
//   ort <threads> <size> <batch> <images/s> <rounds> <version> <images per CPU-second>
// Usage: node bench/ort_bench.mjs --model FILE [--threads 1,2] [--batch 32] [--seconds 3]
//        [--rounds 1] [--input input]
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, '..', 'tools', 'node', 'package.json'));
const ort = require('onnxruntime-node');
const ortVersion = require('onnxruntime-node/package.json').version;

function parseArgs(argv) {
  const args = { threads: '1,2', batch: '32', seconds: '3', rounds: '1', input: 'input', size: '224' };
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, '');
    if (!(key in args) && key !== 'model') throw new Error(`unknown option ${argv[i]}`);
    if (i + 1 >= argv.length) throw new Error(`option ${argv[i]} needs a value`);
    args[key] = argv[i + 1];
  }
  if (!args.model) throw new Error('--model FILE is required');
  return args;
}

async function measure(model, inputName, threads, batch, size, seconds) {
  const session = await ort.InferenceSession.create(model, {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  });
  const data = new Float32Array(batch * 3 * size * size);
  for (let i = 0; i < data.length; i++) data[i] = ((i * 7919) % 255) / 127.5 - 1;
  const feeds = { [inputName]: new ort.Tensor('float32', data, [batch, 3, size, size]) };
  await session.run(feeds);  // warm-up: allocations, kernel selection
  let images = 0;
  const cpuStart = process.cpuUsage();
  const start = process.hrtime.bigint();
  let elapsed = 0;
  while (elapsed < seconds || images < 2 * batch) {
    await session.run(feeds);
    images += batch;
    elapsed = Number(process.hrtime.bigint() - start) / 1e9;
  }
  const cpu = process.cpuUsage(cpuStart);
  await session.release();
  return { wall: images / elapsed, cpu: images / ((cpu.user + cpu.system) / 1e6) };
}

const args = parseArgs(process.argv.slice(2));
const batch = Number(args.batch);
const size = Number(args.size);
for (const threads of args.threads.split(',').map(Number)) {
  const best = { wall: 0, cpu: 0 };
  for (let r = 0; r < Number(args.rounds); r++) {
    const m = await measure(args.model, args.input, threads, batch, size, Number(args.seconds));
    best.wall = Math.max(best.wall, m.wall);
    best.cpu = Math.max(best.cpu, m.cpu);
  }
  console.log(['ort', threads, size, batch, best.wall.toFixed(1), args.rounds, ortVersion, best.cpu.toFixed(1)].join('\t'));
}
