// WebSocket signaling client and its reconnect backoff, plus the small resource tracker the
// whole app shares. (The tracker lives here because signaling.js came first; app.js hands it
// to the call and the view, and wraps it as the session's and the chat's clock.)

const BACKOFF_START_MS = 300;
const BACKOFF_CAP_MS = 10_000;

/**
 * How long to wait before reconnect attempt `attempt` (0 for the first after a drop):
 * exponential backoff from 300 ms, capped at 10 s, with "equal jitter" (half fixed, half
 * random) so a whole crowd dropped by a server restart does not come back in one instant.
 * @param {number} attempt
 * @param {() => number} random  a number in [0, 1), like Math.random
 */
export function reconnectDelay(attempt, random) {
  const ceiling = Math.min(BACKOFF_CAP_MS, BACKOFF_START_MS * 2 ** Math.max(0, attempt));
  return ceiling / 2 + random() * (ceiling / 2);
}

/**
 * Counts the event listeners and timers the app registers, so that
 * window.__strangers.debug() can report leaks. Everything that is not a
 * long-lived page control goes through listen() / timeout() / interval().
 */
export class Tracker {
  #listeners = new Set();
  #timers = new Set();

  /** addEventListener that returns an idempotent "remove" function. */
  listen(target, type, fn, options) {
    const entry = { target, type, fn, options };
    target.addEventListener(type, fn, options);
    this.#listeners.add(entry);
    return () => {
      if (this.#listeners.delete(entry)) target.removeEventListener(type, fn, options);
    };
  }

  /** setTimeout that forgets itself once it has fired. Returns an id for clear(). */
  timeout(fn, ms) {
    const id = setTimeout(() => {
      this.#timers.delete(id);
      fn();
    }, ms);
    this.#timers.add(id);
    return id;
  }

  interval(fn, ms) {
    const id = setInterval(fn, ms);
    this.#timers.add(id);
    return id;
  }

  /** Clears a timeout or interval; null/undefined and stale ids are fine. Returns null. */
  clear(id) {
    if (id != null && this.#timers.delete(id)) {
      // Browsers share one id pool for timeouts and intervals, so either clear works.
      clearTimeout(id);
      clearInterval(id);
    }
    return null;
  }

  get listenerCount() {
    return this.#listeners.size;
  }

  get timerCount() {
    return this.#timers.size;
  }
}

// The heartbeat: a ping every 2 s, answered by the server with a pong. A socket that has
// heard nothing for 5 s is dead (a network outage: TCP would take minutes to say so).
const HEARTBEAT_MS = 2000;
const SILENCE_MS = 5000;
// After such a loss the network may come back at any moment: try again at least every
// second, and give up on an attempt that has not opened within 1.5 s (its SYN may sit in
// TCP's retransmission backoff long after the network is back).
const FAST_RETRY_MS = 1000;
const CONNECT_TIMEOUT_MS = 1500;
// Sockets given up on are closed at the latest this long after a new socket's welcome (by
// then a call has had its room back, or there was none): they must not pile up.
const RELEASE_AFTER_MS = 10_000;

/** The ws:/wss: URL of GET /ws on this host. */
export function signalingUrl(loc = window.location) {
  const scheme = loc.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${loc.host}/ws`;
}

/**
 * One logical signaling channel that survives socket drops.
 *
 * Events (subscribe with on(type, fn)):
 *   - every server message, by its "type" (welcome, waiting, matched, ...)
 *   - "open"   {reconnected}   a socket is open and ready to send
 *   - "down"   {code, reason}  the socket went away (a reconnect is scheduled); code 4000:
 *                               it went silent (no pong within 5 s)
 *   - "status" {status}        "connecting" | "connected" | "reconnecting" | "closed"
 * "bye" is handled here (reconnect) and is not passed on.
 */
export class Signaling {
  #url;
  #tracker;
  #retryDelay;
  #ws = null;
  #detach = [];
  #handlers = new Map();
  #attempt = 0;
  #retryTimer = null;
  #stopped = false;
  #everOpened = false;
  #status = 'closed';
  #heartbeat = null;
  #connectTimer = null;
  #lastHeard = 0;
  // The last socket was lost to silence: reconnect fast (see FAST_RETRY_MS).
  #fast = false;
  // Sockets given up on without a close: closing them would send a FIN that may reach the
  // server before our new socket has taken the room back, ending the call for the stranger.
  #abandoned = [];
  #releaseTimer = null;

  /**
   * @param {string} url
   * @param {Tracker} tracker
   * @param {(attempt: number) => number} retryDelay  how long (ms) to wait before reconnect
   *   attempt `attempt`, 0 the first since the last welcome (the policy is session.js's)
   */
  constructor(url, tracker, retryDelay) {
    this.#url = url;
    this.#tracker = tracker;
    this.#retryDelay = retryDelay;
  }

  get status() {
    return this.#status;
  }

  get isOpen() {
    return this.#ws !== null && this.#ws.readyState === WebSocket.OPEN;
  }

  /** Subscribes to an event; returns a function that unsubscribes. */
  on(type, fn) {
    let set = this.#handlers.get(type);
    if (!set) {
      set = new Set();
      this.#handlers.set(type, set);
    }
    set.add(fn);
    return () => set.delete(fn);
  }

  connect() {
    this.#stopped = false;
    this.#retryTimer = this.#tracker.clear(this.#retryTimer);
    if (this.#ws) return;
    this.#setStatus(this.#everOpened ? 'reconnecting' : 'connecting');

    let ws;
    try {
      ws = new WebSocket(this.#url);
    } catch (err) {
      console.info('strangers: cannot open the signaling socket', err);
      this.#scheduleReconnect();
      return;
    }
    this.#ws = ws;
    const t = this.#tracker;
    if (this.#fast) {
      this.#connectTimer = t.timeout(() => {
        this.#connectTimer = null;
        if (ws === this.#ws && ws.readyState === WebSocket.CONNECTING) this.#abandon(4000, 'connect timeout');
      }, CONNECT_TIMEOUT_MS);
    }
    this.#detach = [
      t.listen(ws, 'open', () => this.#onOpen()),
      t.listen(ws, 'message', (event) => this.#onMessage(event)),
      t.listen(ws, 'close', (event) => this.#onClose(ws, event)),
    ];
  }

  /** Sends one JSON message. Returns false (and drops it) when no socket is open. */
  send(message) {
    if (!this.isOpen) return false;
    try {
      this.#ws.send(JSON.stringify(message));
      return true;
    } catch (err) {
      console.info('strangers: send failed', err);
      return false;
    }
  }

  /** Closes for good (page going away): no reconnect. */
  close() {
    this.#stopped = true;
    this.#retryTimer = this.#tracker.clear(this.#retryTimer);
    this.#dropSocket(1000);
    this.releaseAbandoned();
    this.#setStatus('closed');
  }

  /** Closes the sockets given up on, once nothing can be lost by it (the room is back). */
  releaseAbandoned() {
    this.#releaseTimer = this.#tracker.clear(this.#releaseTimer);
    for (const ws of this.#abandoned.splice(0)) {
      try {
        ws.close(1000);
      } catch {
        // Already closed.
      }
    }
  }

  #onOpen() {
    const reconnected = this.#everOpened;
    this.#everOpened = true;
    this.#connectTimer = this.#tracker.clear(this.#connectTimer);
    this.#lastHeard = this.#now();
    this.#heartbeat = this.#tracker.timeout(() => this.#beat(), HEARTBEAT_MS);
    this.#setStatus('connected');
    this.#emit('open', { reconnected });
  }

  /** Sends a ping; gives the socket up if it has been silent too long. */
  #beat() {
    this.#heartbeat = null;
    if (this.#now() - this.#lastHeard > SILENCE_MS) {
      this.#abandon(4000, 'no answer from the server');
      return;
    }
    this.send({ type: 'ping' });
    this.#heartbeat = this.#tracker.timeout(() => this.#beat(), HEARTBEAT_MS);
  }

  /** Milliseconds, from the tracker's clock when it has one (tests give it a fake). */
  #now() {
    return typeof this.#tracker.now === 'function' ? this.#tracker.now() : performance.now();
  }

  /** Forgets the current socket without closing it, and reconnects fast. */
  #abandon(code, reason) {
    const ws = this.#ws;
    if (!ws) return;
    this.#dropSocket();
    if (ws.readyState === WebSocket.CONNECTING) {
      try {
        ws.close(); // never opened: nothing to lose
      } catch {
        // Already closed.
      }
    } else {
      this.#abandoned.push(ws);
    }
    this.#fast = true;
    this.#emit('down', { code, reason });
    this.#scheduleReconnect();
  }

  #onMessage(event) {
    this.#lastHeard = this.#now();
    if (typeof event.data !== 'string') return;
    let message;
    try {
      message = JSON.parse(event.data);
    } catch {
      console.info('strangers: ignoring a frame that is not JSON');
      return;
    }
    if (message === null || typeof message !== 'object' || typeof message.type !== 'string') return;

    if (message.type === 'welcome') {
      // Only a welcome proves the server is really serving us: reset the backoff here
      // rather than on "open", so a server that accepts and drops at once is not hammered.
      this.#attempt = 0;
      this.#fast = false;
      if (this.#abandoned.length > 0 && this.#releaseTimer === null) {
        this.#releaseTimer = this.#tracker.timeout(() => {
          this.#releaseTimer = null;
          this.releaseAbandoned();
        }, RELEASE_AFTER_MS);
      }
    }
    if (message.type === 'bye') {
      // The server is restarting: leave now and come back after a jittered pause.
      this.#dropSocket(1000);
      this.#emit('down', { code: 1012, reason: message.reason || 'bye' });
      this.#scheduleReconnect();
      return;
    }
    this.#emit(message.type, message);
  }

  #onClose(ws, event) {
    if (ws !== this.#ws) return;
    this.#dropSocket();
    // Closed without a close frame (1006): the network, not the server, ended it.
    if (event.code === 1006) this.#fast = true;
    this.#emit('down', { code: event.code, reason: event.reason });
    if (!this.#stopped) this.#scheduleReconnect();
  }

  /** Forgets the current socket (removing its listeners) and closes it if still open. */
  #dropSocket(code) {
    const ws = this.#ws;
    if (!ws) return;
    this.#ws = null;
    this.#heartbeat = this.#tracker.clear(this.#heartbeat);
    this.#connectTimer = this.#tracker.clear(this.#connectTimer);
    for (const off of this.#detach) off();
    this.#detach = [];
    if (code && (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING)) {
      try {
        ws.close(code);
      } catch {
        // Already closing: nothing to do.
      }
    }
  }

  #scheduleReconnect() {
    if (this.#stopped || this.#retryTimer !== null) return;
    // Backoff with jitter, so a whole crowd dropped by a server restart does not come
    // back in the same instant; after a loss to the network, at most about a second.
    let delay = this.#retryDelay(this.#attempt);
    if (this.#fast) delay = Math.min(delay, FAST_RETRY_MS * (0.5 + Math.random() / 2));
    this.#attempt = Math.min(this.#attempt + 1, 16);
    this.#setStatus('reconnecting');
    this.#retryTimer = this.#tracker.timeout(() => {
      this.#retryTimer = null;
      this.connect();
    }, delay);
  }

  #setStatus(status) {
    if (status === this.#status) return;
    this.#status = status;
    this.#emit('status', { status });
  }

  #emit(type, payload) {
    const set = this.#handlers.get(type);
    if (!set) return;
    for (const fn of [...set]) {
      try {
        fn(payload);
      } catch (err) {
        // A bug in one handler must not kill the message loop.
        console.warn(`strangers: "${type}" handler failed`, err);
      }
    }
  }
}
