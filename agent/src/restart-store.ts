import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../../common/log.js';
import { writeFileAtomic } from './atomic-file.js';
import type { RestartHistory } from './health/restart-policy.js';

/** One replica's restart streak as kept on disk (by `key#specHash`), with its drawn jitter. */
export type StoredStreak = RestartHistory & { jitter: number };

/** What the reconcile loop needs to keep restart streaks across agent restarts. */
export interface RestartHistoryStore {
  load(): Map<string, StoredStreak>;
  save(history: ReadonlyMap<string, StoredStreak>): void;
}

/** Streaks kept at most; the oldest (by last restart) go first. */
export const MAX_STORED_STREAKS = 1_000;

/**
 * Restart streaks on local disk (`restarts.json` in the node's state folder), written atomically
 * after every restart the agent issues and before it reports it. So a restarted agent (a crash, an
 * upgrade, SIGKILL) goes on counting where it left off: reported restart counts never go backwards
 * and a crash loop keeps its backoff instead of restarting at once. An unreadable file is not fatal:
 * it is logged and the agent starts with no history (what it did before this file existed).
 */
export class RestartHistoryFile implements RestartHistoryStore {
  readonly file: string;

  constructor(
    dir: string,
    private readonly log?: Logger,
  ) {
    this.file = join(dir, 'restarts.json');
  }

  load(): Map<string, StoredStreak> {
    let text: string;
    try {
      text = readFileSync(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.warn(err, 'restart history unreadable');
      return new Map();
    }
    try {
      return parseStreaks(text);
    } catch (err) {
      this.warn(err, 'restart history corrupt; starting without it');
      return new Map();
    }
  }

  /** Never throws: a full or vanished disk must not stop a restart (it is logged). */
  save(history: ReadonlyMap<string, StoredStreak>) {
    const entries = [...history].sort((a, b) => b[1].lastRestartAtMs - a[1].lastRestartAtMs);
    try {
      writeFileAtomic(this.file, JSON.stringify(Object.fromEntries(entries.slice(0, MAX_STORED_STREAKS))));
    } catch (err) {
      this.warn(err, 'restart history not saved');
    }
  }

  private warn(err: unknown, msg: string) {
    this.log?.warn({ err: (err as Error).message, file: this.file }, msg);
  }
}

/** The stored streaks; throws on anything that is not the shape written by `save`. */
export function parseStreaks(text: string): Map<string, StoredStreak> {
  const raw = JSON.parse(text) as unknown;
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new Error('not an object');
  const out = new Map<string, StoredStreak>();
  for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
    const s = v as Partial<StoredStreak> | null;
    if (!s || !isCount(s.attempts) || !isCount(s.lastRestartAtMs)) throw new Error(`bad entry ${k}`);
    out.set(k, {
      attempts: s.attempts,
      lastRestartAtMs: s.lastRestartAtMs,
      lastReason: typeof s.lastReason === 'string' ? s.lastReason : '',
      jitter: typeof s.jitter === 'number' && s.jitter >= 0 && s.jitter <= 1 ? s.jitter : 0,
      ...(typeof s.lastExitCode === 'number' ? { lastExitCode: s.lastExitCode } : {}),
    });
  }
  return out;
}

const isCount = (x: unknown): x is number => typeof x === 'number' && Number.isInteger(x) && x >= 0;
