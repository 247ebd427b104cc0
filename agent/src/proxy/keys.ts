import { readFile } from 'node:fs/promises';
import { API_KEY, matches, SECRET_FILE } from '../../../common/allowlist.js';
import { MATERIALIZED_SECRET } from '../secrets/files.js';

/** A keys file that cannot be used; the message names the file and line, never a key. */
export class ApiKeysFileError extends Error {
  override readonly name = 'ApiKeysFileError';
}

/**
 * Reads the proxy's API keys file: one key per line; blank lines and lines starting with `#` are
 * ignored, surrounding whitespace (and a CRLF's CR) is trimmed. Any other line must match API_KEY,
 * or the whole file is refused naming the line number: keys are secrets, so neither the key nor
 * the line's text appears in the error (nor in any log).
 *
 * A file with no key at all is refused too: the operator asked for keys, and an empty list would
 * otherwise mean "no key needed" — the proxy fails closed, never open.
 */
export async function readApiKeys(file: string): Promise<string[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as { code?: string }).code ?? 'error';
    throw new ApiKeysFileError(`API keys file ${file} cannot be read (${code})`);
  }
  const pattern = new RegExp(API_KEY);
  const keys: string[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    if (!pattern.test(line))
      throw new ApiKeysFileError(
        `API keys file ${file}: line ${i + 1} is not a valid key (16 to 256 of A-Z a-z 0-9 . _ ~ + / = -)`,
      );
    keys.push(line);
  });
  if (keys.length === 0) throw new ApiKeysFileError(`API keys file ${file} holds no key`);
  return keys;
}

/**
 * readApiKeys for a path that came from a desired state: only files under /etc/fleet/ are read.
 * Checked before reading, since an answer about any other file would tell whoever sent the path
 * whether it exists and how its lines look. The agent wires this one; tests read temp files.
 */
export async function readFleetApiKeys(file: string): Promise<string[]> {
  // The agent's own secret files are allowed too: admission checked they are at the path their
  // reference names (secrets/files.ts allowedProxyFile).
  if (!matches(SECRET_FILE, file) && !matches(MATERIALIZED_SECRET, file))
    throw new ApiKeysFileError(`API keys file ${JSON.stringify(file)} is not a file under /etc/fleet/`);
  return readApiKeys(file);
}

/**
 * The rendered config carries every API key (nginx's map of `\Q<key>\E` literals): wherever that
 * text is shown (nginx's own messages, a `--check --diff`), each key becomes `[redacted]`. A line
 * whose key changed still shows as changed.
 */
export function maskApiKeys(text: string): string {
  return text.replace(/\\Q[^\\]*\\E/g, '\\Q[redacted]\\E');
}
