import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadConfig } from '../../../inference/src/config.js';
import { startInference } from '../../../inference/src/main.js';
import { FakeEngine } from '../../helpers/fake-engine.js';
import { freePort, ROOT, waitFor } from '../../helpers/procs.js';
import { writeTinyGguf } from '../../helpers/tiny-gguf.js';

/** Server behaviour that does not need a real model: lifecycle, failures, shutdown. */
async function start(engine: FakeEngine, env: Record<string, string> = {}) {
  const port = await freePort();
  const server = await startInference(
    loadConfig({ MODEL_PATH: '/models/fake.gguf', HOST: '127.0.0.1', PORT: String(port), ...env }),
    engine,
  );
  return { server, url: `http://127.0.0.1:${port}` };
}

const v2 = (url: string, maxLength = 8, signal?: AbortSignal) =>
  fetch(`${url}/telechat/gptDialog/v2`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ dialog: [{ role: 'user', content: 'hi' }], max_length: maxLength }),
    signal,
  });

test('a model that fails to load: /health 503 error with the reason; generation 503 with Retry-After', async () => {
  const { server, url } = await start(new FakeEngine({ failLoad: 'not a GGUF file' }));
  try {
    const h = await waitFor('load failure reported', async () => {
      const res = await fetch(`${url}/health`);
      const body = (await res.json()) as { status: string; error?: string };
      return body.status === 'error' ? { res, body } : undefined;
    });
    assert.equal(h.res.status, 503);
    assert.match(h.body.error ?? '', /not a GGUF file/);
    const g = await v2(url);
    assert.equal(g.status, 503);
    assert.ok(Number(g.headers.get('retry-after')) > 0);
    assert.equal(((await g.json()) as { code: number }).code, 10903);
  } finally {
    await server.shutdown();
  }
});

test('a generation failure before any text answers 10903', async () => {
  const { server, url } = await start(new FakeEngine({ failGenerate: 'CUDA error: out of memory' }));
  try {
    await waitFor('loaded', async () => (await fetch(`${url}/health`)).status === 200);
    const res = await fetch(`${url}/telechat/gptDialog/v4`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ dialog: [{ role: 'user', content: 'hi' }] }),
    });
    assert.equal(res.status, 500);
    const body = (await res.json()) as { code: number; message: string };
    assert.equal(body.code, 10903);
    assert.match(body.message, /out of memory/);
  } finally {
    await server.shutdown();
  }
});

test('/health stays bounded when nvidia-smi hangs', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'smi-'));
  const { writeFileSync, chmodSync } = await import('node:fs');
  writeFileSync(join(dir, 'nvidia-smi'), '#!/bin/sh\nsleep 30\n');
  chmodSync(join(dir, 'nvidia-smi'), 0o755);
  const { server, url } = await start(new FakeEngine(), { NVIDIA_SMI: join(dir, 'nvidia-smi') });
  try {
    const t0 = Date.now();
    const res = await fetch(`${url}/health`);
    assert.ok(Date.now() - t0 < 3000, `answered in ${Date.now() - t0} ms`);
    const body = (await res.json()) as { gpus: unknown[]; gpu_error?: string };
    assert.deepEqual(body.gpus, []);
    assert.match(body.gpu_error ?? '', /nvidia-smi/);
  } finally {
    await server.shutdown();
  }
});

test('shutdown lets an in-flight stream finish, then refuses new work', async () => {
  const engine = new FakeEngine({ delayMs: 20, tokens: ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j'] });
  const { server, url } = await start(engine, { SHUTDOWN_GRACE_MS: '5000' });
  await waitFor('loaded', async () => (await fetch(`${url}/health`)).status === 200);
  const res = await v2(url, 10);
  const reader = res.body!.getReader();
  await reader.read();
  const stopped = server.shutdown();
  let text = '';
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    text += new TextDecoder().decode(value);
  }
  assert.equal(text.length, 9, 'the rest of the answer arrived');
  await stopped;
  await assert.rejects(fetch(`${url}/health`), 'the listener is closed');
});

test('shutdown cancels generations still running after the grace period', async () => {
  const engine = new FakeEngine({ delayMs: 50, tokens: Array.from({ length: 200 }, () => 'x') });
  const { server, url } = await start(engine, { SHUTDOWN_GRACE_MS: '200' });
  await waitFor('loaded', async () => (await fetch(`${url}/health`)).status === 200);
  const res = await v2(url, 200);
  const reader = res.body!.getReader();
  await reader.read();
  const t0 = Date.now();
  await server.shutdown();
  assert.ok(Date.now() - t0 < 2000, `shutdown took ${Date.now() - t0} ms`);
  for (;;) if ((await reader.read()).done) break;
  assert.equal(engine.active, 0);
});

function run(args: string[], env: Record<string, string>) {
  const p = spawn(process.execPath, args, {
    env: { PATH: process.env.PATH, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  p.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((r) => p.on('exit', (code) => r(code)));
  return { p, exited, stderr: () => stderr };
}

const SERVER_JS = join(ROOT, 'dist/inference/src/server.js');

test('the process refuses bad configuration at start with a clear message and exit 2', async () => {
  const r = run([SERVER_JS], { PORT: 'eighty' });
  assert.equal(await r.exited, 2);
  assert.match(r.stderr(), /MODEL_PATH is required/);
  assert.match(r.stderr(), /PORT="eighty"/);
});

test('the process exits 0 on SIGTERM', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'model-'));
  writeTinyGguf(join(dir, 'tiny.gguf'));
  const port = await freePort();
  const r = run([SERVER_JS], {
    MODEL_PATH: join(dir, 'tiny.gguf'),
    PORT: String(port),
    HOST: '127.0.0.1',
    THREADS: '1',
  });
  await waitFor(
    'healthy',
    async () => (await fetch(`http://127.0.0.1:${port}/health`)).status === 200,
    30_000,
  );
  r.p.kill('SIGTERM');
  assert.equal(await r.exited, 0);
});
