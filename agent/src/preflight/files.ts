import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { FileFacts } from './checks.js';

/** Resolves with `fallback` when `p` takes longer than `ms` (p keeps running). */
function within<T>(p: Promise<T>, ms: number | undefined, fallback: T): Promise<T> {
  if (ms === undefined) return p;
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => resolve(fallback), ms);
    t.unref();
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (e) => {
        clearTimeout(t);
        reject(e);
      },
    );
  });
}

/**
 * Stats model files and hashes them when a checksum is expected. Hashing a 15 GB model takes a
 * while, so results are cached by (path, size, mtime) and one hash per file runs at a time;
 * callers that cannot wait (`fleet apply --check`) get "still hashing" after `hashWaitMs` while
 * the hash finishes in the background. A hung filesystem costs a bounded stat, not the agent.
 */
export class FileProbe {
  private readonly cache = new Map<string, { key: string; sha256: string }>();
  private readonly hashing = new Map<string, { key: string; done: Promise<string> }>();

  constructor(private readonly statTimeoutMs = 5_000) {}

  async probe(path: string, wantSha: boolean, hashWaitMs?: number): Promise<FileFacts> {
    let st: Awaited<ReturnType<typeof stat>> | 'timeout';
    try {
      st = await within<Awaited<ReturnType<typeof stat>> | 'timeout'>(
        stat(path),
        this.statTimeoutMs,
        'timeout',
      );
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      return { exists: false, error: code === 'ENOENT' ? undefined : code };
    }
    if (st === 'timeout')
      return { exists: false, error: `stat timed out after ${this.statTimeoutMs} ms (hung filesystem?)` };
    if (!st.isFile()) return { exists: false, error: 'not a regular file' };
    if (!wantSha) return { exists: true };
    const key = `${st.size}:${st.mtimeMs}`;
    const hit = this.cache.get(path);
    if (hit?.key === key) return { exists: true, sha256: hit.sha256 };
    let job = this.hashing.get(path);
    if (job?.key !== key) {
      const done = this.hash(path).then((sha256) => {
        this.cache.set(path, { key, sha256 });
        return sha256;
      });
      done.finally(() => this.hashing.get(path)?.done === done && this.hashing.delete(path)).catch(() => {});
      job = { key, done };
      this.hashing.set(path, job);
    }
    const sha256 = await within(job.done, hashWaitMs, undefined);
    return sha256
      ? { exists: true, sha256 }
      : { exists: true, error: 'still hashing the file; try again shortly' };
  }

  private hash(path: string): Promise<string> {
    return new Promise<string>((resolve, reject) => {
      const h = createHash('sha256');
      createReadStream(path)
        .on('data', (d) => h.update(d))
        .on('error', reject)
        .on('end', () => resolve(h.digest('hex')));
    });
  }
}
