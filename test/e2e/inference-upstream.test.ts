import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { createWriteStream, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { HELLO_DIALOG, readChunks } from '../helpers/http-stream.js';
import { openAiRoundTrip } from '../helpers/openai-roundtrip.js';
import { freePort, ROOT, stop, waitFor } from '../helpers/procs.js';
import { writeTinyGguf } from '../helpers/tiny-gguf.js';

/**
 * Upstream mode (ENGINE=openai-upstream) against a real upstream: a second instance of this server
 * in llama-cpp mode serving the tiny GGUF. Every server is its own process (the image's entry point,
 * dist/inference/src/server.js) on 127.0.0.1, and everything goes over real HTTP. Where it makes
 * sense the same request is also sent straight to the upstream (direct mode) and the answers are
 * compared: greedy decoding makes them identical.
 *
 *   front    PARALLEL=1, QUEUE_SIZE=1            ─┐
 *   front2   PARALLEL=8, QUEUE_SIZE=0, CONTEXT_SIZE=8192 (more than the upstream has) ─┤─▶ upstream (tiny GGUF,
 *                                                                                        PARALLEL=1, QUEUE_SIZE=4,
 *                                                                                        CONTEXT_SIZE=4096)
 */
// biome-ignore lint/suspicious/noExplicitAny: response bodies are checked field by field below
const json = (res: Response): Promise<any> => res.json();
const dialog = HELLO_DIALOG;

const post = (url: string, body: object, signal?: AbortSignal) =>
  fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
    ...(signal ? { signal } : {}),
  });

