// Writes tests/data/tfjs_functional/: a small *functional* TF.js layers model (two branches, Add,
// Concatenate, SeparableConv2D, BatchNormalization, two outputs) saved by TF.js itself, and TF.js's
// outputs on a fixed input, so tests check streamproc's layers-model loader against the real thing.
//   node make_functional_fixture.mjs ../../tests/data/tfjs_functional
import fs from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';

const out = process.argv[2];
await tf.setBackend('cpu');
const input = tf.input({shape: [24, 24, 3], name: 'image'});
const stem = tf.layers.conv2d({filters: 8, kernelSize: 3, strides: 2, padding: 'same', name: 'stem', kernelInitializer: tf.initializers.glorotUniform({seed: 1})}).apply(input);
const norm = tf.layers.batchNormalization({name: 'norm', movingMeanInitializer: tf.initializers.randomUniform({minval: -0.2, maxval: 0.2, seed: 2}), movingVarianceInitializer: tf.initializers.randomUniform({minval: 0.5, maxval: 1.5, seed: 3}), gammaInitializer: tf.initializers.randomUniform({minval: 0.8, maxval: 1.2, seed: 4})}).apply(stem);
const act = tf.layers.reLU({maxValue: 6, name: 'relu6'}).apply(norm);
const left = tf.layers.depthwiseConv2d({kernelSize: 3, padding: 'same', name: 'dw', depthwiseInitializer: tf.initializers.glorotUniform({seed: 5})}).apply(act);
const right = tf.layers.separableConv2d({filters: 8, kernelSize: 3, padding: 'same', name: 'sep', depthwiseInitializer: tf.initializers.glorotUniform({seed: 6}), pointwiseInitializer: tf.initializers.glorotUniform({seed: 7}), biasInitializer: tf.initializers.randomUniform({minval: -0.1, maxval: 0.1, seed: 8})}).apply(act);
const sum = tf.layers.add({name: 'sum'}).apply([left, right]);
const both = tf.layers.concatenate({name: 'both'}).apply([sum, act]);
const pooled = tf.layers.globalAveragePooling2d({name: 'gap'}).apply(both);
const probs = tf.layers.dense({units: 4, activation: 'softmax', name: 'probs', kernelInitializer: tf.initializers.glorotUniform({seed: 9})}).apply(pooled);
const score = tf.layers.dense({units: 1, activation: 'sigmoid', name: 'score', kernelInitializer: tf.initializers.glorotUniform({seed: 10})}).apply(pooled);
const model = tf.model({inputs: input, outputs: [probs, score], name: 'functional_demo'});

await model.save(tf.io.withSaveHandler(async (artifacts) => {
  fs.mkdirSync(out, {recursive: true});
  fs.writeFileSync(path.join(out, 'weights.bin'), Buffer.from(artifacts.weightData));
  fs.writeFileSync(path.join(out, 'model.json'), JSON.stringify({
    modelTopology: artifacts.modelTopology, format: artifacts.format, generatedBy: artifacts.generatedBy,
    convertedBy: artifacts.convertedBy, weightsManifest: [{paths: ['weights.bin'], weights: artifacts.weightSpecs}],
  }));
  return {modelArtifactsInfo: {dateSaved: new Date(), modelTopologyType: 'JSON'}};
}));
// A fixed input: a smooth gradient with a stripe pattern, values in [0, 1].
const values = new Float32Array(24 * 24 * 3);
for (let y = 0; y < 24; y++) for (let x = 0; x < 24; x++) for (let c = 0; c < 3; c++) {
  values[(y * 24 + x) * 3 + c] = c === 0 ? y / 23 : c === 1 ? x / 23 : ((x + 2 * y) % 7) / 6;
}
const [p, s] = model.predict(tf.tensor4d(values, [1, 24, 24, 3]));
fs.writeFileSync(path.join(out, 'reference.json'), JSON.stringify({
  generator: `TensorFlow.js ${tf.version.tfjs}, backend cpu, this script`,
  input: 'x[y][x][c] = c0: y/23, c1: x/23, c2: ((x + 2y) mod 7)/6, shape [1, 24, 24, 3]',
  outputs: {probs: Array.from(await p.data()), score: Array.from(await s.data())},
}, null, 1));
console.log('wrote', out);
