import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { FileProbe } from '../../../../agent/src/preflight/files.js';

const sha = (b: string | Buffer) => createHash('sha256').update(b).digest('hex');

describe('FileProbe', () => {
  let dir = '';
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'fleet-preflight-files-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('a missing file → exists false, no error', async () => {
    const r = await new FileProbe().probe(join(dir, 'nope.gguf'), true);
    assert.equal(r.exists, false);
    assert.equal(r.error, undefined);
    assert.equal(r.sha256, undefined);
  });

  test('a missing parent directory → exists false', async () => {
    const r = await new FileProbe().probe(join(dir, 'no-dir', 'x.gguf'), false);
    assert.equal(r.exists, false);
  });

  test('a path through a regular file → exists false with the errno code', async () => {
    const f = join(dir, 'plain');
    writeFileSync(f, 'x');
    const r = await new FileProbe().probe(join(f, 'child'), false);
    assert.deepEqual(r, { exists: false, error: 'ENOTDIR' });
  });

  test('a directory → exists false with an error', async () => {
    const d = join(dir, 'a-dir');
    mkdirSync(d);
    for (const wantSha of [false, true]) {
      const r = await new FileProbe().probe(d, wantSha);
      assert.equal(r.exists, false);
      assert.equal(r.error, 'not a regular file');
      assert.equal(r.sha256, undefined);
    }
  });

  test('a file without sha wanted → exists true, no sha256', async () => {
    const f = join(dir, 'nosha.gguf');
    writeFileSync(f, 'model bytes');
    assert.deepEqual(await new FileProbe().probe(f, false), { exists: true });
  });

  test('a file with sha wanted → its sha256', async () => {
    const f = join(dir, 'sha.gguf');
    const body = Buffer.alloc(200_000, 7); // several read chunks
    body.write('header', 0);
    writeFileSync(f, body);
    assert.deepEqual(await new FileProbe().probe(f, true), { exists: true, sha256: sha(body) });
  });

  test('an empty file hashes to the empty sha256', async () => {
    const f = join(dir, 'empty.gguf');
    writeFileSync(f, '');
    assert.equal((await new FileProbe().probe(f, true)).sha256, sha(''));
  });

  test('cached: unchanged size and mtime → not read again', async () => {
    const f = join(dir, 'cached.gguf');
    writeFileSync(f, 'AAAA');
    // A whole-second mtime, so that putting it back with utimes is exact.
    const t = new Date(1_700_000_000_000);
    utimesSync(f, t, t);
    const probe = new FileProbe();
    assert.equal((await probe.probe(f, true)).sha256, sha('AAAA'));

    // Same size, and the old mtime put back: the probe must not notice, so the cached hash returns.
    const st = statSync(f);
    writeFileSync(f, 'BBBB');
    assert.notEqual(statSync(f).mtimeMs, st.mtimeMs);
    utimesSync(f, t, t);
    assert.equal(statSync(f).mtimeMs, st.mtimeMs);
    assert.equal((await probe.probe(f, true)).sha256, sha('AAAA'));

    // A fresh probe has no cache and sees the real content.
    assert.equal((await new FileProbe().probe(f, true)).sha256, sha('BBBB'));
  });

  test('cached: a changed size → hashed again', async () => {
    const f = join(dir, 'changed.gguf');
    writeFileSync(f, 'AAAA');
    const t = new Date(1_700_000_000_000);
    utimesSync(f, t, t);
    const probe = new FileProbe();
    assert.equal((await probe.probe(f, true)).sha256, sha('AAAA'));
    writeFileSync(f, 'AAAAB');
    utimesSync(f, t, t); // same mtime: the size alone must invalidate
    assert.equal((await probe.probe(f, true)).sha256, sha('AAAAB'));
  });

  test('cached: a changed mtime with the same size → hashed again', async () => {
    const f = join(dir, 'touched.gguf');
    writeFileSync(f, 'AAAA');
    const probe = new FileProbe();
    await probe.probe(f, true);
    writeFileSync(f, 'CCCC');
    utimesSync(f, new Date(1_000_000), new Date(1_000_000));
    assert.equal((await probe.probe(f, true)).sha256, sha('CCCC'));
  });

  test('the cache is per path', async () => {
    const a = join(dir, 'pa.gguf');
    const b = join(dir, 'pb.gguf');
    writeFileSync(a, 'same-size-1');
    writeFileSync(b, 'same-size-2');
    const t = new Date(2_000_000);
    utimesSync(a, t, t);
    utimesSync(b, t, t);
    const probe = new FileProbe();
    assert.equal((await probe.probe(a, true)).sha256, sha('same-size-1'));
    assert.equal((await probe.probe(b, true)).sha256, sha('same-size-2'));
  });

  test('a file removed after being cached → exists false', async () => {
    const f = join(dir, 'gone.gguf');
    writeFileSync(f, 'x');
    const probe = new FileProbe();
    assert.equal((await probe.probe(f, true)).exists, true);
    rmSync(f);
    assert.deepEqual(await probe.probe(f, true), { exists: false, error: undefined });
  });
});

test('a hash that takes longer than the caller can wait answers "still hashing" and finishes in the background', async () => {
  const { FileProbe } = await import('../../../../agent/src/preflight/files.js');
  const { mkdtempSync, writeFileSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const { createHash } = await import('node:crypto');
  const dir = mkdtempSync(join(tmpdir(), 'probe-'));
  const file = join(dir, 'big.bin');
  const data = Buffer.alloc(64 * 1024 * 1024, 7);
  writeFileSync(file, data);
  const probe = new FileProbe();
  const quick = await probe.probe(file, true, 0);
  assert.equal(quick.exists, true);
  assert.equal(quick.sha256, undefined);
  assert.match(quick.error ?? '', /still hashing/);
  const full = await probe.probe(file, true);
  assert.equal(full.sha256, createHash('sha256').update(data).digest('hex'));
});
