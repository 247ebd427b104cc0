import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
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
