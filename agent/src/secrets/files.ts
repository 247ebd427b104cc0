/**
 * Secrets on the node. Values arrive inside a DesiredState (over mutual TLS, only for deployments
 * assigned here) and leave it at once: each is written to its own owner-only file named after the
 * secret and the fingerprint of its version (`DIR/NAME.FINGERPRINT`, DIR 0700, files 0600), and
 * the state goes on without values: what is persisted, logged or kept for a retry holds names and
 * fingerprints only. Whoever needs a value reads the file when it needs it (the Docker adapter,
 * creating a container with a secret env; nginx, mounting a TLS pair; the proxy, reading API keys).
 * A new version is a new file, so a renewed certificate is a new mount and a new proxy container.
 */
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { SECRET_FILE } from '../../../common/allowlist.js';
import type { DeploymentSpec, DesiredState, SecretRef } from '../../../proto/gen/fleet/v1/agent.js';

/** A materialized secret's file: NAME.FINGERPRINT under a folder named `secrets` (no `.`/`..` segments). */
export const MATERIALIZED_SECRET =
  '^(/(?![.]{1,2}(/|$))[A-Za-z0-9._-]+)*/secrets/[a-z0-9][a-z0-9._-]{0,62}\\.[0-9a-f]{32}$';

/**
 * Whether a proxy file path may be used: a file under /etc/fleet/ named by a playbook, or the
 * agent's own file of the secret version `ref` (set by `resolve`, never taken from the wire).
 */
export function allowedProxyFile(file: string, ref: SecretRef | undefined): boolean {
  if (new RegExp(SECRET_FILE).test(file)) return true;
  return (
    ref !== undefined &&
    new RegExp(MATERIALIZED_SECRET).test(file) &&
    file.endsWith(`/secrets/${ref.name}.${ref.fingerprint}`)
  );
}

const FILE_NAME = /^[a-z0-9][a-z0-9._-]{0,62}\.[0-9a-f]{32}$/;

/** A referenced secret this node does not have (deleted on the control plane, or a write failed). */
export class SecretMissingError extends Error {
  readonly retryable = false;
}

export class SecretFiles {
  constructor(readonly dir: string) {}

  /** The file of one version; throws on a name or fingerprint that could escape the folder. */
  path(ref: SecretRef): string {
    const file = `${ref.name}.${ref.fingerprint}`;
    if (!FILE_NAME.test(file))
      throw new SecretMissingError(`invalid secret reference ${JSON.stringify(ref.name)}`);
    return join(this.dir, file);
  }

  /** The value of one version, as text (env values, keys, PEM). */
  read(ref: SecretRef): string {
    try {
      return readFileSync(this.path(ref), 'utf8');
    } catch (err) {
      if (err instanceof SecretMissingError) throw err;
      throw new SecretMissingError(
        `secret ${ref.name} (version ${ref.fingerprint.slice(0, 12)}) is not on this node: ` +
          'the control plane sends it with the revision that uses it (was it deleted there?)',
      );
    }
  }

  /**
   * Writes the values a state carries (each version once) and returns the state without them,
   * with secret-backed proxy files pointed at their files. Throws when a file cannot be written.
   */
  absorb(state: DesiredState): DesiredState {
    for (const d of state.deployments)
      for (const s of d.secrets) if (s.value.length > 0) this.write(s, s.value);
    return this.resolve(state);
  }

  /** The state as the proxy code reads it: TLS and API keys from secrets become file paths; no values. */
  resolve(state: DesiredState): DesiredState {
    return { ...state, deployments: state.deployments.map((d) => this.resolveDeployment(d)) };
  }

  /** Removes the files of versions no deployment of `states` references. */
  prune(states: readonly DesiredState[]) {
    const keep = new Set(
      states.flatMap((s) =>
        s.deployments.flatMap((d) => referenced(d).map((r) => `${r.name}.${r.fingerprint}`)),
      ),
    );
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch {
      return;
    }
    for (const n of names) if (FILE_NAME.test(n) && !keep.has(n)) rmSync(join(this.dir, n), { force: true });
  }

  private resolveDeployment(d: DeploymentSpec): DeploymentSpec {
    const secrets = d.secrets.map((s) => ({ ...s, value: Buffer.alloc(0) }));
    const p = d.proxy;
    if (!p || (!p.tlsSecret && !p.apiKeysSecret)) return { ...d, secrets };
    const tls = p.tlsSecret ? this.path(p.tlsSecret) : undefined;
    return {
      ...d,
      secrets,
      proxy: {
        ...p,
        ...(tls ? { tlsCertFile: tls, tlsKeyFile: tls } : {}),
        ...(p.apiKeysSecret ? { apiKeysFile: this.path(p.apiKeysSecret) } : {}),
      },
    };
  }

  private write(ref: SecretRef, value: Uint8Array) {
    const file = this.path(ref);
    // One file per version, written by rename: one that exists is whole and holds this value (a
    // state re-sent on every reconnect writes nothing).
    if (existsSync(file)) return;
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const tmp = join(this.dir, `.${randomBytes(6).toString('hex')}.tmp`);
    const fd = openSync(tmp, 'w', 0o600);
    try {
      writeSync(fd, value);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, file);
  }
}

/** Every secret version a deployment references (env of services and engines, proxy, registries). */
export function referenced(d: DeploymentSpec): SecretRef[] {
  const refs: SecretRef[] = [];
  for (const s of d.services) {
    refs.push(...Object.values(s.secretEnv ?? {}));
    if (s.engine) refs.push(...Object.values(s.engine.secretEnv ?? {}));
  }
  if (d.proxy?.tlsSecret) refs.push(d.proxy.tlsSecret);
  if (d.proxy?.apiKeysSecret) refs.push(d.proxy.apiKeysSecret);
  for (const a of d.registryAuth) if (a.secret) refs.push(a.secret);
  return refs;
}
