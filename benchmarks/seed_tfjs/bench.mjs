// The seed's job on the seed's stack: TensorFlow.js (wasm backend) in Node, photo bytes in, faces and
// emotions out. Per image: decode (jpeg-js / pngjs), letterbox to a square, resizeBilinear to 256,
// BlazeFace (Human 3.3.6 graph model), anchors + non-max suppression, then for each face a square
// cropAndResize to 64x64, grayscale, [-1, 1], the emotion model. One JSON line on stdout.
//
//   node bench.mjs --models DIR --images a.jpg,b.png [--backend wasm|cpu] [--images-timed 200]
//                  [--warmup 12] [--concurrency 1] [--predecoded 1]
//
// --predecoded 1 decodes each photo once, up front (as the reference baseline did): the rest of the job only.
// --concurrency N runs N requests at once on the one JavaScript thread (as N clients of a Node
// server would): throughput stays, latency grows with the wait.

import fs from 'node:fs';
import path from 'node:path';
import {fileURLToPath} from 'node:url';
import * as tf from '@tensorflow/tfjs';
import * as wasm from '@tensorflow/tfjs-backend-wasm';
import jpeg from 'jpeg-js';
import {PNG} from 'pngjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const SCORE = 0.5;  // face score threshold
const IOU = 0.3;    // non-max suppression overlap
const MAX_FACES = 20;
const GRAY = [0.2989, 0.5870, 0.1140];

function options(argv) {
  const out = {backend: 'wasm', imagesTimed: 200, warmup: 12, concurrency: 1, predecoded: 0};
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, '').replace(/-(.)/g, (_, c) => c.toUpperCase());
    out[key] = argv[i + 1];
  }
  if (!out.models || !out.images) throw new Error('usage: node bench.mjs --models DIR --images a.jpg,b.png');
  out.images = out.images.split(',');
  for (const key of ['imagesTimed', 'warmup', 'concurrency', 'predecoded']) out[key] = Number(out[key]);
  return out;
}

async function loadGraph(jsonPath) {
  const manifest = JSON.parse(fs.readFileSync(jsonPath, 'utf8'));
  const folder = path.dirname(jsonPath);
  const specs = manifest.weightsManifest.flatMap((group) => group.weights);
  const shards = manifest.weightsManifest.flatMap((group) => group.paths).map((p) => fs.readFileSync(path.join(folder, p)));
  const data = Buffer.concat(shards);
  const weightData = data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength);
  return tf.loadGraphModel(tf.io.fromMemory({
    modelTopology: manifest.modelTopology, weightSpecs: specs, weightData, format: manifest.format,
    generatedBy: manifest.generatedBy, convertedBy: manifest.convertedBy,
    signature: manifest.signature, userDefinedMetadata: manifest.userDefinedMetadata,
  }));
}

function decode(bytes) {
  const png = bytes[0] === 0x89 && bytes[1] === 0x50;
  const image = png ? PNG.sync.read(bytes) : jpeg.decode(bytes, {useTArray: true, formatAsRGBA: true});
  const rgb = new Uint8Array(image.width * image.height * 3);
  for (let i = 0, j = 0; i < rgb.length; i += 3, j += 4) {
    rgb[i] = image.data[j]; rgb[i + 1] = image.data[j + 1]; rgb[i + 2] = image.data[j + 2];
  }
  return tf.tensor3d(rgb, [image.height, image.width, 3], 'int32');
}

function anchors(size) {
  // BlazeFace (256): a 16x16 grid with 2 anchors per cell, then an 8x8 grid with 6, centres in [0, 1].
  const out = [];
  for (const [grid, count] of [[size / 16, 2], [size / 32, 6]]) {
    for (let y = 0; y < grid; y++) for (let x = 0; x < grid; x++) {
      for (let k = 0; k < count; k++) out.push([(x + 0.5) / grid, (y + 0.5) / grid]);
    }
  }
  return out;
}

