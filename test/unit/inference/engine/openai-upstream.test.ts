import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { after, before, beforeEach, describe, test } from 'node:test';
import { loadConfig } from '../../../../inference/src/config.js';
import { OpenAiUpstreamEngine } from '../../../../inference/src/engine/openai-upstream.js';
import { EngineError, type GenerateRequest } from '../../../../inference/src/engine/types.js';
import { type RunningInference, startInference } from '../../../../inference/src/main.js';
import { freePort, waitFor } from '../../../helpers/procs.js';

/**
 * The upstream engine and the server in upstream mode against a scripted OpenAI-compatible HTTP
 * server: the cases a real upstream is hard to make produce on demand (5xx, 401, an error event
 * mid-stream, a stream cut short, a stale keep-alive socket). test/e2e/inference-upstream.test.ts
 * runs the same paths against a real upstream.
 */
type Handler = (req: IncomingMessage, res: ServerResponse, body: string) => void;

class Scripted {
  server: Server;
  url = '';
  handler: Handler = () => {};
  health = 200;
  models: unknown = { object: 'list', data: [{ id: 'm1', max_model_len: 4096 }] };
  /** chat completion bodies received */
  bodies: Record<string, unknown>[] = [];
  sockets = new Set<Socket>();
  /** sockets that carried a chat completion, in order */
  usedSockets: Socket[] = [];
  closedRequests = 0;
  hang = false;

