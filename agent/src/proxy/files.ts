/**
 * The proxy's config files on the host. nginx.conf on disk is the truth about what nginx serves:
 * it is replaced only after nginx accepted the new text, atomically (write a temp file, rename), so
 * an agent that restarts compares against it and leaves a serving nginx alone. The files hold API
 * keys, so the directory is 0700 and the files 0600 (nginx's master reads them as root).
 */
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';

export const CONFIG_NAME = 'nginx.conf';
export const NEXT_NAME = 'nginx.conf.next';

/** Writes `text` to `file` so readers see the old or the new content, never a torn one. */
export async function writeAtomic(file: string, text: string): Promise<void> {
  const tmp = join(dirname(file), `.${CONFIG_NAME}.${randomBytes(4).toString('hex')}.tmp`);
  const fh = await open(tmp, 'w', 0o600);
  try {
    await fh.writeFile(text, 'utf8');
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

/** The file's text, or undefined when it does not exist. */
export async function readIfExists(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    if ((err as { code?: string }).code === 'ENOENT') return undefined;
    throw err;
  }
}

/**
 * Makes the deployment's config dir (0700) and, when TLS is on, empty placeholder files where the
 * certificate and key are mounted, so Docker does not have to create mount points inside the
 * read-only config mount.
 */
export async function prepareConfigDir(dir: string, placeholders: readonly string[]): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700);
  for (const p of placeholders) {
    await mkdir(dirname(p), { recursive: true, mode: 0o700 });
    const fh = await open(p, 'a', 0o600);
    await fh.close();
  }
}
