/**
 * Atomic file writes, apart from `pki.ts` so a caller that only writes a file (the CLI's config)
 * does not load the X.509 library with it (`fleet apply` starts without it).
 */
import { closeSync, fchmodSync, fsyncSync, mkdirSync, openSync, renameSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';

/**
 * Writes a file atomically (temp file, fsync, rename, fsync of the folder) with `mode` from the
 * first byte: a key never exists on disk, even briefly, with wider permissions.
 */
export function writeFileAtomic(path: string, data: string, mode: number) {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w', mode);
  try {
    // The process umask (UMask=0077 in the server's unit) must not narrow a public file such as
    // ca.crt, which clients on the host pass as --ca-file.
    fchmodSync(fd, mode);
    writeSync(fd, data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  const dfd = openSync(dirname(path), 'r');
  try {
    fsyncSync(dfd);
  } finally {
    closeSync(dfd);
  }
}