async function detect(blazeface, image, prior) {
  const [height, width] = image.shape;
  const side = Math.max(width, height);
  const left = Math.floor((side - width) / 2), top = Math.floor((side - height) / 2);
  const input = tf.tidy(() => {
    const padded = tf.pad(image.toFloat(), [[top, side - height - top], [left, side - width - left], [0, 0]]);
    return tf.image.resizeBilinear(padded, [256, 256]).div(127.5).sub(1).expandDims(0);
  });
  const out = blazeface.execute(input, ['Identity', 'Identity_1', 'Identity_2', 'Identity_3']);
  const [logitsA, logitsB, regA, regB] = await Promise.all(out.map((t) => t.data()));
  tf.dispose([input, ...out]);
  const logits = [...logitsA, ...logitsB];
  const boxes = [], scores = [];
  for (let i = 0; i < logits.length; i++) {
    const score = 1 / (1 + Math.exp(-logits[i]));
    if (score < SCORE) continue;
    const reg = i < 512 ? regA.subarray(i * 16, i * 16 + 4) : regB.subarray((i - 512) * 16, (i - 512) * 16 + 4);
    const cx = prior[i][0] + reg[0] / 256, cy = prior[i][1] + reg[1] / 256;
    const w = reg[2] / 256, h = reg[3] / 256;
    boxes.push([cy - h / 2, cx - w / 2, cy + h / 2, cx + w / 2]);
    scores.push(score);
  }
  if (!boxes.length) return [];
  const keep = await tf.image.nonMaxSuppressionAsync(boxes, scores, MAX_FACES, IOU, SCORE);
  const kept = await keep.data();
  keep.dispose();
  // Back from the letterboxed square to the photo, in pixels.
  return Array.from(kept, (i) => boxes[i].map((v, k) => v * side - (k % 2 ? left : top)));
}

async function emotions(emotion, image, faces) {
  const [height, width] = image.shape;
  const results = [];
  for (const [y1, x1, y2, x2] of faces) {
    const size = Math.max(y2 - y1, x2 - x1), cy = (y1 + y2) / 2, cx = (x1 + x2) / 2;
    const box = [[(cy - size / 2) / height, (cx - size / 2) / width, (cy + size / 2) / height, (cx + size / 2) / width]];
    const probs = tf.tidy(() => {
      const crop = tf.image.cropAndResize(image.toFloat().expandDims(0), box, [0], [64, 64]).div(255);
      const gray = crop.mul(tf.tensor1d(GRAY)).sum(-1, true);
      return emotion.execute(gray.sub(0.5).mul(2));
    });
    results.push(await probs.data());
    probs.dispose();
  }
  return results;
}

function percentile(sorted, q) {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

async function main() {
  const opts = options(process.argv.slice(2));
  if (opts.backend === 'wasm') wasm.setWasmPaths(path.join(HERE, 'node_modules/@tensorflow/tfjs-backend-wasm/dist/'));
  await tf.setBackend(opts.backend);
  await tf.ready();
  const blazeface = await loadGraph(path.join(opts.models, 'blazeface.json'));
  const emotion = await loadGraph(path.join(opts.models, 'emotion.json'));
  const photos = opts.images.map((file) => fs.readFileSync(file));
  const decoded = opts.predecoded ? photos.map(decode) : null;
  const prior = anchors(256);
  let faces = 0;

  async function one(index) {
    const started = performance.now();
    const image = decoded ? decoded[index % photos.length] : decode(photos[index % photos.length]);
    const boxes = await detect(blazeface, image, prior);
    await emotions(emotion, image, boxes);
    if (!decoded) image.dispose();
    return [performance.now() - started, boxes.length];
  }

  for (let i = 0; i < opts.warmup; i++) await one(i);
  const latencies = [];
  let next = 0;
  async function worker() {
    while (next < opts.imagesTimed) {
      const [ms, found] = await one(next++);
      latencies.push(ms);
      faces += found;
    }
  }
  const started = performance.now();
  await Promise.all(Array.from({length: opts.concurrency}, worker));
  const seconds = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  console.log(JSON.stringify({
    backend: tf.getBackend(), tfjs: tf.version.tfjs, concurrency: opts.concurrency, images: latencies.length,
    images_per_s: latencies.length / seconds, p50_ms: percentile(latencies, 0.5), p99_ms: percentile(latencies, 0.99),
    faces_per_image: faces / latencies.length, predecoded: Boolean(opts.predecoded), threads: opts.backend === 'wasm' ? wasm.getThreadsCount() : 1,
  }));
}

main().catch((error) => { console.error(String(error && error.message || error)); process.exit(1); });
