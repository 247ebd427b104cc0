import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { FLEET_BIN } from './procs.js';

/**
 * Runs `fleet ARGS` (or another `entry` script) under a module resolve hook and returns every module URL it loaded (the hook
 * writes each one to a file), so a test sees the real import graph, the lazily loaded part included.
 */
export function modulesLoadedBy(args: string[], entry = FLEET_BIN): { urls: string[]; stderr: string } {
  const dir = mkdtempSync(join(tmpdir(), 'fleet-imports-'));
  const out = join(dir, 'loaded.txt');
  const hook = join(dir, 'hook.mjs');
  writeFileSync(
    hook,
    `import { appendFileSync } from 'node:fs';\n` +
      `export async function resolve(s, c, next) { const r = await next(s, c); appendFileSync(${JSON.stringify(out)}, r.url + '\\n'); return r; }\n`,
  );
  const register = join(dir, 'register.mjs');
  writeFileSync(
    register,
    `import { register } from 'node:module';\nregister(${JSON.stringify(pathToFileURL(hook).href)});\n`,
  );
  writeFileSync(out, '');
  const r = spawnSync(process.execPath, ['--import', pathToFileURL(register).href, entry, ...args], {
    env: { ...process.env, FLEET_CONFIG: join(dir, 'config.json'), FLEET_TOKEN: 'fleet_test' },
    encoding: 'utf8',
    timeout: 20_000,
  });
  return { urls: readFileSync(out, 'utf8').split('\n').filter(Boolean), stderr: r.stderr };
}
