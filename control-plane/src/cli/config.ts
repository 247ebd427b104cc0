/**
 * Where the CLI finds the control plane and its credentials: flags, then environment, then the
 * config file (`$FLEET_CONFIG`, else `$XDG_CONFIG_HOME/fleet/config.json`, else
 * `~/.config/fleet/config.json`), which `fleet login` writes with owner-only permissions.
 */
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { writeFileAtomic } from '../../../common/atomic-file.js';
import { CliError } from '../../../common/cli.js';

/** The REST API serves TLS only (its certificate from the control plane's CA unless given). */
export const DEFAULT_SERVER = 'https://127.0.0.1:7080';

export interface ClientConfig {
  server?: string;
  token?: string;
  caFile?: string;
}

type Env = Record<string, string | undefined>;

export function configPath(env: Env = process.env): string {
  if (env.FLEET_CONFIG) return env.FLEET_CONFIG;
  return join(env.XDG_CONFIG_HOME || join(homedir(), '.config'), 'fleet', 'config.json');
}

/** The config file's settings ({} when there is none); refuses a token file others can read. */
export function readConfig(path: string): ClientConfig {
  if (!existsSync(path)) return {};
  let cfg: ClientConfig;
  try {
    cfg = JSON.parse(readFileSync(path, 'utf8')) as ClientConfig;
  } catch (err) {
    throw new CliError(`${path}: not valid JSON (${(err as Error).message})`);
  }
  if (cfg.token && (statSync(path).mode & 0o077) !== 0)
    throw new CliError(`${path} holds a token but others may read it; run chmod 600 ${path}`);
  return cfg;
}

/** Writes the config file: its folder 0700, the file 0600 (it holds a bearer token). */
export function writeConfig(path: string, cfg: ClientConfig) {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  writeFileAtomic(path, `${JSON.stringify(cfg, null, 2)}\n`, 0o600);
}

/** What a client command connects with: flags over the environment over the config file. */
export function resolveConnection(
  flags: { server?: string; token?: string; caFile?: string },
  env: Env,
  cfg: ClientConfig,
): { server: string; token?: string; caFile?: string } {
  // An empty variable counts as unset (`FLEET_TOKEN= fleet …`).
  const e = (v: string | undefined) => (v === '' ? undefined : v);
  return {
    server: flags.server ?? e(env.FLEET_SERVER) ?? cfg.server ?? DEFAULT_SERVER,
    token: flags.token ?? e(env.FLEET_TOKEN) ?? cfg.token,
    caFile: flags.caFile ?? e(env.FLEET_CA_FILE) ?? cfg.caFile,
  };
}

/** The PEM of the CA file the CLI trusts (`--ca-file`, `FLEET_CA_FILE` or the config file's `caFile`). */
export function readCaFile(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new CliError(
      `cannot read the CA file ${path} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); ` +
        "pass the control plane's DATA_DIR/ca.crt with --ca-file or FLEET_CA_FILE",
      2,
    );
  }
}

/**
 * What `fleet login` saves: the server, the token and the CA file as an absolute path (so the
 * saved file works from any folder).
 */
export function loginConfig(conn: { server: string; token?: string; caFile?: string }): ClientConfig {
  return { server: conn.server, token: conn.token, caFile: conn.caFile ? resolve(conn.caFile) : undefined };
}
