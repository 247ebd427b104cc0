import { createLogUpdate } from 'log-update';
import type { OutputFormat } from './output.js';
import type { RolloutProgress } from './progress.js';
import { table } from './table.js';

/**
 * Where the live progress of `fleet apply` / `fleet rollback` goes. The follower calls `update`
 * on every look at the rollout (every 250 ms) with every rollout it follows (the apply's, then
 * its automatic rollback); each sink decides what is worth printing.
 */
export interface ProgressSink {
  update(views: readonly RolloutProgress[]): void;
  /** The rollout finished (or the wait gave up): stop redrawing, leave the last frame in place. */
  done(): void;
}

/** The writable a sink prints to (process.stdout, or a test's fake). */
export interface Out {
  write(text: string): unknown;
  isTTY?: boolean;
  columns?: number;
  rows?: number;
}

/** "prefetched 2 of 3 nodes": the images of later batches arriving. */
export const prefetchText = (p: { nodes: number; of: number }) => `prefetched ${p.nodes} of ${p.of} nodes`;

/** The block a terminal shows: per rollout its headline, prefetch and a BATCH/NODE/STATE table. */
export function frame(views: readonly RolloutProgress[]): string {
  return views
    .map((v) => {
      const rows = v.rows.map((r) => [`${r.batch}/${v.batches}`, r.node, r.text]);
      const prefetch = v.prefetched ? ` · ${prefetchText(v.prefetched)}` : '';
      return `${v.headline}${prefetch}\n${table(['BATCH', 'NODE', 'STATE'], rows)}`;
    })
    .join('\n\n');
}

/**
 * A terminal: log-update redraws the block in place (only the lines that changed), so counters
 * like "healthy for 6 of 10 s" move without scrolling. `done()` persists the last frame, so the
 * recap printed after it appears below, and the screen keeps the final state of every node.
 */
export function terminalSink(out: Out, create = createLogUpdate): ProgressSink {
  const log = create(out as NodeJS.WritableStream);
  let last = '';
  return {
    update(views) {
      last = frame(views);
      log(last);
    },
    done() {
      if (last) log.done();
    },
  };
}

/**
 * Not a terminal (a pipe, a CI log): one plain line whenever a node's steady state changes —
 * `batch 2/3 gpu-2: pulling 412 MB of 1.2 GB` — and when the rollout or its prefetch moves.
 * Nodes of an automatic rollback print with a `rollback: ` prefix.
 */
export function lineSink(out: Out): ProgressSink {
  const seen = new Map<string, string>();
  const print = (key: string, line: string) => {
    if (seen.get(key) === line) return;
    seen.set(key, line);
    out.write(`${line}\n`);
  };
  return {
    update(views) {
      views.forEach((v, i) => {
        const prefix = i > 0 && v.kind === 'rollback' ? 'rollback: ' : '';
        print(`${v.id}`, v.headline);
        for (const r of v.rows)
          print(`${v.id}/${r.node}`, `${prefix}batch ${r.batch}/${v.batches} ${r.node}: ${r.steady}`);
        if (v.prefetched) print(`${v.id}\0prefetch`, prefetchText(v.prefetched));
      });
    },
    done() {},
  };
}

/**
 * `-o json`: one JSON object per line (documented in the README), printed when what it says changed:
 *   {"type":"rollout","rollout":7,"kind":"apply","revision":4,"state":"running","batch":1,"batches":3,"reason":"","text":"…"}
 *   {"type":"node","rollout":7,"node":"gpu-1","batch":1,"state":"pulling","text":"pulling 412 MB of 1.2 GB"}
 *   {"type":"prefetch","rollout":7,"nodes":2,"of":3}
 * The command's last line is its result (`type: "result"`, printed by the caller).
 */
export function jsonSink(out: Out): ProgressSink {
  const seen = new Map<string, string>();
  const emit = (key: string, value: Record<string, unknown>) => {
    const line = JSON.stringify(value);
    if (seen.get(key) === line) return;
    seen.set(key, line);
    out.write(`${line}\n`);
  };
  return {
    update(views) {
      for (const v of views) {
        const base = { rollout: v.id };
        const { id: _i, rows: _r, prefetched, headline, ...head } = v;
        emit(`${v.id}`, { type: 'rollout', ...base, ...head, text: headline });
        for (const r of v.rows)
          emit(`${v.id}/${r.node}`, {
            type: 'node',
            ...base,
            node: r.node,
            batch: r.batch,
            state: r.phase,
            text: r.steady,
          });
        if (prefetched) emit(`${v.id}\0prefetch`, { type: 'prefetch', ...base, ...prefetched });
      }
    },
    done() {},
  };
}

/**
 * The sink for an output format and stream: JSON lines, a redrawn block on a terminal, else lines.
 * A terminal of size 0 (a pty nobody sized: `script`, `docker run -t` under CI) counts as none:
 * log-update draws nothing at 0 rows.
 */
export function sinkFor(output: OutputFormat, out: Out): ProgressSink {
  if (output === 'json') return jsonSink(out);
  const sized = out.rows !== 0 && out.columns !== 0;
  return out.isTTY && sized ? terminalSink(out) : lineSink(out);
}
