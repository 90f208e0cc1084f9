// What an early offer costs the server per waiting user, measured on the server's RSS:
//
//   target/release/strangers --listen 127.0.0.1:8099 --stun "" --max-per-ip 20000 \
//     --max-pending-per-ip 20000 --max-connections 20000 --fallback-after 1h &
//   node --experimental-websocket benches/early_offer_memory.mjs $! ws://127.0.0.1:8099/ws 5000 6000
//
// N clients connect (idle), then join the queue, each with an interest of its own (so
// nobody is paired: the fallback is an hour away), then each sends an early offer of the
// given SDP size; the server's VmRSS is read after each phase. Prints KiB per user for each
// step. (A script rather than the load generator: it only needs to hold sockets open.)

import { readFileSync } from 'node:fs';

const [pid, url, n = '2000', sdpBytes = '6000'] = process.argv.slice(2);
const N = Number(n);
const SDP = 'v=0\r\n' + 'a'.repeat(Math.max(0, Number(sdpBytes) - 5));

const rss = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);
const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Opens one client and resolves once its welcome arrived. */
function connect() {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    const waiters = [];
    ws.onmessage = (event) => {
      const msg = JSON.parse(event.data);
      const i = waiters.findIndex((w) => w.type === msg.type);
      if (i >= 0) waiters.splice(i, 1)[0].resolve(msg);
    };
    ws.onerror = reject;
    const client = {
      ws,
      next: (type) => new Promise((res) => waiters.push({ type, resolve: res })),
      send: (msg) => ws.send(JSON.stringify(msg)),
    };
    client.next('welcome').then(() => resolve(client));
  });
}

async function inBatches(items, fn, size = 200) {
  for (let i = 0; i < items.length; i += size) await Promise.all(items.slice(i, i + size).map(fn));
}

const before = rss();
const clients = [];
for (let i = 0; i < N; i += 200) {
  clients.push(...(await Promise.all(Array.from({ length: Math.min(200, N - i) }, connect))));
}
await pause(2000);
const idle = rss();
await inBatches(clients, async (c, i) => {
  const waiting = c.next('waiting');
  c.send({ type: 'join', interests: [`u${clients.indexOf(c)}`] });
  await waiting;
});
await pause(2000);
const waiting = rss();
await inBatches(clients, async (c) => {
  // The pong comes after the offer was read and handed to the lobby.
  const pong = c.next('pong');
  c.send({ type: 'early_offer', sdp: SDP });
  c.send({ type: 'ping' });
  await pong;
});
await pause(2000);
const offered = rss();
const per = (a, b) => ((b - a) / N).toFixed(2);
console.log(
  JSON.stringify({
    users: N,
    sdp_bytes: SDP.length,
    rss_kib: { before, idle, waiting, offered },
    kib_per_user: { idle: per(before, idle), join: per(idle, waiting), early_offer: per(waiting, offered) },
    load_average: readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' '),
  }),
);
for (const c of clients) c.ws.close();
await pause(500);
process.exit(0);
