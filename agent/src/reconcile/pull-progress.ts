import type { Clock } from '../../../common/clock.js';

/** Progress reports of a pull go out at most this often. */
const REPORT_EVERY_MS = 1_000;

const size = (b: number) => (b >= 1e9 ? `${(b / 1e9).toFixed(1)} GB` : `${Math.round(b / 1e6)} MB`);

/**
 * Images being pulled and how far each has come ("412 MB of 1.2 GB"), for the status: a model
 * image takes minutes, and an operator should see it move. A progress update asks for a report
 * (throttled), without waiting for the round to end.
 */
export class PullProgress {
  private readonly pulling = new Map<string, string>();
  private lastReportMs = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly clock: Clock,
    private readonly report: () => void,
  ) {}

  begin(image: string) {
    this.pulling.set(image, 'starting');
  }

  end(image: string) {
    this.pulling.delete(image);
  }

  update(image: string, p: { currentBytes: number; totalBytes: number }) {
    this.pulling.set(image, p.totalBytes ? `${size(p.currentBytes)} of ${size(p.totalBytes)}` : 'starting');
    if (this.clock.now() - this.lastReportMs < REPORT_EVERY_MS) return;
    this.lastReportMs = this.clock.now();
    this.report();
  }

  /** Image → how far its pull has come. */
  get view(): ReadonlyMap<string, string> {
    return this.pulling;
  }
}
