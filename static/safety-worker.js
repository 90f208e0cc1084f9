// The on-device nudity classifier, off the main thread: loads TensorFlow.js and the NSFWJS
// MobileNetV2 model from this server's own vendored files (static/vendor/, nothing from a
// model hub) and answers "how likely is each class" for frames the page hands it. It keeps no
// frame and sends nothing anywhere but back to the page that made it.
//
// Messages from the page:
//   {type: 'load', backends: ['wasm', 'webgl'], v}   v: the asset version, for immutable URLs
//   {type: 'classify', id, width, height, pixels: ArrayBuffer (RGBA, width×height)}
// Messages to the page:
//   {type: 'ready', backend, loadMs}      the model is loaded and has run once
//   {type: 'failed', reason}                     it cannot run here (the page stays blurred)
//   {type: 'result', id, ms, classes: {Drawing, Hentai, Neutral, Porn, Sexy}}
//   {type: 'error', id, reason}                  one frame could not be classified

/* global tf, importScripts */
'use strict';

// The model's five outputs, in order (nsfwjs' NSFW_CLASSES).
const CLASSES = ['Drawing', 'Hentai', 'Neutral', 'Porn', 'Sexy'];
const SIZE = 224;
// NSFWJS' "mobilenet_v2_mid" graph model (BENCHMARKS.md says why this one).
const MODEL = { dir: 'vendor/nsfwjs/mobilenet_v2_mid/', shards: 2 };

let model = null;
let backend = null;

/** The bytes of a weight shard the model files carry as base64. */
function decodeBase64(text) {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i += 1) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

/** Loads the model's files (they set `model` and `group1_shard<i>of<n>` globals). */
function modelArtifacts(spec, query) {
  const files = [`${spec.dir}model.min.js${query}`];
  for (let i = 1; i <= spec.shards; i += 1) files.push(`${spec.dir}group1-shard${i}of${spec.shards}.min.js${query}`);
  importScripts(...files);
  const json = self.model;
  const parts = [];
  for (const path of json.weightsManifest.flatMap((group) => group.paths)) {
    const base64 = self[path.replace(/-/g, '_')];
    if (typeof base64 !== 'string') throw new Error(`weight shard ${path} is missing`);
    parts.push(decodeBase64(base64));
  }
  const weightData = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    weightData.set(p, offset);
    offset += p.length;
  }
  return {
    modelTopology: json.modelTopology,
    format: json.format,
    generatedBy: json.generatedBy,
    convertedBy: json.convertedBy,
    userDefinedMetadata: json.userDefinedMetadata,
    weightSpecs: json.weightsManifest.flatMap((group) => group.weights),
    weightData: weightData.buffer,
  };
}

/** The first of `backends` that initialises here. */
async function pickBackend(backends, query) {
  for (const name of backends) {
    try {
      if (name === 'wasm') {
        importScripts(`vendor/tfjs/tf-backend-wasm.min.js${query}`);
        const base = new URL('vendor/tfjs/', self.location.href).href;
        tf.wasm.setWasmPaths({
          'tfjs-backend-wasm.wasm': `${base}tfjs-backend-wasm.wasm${query}`,
          'tfjs-backend-wasm-simd.wasm': `${base}tfjs-backend-wasm-simd.wasm${query}`,
          // Threads need cross-origin isolation, which these pages do not have.
          'tfjs-backend-wasm-threaded-simd.wasm': `${base}tfjs-backend-wasm-simd.wasm${query}`,
        });
      }
      if (await tf.setBackend(name)) {
        await tf.ready();
        return name;
      }
    } catch {
      // Not available here: try the next one.
    }
  }
  throw new Error(`no TensorFlow.js backend works here (tried ${backends.join(', ')})`);
}

async function load({ backends, v }) {
  const started = performance.now();
  const query = v ? `?v=${encodeURIComponent(v)}` : '';
  // tf.min.js carries regenerator-runtime, which assigns the global `regeneratorRuntime` and,
  // when that throws (strict mode), falls back to Function(): an eval the pages' policy
  // forbids. With the global already there the assignment works.
  self.regeneratorRuntime = undefined;
  importScripts(`vendor/tfjs/tf.min.js${query}`);
  backend = await pickBackend(backends, query);
  model = await tf.loadGraphModel(tf.io.fromMemory(modelArtifacts(MODEL, query)));
  // The first run compiles and allocates; do it now, not on the stranger's first frame.
  const warm = tf.tidy(() => model.predict(tf.zeros([1, SIZE, SIZE, 3])));
  await warm.data();
  warm.dispose();
  return { backend, loadMs: performance.now() - started };
}

/** The class probabilities of one RGBA frame (scaled to the model's input as nsfwjs does). */
async function classify({ width, height, pixels }) {
  const started = performance.now();
  const output = tf.tidy(() => {
    const rgba = tf.tensor3d(new Uint8Array(pixels), [height, width, 4], 'int32');
    let image = rgba.slice([0, 0, 0], [height, width, 3]).toFloat().div(255);
    if (width !== SIZE || height !== SIZE) image = tf.image.resizeBilinear(image, [SIZE, SIZE], true);
    return model.predict(image.reshape([1, SIZE, SIZE, 3]));
  });
  const values = await output.data();
  output.dispose();
  const classes = {};
  CLASSES.forEach((name, i) => {
    classes[name] = values[i];
  });
  return { classes, ms: performance.now() - started };
}

self.onmessage = async ({ data }) => {
  if (data.type === 'load') {
    try {
      self.postMessage({ type: 'ready', ...(await load(data)) });
    } catch (err) {
      self.postMessage({ type: 'failed', reason: String((err && err.message) || err) });
    }
  } else if (data.type === 'classify') {
    if (!model) return;
    try {
      self.postMessage({ type: 'result', id: data.id, ...(await classify(data)) });
    } catch (err) {
      self.postMessage({ type: 'error', id: data.id, reason: String((err && err.message) || err) });
    }
  }
};
