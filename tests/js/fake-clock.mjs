// A clock for the client's unit tests: time stands still until a test moves it on with
// advance(), which fires the timers that fall due, in order. No real time passes.

export class FakeClock {
  #now = 1_000_000;
  #nextId = 1;
  /** id -> {at, fn} */
  #timers = new Map();

  now() {
    return this.#now;
  }

  setTimeout(fn, ms) {
    const id = this.#nextId++;
    this.#timers.set(id, { at: this.#now + Math.max(0, ms), fn });
    return id;
  }

  clearTimeout(id) {
    this.#timers.delete(id);
    return null;
  }

  /** How many timers are waiting to fire. */
  get pending() {
    return this.#timers.size;
  }

  /** The delays (from now) of the waiting timers, soonest first. */
  get delays() {
    return [...this.#timers.values()].map((t) => t.at - this.#now).sort((a, b) => a - b);
  }

  /** Moves time on by `ms`, firing every timer due by then (also ones set meanwhile). */
  advance(ms) {
    const end = this.#now + ms;
    for (;;) {
      let due = null;
      for (const [id, timer] of this.#timers) {
        if (timer.at <= end && (due === null || timer.at < due[1].at)) due = [id, timer];
      }
      if (due === null) break;
      this.#timers.delete(due[0]);
      this.#now = due[1].at;
      due[1].fn();
    }
    this.#now = end;
  }
}
