import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parsePlaybook } from '../../../../control-plane/src/playbook/parse.js';

const book = (volume: string) => `name: web
hosts: all
services:
  web:
    image: 127.0.0.1:5000/x/web:1
    volumes:
      - "${volume}"
`;
const roots = ['/data', '/var/lib/fleet/models'];

test('with volume roots, host paths outside them are refused at the volume line', () => {
  for (const v of [
    '/var/lib/fleet:/x',
    '/run/containerd/containerd.sock:/s',
    '/root/.ssh:/k:ro',
    '/datastore:/d',
    '/var/lib/docker:/d',
  ]) {
    const r = parsePlaybook(book(v), 'p.yaml', { volumeRoots: roots });
    assert.equal(r.ok, false, v);
    if (!r.ok) {
      assert.equal(r.errors.length, 1);
      assert.deepEqual([r.errors[0]!.line, r.errors[0]!.col], [7, 9]);
      assert.match(r.errors[0]!.message, /outside the allowed volume roots/);
      assert.match(r.errors[0]!.hint ?? '', /\/data, \/var\/lib\/fleet\/models/);
    }
  }
});

test('with volume roots, paths under them are accepted', () => {
  for (const v of ['/data/models:/models:ro', '/data:/d', '/var/lib/fleet/models/tele:/m:ro']) {
    assert.equal(parsePlaybook(book(v), 'p.yaml', { volumeRoots: roots }).ok, true, v);
  }
});
