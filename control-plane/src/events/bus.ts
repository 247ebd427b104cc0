/** Why a subscription ended: the subscriber closed it, or it fell too far behind. */
export type EndReason = 'closed' | 'overflow';

/**
 * One subscriber's view of a bus: a bounded queue it drains with `next()`. A subscriber that lets
 * `capacity` items pile up is dropped (`ended` = 'overflow') rather than letting the queue grow:
 * memory per subscriber is bounded, and a slow reader never slows the publisher or the others.
 */
export interface Subscription<T> {
  /** The next item, in publish order; undefined once the subscription has ended. */
  next(): Promise<T | undefined>;
  /** Ends the subscription (idempotent); a pending `next()` resolves undefined. */
  close(): void;
  /** Undefined while live. */
  readonly ended: EndReason | undefined;
}

class BoundedSubscription<T> implements Subscription<T> {
  private queue: T[] = [];
  private head = 0;
  private waiter: ((item: T | undefined) => void) | undefined;
  ended: EndReason | undefined;

  constructor(
    private readonly capacity: number,
    private readonly detach: (s: BoundedSubscription<T>) => void,
  ) {}

  offer(item: T) {
    if (this.ended) return;
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = undefined;
      return w(item);
    }
    if (this.queue.length - this.head >= this.capacity) return this.end('overflow');
    this.queue.push(item);
  }

  next(): Promise<T | undefined> {
    if (this.head < this.queue.length) {
      const item = this.queue[this.head++] as T;
      // Compact now and then so a long-lived subscription does not keep consumed items alive.
      if (this.head > 1024 && this.head * 2 > this.queue.length) {
        this.queue = this.queue.slice(this.head);
        this.head = 0;
      }
      return Promise.resolve(item);
    }
    if (this.ended) return Promise.resolve(undefined);
    return new Promise((resolve) => {
      this.waiter = resolve;
    });
  }

  close() {
    this.end('closed');
  }

  private end(reason: EndReason) {
    if (this.ended) return;
    this.ended = reason;
    this.queue = [];
    this.head = 0;
    this.detach(this);
    const w = this.waiter;
    this.waiter = undefined;
    w?.(undefined);
  }
}

/**
 * An in-process publisher: every subscriber gets every item published after it subscribed, in
 * order, through its own bounded queue. Publishing is O(subscribers) and never waits.
 */
export class EventBus<T> {
  private readonly subs = new Set<BoundedSubscription<T>>();

  constructor(private readonly defaultCapacity = 1000) {}

  subscribe(capacity = this.defaultCapacity): Subscription<T> {
    const s = new BoundedSubscription<T>(capacity, (x) => this.subs.delete(x));
    this.subs.add(s);
    return s;
  }

  publish(item: T) {
    for (const s of [...this.subs]) s.offer(item);
  }

  /** How many subscriptions are live (for tests and metrics). */
  get size(): number {
    return this.subs.size;
  }
}
