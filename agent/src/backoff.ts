/**
 * Capped exponential backoff with full jitter, applied after the cap: attempt n waits
 * random(0, min(max, base·2ⁿ)). Full jitter (not "half fixed, half random") spreads a fleet's
 * reconnects after a control-plane restart evenly over the whole window: with the window at the
 * cap, no second of it carries more than its share (1 s of a 10 s cap: a tenth of the agents,
 * against the fifth the design allows), and the cap is applied before the jitter so agents that
 * have been failing for a while do not all land on exactly `max`.
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
    return Math.round(this.random() * ceiling);
  }

  reset() {
    this.attempt = 0;
  }

  get attempts() {
    return this.attempt;
  }
}
