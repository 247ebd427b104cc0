import assert from 'node:assert/strict';
import { test } from 'node:test';
import { judge } from '../../../../inference/src/engine/upstream-health.js';

/** The pure verdict of one upstream health check. */

test('health verdict: /health 200 and the model listed (the wanted one, or the first), with its max_model_len', () => {
  const ok = { status: 200, body: '' };
  const models = {
    status: 200,
    body: JSON.stringify({ data: [{ id: 'a', max_model_len: 4096 }, { id: 'b' }] }),
  };
  assert.deepEqual(judge(ok, models, undefined), { ready: true, model: 'a', maxModelLen: 4096 });
  assert.deepEqual(judge(ok, models, 'b'), { ready: true, model: 'b' });
  assert.deepEqual(judge(ok, models, 'c'), {
    ready: false,
    reason: 'model "c" is not served by the upstream (its /v1/models lists: a, b)',
  });
  assert.deepEqual(judge({ status: 503, body: '{"status":"loading"}' }, models, undefined), {
    ready: false,
    reason: 'upstream /health answered 503 (loading)',
  });
  assert.deepEqual(judge({ status: 503, body: '{"status":"error","error":"bad gguf"}' }, models, undefined), {
    ready: false,
    reason: 'upstream /health answered 503 (error: bad gguf)',
  });
  assert.deepEqual(judge(ok, { status: 401, body: '{"error":"Unauthorized"}' }, undefined), {
    ready: false,
    reason: 'upstream /v1/models answered 401: Unauthorized',
  });
  assert.deepEqual(judge(ok, { status: 200, body: '{"data":[]}' }, undefined), {
    ready: false,
    reason: 'upstream /v1/models lists no model',
  });
});
