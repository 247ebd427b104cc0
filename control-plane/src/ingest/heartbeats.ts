import { type Clock, systemClock, type TimerHandle } from '../../../common/clock.js';

/**
 * Heartbeat times not yet written: 10,000 agents beating every 5 s become one transaction a
 * second instead of 2,000 writes. Only the latest beat per node is kept; `flush` writes them.
 */
export class HeartbeatBatcher {
  private readonly seen = new Map<string, number>();
  private timer: TimerHandle | undefined;

  constructor(
    /** Writes one batch, in one transaction. */
    private readonly write: (batch: [node: string, atMs: number][]) => void,
    private readonly clock: Clock = systemClock,
    private readonly intervalMs = 1_000,
    /** A batch the timer could not write (a full disk); its beats are kept for the next try. */
    private readonly onError: (err: unknown) => void = () => {},
  ) {}

  note(node: string, atMs: number) {
    this.seen.set(node, atMs);
    this.timer ??= this.clock.setTimeout(() => this.tick(), this.intervalMs);
  }

  /**
   * The timer's flush. A failed write must not take the process down (it runs outside any request,
   * so a throw would be an uncaught exception): the beats go back, unless newer ones arrived, and
   * are tried again after the interval.
   */
  private tick() {
    const batch = [...this.seen];
    try {
      this.flush();
    } catch (err) {
      for (const [node, atMs] of batch) if (!this.seen.has(node)) this.seen.set(node, atMs);
      this.onError(err);
      this.timer ??= this.clock.setTimeout(() => this.tick(), this.intervalMs);
    }
  }

  /** Writes the batched heartbeat times now (also before shutdown). */
  flush() {
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    if (this.seen.size === 0) return;
    const batch = [...this.seen];
    this.seen.clear();
    this.write(batch);
  }
}
