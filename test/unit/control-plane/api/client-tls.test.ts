import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import Fastify from 'fastify';
import { api } from '../../../../control-plane/src/api/app.js';
import { type ClientError, FleetClient } from '../../../../control-plane/src/api/client.js';
import { Deployer } from '../../../../control-plane/src/deployer.js';
import { serverNames } from '../../../../control-plane/src/pki/issue.js';
import { loadOrIssueServerCertificate } from '../../../../control-plane/src/pki/server-cert.js';
import { freshStores, tokenFor } from '../fixtures.js';
import { deps, newCa, tmpDir } from '../pki/rig.js';

const freshStore = freshStores('fleet-client-tls-');

/**
 * The CLI's side of REST over TLS (`--ca-file`): the API on a real HTTPS port with a certificate
 * from the control plane's own CA; the client trusts that CA only when told to.
 */
describe('FleetClient over HTTPS', () => {
  test('trusts the CA it is given; without it, a clear error naming --ca-file', async () => {
    const ca = await newCa();
    const creds = await loadOrIssueServerCertificate(join(tmpDir('client-tls'), 'cp'), ca, {
      names: serverNames('cp-1'),
      deps: deps(),
    });
    const store = freshStore();
    const app = Fastify({ https: { cert: creds.certPem, key: creds.keyPem } });
    await app.register(api, {
      store,
      deployer: new Deployer(store, { push: () => {} }),
      version: 't',
      connectedAgents: () => 0,
    });
    const url = await app.listen({ host: '127.0.0.1', port: 0 });
    assert.match(url, /^https:/);
    const token = tokenFor(store, 'viewer');
    try {
      assert.deepEqual(await new FleetClient(url, { token, ca: ca.certPem }).nodes(), { nodes: [] });
      await assert.rejects(new FleetClient(url, { token }).nodes(), (err: ClientError) => {
        assert.match(err.message, /cannot verify the certificate .*--ca-file/);
        return true;
      });
      await assert.rejects(new FleetClient(url, { ca: ca.certPem }).nodes(), /FLEET_TOKEN/);
    } finally {
      await app.close();
      store.close();
    }
  });
});
