/** Refusal when every slot and the queue are full: answered 429, Retry-After `retryAfterS`. */
export class Busy extends Error {
  constructor(readonly retryAfterS: number) {
    super('server busy');
  }
}

/** Refusal of queued work when the server stops: answered 503 with Retry-After, not a reset. */
export class ShuttingDown extends Error {
  constructor() {
    super('server is shutting down');
  }
}

/**
 * Bounds the work the server accepts: `parallel` generations run, up to `queueSize` wait, and
 * the rest are refused at once (the caller answers 429 with Retry-After). A waiter whose client
 * goes away leaves the queue; a finished or cancelled generation frees its slot for the next.
 */
export class Admission {
  private active = 0;
  private readonly waiting: { grant: () => void; fail: (e: Error) => void }[] = [];

  constructor(
    private readonly parallel: number,
    private readonly queueSize: number,
    private readonly onChange: (active: number, queued: number) => void = () => {},
  ) {}

  get running() {
    return this.active;
  }

  get queued() {
    return this.waiting.length;
  }

  /** Resolves with a release function once a slot is free; rejects with Busy or the abort reason. */
  acquire(signal: AbortSignal): Promise<() => void> {
    if (signal.aborted) return Promise.reject(new Error('client went away'));
    if (this.active < this.parallel) {
      this.active++;
      this.changed();
      return Promise.resolve(this.releaser());
    }
    if (this.waiting.length >= this.queueSize) {
      return Promise.reject(new Busy(Math.max(1, Math.ceil(this.waiting.length / this.parallel))));
    }
    return new Promise((resolve, reject) => {
      const entry = {
        grant: () => {
          signal.removeEventListener('abort', onAbort);
          resolve(this.releaser());
        },
        fail: reject,
      };
      const onAbort = () => {
        const i = this.waiting.indexOf(entry);
        if (i >= 0) this.waiting.splice(i, 1);
        this.changed();
        reject(new Error('client went away'));
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.waiting.push(entry);
      this.changed();
    });
  }

  /** Refuses everything waiting (shutdown). */
  drain(reason: Error) {
    for (const w of this.waiting.splice(0)) w.fail(reason);
    this.changed();
  }

  private releaser() {
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const next = this.waiting.shift();
      if (next) next.grant();
      else this.active--;
      this.changed();
    };
  }

  private changed() {
    this.onChange(this.active, this.waiting.length);
  }
}
