import assert from 'node:assert/strict';
import { chmodSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { KeyFilePermissionError } from '../../../../common/pki.js';
import { identify, trustAnchor } from '../../../../control-plane/src/pki/identity.js';
import { serverNames } from '../../../../control-plane/src/pki/issue.js';
import {
  loadOrIssueServerCertificate,
  serverCertPaths,
} from '../../../../control-plane/src/pki/server-cert.js';
import { deps, newCa, tmpDir } from './rig.js';

const ca = await newCa();
const root = tmpDir('server-cert');
let n = 0;
const names = serverNames('cp-1');

describe('the server certificate on disk', () => {
  test('issued on the first start (key 0600), reused on the next', async () => {
    const dir = join(root, `d${n++}`);
    const first = await loadOrIssueServerCertificate(dir, ca, { names, deps: deps() });
    assert.equal(first.issued, true);
    assert.equal(statSync(serverCertPaths(dir).key).mode & 0o777, 0o600);
    const r = identify(first.certPem, trustAnchor(ca.der), Date.now());
    assert.ok(r.ok && r.identity.role === 'server');
    const again = await loadOrIssueServerCertificate(dir, ca, { names, deps: deps() });
    assert.equal(again.issued, false);
    assert.equal(again.certPem, first.certPem);
  });

  test('reissued past 70% of its life, for other names, under another CA, or with a mismatched key', async () => {
    const dir = join(root, `d${n++}`);
    const first = await loadOrIssueServerCertificate(dir, ca, { names, deps: deps() });
    const life = first.notAfterMs - first.notBeforeMs;
    const late = deps(() => first.notBeforeMs + life * 0.71);
    assert.equal((await loadOrIssueServerCertificate(dir, ca, { names, deps: late })).issued, true);

    const more = serverNames('cp-1', ['10.1.2.3']);
    assert.equal((await loadOrIssueServerCertificate(dir, ca, { names: more, deps: deps() })).issued, true);
    assert.equal((await loadOrIssueServerCertificate(dir, ca, { names: more, deps: deps() })).issued, false);

    const otherCa = await newCa();
    assert.equal(
      (await loadOrIssueServerCertificate(dir, otherCa, { names: more, deps: deps() })).issued,
      true,
    );

    const elsewhere = join(root, `d${n++}`);
    await loadOrIssueServerCertificate(elsewhere, otherCa, { names: more, deps: deps() });
    writeFileSync(serverCertPaths(dir).key, readFileSync(serverCertPaths(elsewhere).key), { mode: 0o600 });
    assert.equal(
      (await loadOrIssueServerCertificate(dir, otherCa, { names: more, deps: deps() })).issued,
      true,
    );
  });

  test('a server key readable by others is refused', async () => {
    const dir = join(root, `d${n++}`);
    await loadOrIssueServerCertificate(dir, ca, { names, deps: deps() });
    chmodSync(serverCertPaths(dir).key, 0o644);
    await assert.rejects(
      loadOrIssueServerCertificate(dir, ca, { names, deps: deps() }),
      KeyFilePermissionError,
    );
  });
});
