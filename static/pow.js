// The proof of work's arithmetic: SHA-256 of a challenge's 16-byte seed and a 4-byte nonce
// (both big-endian), and the search for the first nonce whose hash starts with `bits` zero
// bits. The same as the server's src/pow/mod.rs. No DOM: it runs in the Web Worker
// (pow-worker.js) and under node.
//
// One 20-byte message is one SHA-256 block, so a hash is one compression, written out here
// on 32-bit integers: no call per nonce into a digest API (crypto.subtle.digest() costs a
// promise per try, more than the hash itself).

const K = new Int32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);
const H0 = new Int32Array([
  0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
]);

/** The most bits a challenge may ask for (the server's MAX_BITS). */
export const MAX_BITS = 26;

/** The seed's four 32-bit words, from its 32 hex digits; null if it is not that. */
export function seedWords(seed) {
  if (typeof seed !== 'string' || !/^[0-9a-f]{32}$/.test(seed)) return null;
  const words = new Int32Array(4);
  for (let i = 0; i < 4; i += 1) words[i] = parseInt(seed.slice(8 * i, 8 * i + 8), 16) | 0;
  return words;
}

/**
 * SHA-256 of the seed (as 4 words) and `nonce`, into `out` (8 words).
 * @param {Int32Array} seed  @param {number} nonce  @param {Int32Array} w  64 words of scratch
 * @param {Int32Array} out
 */
function hash(seed, nonce, w, out) {
  w[0] = seed[0];
  w[1] = seed[1];
  w[2] = seed[2];
  w[3] = seed[3];
  w[4] = nonce | 0;
  w[5] = 0x80000000 | 0; // the padding's one bit
  for (let i = 6; i < 15; i += 1) w[i] = 0;
  w[15] = 160; // the message's length in bits
  for (let i = 16; i < 64; i += 1) {
    const x = w[i - 15];
    const y = w[i - 2];
    const s0 = ((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3);
    const s1 = ((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10);
    w[i] = (w[i - 16] + s0 + w[i - 7] + s1) | 0;
  }
  let a = H0[0];
  let b = H0[1];
  let c = H0[2];
  let d = H0[3];
  let e = H0[4];
  let f = H0[5];
  let g = H0[6];
  let h = H0[7];
  for (let i = 0; i < 64; i += 1) {
    const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
    const ch = (e & f) ^ (~e & g);
    const t1 = (h + S1 + ch + K[i] + w[i]) | 0;
    const S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
    const maj = (a & b) ^ (a & c) ^ (b & c);
    const t2 = (S0 + maj) | 0;
    h = g;
    g = f;
    f = e;
    e = (d + t1) | 0;
    d = c;
    c = b;
    b = a;
    a = (t1 + t2) | 0;
  }
  out[0] = (H0[0] + a) | 0;
  out[1] = (H0[1] + b) | 0;
  out[2] = (H0[2] + c) | 0;
  out[3] = (H0[3] + d) | 0;
  out[4] = (H0[4] + e) | 0;
  out[5] = (H0[5] + f) | 0;
  out[6] = (H0[6] + g) | 0;
  out[7] = (H0[7] + h) | 0;
}

/** The hash of a seed (hex) and a nonce, as 64 hex digits (for tests). */
export function hashHex(seed, nonce) {
  const out = new Int32Array(8);
  hash(seedWords(seed), nonce, new Int32Array(64), out);
  return Array.from(out, (word) => (word >>> 0).toString(16).padStart(8, '0')).join('');
}

/** Leading zero bits of a digest's first two words (enough for MAX_BITS). */
function leadingZeros(out) {
  const first = Math.clz32(out[0]);
  return first < 32 ? first : 32 + Math.clz32(out[1]);
}

/**
 * The first nonce from `from` (counting up, at most `count` of them) whose hash has `bits`
 * leading zero bits; null if none of those does, or the challenge is malformed.
 */
export function solve(seed, bits, from = 0, count = 2 ** 32) {
  const words = seedWords(seed);
  if (!words || !Number.isInteger(bits) || bits < 0 || bits > MAX_BITS) return null;
  const w = new Int32Array(64);
  const out = new Int32Array(8);
  const end = Math.min(2 ** 32, from + count);
  for (let nonce = from; nonce < end; nonce += 1) {
    hash(words, nonce, w, out);
    if (leadingZeros(out) >= bits) return nonce;
  }
  return null;
}
