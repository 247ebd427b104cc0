import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EngineError, type GenerateRequest } from '../../../../inference/src/engine/types.js';
import { FAKE_TOKENS, FakeEngine } from '../../../helpers/fake-engine.js';

function request(over: Partial<GenerateRequest> = {}, text: string[] = []): GenerateRequest {
  return {
    messages: [{ role: 'user', content: 'two words' }],
    maxTokens: 100,
    sample: true,
    signal: new AbortController().signal,
    onText: (t) => text.push(t),
    ...over,
  };
}

describe('FakeEngine', () => {
  it('emits its tokens and stops', async () => {
    const e = new FakeEngine();
    await e.load();
    const text: string[] = [];
    const res = await e.generate(request({}, text));
    assert.deepEqual(text, FAKE_TOKENS);
    assert.deepEqual(res, { promptTokens: 3, completionTokens: FAKE_TOKENS.length, finishReason: 'stop' });
    assert.equal(e.requests.length, 1);
    assert.equal(e.info.backend, 'fake');
  });

  it('cycles tokens up to maxTokens → length', async () => {
    const e = new FakeEngine({ tokens: ['a', 'b'], stopAfter: Number.POSITIVE_INFINITY });
    await e.load();
    const text: string[] = [];
    const res = await e.generate(request({ maxTokens: 5 }, text));
    assert.equal(text.join(''), 'ababa');
    assert.equal(res.finishReason, 'length');
    assert.equal(res.completionTokens, 5);
  });

  it('honours abort between tokens, promptly', async () => {
    const e = new FakeEngine({ delayMs: 1000, stopAfter: 10 });
    await e.load();
    const ac = new AbortController();
    const t0 = Date.now();
    setTimeout(() => ac.abort(), 20);
    const res = await e.generate(request({ signal: ac.signal }));
    assert.equal(res.finishReason, 'aborted');
    assert.ok(Date.now() - t0 < 500);
  });

  it('fails load or generation on demand', async () => {
    await assert.rejects(new FakeEngine({ failLoad: 'no such model' }).load(), (err: unknown) => {
      return err instanceof EngineError && err.kind === 'load' && err.message === 'no such model';
    });
    const e = new FakeEngine({ failGenerate: 'boom', failAfterTokens: 2 });
    await e.load();
    const text: string[] = [];
    await assert.rejects(e.generate(request({}, text)), (err: unknown) => {
      return err instanceof EngineError && err.kind === 'generate';
    });
    assert.equal(text.length, 2);
    e.options.failGenerate = undefined;
    assert.equal((await e.generate(request())).finishReason, 'stop');
    await e.close();
    await assert.rejects(e.generate(request()), EngineError);
  });

  it('counts concurrent generations', async () => {
    const e = new FakeEngine({ delayMs: 5, info: { parallel: 3 } });
    await e.load();
    await Promise.all([1, 2, 3].map(() => e.generate(request())));
    assert.equal(e.maxActive, 3);
    assert.equal(e.active, 0);
    assert.equal(e.started, 3);
    assert.equal(e.info.parallel, 3);
  });
});
