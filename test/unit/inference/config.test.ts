import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError, loadConfig, upstreamBase } from '../../../inference/src/config.js';

test('defaults: port 8070, one slot, GPU offload auto, name from the file', () => {
  const c = loadConfig({ MODEL_PATH: '/models/telechat-7b.Q8_0.gguf' });
  assert.deepEqual(
    [c.port, c.parallel, c.gpuLayers, c.modelName, c.contextSize],
    [8070, 1, 'auto', 'telechat-7b.Q8_0', 2048],
  );
});

test('every problem is reported at once, by variable name', () => {
  assert.throws(
    () => loadConfig({ PORT: '70000', PARALLEL: 'two', GPU_LAYERS: '-1', CONTEXT_SIZE: '1e3' }),
    (e) =>
      e instanceof ConfigError &&
      ['MODEL_PATH', 'PORT', 'PARALLEL', 'GPU_LAYERS', 'CONTEXT_SIZE'].every((k) => e.message.includes(k)),
  );
});

test('GPU_LAYERS takes auto or a count', () => {
  assert.equal(loadConfig({ MODEL_PATH: '/m.gguf', GPU_LAYERS: '0' }).gpuLayers, 0);
  assert.equal(loadConfig({ MODEL_PATH: '/m.gguf', GPU_LAYERS: '99' }).gpuLayers, 99);
});

test('UPSTREAM_URL: with or without /v1 and a trailing slash; only plain http(s)', () => {
  assert.equal(upstreamBase('http://vllm:8000'), 'http://vllm:8000');
  assert.equal(upstreamBase('http://vllm:8000/v1/'), 'http://vllm:8000');
  assert.equal(upstreamBase('https://gw.internal/telechat/v1'), 'https://gw.internal/telechat');
  assert.equal(upstreamBase('ftp://x'), undefined);
  assert.equal(upstreamBase('http://u:p@x'), undefined);
  assert.equal(upstreamBase('vllm:8000'), undefined);
});
