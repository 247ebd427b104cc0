import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import type { FastifyInstance, InjectOptions } from 'fastify';
import { hashApiSecret, newApiToken, type Role } from '../../../control-plane/src/auth/api-token.js';
import { Store } from '../../../control-plane/src/db/store.js';

/** The smallest valid playbook: one service on every node. */
export const WEB = `name: web
hosts: all
services:
  web:
    image: 127.0.0.1:5000/x/web:1
    port: 8080
`;

/**
 * Opens a fresh SQLite store per call, each in a folder of its own under one temporary folder
 * that is removed after the calling file's tests.
 */
export function freshStores(prefix: string): () => Store {
  const root = mkdtempSync(join(tmpdir(), prefix));
  after(() => rmSync(root, { recursive: true, force: true }));
  let n = 0;
  return () => Store.open(join(root, `t${n++}`, 'fleet.db'));
}

/**
 * A fresh API token of `role` in `store` (named `test-<role>` unless `name` is given), inserted
 * straight into the repository so that it adds no `token.created` event to what a test counts.
 */
export function tokenFor(store: Store, role: Role = 'admin', name = `test-${role}`): string {
  const t = newApiToken();
  const secretHash = hashApiSecret(t.secret);
  if (!store.apiTokens.insert({ id: t.id, name, role, secretHash, createdMs: 1, createdBy: '' }))
    throw new Error(`token ${name} exists`);
  return t.text;
}

export const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

/** `app.inject` carrying a fresh token of `role` (what a CLI with FLEET_TOKEN sends). */
export function injectAs(app: FastifyInstance, store: Store, role: Role = 'admin', name?: string) {
  const headers = bearer(tokenFor(store, role, name));
  return (opts: InjectOptions) => app.inject({ ...opts, headers: { ...headers, ...opts.headers } });
}