  constructor() {
    this.server = createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (d) => (body += d));
      req.on('end', () => {
        if (this.hang) return;
        if (req.url === '/health') return void res.writeHead(this.health).end();
        if (req.url === '/v1/models') {
          return void res
            .writeHead(200, { 'content-type': 'application/json' })
            .end(JSON.stringify(this.models));
        }
        this.bodies.push(JSON.parse(body));
        this.usedSockets.push(req.socket);
        res.on('close', () => {
          if (!res.writableEnded) this.closedRequests++;
        });
        this.handler(req, res, body);
      });
    });
    this.server.on('connection', (s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
  }

  async start(port = 0) {
    this.server.listen(port, '127.0.0.1');
    await once(this.server, 'listening');
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop() {
    for (const s of this.sockets) s.destroy();
    await new Promise((r) => this.server.close(r));
  }
}

const sse = (res: ServerResponse) => res.writeHead(200, { 'content-type': 'text/event-stream' });
const delta = (content: string, finish: string | null = null) =>
  `data: ${JSON.stringify({ choices: [{ index: 0, delta: { content }, finish_reason: finish }] })}\n\n`;
const usage = (p: number, c: number) =>
  `data: ${JSON.stringify({ choices: [], usage: { prompt_tokens: p, completion_tokens: c, total_tokens: p + c } })}\n\n`;

/** Streams `pieces` one per `everyMs`, then a finish, the usage (unless null) and [DONE]. */
function streaming(pieces: string[], everyMs = 5, u: [number, number] | null = [4, pieces.length]): Handler {
  return (_req, res) => {
    sse(res);
    let i = 0;
    const t = setInterval(() => {
      if (res.destroyed) return clearInterval(t);
      if (i < pieces.length) return void res.write(delta(pieces[i++]!));
      clearInterval(t);
      res.write(delta('', 'stop'));
      if (u) res.write(usage(...u));
      res.end('data: [DONE]\n\n');
    }, everyMs);
  };
}

function request(over: Partial<GenerateRequest> = {}): GenerateRequest & { texts: string[] } {
  const texts: string[] = [];
  return {
    messages: [{ role: 'user', content: 'hi' }],
    maxTokens: 16,
    sample: false,
    signal: new AbortController().signal,
    onText: (t) => texts.push(t),
    texts,
    ...over,
  };
}

describe('OpenAiUpstreamEngine against a scripted upstream', () => {
  const up = new Scripted();
  let engine: OpenAiUpstreamEngine;

  before(async () => {
    await up.start();
    engine = new OpenAiUpstreamEngine({
      url: up.url,
      timeoutMs: 300,
      healthIntervalMs: 100,
      fallbackContextSize: 2048,
      parallel: 4,
    });
    await engine.load();
  });
  after(async () => {
    await engine.close();
    await up.stop();
  });
  beforeEach(() => {
    up.health = 200;
    up.hang = false;
    up.bodies = [];
  });

  test('load learns the model and its max_model_len; readiness says ready', () => {
    assert.equal(engine.info.name, 'm1');
    assert.equal(engine.info.contextSize, 4096);
    assert.equal(engine.info.backend, 'openai-upstream');
    assert.equal(engine.readiness().ready, true);
  });

  test('deltas reach onText as they arrive; usage from the upstream; the request is a streamed chat completion', async () => {
    up.handler = streaming(['a', 'b', 'c', 'd'], 30, [9, 4]);
    const arrivals: number[] = [];
    const t0 = performance.now();
    const req = request({ onText: () => arrivals.push(performance.now() - t0) });
    const r = await engine.generate(req);
    const end = performance.now() - t0;
    assert.deepEqual(r, { promptTokens: 9, completionTokens: 4, finishReason: 'stop' });
    assert.equal(arrivals.length, 4);
    assert.ok(arrivals[0]! < end - 60, `first text at ${arrivals[0]} ms of ${end} ms`);
    const body = up.bodies[0]!;
    assert.equal(body.model, 'm1');
    assert.equal(body.stream, true);
    assert.deepEqual(body.stream_options, { include_usage: true });
    assert.equal(body.temperature, 0);
  });

  test('without usage, deltas are counted as tokens; finish_reason length → length', async () => {
    up.handler = (_req, res) => {
      sse(res);
      res.write(delta('x'));
      res.write(delta('y'));
      res.end(`${delta('', 'length')}data: [DONE]\n\n`);
    };
    const r = await engine.generate(request());
    assert.deepEqual(r, { promptTokens: 0, completionTokens: 2, finishReason: 'length' });
  });

  test('connections are kept alive: consecutive requests use one socket', async () => {
    up.handler = streaming(['a'], 1);
    up.usedSockets = [];
    await engine.generate(request());
    await engine.generate(request());
    await engine.generate(request());
    assert.equal(new Set(up.usedSockets).size, 1);
  });

  test('a stale keep-alive socket (closed by the server while idle) is retried once on a new one', async () => {
    up.handler = streaming(['a'], 1);
    await engine.generate(request());
    // The server drops idle sockets the way uvicorn's keep-alive timeout does.
    for (const s of up.sockets) s.destroy();
    const r = await engine.generate(request());
    assert.equal(r.finishReason, 'stop');
  });

  test('abort cancels the upstream request: the upstream sees its client close', async () => {
    up.handler = streaming(
      Array.from({ length: 200 }, () => 't'),
      10,
    );
    const before = up.closedRequests;
    const ac = new AbortController();
    const req = request({ signal: ac.signal, onText: () => ac.abort() });
    const r = await engine.generate(req);
    assert.equal(r.finishReason, 'aborted');
    await waitFor('upstream saw the close', () => up.closedRequests === before + 1, 1000, 5);
  });

  test('HTTP errors become refusals (429, 503, 401, 400) or failures (500), with the upstream’s message', async () => {
    const answer =
      (status: number, body: string, headers: Record<string, string> = {}): Handler =>
      (_req, res) =>
        res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(body);
    const cases: [Handler, EngineError['refusal'], RegExp][] = [
      [
        answer(429, '{"error":{"message":"queue full"}}', { 'retry-after': '3' }),
        { as: 'busy', retryAfterS: 3 },
        /queue full/,
      ],
      [answer(503, '{"status":"loading"}'), { as: 'unavailable', retryAfterS: 5 }, /HTTP 503/],
      [
        answer(401, '{"error":"bad key"}'),
        { as: 'unavailable', retryAfterS: 10 },
        /bad key.*UPSTREAM_API_KEY/,
      ],
      [answer(400, '{"object":"error","message":"context too long"}'), { as: 'invalid' }, /context too long/],
      [answer(500, '{"object":"error","message":"CUDA error"}'), undefined, /CUDA error/],
    ];
    for (const [handler, refusal, message] of cases) {
      up.handler = handler;
      const err = await engine.generate(request()).then(
        () => assert.fail('resolved'),
        (e: unknown) => e,
      );
      assert.ok(err instanceof EngineError);
      assert.deepEqual(err.refusal, refusal);
      assert.match(err.message, message);
    }
  });

  test('an error event mid-stream, a stream cut short and a lost connection fail the generation', async () => {
    up.handler = (_req, res) => {
      sse(res);
      res.write(delta('x'));
      res.end('data: {"error":{"message":"engine died","type":"server_error"}}\n\n');
    };
    await assert.rejects(engine.generate(request()), /engine died/);
    up.handler = (_req, res) => {
      sse(res);
      res.end(delta('x'));
    };
    await assert.rejects(engine.generate(request()), /ended before the generation finished/);
    up.handler = (req, res) => {
      sse(res);
      res.write(delta('x'), () => req.socket.destroy());
    };
    const req = request();
    await assert.rejects(engine.generate(req), /lost mid-generation/);
    assert.deepEqual(req.texts, ['x']);
  });

  test('an upstream that answers a whole chat.completion although asked to stream still works', async () => {
    up.handler = (_req, res) =>
      res.writeHead(200, { 'content-type': 'application/json' }).end(
        JSON.stringify({
          choices: [{ index: 0, message: { role: 'assistant', content: 'whole' }, finish_reason: 'stop' }],
          usage: { prompt_tokens: 2, completion_tokens: 3, total_tokens: 5 },
        }),
      );
    const req = request();
    assert.deepEqual(await engine.generate(req), {
      promptTokens: 2,
      completionTokens: 3,
      finishReason: 'stop',
    });
    assert.deepEqual(req.texts, ['whole']);
  });

  test('readiness follows the upstream: /health 503 → not ready with the reason; a hung upstream is bounded by the timeout', async () => {
    up.health = 503;
    await waitFor('not ready', () => !engine.readiness().ready, 2000, 10);
    assert.match(engine.readiness().reason ?? '', /\/health answered 503/);
    up.health = 200;
    await waitFor('ready again', () => engine.readiness().ready, 2000, 10);
    up.hang = true;
    const t0 = performance.now();
    await waitFor('not ready (hung)', () => !engine.readiness().ready, 2000, 10);
    // interval 100 ms + timeout 300 ms, with slack
    assert.ok(performance.now() - t0 < 900, `noticed after ${(performance.now() - t0).toFixed(0)} ms`);
    assert.match(engine.readiness().reason ?? '', /did not answer its health check within 300 ms/);
    up.hang = false;
    await waitFor('ready again', () => engine.readiness().ready, 2000, 10);
  });
});

describe('the server in upstream mode against a scripted upstream', () => {
  const up = new Scripted();
  let server: RunningInference;
  let url = '';

  before(async () => {
    await up.start();
    const port = await freePort();
    server = await startInference(
      loadConfig({
        ENGINE: 'openai-upstream',
        UPSTREAM_URL: `${up.url}/v1`,
        UPSTREAM_MODEL: 'm1',
        UPSTREAM_API_KEY: 'sk-test',
        UPSTREAM_HEALTH_INTERVAL_MS: '100',
        HOST: '127.0.0.1',
        PORT: String(port),
      }),
    );
    url = `http://127.0.0.1:${port}`;
    await waitFor('ready', async () => (await fetch(`${url}/health`)).status === 200, 5000, 20);
  });
  after(async () => {
    await server.shutdown();
    await up.stop();
  });

  const post = (path: string, body: object) =>
    fetch(`${url}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
  const dialog = [{ role: 'user', content: 'hi' }];
  const messages = [{ role: 'user', content: 'hi' }];

  test('the API key goes upstream as a bearer token; /v1/models lists the upstream’s model', async () => {
    let auth: string | undefined;
    up.handler = (req, res) => {
      auth = req.headers.authorization;
      streaming(['ok'], 1)(req, res, '');
    };
    const r = await post('/telechat/gptDialog/v4', { dialog });
    assert.deepEqual(await r.json(), { role: 'bot', content: 'ok' });
    assert.equal(auth, 'Bearer sk-test');
    const models = (await (await fetch(`${url}/v1/models`)).json()) as { data: { id: string }[] };
    assert.deepEqual(
      models.data.map((m) => m.id),
      ['m1'],
    );
  });

  test('upstream errors are answered with the statuses and codes of direct mode', async () => {
    const cases: [number, Record<string, string>, number, number, string][] = [
      // upstream status, its headers → our status, TeleChat code, OpenAI error type
      [429, { 'retry-after': '4' }, 429, 10903, 'rate_limit_error'],
      [503, {}, 503, 10903, 'server_error'],
      [401, {}, 503, 10903, 'server_error'],
      [400, {}, 400, 10305, 'invalid_request_error'],
      [500, {}, 500, 10903, 'server_error'],
    ];
    for (const [status, headers, ours, code, type] of cases) {
      up.handler = (_req, res) =>
        res
          .writeHead(status, { 'content-type': 'application/json', ...headers })
          .end('{"error":{"message":"nope"}}');
      for (const v of ['v2', 'v4']) {
        const r = await post(`/telechat/gptDialog/${v}`, { dialog, seqid: 's1' });
        assert.equal(r.status, ours, `${v} upstream ${status}`);
        const body = (await r.json()) as { code: number; seqid: string; message: string };
        assert.equal(body.code, code, `${v} upstream ${status}`);
        assert.equal(body.seqid, 's1');
        assert.match(body.message, /nope/);
        if (ours === 429 || ours === 503) assert.ok(Number(r.headers.get('retry-after')) >= 1);
        if (status === 429) assert.equal(r.headers.get('retry-after'), '4');
      }
      for (const stream of [false, true]) {
        const r = await post('/v1/chat/completions', { messages, stream });
        assert.equal(r.status, ours, `openai stream=${stream} upstream ${status}`);
        const body = (await r.json()) as { error: { type: string } };
        assert.equal(body.error.type, type);
      }
    }
  });

  test('an upstream that cannot be reached: 503 with Retry-After at once, and /health turns to error', async () => {
    const port = await freePort();
    const dead = await startInference(
      loadConfig({
        ENGINE: 'openai-upstream',
        UPSTREAM_URL: `http://127.0.0.1:${await freePort()}`,
        HOST: '127.0.0.1',
        PORT: String(port),
      }),
    );
    try {
      const h = await fetch(`http://127.0.0.1:${port}/health`);
      const hb = (await h.json()) as { status: string; upstream: { error: string } };
      assert.equal(h.status, 503);
      assert.equal(hb.status, 'loading');
      await waitFor('reason known', async () => {
        const b = (await (await fetch(`http://127.0.0.1:${port}/health`)).json()) as typeof hb;
        return /ECONNREFUSED/.test(b.upstream.error);
      });
      const r = await fetch(`http://127.0.0.1:${port}/telechat/gptDialog/v4`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ dialog }),
      });
      assert.equal(r.status, 503);
      assert.equal(((await r.json()) as { code: number }).code, 10903);
      assert.ok(Number(r.headers.get('retry-after')) >= 1);
    } finally {
      await dead.shutdown();
    }
  });
});

