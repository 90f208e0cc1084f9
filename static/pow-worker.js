// The Web Worker that solves the proof-of-work challenges (pow.js), so the page never
// stalls while one is solved. Each message is one challenge, {seed, bits}; the answer is
// {seed, nonce, ms}: the nonce (null if none was found) and how long the search took.
// gate.js ends a worker whose challenge is out of date and starts another.

import { solve } from './pow.js';

self.addEventListener('message', (event) => {
  const { seed, bits } = event.data || {};
  const started = performance.now();
  const nonce = solve(seed, bits);
  self.postMessage({ seed, nonce, ms: performance.now() - started });
});
