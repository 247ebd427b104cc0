import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadConfig } from '../../inference/src/config.js';
import { type RunningInference, startInference } from '../../inference/src/main.js';
import { HELLO_DIALOG, readChunks } from '../helpers/http-stream.js';
import { openAiRoundTrip } from '../helpers/openai-roundtrip.js';
import { freePort, waitFor } from '../helpers/procs.js';
import { writeTinyGguf } from '../helpers/tiny-gguf.js';

/**
 * The inference server over real HTTP with a real GGUF model (the tiny random-weight one)
 * generating real tokens through node-llama-cpp on the CPU.
 */
// biome-ignore lint/suspicious/noExplicitAny: response bodies are checked field by field below
const json = (res: Response): Promise<any> => res.json();

/** The server's own count of generated tokens, from /metrics. */
let metricsUrl = '';
async function tokensGenerated() {
  const text = await (await fetch(metricsUrl)).text();
  return Number(/^inference_tokens_generated_total (\d+)/m.exec(text)?.[1] ?? 0);
}

const dialog = HELLO_DIALOG;

describe('inference server with a real model', { timeout: 120_000 }, () => {
  let server: RunningInference;
  let url = '';
  let sawLoading = false;

  before(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'inference-'));
    const modelPath = join(dir, 'tiny.gguf');
    writeTinyGguf(modelPath);
    const port = await freePort();
    server = await startInference(
      loadConfig({
        MODEL_PATH: modelPath,
        PORT: String(port),
        HOST: '127.0.0.1',
        PARALLEL: '1',
        QUEUE_SIZE: '1',
        CONTEXT_SIZE: '512',
        GPU_LAYERS: '0',
        THREADS: '1',
      }),
    );
    url = `http://127.0.0.1:${port}`;
    metricsUrl = `${url}/metrics`;
    const first = await fetch(`${url}/health`);
    sawLoading = first.status === 503 && (await json(first)).status === 'loading';
  });

  after(() => server?.shutdown());

  test('/health answers 503 loading, then 200 with the model once loaded', async () => {
    assert.ok(sawLoading, 'the first /health answered 503 loading');
    const body = await waitFor(
      'model loaded',
      async () => {
        const res = await fetch(`${url}/health`);
        return res.status === 200 ? json(res) : undefined;
      },
      60_000,
    );
    assert.equal(body.status, 'ok');
    assert.equal(body.model.loaded, true);
    assert.equal(body.model.name, 'tiny');
    assert.ok(body.model.load_seconds > 0);
    assert.deepEqual(body.gpus, []);
  });

  test('TeleChat v2 streams plain text chunk by chunk: the first chunk arrives well before the end', async () => {
    const t0 = performance.now();
    const res = await fetch(`${url}/telechat/gptDialog/v2`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        dialog,
        max_length: 120,
        do_sample: true,
        temperature: 0.5,
        top_k: 40,
        top_p: 0.9,
      }),
    });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /text\/plain/);
    const chunks = await readChunks(res);
    const end = performance.now();
    assert.ok(chunks.length >= 3, `several chunks, got ${chunks.length}`);
    assert.ok(chunks.map((c) => c.text).join('').length > 0);
    const first = chunks[0]!.at - t0;
    assert.ok(
      first < (end - t0) * 0.8,
      `first chunk at ${first.toFixed(0)} ms of ${(end - t0).toFixed(0)} ms`,
    );
  });

  test('TeleChat v4 answers {role: bot, content}', async () => {
    const res = await fetch(`${url}/telechat/gptDialog/v4`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ dialog, max_length: 16 }),
    });
    assert.equal(res.status, 200);
    const body = await json(res);
    assert.equal(body.role, 'bot');
    assert.ok(typeof body.content === 'string' && body.content.length > 0);
  });

  test('every TeleChat error code comes back for the matching bad request', async () => {
    const cases: [unknown, number][] = [
      [{}, 10301],
      [{ dialog: [{ role: 'bot', content: 'x' }] }, 10904],
      [{ dialog, max_length: 5000 }, 10305],
      [{ dialog, top_k: 100 }, 10305],
      [{ dialog, top_p: 1.5 }, 10305],
      [{ dialog, temperature: 0 }, 10305],
      [{ dialog, repetition_penalty: 0.5 }, 10305],
    ];
    for (const [body, code] of cases) {
      for (const v of ['v2', 'v4']) {
        const res = await fetch(`${url}/telechat/gptDialog/${v}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ ...(body as object), seqid: 'req-1' }),
        });
        assert.equal(res.status, 400);
        const err = await json(res);
        assert.equal(err.code, code, `${v} ${JSON.stringify(body)}`);
        assert.deepEqual(Object.keys(err).sort(), ['code', 'data', 'flag', 'message', 'seqid']);
        assert.equal(err.seqid, 'req-1');
      }
    }
  });

  test('the openai client works unchanged, streamed and not, with usage counts', async () => {
    const { models, done, streamed } = await openAiRoundTrip(`${url}/v1`);
    assert.deepEqual(models, ['tiny']);
    assert.equal(done.choices[0]!.message.role, 'assistant');
    assert.ok(done.choices[0]!.message.content!.length > 0);
    assert.ok(done.usage!.completion_tokens > 0 && done.usage!.completion_tokens <= 12);
    assert.ok(done.usage!.prompt_tokens > 0);
    const { text, deltas, usage, finish } = streamed;
    assert.ok(text.length > 0);
    assert.ok(finish === 'length' || finish === 'stop');
    assert.ok(usage && usage.completion_tokens > 0);
    // The first token is never held back, so two tokens or more always make two deltas or more (the
    // random-weight model may stop after one).
    assert.ok(
      deltas >= Math.min(2, usage.completion_tokens),
      `${deltas} deltas for ${usage.completion_tokens} tokens`,
    );
  });

  test('a burst past the queue gets 429 with Retry-After; a disconnect frees its slot', async () => {
    // PARALLEL=1, QUEUE_SIZE=1: one runs, one waits, the third is refused at once.
    const long = () => new AbortController();
    const c1 = long();
    const c2 = long();
    const req = (c: AbortController) =>
      fetch(`${url}/telechat/gptDialog/v2`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ dialog, max_length: 4000 }),
        signal: c.signal,
      });
    const tokensBefore = await tokensGenerated();
    const r1 = await req(c1);
    assert.equal(r1.status, 200);
    const reader = r1.body!.getReader();
    await reader.read(); // the first generation is running
    const p2 = req(c2).catch(() => undefined);
    await waitFor(
      'second request queued',
      async () => (await json(await fetch(`${url}/health`))).queue.waiting === 1,
      5000,
      20,
    );
    const r3 = await fetch(`${url}/telechat/gptDialog/v4`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ dialog, max_length: 4 }),
    });
    assert.equal(r3.status, 429);
    assert.ok(Number(r3.headers.get('retry-after')) >= 1);
    // Both clients go away: the running generation is cancelled at once and the queue empties.
    // Without cancellation the first would run to its 512-token limit and the second after it.
    const abortedAt = performance.now();
    c1.abort();
    c2.abort();
    await p2;
    await waitFor(
      'slots free',
      async () => {
        const h = await json(await fetch(`${url}/health`));
        return h.queue.running === 0 && h.queue.waiting === 0;
      },
      5000,
      10,
    );
    const freedMs = performance.now() - abortedAt;
    assert.ok(freedMs < 500, `slot freed ${freedMs.toFixed(0)} ms after the disconnect`);
    const generated = (await tokensGenerated()) - tokensBefore;
    assert.ok(generated < 200, `the cancelled generations produced ${generated} tokens, not hundreds`);
    const r4 = await fetch(`${url}/telechat/gptDialog/v4`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ dialog, max_length: 4 }),
    });
    assert.equal(r4.status, 200, 'the freed slot serves the next request');
  });

  test('/metrics is Prometheus text with requests, tokens, TTFT, latency, queue and load time', async () => {
    const res = await fetch(`${url}/metrics`);
    assert.match(res.headers.get('content-type') ?? '', /text\/plain/);
    const text = await res.text();
    for (const name of [
      'inference_requests_total{route="/telechat/gptDialog/v2",status="200"}',
      'inference_requests_total{route="/telechat/gptDialog/v4",status="429"}',
      'inference_tokens_generated_total',
      'inference_time_to_first_token_seconds_bucket',
      'inference_request_duration_seconds_bucket',
      'inference_queue_depth',
      'inference_model_load_seconds',
    ]) {
      assert.ok(text.includes(name), `metrics include ${name}`);
    }
    const tokens = Number(/^inference_tokens_generated_total (\d+)/m.exec(text)?.[1]);
    assert.ok(tokens > 10, `tokens counted: ${tokens}`);
    // Prometheus's own linter accepts the exposition.
    const check = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    assert.equal(
      check.error,
      undefined,
      "promtool not found: install Debian's prometheus package (scripts/test.sh does)",
    );
    assert.equal(check.status, 0, `promtool: ${check.stdout}${check.stderr}`);
  });
});
