import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { FileFacts } from './checks.js';

/**
 * Stats model files and hashes them when a checksum is expected. Hashing a 15 GB model takes a
 * while, so results are cached by (path, size, mtime): a file is hashed again only when it changed.
 */
export class FileProbe {
  private readonly cache = new Map<string, { key: string; sha256: string }>();

  async probe(path: string, wantSha: boolean): Promise<FileFacts> {
    let st: Awaited<ReturnType<typeof stat>>;
    try {
      st = await stat(path);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      return { exists: false, error: code === 'ENOENT' ? undefined : code };
    }
    if (!st.isFile()) return { exists: false, error: 'not a regular file' };
    if (!wantSha) return { exists: true };
    const key = `${st.size}:${st.mtimeMs}`;
    const hit = this.cache.get(path);
    if (hit?.key === key) return { exists: true, sha256: hit.sha256 };
    const sha256 = await new Promise<string>((resolve, reject) => {
      const h = createHash('sha256');
      createReadStream(path)
        .on('data', (d) => h.update(d))
        .on('error', reject)
        .on('end', () => resolve(h.digest('hex')));
    });
    this.cache.set(path, { key, sha256 });
    return { exists: true, sha256 };
  }
}
