import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { containerOptions, engineOptions } from '../../../../agent/src/docker/runtime.js';
import { fromSpec } from '../../../../agent/src/model.js';
import { RuntimeError } from '../../../../agent/src/runtime.js';
import { SecretMissingError } from '../../../../agent/src/secrets/files.js';
import type { DesiredState, SecretRef } from '../../../../proto/gen/fleet/v1/agent.js';
import { serviceSpec } from '../../../helpers/service-spec.js';

const ref = (fingerprint: string): SecretRef => ({ name: 'hf-token', fingerprint });

function state(fp: string): DesiredState {
  const svc = serviceSpec({
    env: { PLAIN: 'visible' },
    secretEnv: { HF_TOKEN: ref(fp) },
    engine: {
      image: 'e:1',
      env: {},
      command: [],
      port: 9000,
      volumes: [],
      secretEnv: { ENGINE_TOKEN: ref(fp) },
    },
  });
  return {
    version: 'v',
    deployments: [
      { name: 'web', revision: 1, revisionHash: 'h', services: [svc], registryAuth: [], secrets: [] },
    ],
  };
}

describe('secret env at container creation', () => {
  const read = (r: SecretRef) => `value-of-${r.name}-${r.fingerprint.slice(0, 4)}`;

  test('values are read when the options are made: in Env, never in labels or the spec hash', () => {
    const [c] = fromSpec(state('a'.repeat(32)), 'n1');
    const opts = containerOptions(c!, [], read);
    assert.deepEqual(opts.Env, ['PLAIN=visible', 'HF_TOKEN=value-of-hf-token-aaaa']);
    assert.equal(JSON.stringify(opts.Labels).includes('value-of'), false);
    assert.deepEqual(engineOptions(c!, [], 'replica-id', read).Env, ['ENGINE_TOKEN=value-of-hf-token-aaaa']);
  });

  test('a new version of the secret is a new spec hash (the replica is replaced)', () => {
    const [a] = fromSpec(state('a'.repeat(32)), 'n1');
    const [b] = fromSpec(state('b'.repeat(32)), 'n1');
    assert.notEqual(a!.hash, b!.hash);
  });

  test('a secret that is not on the node fails the create as a terminal error naming it', () => {
    const [c] = fromSpec(state('a'.repeat(32)), 'n1');
    const missing = () => {
      throw new SecretMissingError('secret hf-token (version aaaaaaaaaaaa) is not on this node');
    };
    assert.throws(
      () => containerOptions(c!, [], missing),
      (e: Error) => e instanceof RuntimeError && !e.retryable && /HF_TOKEN: secret hf-token/.test(e.message),
    );
  });
});