test('config: ENGINE=openai-upstream needs UPSTREAM_URL, not MODEL_PATH; problems reported at once', () => {
  const c = loadConfig({ ENGINE: 'openai-upstream', UPSTREAM_URL: 'http://vllm:8000/v1' });
  assert.equal(c.engine, 'openai-upstream');
  assert.equal(c.modelPath, '');
  assert.equal(c.modelName, '');
  assert.equal(c.parallel, 32);
  assert.deepEqual(c.upstream, { url: 'http://vllm:8000', timeoutMs: 2000, healthIntervalMs: 1000 });
  const full = loadConfig({
    ENGINE: 'openai-upstream',
    UPSTREAM_URL: 'https://gw/x',
    UPSTREAM_MODEL: 'TeleChat2-7B',
    UPSTREAM_API_KEY: 'k',
    UPSTREAM_TIMEOUT_MS: '500',
    CONTEXT_SIZE: '8192',
    MODEL_NAME: 'telechat',
  });
  assert.deepEqual(full.upstream, {
    url: 'https://gw/x',
    model: 'TeleChat2-7B',
    apiKey: 'k',
    timeoutMs: 500,
    healthIntervalMs: 1000,
    contextSize: 8192,
  });
  assert.equal(full.modelName, 'telechat');
  assert.throws(
    () => loadConfig({ ENGINE: 'openai-upstream', UPSTREAM_TIMEOUT_MS: '0', PORT: 'x' }),
    (e: Error) => ['UPSTREAM_URL', 'UPSTREAM_TIMEOUT_MS', 'PORT'].every((k) => e.message.includes(k)),
  );
  assert.throws(
    () => loadConfig({ ENGINE: 'openai-upstream', UPSTREAM_URL: 'vllm:8000' }),
    /UPSTREAM_URL="vllm:8000" must be an http/,
  );
  assert.throws(() => loadConfig({ ENGINE: 'vllm', MODEL_PATH: '/m.gguf' }), /ENGINE="vllm" must be one of/);
  assert.equal(loadConfig({ MODEL_PATH: '/m.gguf' }).engine, 'llama-cpp');
});
