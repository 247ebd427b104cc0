/**
 * Pull credentials of private registries (`registry_auth:` of a playbook). Deployments name a
 * secret per registry; the login is read from its file at each pull, so a rotated password is
 * used from the next pull on and never held in memory longer than one call.
 */
import type { DesiredState, SecretRef } from '../../../proto/gen/fleet/v1/agent.js';
import type { SecretFiles } from './files.js';

/** What Docker's API takes as X-Registry-Auth. */
export interface RegistryLogin {
  username: string;
  password: string;
  serveraddress: string;
}

/** The registry part of an image reference ("docker.io" when it names none), as Docker reads it. */
export function registryOf(image: string): string {
  const slash = image.indexOf('/');
  if (slash < 0) return 'docker.io';
  const first = image.slice(0, slash);
  return first.includes('.') || first.includes(':') || first === 'localhost' ? first : 'docker.io';
}

export class RegistryLogins {
  private readonly refs = new Map<string, SecretRef>();

  constructor(private readonly files: SecretFiles) {}

  /** Learns the registries a state names (kept across states: a prefetch may run ahead of one). */
  learn(state: DesiredState) {
    for (const d of state.deployments)
      for (const a of d.registryAuth) if (a.secret) this.refs.set(a.registry, a.secret);
  }

  /** The login for `image`'s registry, or undefined to pull anonymously. */
  forImage(image: string): RegistryLogin | undefined {
    const registry = registryOf(image);
    const ref = this.refs.get(registry);
    if (!ref) return undefined;
    const text = this.files.read(ref).replace(/\r?\n$/, '');
    const colon = text.indexOf(':');
    if (colon <= 0) throw new Error(`secret ${ref.name} for ${registry} is not "username:password"`);
    return { username: text.slice(0, colon), password: text.slice(colon + 1), serveraddress: registry };
  }
}
