// The gate every join and Next passes (the server's src/gate.rs): the 18+ confirmation,
// remembered on this device, and the proof of work. Each challenge the server sets is
// solved in a Web Worker while the user waits or talks, so that pressing Next finds its
// solution ready. A join or Next sent before its solution is ready is held and goes out
// once it is; anything else passes straight through. A join keeps what it asks for
// (interests, mode, language) whatever else is pressed while it waits.
//
// The challenge that follows a join or Next is not solved while the call it asked for is
// being set up: from the join until the page says the call is settled (its first picture,
// a wait with nobody to meet, a text chat's start) or SETTLE_MS at most. A solve is a core's
// worth of CPU for a while (most of a second on a phone), which the new call's answer, ICE
// and first keyframe need just then. A join or Next held for its solution starts it at once.
// No DOM: storage, the send, the solver and the clock are handed in, so this runs under node.

import { t } from './i18n.js';

/** What the page says about the gate, in the page's language (looked up when read). */
export const GATE_TEXT = {
  /** Shown on a chat page whose box is not ticked yet. */
  get confirmFirst() {
    return t('client.confirm_first');
  },
  /** The server refused a join without the confirmation (`adult_required`). */
  get adultRequired() {
    return t('client.adult_required');
  },
  /** The server kept refusing the proof of work (`pow_required`, `pow_invalid`). */
  get powRefused() {
    return t('client.pow_refused');
  },
};

/** What the page says when the server refuses a join or Next at the gate (`code`), or null. */
export function gateRefusal(code) {
  if (code === 'adult_required') return GATE_TEXT.adultRequired;
  if (code === 'pow_required' || code === 'pow_invalid') return GATE_TEXT.powRefused;
  return null;
}

const ADULT_KEY = 'strangers.adult';
// A join refused for its proof of work is sent again with the next solution, at most this
// many times in a row (a server that keeps refusing is not asked forever).
const RETRIES = 3;
// The longest a challenge waits for the call its join asked for to settle before it is
// solved anyway (a call that never shows a picture must not leave Next without a solution).
export const SETTLE_MS = 3000;

/** The join and Next messages, which carry the confirmation and a solution. */
function isEntry(message) {
  return message && (message.type === 'join' || message.type === 'next');
}

/**
 * What goes out for `entry` when `held` is still waiting for its solution. A Next ends the
 * room it was pressed in; a join after it adds what it asks for (interests, and a text
 * chat's mode: the server keeps the language of the last join). A Next after a held join
 * is that join: from where the server stands (no join yet) a Next would join anyway, and
 * only the join says in which pool and language.
 */
function merged(held, entry) {
  if (!held) return entry;
  if (held.type === 'next' && entry.type === 'join') {
    const next = { ...held, interests: entry.interests };
    if (entry.mode) next.mode = entry.mode;
    return next;
  }
  if (held.type === 'join' && entry.type === 'next') return { ...held, adult: entry.adult };
  return entry;
}

export class Gate {
  #storage;
  #send;
  #isOpen;
  #solver;
  /** Confirmed on this page (when storage cannot remember it). */
  #confirmedHere = false;
  /** Whether this socket's welcome has said if there is a proof of work. */
  #known = false;
  /** The server sets no challenge (its proof of work is off). */
  #off = false;
  /** The challenge no join has spent yet, {seed, bits}, or null. */
  #challenge = null;
  /** The nonce that solves #challenge, once the worker has found it (null: not yet). */
  #nonce = null;
  /** A join or Next waiting for its solution. */
  #held = null;
  /** The last join or Next sent, sent again if its proof is refused. */
  #last = null;
  #retries = 0;
  #clock;
  /** A join or Next went out and its call is not settled yet: solving waits. */
  #settling = false;
  /** The timer that ends #settling after SETTLE_MS. */
  #settleTimer = null;
  /** #challenge is waiting for the call to settle before its solve starts. */
  #deferred = false;
  /** The last solve: {bits, ms}, for the tests and the benchmark. */
  lastSolve = null;

  /**
   * @param {object} o
   * @param {() => Storage} o.storage  window.localStorage (a getter: touching it can throw)
   * @param {(message: object) => boolean} o.send  the signaling send
   * @param {() => boolean} o.isOpen  whether a socket is open
   * @param {{solve(seed: string, bits: number): Promise<{nonce: number|null, ms: number}>}} o.solver
   * @param {{setTimeout(fn: () => void, ms: number): any, clearTimeout(id: any): void}} [o.clock]
   */
  constructor({ storage, send, isOpen, solver, clock = globalThis }) {
    this.#storage = storage;
    this.#send = send;
    this.#isOpen = isOpen;
    this.#solver = solver;
    this.#clock = clock;
  }

