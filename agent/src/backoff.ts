/**
 * Capped exponential backoff with full jitter: attempt n waits a random time in
 * [base·2ⁿ/2, base·2ⁿ], never more than `max`. Jitter keeps a fleet of agents from
 * reconnecting in lockstep after a control plane restart.
 */
export class Backoff {
  private attempt = 0;

  constructor(
    private readonly baseMs: number,
    private readonly maxMs: number,
    private readonly random: () => number = Math.random,
  ) {}

  next(): number {
    const ceiling = Math.min(this.maxMs, this.baseMs * 2 ** this.attempt);
    this.attempt = Math.min(this.attempt + 1, 30);
    return Math.round(ceiling / 2 + (this.random() * ceiling) / 2);
  }

  reset() {
    this.attempt = 0;
  }

  get attempts() {
    return this.attempt;
  }
}
