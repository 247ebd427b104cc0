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
  ) {}

  note(node: string, atMs: number) {
    this.seen.set(node, atMs);
    this.timer ??= this.clock.setTimeout(() => this.flush(), this.intervalMs);
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