  /**
   * The call the last join or Next asked for is set up (or there is none to set up): a
   * challenge put off meanwhile is solved now.
   */
  settled() {
    this.#settling = false;
    if (this.#settleTimer !== null) this.#clock.clearTimeout(this.#settleTimer);
    this.#settleTimer = null;
    if (this.#deferred) this.#solve();
  }

  /** Whether a challenge is waiting for the call to settle (for tests). */
  get deferring() {
    return this.#deferred;
  }

  /** Whether the user has confirmed being 18 or older and agreeing to the rules. */
  get confirmed() {
    if (this.#confirmedHere) return true;
    try {
      return this.#storage().getItem(ADULT_KEY) === '1';
    } catch {
      return false;
    }
  }

  /** The user ticked (or unticked) the confirmation: remembered on this device. */
  confirm(on) {
    this.#confirmedHere = Boolean(on);
    try {
      if (on) this.#storage().setItem(ADULT_KEY, '1');
      else this.#storage().removeItem(ADULT_KEY);
    } catch {
      // Storage can be disabled: the confirmation then holds for this page only.
    }
  }

  /** A new socket's `welcome`: its challenge, or none when the proof of work is off. */
  welcome(message) {
    this.#known = true;
    this.#off = !message.challenge;
    this.#take(message.challenge || null);
  }

  /** A `challenge` message: what the next join or Next must solve. */
  challenge(message) {
    this.#known = true;
    this.#off = false;
    this.#take(message);
  }

  /**
   * An `error`: a join refused for its proof is sent again with the next solution. True
   * when it is (the refusal is then the gate's business only, and the page need not show it).
   */
  refused(message) {
    if (message.code !== 'pow_required' && message.code !== 'pow_invalid') return false;
    if (!this.#last || this.#held || this.#retries >= RETRIES) return false;
    this.#retries += 1;
    this.#held = this.#last;
    this.#flush();
    return true;
  }

  /** The socket went away, and its challenge with it; the session joins again on the next. */
  socketDown() {
    this.settled();
    this.#deferred = false;
    this.#known = false;
    this.#challenge = null;
    this.#nonce = null;
    this.#held = null;
    this.#last = null;
  }

  /**
   * Sends a message as the session and the chat do: false when no socket is open. A join
   * or Next gets the confirmation and its solution, or waits for the solution (true).
   */
  send(message) {
    if (!isEntry(message)) {
      // Leaving cancels a join that has not gone out: the server never had it.
      if (message && message.type === 'leave') this.#held = null;
      return this.#send(message);
    }
    if (!this.#isOpen()) return false;
    this.#held = merged(this.#held, { ...message, adult: this.confirmed });
    this.#retries = 0;
    this.#flush();
    return true;
  }

  /** Whether a join or Next is waiting for its solution (for tests). */
  get holding() {
    return this.#held !== null;
  }

  #take(challenge) {
    this.#nonce = null;
    this.#deferred = false;
    this.#challenge = challenge && typeof challenge.seed === 'string' ? { seed: challenge.seed, bits: challenge.bits } : null;
    if (!this.#challenge) {
      this.#flush();
      return;
    }
    if (this.#settling && !this.#held) this.#deferred = true;
    else this.#solve();
  }

  /** Solves #challenge in the worker; the held join or Next goes once it is solved. */
  #solve() {
    this.#deferred = false;
    const current = this.#challenge;
    if (!current) return;
    this.#solver.solve(current.seed, current.bits).then(
      ({ nonce, ms }) => {
        if (this.#challenge !== current) return; // spent, or replaced meanwhile
        this.lastSolve = { bits: current.bits, ms };
        // None found (2^-64 at the hardest): go without, and the server sets another.
        this.#nonce = nonce === null ? -1 : nonce;
        this.#flush();
      },
      (err) => console.info('strangers: solving a challenge failed', err),
    );
  }

  /** Sends the held join or Next if it can go now. */
  #flush() {
    if (!this.#held || !this.#known) return;
    const entry = { ...this.#held };
    if (!this.#off) {
      if (!this.#challenge || this.#nonce === null) {
        // Waiting for the solution; one put off for the last call's sake starts now.
        if (this.#deferred) this.#solve();
        return;
      }
      if (this.#nonce >= 0) entry.pow = this.#nonce;
      // The server spends its challenge on this message and sends the next.
      this.#challenge = null;
      this.#nonce = null;
    }
    this.#held = null;
    this.#last = entry;
    this.#send(entry);
    // Its call is being set up: the challenge that follows waits for it (SETTLE_MS at most).
    this.#settling = true;
    if (this.#settleTimer !== null) this.#clock.clearTimeout(this.#settleTimer);
    this.#settleTimer = this.#clock.setTimeout(() => {
      this.#settleTimer = null;
      this.settled();
    }, SETTLE_MS);
  }
}

/**
 * Solves challenges in a Web Worker (pow-worker.js). A challenge that replaces one still
 * being solved ends that worker (its answer is of no use) and starts another.
 */
export class WorkerSolver {
  #make;
  #worker = null;
  #pending = null;

  /** @param {() => Worker} make  makes a worker running pow-worker.js */
  constructor(make) {
    this.#make = make;
  }

  solve(seed, bits) {
    if (this.#pending) {
      this.#worker.terminate();
      this.#worker = null;
      this.#pending.reject(new Error('superseded'));
      this.#pending = null;
    }
    if (!this.#worker) {
      this.#worker = this.#make();
      this.#worker.addEventListener('message', (event) => {
        const pending = this.#pending;
        this.#pending = null;
        if (pending && event.data && event.data.seed === pending.seed) pending.resolve(event.data);
      });
    }
    return new Promise((resolve, reject) => {
      this.#pending = { seed, resolve, reject };
      this.#worker.postMessage({ seed, bits });
    }).catch((err) => {
      if (err && err.message === 'superseded') return new Promise(() => {}); // never settles
      throw err;
    });
  }
}
