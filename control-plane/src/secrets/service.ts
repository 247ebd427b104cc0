/**
 * Secrets as the API and the deployer use them: set (sealed, fingerprinted, an audit event with
 * the actor), list (names, sizes, fingerprints and the deployments whose current revision uses
 * them; never values), delete (refused while a current revision uses it), `info` for apply's
 * checks and `value` for the desired states of nodes assigned a revision that pins a version.
 */

import type { Store } from '../db/store.js';
import { SECRET_NAME } from '../playbook/schema.js';
import type { SecretInfo } from '../playbook/types.js';
import type { Keyring } from './keyring.js';
import { shapeOf } from './shape.js';

/** Bigger values belong in a volume: secrets travel in every desired state that pins them. */
export const MAX_SECRET_BYTES = 64 * 1024;

export interface SecretListing {
  name: string;
  size: number;
  fingerprint: string;
  updatedMs: number;
  updatedBy: string;
  usedBy: string[];
}

export type SetResult =
  | { ok: true; name: string; fingerprint: string; size: number; changed: boolean; usedBy: string[] }
  | { ok: false; message: string };

export type DeleteResult = { ok: true } | { ok: false; reason: 'not-found' | 'in-use'; message: string };

export class Secrets {
  constructor(
    private readonly store: Store,
    private readonly keyring: Keyring,
    private readonly now: () => number = Date.now,
  ) {}

  set(name: string, value: Buffer, actor: string): SetResult {
    if (!new RegExp(SECRET_NAME).test(name))
      return {
        ok: false,
        message: `invalid secret name '${name}': lowercase letters, digits, '.', '_' and '-', at most 63 characters`,
      };
    if (value.length === 0) return { ok: false, message: `secret ${name} is empty` };
    if (value.length > MAX_SECRET_BYTES)
      return {
        ok: false,
        message: `secret ${name} is ${value.length} bytes; at most ${MAX_SECRET_BYTES} are allowed`,
      };
    const fingerprint = this.keyring.fingerprint(name, value);
    const before = this.store.secrets.head(name);
    const changed = before?.fingerprint !== fingerprint;
    this.store.transaction(() => {
      if (!changed) return;
      this.store.secrets.put({
        name,
        fingerprint,
        sealed: this.keyring.seal(name, value),
        size: value.length,
        shape: shapeOf(value),
        createdMs: this.now(),
        createdBy: actor,
      });
      this.store.events.add({
        atMs: this.now(),
        kind: before ? 'secret.updated' : 'secret.created',
        message: `secret ${name}: ${value.length} bytes, fingerprint ${fingerprint.slice(0, 12)}`,
        actor,
      });
    });
    return {
      ok: true,
      name,
      fingerprint,
      size: value.length,
      changed,
      usedBy: this.usedBy().get(name) ?? [],
    };
  }

  list(): SecretListing[] {
    const used = this.usedBy();
    return this.store.secrets.list().map((h) => ({
      name: h.name,
      size: h.size,
      fingerprint: h.fingerprint,
      updatedMs: h.updatedMs,
      updatedBy: h.updatedBy,
      usedBy: used.get(h.name) ?? [],
    }));
  }

  delete(name: string, actor: string): DeleteResult {
    const users = this.usedBy().get(name) ?? [];
    if (users.length > 0)
      return {
        ok: false,
        reason: 'in-use',
        message: `secret ${name} is used by the current revision of ${users.join(', ')}: apply a playbook without it first`,
      };
    return this.store.transaction(() => {
      if (!this.store.secrets.delete(name))
        return { ok: false as const, reason: 'not-found' as const, message: `no secret named ${name}` };
      this.store.events.add({
        atMs: this.now(),
        kind: 'secret.deleted',
        message: `secret ${name} deleted`,
        actor,
      });
      return { ok: true as const };
    });
  }

  /** What apply may know of the current version (`ParseOptions.secrets`). */
  readonly info = (name: string): SecretInfo | undefined => {
    const h = this.store.secrets.head(name);
    return h && { fingerprint: h.fingerprint, ...h.shape };
  };

  /** The value of one version (`SecretValues` of the desired states); undefined once deleted. */
  readonly value = (name: string, fingerprint: string): Buffer | undefined => {
    const sealed = this.store.secrets.sealed(name, fingerprint);
    return sealed && this.keyring.open(name, sealed);
  };

  /** secret name → deployments whose current revision pins it. */
  private usedBy(): Map<string, string[]> {
    const out = new Map<string, string[]>();
    for (const rev of this.store.deployments.listCurrent()) {
      for (const name of Object.keys(rev.spec.secret_pins ?? {}))
        out.set(name, [...(out.get(name) ?? []), rev.deployment]);
    }
    return out;
  }
}
