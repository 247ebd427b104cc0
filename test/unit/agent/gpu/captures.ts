import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (this file runs from dist/test/unit/agent/gpu). */
const ROOT = fileURLToPath(new URL('../../../../../', import.meta.url));

/** The folder holding the fake `nvidia-smi` script: put it first on PATH. */
export const FAKE_NVIDIA_SMI_DIR = join(ROOT, 'test/helpers/fake-nvidia-smi');
export const CAPTURES_DIR = join(ROOT, 'test/fixtures/nvidia-smi');

/** Every capture file, by file name (`<os>-<arch>__<model>__<driver>.txt`). */
export function captureFiles(): string[] {
  return readdirSync(CAPTURES_DIR)
    .filter((f) => f.endsWith('.txt'))
    .sort();
}

export const capturePath = (file: string) => join(CAPTURES_DIR, file);

/**
 * A capture's sections by key: the banner's label up to " (", e.g. `idle :: query-gpu`,
 * `load :: nvidia-smi`, `capabilities :: list`. Same rules as the fake script's reader.
 */
export function readSections(file: string): Map<string, string> {
  const lines = readFileSync(capturePath(file), 'utf8').split('\n');
  const bar = (l: string | undefined) => l !== undefined && /^#{40,}\s*$/.test(l);
  const sections = new Map<string, string>();
  let key: string | null = null;
  let body: string[] = [];
  const flush = () => {
    if (key !== null) sections.set(key, body.join('\n').replace(/\s+$/, ''));
  };
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (bar(line) && /^# /.test(lines[i + 1] ?? '')) {
      let j = i + 1;
      while (j < lines.length && !bar(lines[j]) && lines[j]!.startsWith('#')) j++;
      if (bar(lines[j])) {
        flush();
        key = lines[i + 1]!.slice(2)
          .replace(/\s*\(.*$/, '')
          .trim();
        body = [];
        i = j;
        continue;
      }
    }
    if (key !== null) body.push(line);
  }
  flush();
  return sections;
}
