import type { Clock, TimerHandle } from '../../../common/clock.js';

/** A clock the test moves: timers fire only inside `advance`, in due order. */
export class FakeClock implements Clock {
  private timers: { at: number; fn: () => void; id: number }[] = [];
  private nextId = 0;

  constructor(public t = 1_000) {}

  now() {
    return this.t;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const id = this.nextId++;
    this.timers.push({ at: this.t + ms, fn, id });
    return id;
  }

  clearTimeout(handle: TimerHandle) {
    this.timers = this.timers.filter((x) => x.id !== handle);
  }

  /** How many timers are waiting. */
  get pending() {
    return this.timers.length;
  }

  advance(ms: number) {
    const until = this.t + ms;
    for (;;) {
      const due = this.timers.filter((x) => x.at <= until).sort((a, b) => a.at - b.at)[0];
      if (!due) break;
      this.timers = this.timers.filter((x) => x !== due);
      this.t = due.at;
      due.fn();
    }
    this.t = until;
  }
}
