/**
 * The same certificates through grpc-js, the transport the agent stream uses: mutual TLS with
 * `checkClientCertificate`, and the peer certificate read back with `call.getAuthContext()` and
 * `identify()`. A bare unary method with raw bytes, so no proto is involved.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { generateKeyPair, privateKeyPem } from '../../../../common/pki.js';
import { type IdentifyResult, identify, trustAnchor } from '../../../../control-plane/src/pki/identity.js';
import { issueServerCertificate, serverNames } from '../../../../control-plane/src/pki/issue.js';
import { agentCert, deps, newCa } from './rig.js';

const ca = await newCa();
const other = await newCa();
const bytes = { serialize: (b: Buffer) => b, deserialize: (b: Buffer) => b };
const service: grpc.ServiceDefinition = {
  whoami: {
    path: '/test.Probe/WhoAmI',
    requestStream: false,
    responseStream: false,
    requestSerialize: bytes.serialize,
    requestDeserialize: bytes.deserialize,
    responseSerialize: bytes.serialize,
    responseDeserialize: bytes.deserialize,
  },
};
const Client = grpc.makeGenericClientConstructor(service, 'Probe');

describe('grpc-js mutual TLS with fleet certificates (loopback)', () => {
  const server = new grpc.Server();
  const anchor = trustAnchor(ca.certPem);
  let port = 0;
  let last: IdentifyResult | undefined;

  before(async () => {
    const keys = await generateKeyPair();
    const s = await issueServerCertificate(
      ca,
      { publicKey: keys.publicKey, names: serverNames('localhost') },
      deps(),
    );
    server.addService(service, {
      whoami: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
        last = identify(call.getAuthContext().sslPeerCertificate, anchor, Date.now());
        cb(null, Buffer.from(last.ok ? last.identity.node : last.reason));
      },
    });
    const creds = grpc.ServerCredentials.createSsl(
      Buffer.from(ca.certPem),
      [
        {
          cert_chain: Buffer.from(s.certPem),
          private_key: Buffer.from(await privateKeyPem(keys.privateKey)),
        },
      ],
      true,
    );
    port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', creds, (err, p) => (err ? reject(err) : resolve(p))),
    );
  });
  after(() => server.forceShutdown());

  function call(client: { cert: string; key: string } | undefined): Promise<string> {
    const creds = client
      ? grpc.credentials.createSsl(Buffer.from(ca.certPem), Buffer.from(client.key), Buffer.from(client.cert))
      : grpc.credentials.createSsl(Buffer.from(ca.certPem));
    const c = new Client(`127.0.0.1:${port}`, creds);
    return new Promise((resolve) => {
      const deadline = new Date(Date.now() + 5000);
      c.makeUnaryRequest(
        service.whoami!.path,
        bytes.serialize,
        bytes.deserialize,
        Buffer.alloc(0),
        { deadline },
        (err: grpc.ServiceError | null, reply?: Buffer) => {
          c.close();
          resolve(err ? `error ${grpc.status[err.code]}` : String(reply));
        },
      );
    });
  }

  test('an agent certificate: the call sees its node', async () => {
    const a = await agentCert(ca, 'gpu-09');
    assert.equal(await call({ cert: a.certPem, key: a.keyPem }), 'gpu-09');
    assert.ok(last?.ok && last.identity.keyFingerprint === a.keyFingerprint);
  });

  test('no certificate, or one from another CA: the call never reaches the handler', async () => {
    last = undefined;
    const foreign = await agentCert(other, 'gpu-09');
    assert.equal(await call(undefined), 'error UNAVAILABLE');
    assert.equal(await call({ cert: foreign.certPem, key: foreign.keyPem }), 'error UNAVAILABLE');
    assert.equal(last, undefined);
  });
});
