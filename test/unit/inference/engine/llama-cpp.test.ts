/**
 * LlamaCppEngine against a real (tiny, random-weight) GGUF model on the CPU, through node-llama-cpp's
 * prebuilt binaries. Runs in a few seconds; no download, no GPU.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { LlamaCppEngine } from '../../../../inference/src/engine/llama-cpp.js';
import {
  type ChatMessage,
  EngineError,
  type GenerateRequest,
} from '../../../../inference/src/engine/types.js';
import { writeTinyGguf } from '../../../helpers/tiny-gguf.js';

const dir = mkdtempSync(join(tmpdir(), 'engine-test-'));
const modelPath = join(dir, 'tiny.gguf');
writeTinyGguf(modelPath);

after(() => rmSync(dir, { recursive: true, force: true }));

const logs: string[] = [];
// threads: 1 — the tiny model is fastest single-threaded, most of all on a busy 2-core machine
const engine = new LlamaCppEngine({
  modelPath,
  contextSize: 512,
  parallel: 2,
  gpuLayers: 0,
  threads: 1,
  log: (_obj, msg) => logs.push(msg),
});

function request({
  text = [],
  ...over
}: Partial<GenerateRequest> & { text?: string[] } = {}): GenerateRequest {
  return {
    messages: [{ role: 'user', content: 'hello world, how are you?' }],
    maxTokens: 16,
    sample: false,
    signal: new AbortController().signal,
    onText: (t) => text.push(t),
    ...over,
  };
}

function expectEngineError(kind: 'load' | 'generate', pattern: RegExp) {
  return (err: unknown) => {
    assert.ok(err instanceof EngineError, `not an EngineError: ${String(err)}`);
    assert.equal(err.kind, kind);
    assert.match(err.message, pattern);
    return true;
  };
}

describe('LlamaCppEngine (tiny GGUF, CPU)', () => {
  before(async () => {
    const t0 = Date.now();
    await engine.load();
    console.log(`tiny model loaded in ${Date.now() - t0} ms`);
  });
  after(() => engine.close());

  it('reports what it loaded', () => {
    assert.deepEqual(engine.info, {
      name: 'tiny',
      path: modelPath,
      contextSize: 512,
      parallel: 2,
      gpuLayers: 0,
      backend: 'cpu',
    });
    assert.ok(logs.includes('model loaded'));
  });

  it('streams text while generating and stops at maxTokens', async () => {
    const text: string[] = [];
    let resolved = false;
    let firstTextBeforeResolve = false;
    const t0 = Date.now();
    const res = await engine
      .generate(
        request({
          maxTokens: 64,
          text,
          onText: (t) => {
            if (text.length === 0) firstTextBeforeResolve = !resolved;
            text.push(t);
          },
        }),
      )
      .finally(() => {
        resolved = true;
      });
    const ms = Date.now() - t0;
    console.log(`64 tokens in ${ms} ms (${((64 / ms) * 1000).toFixed(0)} tokens/s)`);
    assert.equal(res.finishReason, 'length');
    assert.equal(res.completionTokens, 64);
    assert.ok(res.promptTokens > 5 && res.promptTokens < 100, `promptTokens ${res.promptTokens}`);
    assert.ok(text.length >= 5, `onText called ${text.length} times`);
    assert.ok(firstTextBeforeResolve);
    assert.ok(text.join('').length > 20);
  });

  it('respects maxTokens when sampling too', async () => {
    for (const maxTokens of [1, 5]) {
      const res = await engine.generate(
        request({ maxTokens, sample: true, temperature: 1, topK: 50, topP: 0.9 }),
      );
      assert.ok(res.completionTokens <= maxTokens, `${res.completionTokens} > ${maxTokens}`);
      if (res.finishReason === 'length') assert.equal(res.completionTokens, maxTokens);
      else assert.equal(res.finishReason, 'stop');
    }
  });

  it('greedy decoding is repeatable (a freed sequence leaves no state behind)', async () => {
    const a: string[] = [];
    const b: string[] = [];
    await engine.generate(request({ text: a, maxTokens: 24 }));
    await engine.generate(request({ text: b, maxTokens: 24, temperature: 1.5 })); // sample: false wins
    assert.equal(a.join(''), b.join(''));
  });

  it('takes a dialog: system, user, assistant, user', async () => {
    const messages: ChatMessage[] = [
      { role: 'system', content: 'You are a test.' },
      { role: 'user', content: 'first question' },
      { role: 'assistant', content: 'first answer' },
      { role: 'user', content: 'second question' },
    ];
    const one = await engine.generate(request({ messages: messages.slice(-1) }));
    const all = await engine.generate(request({ messages, repeatPenalty: 1.2 }));
    assert.equal(all.finishReason, 'length');
    assert.ok(all.promptTokens > one.promptTokens + 10, `${all.promptTokens} vs ${one.promptTokens}`);
  });

  it('an abort stops generation promptly with finishReason aborted; the engine serves the next request', async () => {
    const ac = new AbortController();
    let abortedAt = 0;
    let pieces = 0;
    const res = await engine.generate(
      request({
        maxTokens: 400,
        signal: ac.signal,
        onText: () => {
          if (++pieces === 3) {
            abortedAt = Date.now();
            ac.abort();
          }
        },
      }),
    );
    const ms = Date.now() - abortedAt;
    assert.equal(res.finishReason, 'aborted');
    assert.ok(ms < 1000, `took ${ms} ms after abort`);
    assert.ok(res.completionTokens < 400);
    // both slots are free again
    const [x, y] = await Promise.all([engine.generate(request()), engine.generate(request())]);
    assert.equal(x.finishReason, 'length');
    assert.equal(y.finishReason, 'length');
  });

  it('an already aborted request returns at once', async () => {
    const res = await engine.generate(request({ signal: AbortSignal.abort() }));
    assert.deepEqual(res, { promptTokens: 0, completionTokens: 0, finishReason: 'aborted' });
  });

  it('runs `parallel` (2) generations at once', async () => {
    const order: string[] = [];
    const gen = (name: string, content: string) =>
      engine
        .generate(
          request({
            messages: [{ role: 'user', content }],
            maxTokens: 48,
            onText: () => order.push(name),
          }),
        )
        .then((r) => {
          order.push(`${name}:done`);
          return r;
        });
    const [a, b] = await Promise.all([gen('a', 'the first one'), gen('b', 'and the second')]);
    assert.equal(a.completionTokens, 48);
    assert.equal(b.completionTokens, 48);
    // interleaved: b produced text before a finished
    assert.ok(order.indexOf('b') < order.indexOf('a:done'), order.join(' '));
  });

  it('a request beyond `parallel` fails clearly instead of crashing', async () => {
    const ac = new AbortController();
    // The engine waits up to 1 s for a sequence freed a moment ago: the two running generations must
    // outlast that, so each token is held 4 ms (400 tokens ≥ 1.6 s; the tiny model alone takes ~0.3 s).
    const slow = () => {
      const t = performance.now();
      while (performance.now() - t < 4);
    };
    const running = [1, 2].map(() =>
      engine.generate(request({ maxTokens: 400, signal: ac.signal, onText: slow })),
    );
    await assert.rejects(engine.generate(request()), expectEngineError('generate', /no free sequence/));
    ac.abort();
    for (const r of await Promise.all(running)) assert.equal(r.finishReason, 'aborted');
  });

  it('rejects maxTokens below 1', async () => {
    await assert.rejects(
      engine.generate(request({ maxTokens: 0 })),
      expectEngineError('generate', /maxTokens/),
    );
  });
});

describe('LlamaCppEngine load errors', () => {
  const opts = { contextSize: 256, parallel: 1, gpuLayers: 0 as const, threads: 1 };
  const errDir = mkdtempSync(join(tmpdir(), 'engine-errors-'));
  after(() => rmSync(errDir, { recursive: true, force: true }));

  it('a missing file names the path', async () => {
    const path = join(errDir, 'nope.gguf');
    const e = new LlamaCppEngine({ ...opts, modelPath: path });
    await assert.rejects(e.load(), expectEngineError('load', new RegExp(`not found: ${path}`)));
  });

  it('a file that is not GGUF says so', async () => {
    const path = join(errDir, 'model.bin');
    writeFileSync(path, 'PK\u0003\u0004 definitely not a model');
    const e = new LlamaCppEngine({ ...opts, modelPath: path });
    await assert.rejects(e.load(), expectEngineError('load', /not a GGUF file: .*model\.bin/));
  });

  it('generate before load fails clearly', async () => {
    const e = new LlamaCppEngine({ ...opts, modelPath: join(errDir, 'x.gguf') });
    await assert.rejects(e.generate(request()), expectEngineError('generate', /not loaded/));
  });

  it('an architecture llama.cpp does not know is named', async () => {
    const buf = readFileSync(modelPath);
    const key = Buffer.from('general.architecture');
    const at = buf.indexOf(key) + key.length + 4 + 8; // type (u32) + string length (u64)
    assert.equal(buf.subarray(at, at + 5).toString(), 'llama');
    buf.write('zzzzz', at, 'latin1');
    const path = join(errDir, 'alien.gguf');
    writeFileSync(path, buf);
    const e = new LlamaCppEngine({ ...opts, modelPath: path });
    await assert.rejects(e.load(), expectEngineError('load', /unsupported model architecture 'zzzzz'/));
  });

  it('a truncated file fails with llama.cpp’s reason', async () => {
    const path = join(errDir, 'cut.gguf');
    writeFileSync(path, readFileSync(modelPath).subarray(0, 60_000));
    const e = new LlamaCppEngine({ ...opts, modelPath: path });
    await assert.rejects(
      e.load(),
      expectEngineError('load', /failed to load model .*cut\.gguf.*(corrupted|bounds)/),
    );
  });
});
