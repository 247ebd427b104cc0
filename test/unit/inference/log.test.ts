import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { loadConfig } from '../../../inference/src/config.js';
import { createServerLogger } from '../../../inference/src/log.js';
import { startInference } from '../../../inference/src/main.js';
import { freePort, waitFor } from '../../helpers/procs.js';

/** The upstream engine's API key never reaches a log line of the inference server. */
const KEY = 'sk-upstream-secret-4f1c9a';

function captured() {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk, _enc, done) {
      lines.push(String(chunk));
      done();
    },
  });
  return { destination, text: () => lines.join('') };
}

const upstreamEnv = (url: string, port = 8070) => ({
  ENGINE: 'openai-upstream',
  UPSTREAM_URL: url,
  UPSTREAM_API_KEY: KEY,
  HOST: '127.0.0.1',
  PORT: String(port),
});

test('the server logger redacts the upstream API key wherever a log object carries it', () => {
  const out = captured();
  const log = createServerLogger('info', out.destination);
  const config = loadConfig(upstreamEnv('http://vllm:8000'));
  assert.equal(config.upstream?.apiKey, KEY);
  log.info({ config }, 'the whole config');
  log.info(config, 'the config as the log object');
  log.info({ upstream: config.upstream }, 'the upstream part');
  log.info({ engine: { opts: { apiKey: KEY } } }, 'engine options');
  log.info({ env: { UPSTREAM_API_KEY: KEY } }, 'the environment');
  log.child({ component: 'engine' }).warn({ config }, 'a child logger');
  const text = out.text();
  assert.equal(text.split('\n').filter(Boolean).length, 6, 'every line was written');
  assert.ok(!text.includes(KEY), text);
  assert.match(text, /\[redacted\]/);
});

test('a server fronting an upstream with an API key never logs the key, at the most verbose level', async () => {
  let auth: string | undefined;
  const upstream = createServer((req, res) => {
    auth = req.headers.authorization;
    if (req.url === '/health') return void res.writeHead(200).end();
    if (req.url === '/v1/models') {
      return void res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ object: 'list', data: [{ id: 'm1', max_model_len: 4096 }] }));
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(
      JSON.stringify({
        choices: [{ index: 0, message: { role: 'assistant', content: 'ok' }, finish_reason: 'stop' }],
        usage: { prompt_tokens: 1, completion_tokens: 1 },
      }),
    );
  });
  upstream.listen(0, '127.0.0.1');
  await once(upstream, 'listening');
  const out = captured();
  const port = await freePort();
  const config = loadConfig(
    upstreamEnv(`http://127.0.0.1:${(upstream.address() as AddressInfo).port}`, port),
  );
  const server = await startInference(config, undefined, createServerLogger('trace', out.destination));
  try {
    const url = `http://127.0.0.1:${port}`;
    await waitFor('ready', async () => (await fetch(`${url}/health`)).status === 200, 5000, 20);
    const r = await fetch(`${url}/telechat/gptDialog/v4`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ dialog: [{ role: 'user', content: 'hi' }] }),
    });
    assert.deepEqual(await r.json(), { role: 'bot', content: 'ok' });
    assert.equal(auth, `Bearer ${KEY}`, 'the key did reach the upstream');
  } finally {
    await server.shutdown();
    upstream.close();
  }
  const text = out.text();
  assert.match(text, /upstream ready/);
  assert.match(text, /request completed/);
  assert.ok(!text.includes(KEY), 'the key is in the log');
});