/** One number from a server's /metrics (0 when the series is absent). */
async function metric(base: string, series: string) {
  const text = await (await fetch(`${base}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return Number(line?.slice(series.length + 1) ?? 0);
}

/** The text and usage of an SSE chat completion stream. */
function readSse(body: string) {
  let text = '';
  let usage: { prompt_tokens: number; completion_tokens: number } | undefined;
  let finish: string | undefined;
  let deltas = 0;
  let done = false;
  for (const line of body.split('\n')) {
    if (!line.startsWith('data: ')) continue;
    if (line === 'data: [DONE]') {
      done = true;
      continue;
    }
    const ev = JSON.parse(line.slice(6));
    if (ev.usage) usage = ev.usage;
    const c = ev.choices?.[0];
    if (c?.delta?.content) {
      text += c.delta.content;
      deltas++;
    }
    if (c?.finish_reason) finish = c.finish_reason;
  }
  return { text, usage, finish, deltas, done };
}

describe('inference server in upstream mode, against this server in llama-cpp mode', {
  timeout: 240_000,
}, () => {
  const dir = mkdtempSync(join(tmpdir(), 'inference-upstream-'));
  const modelPath = join(dir, 'tiny.gguf');
  const procs = new Set<ChildProcess>();
  let upstreamPort = 0;
  let upstream: ChildProcess;
  let up = '';
  let front = '';
  let front2 = '';
  let loadingBefore: { status: number; body: { status: string; upstream: { error: string } } };

  function server(name: string, port: number, env: Record<string, string>) {
    const log = createWriteStream(join(dir, `${name}.log`), { flags: 'a' });
    const p = spawn(process.execPath, [join(ROOT, 'dist/inference/src/server.js')], {
      env: { ...process.env, HOST: '127.0.0.1', PORT: String(port), LOG_LEVEL: 'warn', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    p.stdout?.pipe(log);
    p.stderr?.pipe(log);
    procs.add(p);
    p.once('exit', () => procs.delete(p));
    return p;
  }
  const startUpstream = () =>
    server('upstream', upstreamPort, {
      MODEL_PATH: modelPath,
      PARALLEL: '1',
      QUEUE_SIZE: '4',
      CONTEXT_SIZE: '4096',
      GPU_LAYERS: '0',
      THREADS: '1',
    });
  const healthy = (base: string, ms = 60_000) =>
    waitFor(`${base} healthy`, async () => (await fetch(`${base}/health`)).status === 200, ms, 20);

  before(async () => {
    writeTinyGguf(modelPath);
    upstreamPort = await freePort();
    up = `http://127.0.0.1:${upstreamPort}`;
    const [fp, fp2] = [await freePort(), await freePort()];
    front = `http://127.0.0.1:${fp}`;
    front2 = `http://127.0.0.1:${fp2}`;
    const frontEnv = {
      ENGINE: 'openai-upstream',
      UPSTREAM_URL: `${up}/v1`,
      UPSTREAM_TIMEOUT_MS: '1000',
      UPSTREAM_HEALTH_INTERVAL_MS: '1000',
    };
    // The front first: it waits for an upstream that is not there yet.
    server('front', fp, { ...frontEnv, PARALLEL: '1', QUEUE_SIZE: '1' });
    loadingBefore = await waitFor('front answers while its upstream is down', async () => {
      const res = await fetch(`${front}/health`);
      const body = await json(res);
      return body.upstream?.error ? { status: res.status, body } : undefined;
    });
    upstream = startUpstream();
    server('front2', fp2, { ...frontEnv, PARALLEL: '8', QUEUE_SIZE: '0', CONTEXT_SIZE: '8192' });
    await healthy(up);
    await healthy(front, 10_000);
    await healthy(front2, 10_000);
  });

  after(async () => {
    for (const p of procs) {
      if (p.signalCode === 'SIGSTOP') p.kill('SIGCONT');
      await stop(p, 'SIGKILL');
    }
  });

  test('/health: 503 loading until the upstream answers, then 200 naming the upstream and its model', async () => {
    assert.equal(loadingBefore.status, 503);
    assert.equal(loadingBefore.body.status, 'loading');
    assert.match(loadingBefore.body.upstream.error, /ECONNREFUSED/);
    const res = await fetch(`${front}/health`);
    const body = await json(res);
    assert.equal(res.status, 200);
    assert.equal(body.status, 'ok');
    assert.deepEqual(
      [body.model.name, body.model.backend, body.model.loaded, body.upstream.url, body.upstream.model],
      ['tiny', 'openai-upstream', true, up, 'tiny'],
    );
    assert.equal(body.upstream.max_model_len, 4096);
    assert.deepEqual(body.queue, { running: 0, waiting: 0, parallel: 1 });
  });

  test('TeleChat v2 streams chunk by chunk through the translation, the same text as direct mode', async () => {
    const req = { dialog, max_length: 400 };
    const t0 = performance.now();
    const res = await post(`${front}/telechat/gptDialog/v2`, req);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /text\/plain/);
    const chunks = await readChunks(res);
    const end = performance.now();
    assert.ok(chunks.length >= 3, `several chunks, got ${chunks.length}`);
    const first = chunks[0]!.at - t0;
    assert.ok(
      first < (end - t0) * 0.5,
      `first chunk at ${first.toFixed(0)} ms of ${(end - t0).toFixed(0)} ms`,
    );
    const direct = await (await post(`${up}/telechat/gptDialog/v2`, req)).text();
    assert.equal(chunks.map((c) => c.text).join(''), direct);
    assert.ok(direct.length > 0);
  });

  test('TeleChat v4 answers as direct mode does, with a system turn and sampling parameters too', async () => {
    for (const req of [
      { dialog, max_length: 24 },
      {
        dialog: [
          { role: 'system', content: 'You are brief.' },
          { role: 'user', content: 'a' },
          { role: 'bot', content: 'b' },
          { role: 'user', content: 'c' },
        ],
        max_length: 24,
        repetition_penalty: 1.5,
      },
    ]) {
      const viaFront = await post(`${front}/telechat/gptDialog/v4`, req);
      const direct = await post(`${up}/telechat/gptDialog/v4`, req);
      assert.equal(viaFront.status, 200);
      const [a, b] = [await json(viaFront), await json(direct)];
      assert.equal(a.role, 'bot');
      assert.ok(a.content.length > 0);
      assert.deepEqual(a, b);
    }
    // Sampling: not comparable token for token, but it runs and answers in shape.
    const sampled = await post(`${front}/telechat/gptDialog/v4`, {
      dialog,
      max_length: 16,
      do_sample: true,
      temperature: 0.5,
      top_k: 40,
      top_p: 0.9,
    });
    assert.equal(sampled.status, 200);
    assert.equal((await json(sampled)).role, 'bot');
  });

  test('every TeleChat error code comes back as direct mode answers it', async () => {
    const cases: [unknown, number][] = [
      [{}, 10301],
      [{ dialog: [{ role: 'bot', content: 'x' }] }, 10904],
      [{ dialog: [{ role: 'system', content: 'x' }] }, 10904],
      [{ dialog, max_length: 5000 }, 10305],
      [{ dialog, top_k: 100 }, 10305],
      [{ dialog, top_p: 1.5 }, 10305],
      [{ dialog, temperature: 0 }, 10305],
      [{ dialog, repetition_penalty: 0.5 }, 10305],
      [{ dialog, do_sample: 'yes' }, 10305],
    ];
    for (const [body, code] of cases) {
      for (const v of ['v2', 'v4']) {
        const req = { ...(body as object), seqid: 'req-1' };
        const [viaFront, direct] = [
          await post(`${front}/telechat/gptDialog/${v}`, req),
          await post(`${up}/telechat/gptDialog/${v}`, req),
        ];
        assert.equal(viaFront.status, 400);
        assert.equal(direct.status, 400);
        const [a, b] = [await json(viaFront), await json(direct)];
        assert.equal(a.code, code, `${v} ${JSON.stringify(body)}`);
        assert.deepEqual(a, b, `${v} ${JSON.stringify(body)}`);
      }
    }
  });

  test('OpenAI chat completions, whole and streamed, pass through: same text, usage and finish as direct mode', async () => {
    const req = {
      model: 'tiny',
      messages: [{ role: 'user', content: 'Hi' }],
      max_tokens: 20,
      temperature: 0,
    };
    const [a, b] = [
      await json(await post(`${front}/v1/chat/completions`, req)),
      await json(await post(`${up}/v1/chat/completions`, req)),
    ];
    assert.equal(a.object, 'chat.completion');
    assert.equal(a.model, 'tiny');
    assert.deepEqual(a.choices, b.choices);
    assert.deepEqual(a.usage, b.usage);
    assert.equal(a.usage.completion_tokens, 20);
    for (const includeUsage of [true, false]) {
      const sreq = { ...req, stream: true, stream_options: { include_usage: includeUsage } };
      const res = await post(`${front}/v1/chat/completions`, sreq);
      assert.match(res.headers.get('content-type') ?? '', /text\/event-stream/);
      const [s, d] = [
        readSse(await res.text()),
        readSse(await (await post(`${up}/v1/chat/completions`, sreq)).text()),
      ];
      assert.equal(s.text, a.choices[0].message.content);
      assert.deepEqual([s.text, s.finish, s.done, s.usage], [d.text, d.finish, d.done, d.usage]);
      assert.ok(s.deltas >= 2, `several deltas, got ${s.deltas}`);
      assert.equal(s.usage === undefined, !includeUsage);
    }
    // max_tokens past the upstream's context (learned from its /v1/models): 400 as in direct mode
    const tooMany = await post(`${front}/v1/chat/completions`, { ...req, max_tokens: 5000 });
    const direct = await post(`${up}/v1/chat/completions`, { ...req, max_tokens: 5000 });
    assert.equal(tooMany.status, 400);
    assert.deepEqual(await json(tooMany), await json(direct));
  });

  test('the openai npm client works against upstream mode unchanged, streamed and not', async () => {
    const { client, models, done, streamed } = await openAiRoundTrip(`${front}/v1`);
    assert.deepEqual(models, ['tiny']);
    assert.equal(done.choices[0]!.message.role, 'assistant');
    assert.ok(done.choices[0]!.message.content!.length > 0);
    assert.ok(done.usage!.completion_tokens > 0 && done.usage!.completion_tokens <= 12);
    assert.ok(done.usage!.prompt_tokens > 0);
    const { text, deltas, usage, finish } = streamed;
    assert.ok(deltas >= 2, `several deltas, got ${deltas}`);
    assert.ok(text.length > 0);
    assert.equal(finish, 'length');
    assert.equal(usage?.completion_tokens, 24);
    // the client's error type for a request the server refuses
    await assert.rejects(
      client.chat.completions.create({
        model: 'tiny',
        messages: [{ role: 'user', content: 'Hi' }],
        top_p: 2,
      }),
      (e: unknown) => e instanceof OpenAI.BadRequestError,
    );
  });

  test('a full queue answers 429 with Retry-After; a client disconnect cancels the upstream request', async () => {
    // front: PARALLEL=1, QUEUE_SIZE=1: one runs (on the upstream), one waits, the third is refused.
    const c1 = new AbortController();
    const c2 = new AbortController();
    const long = { dialog, max_length: 4000 };
    const cancelledBefore = await metric(
      up,
      'inference_requests_total{route="/v1/chat/completions",status="499"}',
    );
    const tokensBefore = await metric(up, 'inference_tokens_generated_total');
    const r1 = await post(`${front}/telechat/gptDialog/v2`, long, c1.signal);
    assert.equal(r1.status, 200);
    await r1.body!.getReader().read(); // the first generation is running upstream
    assert.equal(await metric(up, 'inference_active_generations'), 1);
    const p2 = post(`${front}/telechat/gptDialog/v2`, long, c2.signal).catch(() => undefined);
    await waitFor(
      'second request queued',
      async () => (await json(await fetch(`${front}/health`))).queue.waiting === 1,
      5000,
      10,
    );
    const r3 = await post(`${front}/telechat/gptDialog/v4`, { dialog, max_length: 4, seqid: 'q' });
    assert.equal(r3.status, 429);
    assert.ok(Number(r3.headers.get('retry-after')) >= 1);
    assert.deepEqual(
      [(await json(r3)).code, (await post(`${front}/v1/chat/completions`, { messages: dialog })).status],
      [10903, 429],
    );
    // Both clients go away: the upstream's generation is cancelled, not run to its 4000 tokens.
    const abortedAt = performance.now();
    c1.abort();
    c2.abort();
    await p2;
    await waitFor(
      'upstream idle and its request recorded as cancelled',
      async () =>
        (await metric(up, 'inference_active_generations')) === 0 &&
        // (+2 when the front handed the queued request its slot before it saw that client leave too)
        (await metric(up, 'inference_requests_total{route="/v1/chat/completions",status="499"}')) >=
          cancelledBefore + 1,
      5000,
      10,
    );
    const cancelMs = performance.now() - abortedAt;
    assert.ok(cancelMs < 1000, `the upstream stopped ${cancelMs.toFixed(0)} ms after the disconnect`);
    const generated = (await metric(up, 'inference_tokens_generated_total')) - tokensBefore;
    assert.ok(generated < 2000, `the cancelled generation produced ${generated} of its 4000 tokens`);
    const h = await json(await fetch(`${front}/health`));
    assert.deepEqual([h.queue.running, h.queue.waiting], [0, 0]);
    const r4 = await post(`${front}/telechat/gptDialog/v4`, { dialog, max_length: 4 });
    assert.equal(r4.status, 200, 'the freed slot serves the next request');
  });

  test('the upstream’s own 429 (its queue full) and 400 come back as 429 with Retry-After and 400', async () => {
    // front2 takes 8 at once, the upstream runs 1 and queues 4: the sixth is refused upstream.
    const controllers = Array.from({ length: 6 }, () => new AbortController());
    const settled: (Response | undefined)[] = [];
    const pending = controllers.map((c, i) =>
      post(`${front2}/telechat/gptDialog/v2`, { dialog, max_length: 4000, seqid: `b${i}` }, c.signal).then(
        (r) => (settled[i] = r),
        () => undefined,
      ),
    );
    const refused = await waitFor(
      'a request refused by the busy upstream',
      () => settled.find((r) => r?.status === 429),
      10_000,
      10,
    );
    assert.ok(Number(refused.headers.get('retry-after')) >= 1);
    const body = await json(refused);
    assert.equal(body.code, 10903);
    assert.match(body.message, /upstream busy/);
    for (const c of controllers) c.abort();
    await Promise.all(pending);
    await waitFor(
      'upstream idle',
      async () => (await metric(up, 'inference_active_generations')) === 0,
      5000,
      10,
    );
    await waitFor(
      'upstream queue empty',
      async () => (await metric(up, 'inference_queue_depth')) === 0,
      5000,
      10,
    );
    // front2 allows CONTEXT_SIZE=8192, the upstream only 4096: the upstream's 400, in OpenAI's shape.
    const tooLong = await post(`${front2}/v1/chat/completions`, { messages: dialog, max_tokens: 5000 });
    assert.equal(tooLong.status, 400);
    const err = await json(tooLong);
    assert.equal(err.error.type, 'invalid_request_error');
    assert.match(err.error.message, /exceeds the context size 4096/);
  });

  test('/metrics counts this server’s requests, TTFT and tokens from the stream, as in direct mode', async () => {
    const before = await metric(front, 'inference_tokens_generated_total');
    const r = await json(
      await post(`${front}/v1/chat/completions`, { messages: dialog, max_tokens: 17, temperature: 0 }),
    );
    assert.equal(
      (await metric(front, 'inference_tokens_generated_total')) - before,
      r.usage.completion_tokens,
    );
    const text = await (await fetch(`${front}/metrics`)).text();
    for (const name of [
      'inference_requests_total{route="/telechat/gptDialog/v2",status="200"}',
      'inference_requests_total{route="/telechat/gptDialog/v4",status="429"}',
      'inference_requests_total{route="/telechat/gptDialog/v2",status="499"}',
      'inference_time_to_first_token_seconds_bucket{le="0.005",route="/telechat/gptDialog/v2"}',
      'inference_request_duration_seconds_bucket',
      'inference_prompt_tokens_total',
      'inference_queue_depth 0',
      'inference_active_generations 0',
      'inference_model_loaded 1',
    ]) {
      assert.ok(text.includes(name), `metrics include ${name}`);
    }
    const check = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    assert.equal(check.error, undefined, "promtool not found: install Debian's prometheus package");
    assert.equal(check.status, 0, `promtool: ${check.stdout}${check.stderr}`);
  });

  test('the upstream stops: /health 503 error within 3 s, requests 503 with Retry-After; restarted: 200 again', async () => {
    await stop(upstream, 'SIGKILL');
    const t0 = performance.now();
    const down = await waitFor(
      'front reports the upstream gone',
      async () => {
        const res = await fetch(`${front}/health`);
        return res.status === 503 ? json(res) : undefined;
      },
      5000,
      20,
    );
    const noticed = performance.now() - t0;
    assert.ok(noticed <= 3000, `noticed after ${noticed.toFixed(0)} ms`);
    assert.equal(down.status, 'error');
    assert.match(down.error, /ECONNREFUSED/);
    assert.equal(down.model.loaded, false);
    const r = await post(`${front}/telechat/gptDialog/v4`, { dialog, seqid: 'x' });
    assert.equal(r.status, 503);
    assert.ok(Number(r.headers.get('retry-after')) >= 1);
    assert.equal((await json(r)).code, 10903);
    const o = await post(`${front}/v1/chat/completions`, { messages: dialog });
    assert.equal(o.status, 503);
    assert.equal((await json(o)).error.type, 'server_error');
    assert.equal(await metric(front, 'inference_model_loaded'), 0);

    upstream = startUpstream();
    await healthy(up);
    const t1 = performance.now();
    await healthy(front, 5000);
    const back = performance.now() - t1;
    assert.ok(back <= 3000, `front healthy ${back.toFixed(0)} ms after its upstream`);
    const again = await post(`${front}/telechat/gptDialog/v4`, { dialog, max_length: 8 });
    assert.equal(again.status, 200);
  });

  test('a hung upstream (SIGSTOP): /health 503 within timeout + interval; resumed: 200 again', async () => {
    upstream.kill('SIGSTOP');
    try {
      const t0 = performance.now();
      const down = await waitFor(
        'front reports the upstream hung',
        async () => {
          const res = await fetch(`${front}/health`);
          return res.status === 503 ? json(res) : undefined;
        },
        6000,
        20,
      );
      const noticed = performance.now() - t0;
      // UPSTREAM_TIMEOUT_MS=1000 + UPSTREAM_HEALTH_INTERVAL_MS=1000, and /health itself stays fast
      assert.ok(noticed <= 3000, `noticed after ${noticed.toFixed(0)} ms`);
      assert.match(down.error, /did not answer its health check within 1000 ms/);
      const h0 = performance.now();
      await fetch(`${front}/health`);
      assert.ok(performance.now() - h0 < 200, '/health answers from its cache, not waiting on the upstream');
    } finally {
      upstream.kill('SIGCONT');
    }
    await healthy(front, 5000);
  });
});
