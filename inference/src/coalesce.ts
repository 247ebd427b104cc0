/**
 * Batches writes that arrive faster than `windowMs`: the first write after a quiet spell goes
 * out at once (time to first token is untouched), later ones within the window are joined and
 * flushed when it ends. At real-model speeds (tens of ms per token) every token is still its
 * own chunk; at thousands of tokens/s it saves a syscall and a chunk header per token, which is
 * what the HTTP path otherwise costs against in-process generation.
 */
export class Coalescer {
  private pending: string[] = [];
  private timer: NodeJS.Timeout | undefined;
  private lastFlush = 0;

  constructor(
    private readonly write: (data: string) => void,
    private readonly windowMs = 2,
  ) {}

  push(data: string) {
    this.pending.push(data);
    if (this.timer) return;
    const wait = this.lastFlush + this.windowMs - performance.now();
    if (wait <= 0) this.flush();
    else this.timer = setTimeout(() => this.flush(), wait);
  }

  /** Queues data to go out with the next write, without starting a window (a stream's preamble). */
  queue(data: string) {
    this.pending.push(data);
  }

  /** Writes whatever is pending now (before the final chunk, or on error). */
  flush() {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.pending.length === 0) return;
    const data = this.pending.join('');
    this.pending = [];
    this.lastFlush = performance.now();
    this.write(data);
  }
}
