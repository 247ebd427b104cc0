import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { httpProbe } from '../../../../agent/src/health/probe.js';
import { freePort } from '../../../helpers/procs.js';

/** A real server on 127.0.0.1 whose answer depends on the path. */
let server: http.Server;
let base: string;
const hits: { path: string; connection?: string }[] = [];

before(async () => {
  server = http.createServer((req, res) => {
    hits.push({ path: req.url ?? '', connection: req.headers.connection });
    switch (req.url) {
      case '/ok':
        res.end('fine');
        return;
      case '/redirect':
        res.writeHead(302, { location: '/ok' }).end();
        return;
      case '/sick':
        res.writeHead(503, { 'content-type': 'text/plain' }).end('model not loaded\n  yet');
        return;
      case '/big-error':
        res.writeHead(500).end('x'.repeat(1_000_000));
        return;
      case '/empty-error':
        res.writeHead(404).end();
        return;
      case '/big-ok':
        res.writeHead(200).end('y'.repeat(5_000_000));
        return;
      case '/stall-body':
        res.writeHead(500);
        res.write('partial');
        return; // never ends
      case '/hang':
        return; // never answers
      default:
        res.writeHead(400).end();
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(() => {
  server.closeAllConnections();
  server.close();
});

describe('httpProbe', () => {
  test('200 is ok, with its status and a duration, on a fresh connection', async () => {
    const r = await httpProbe(`${base}/ok`, 2_000);
    assert.equal(r.ok, true);
    assert.equal(r.status, 200);
    assert.equal(r.error, undefined);
    assert.ok(r.durationMs >= 0 && r.durationMs < 2_000);
    assert.equal(hits.at(-1)?.connection, 'close');
  });

  test('3xx counts as ok and is not followed', async () => {
    const n = hits.length;
    const r = await httpProbe(`${base}/redirect`, 2_000);
    assert.deepEqual([r.ok, r.status], [true, 302]);
    assert.equal(hits.length, n + 1);
  });

  test('503 fails with its status and the start of its body', async () => {
    const r = await httpProbe(`${base}/sick`, 2_000);
    assert.equal(r.ok, false);
    assert.equal(r.status, 503);
    assert.equal(r.error, 'HTTP 503: model not loaded yet');
  });

  test('an empty error body gives just the status', async () => {
    const r = await httpProbe(`${base}/empty-error`, 2_000);
    assert.deepEqual([r.ok, r.status, r.error], [false, 404, 'HTTP 404']);
  });

  test('a huge error body is cut: at most 200 chars kept, answered quickly', async () => {
    const r = await httpProbe(`${base}/big-error`, 2_000);
    assert.equal(r.status, 500);
    assert.equal(r.error, `HTTP 500: ${'x'.repeat(200)}`);
  });

  test('a huge ok body is not read', async () => {
    const r = await httpProbe(`${base}/big-ok`, 2_000);
    assert.deepEqual([r.ok, r.status], [true, 200]);
  });

  test('a server that never answers gives a timeout within timeout + small slack', async () => {
    const t0 = performance.now();
    const r = await httpProbe(`${base}/hang`, 300);
    const took = performance.now() - t0;
    assert.equal(r.ok, false);
    assert.equal(r.error, 'timeout after 300 ms');
    assert.equal(r.status, undefined);
    assert.ok(took >= 290 && took < 600, `took ${took} ms`);
  });

  test('an error body that stalls still fails on time, with what arrived', async () => {
    const t0 = performance.now();
    const r = await httpProbe(`${base}/stall-body`, 300);
    const took = performance.now() - t0;
    assert.equal(r.ok, false);
    assert.equal(r.status, 500);
    assert.equal(r.error, 'HTTP 500: partial');
    assert.ok(took < 600, `took ${took} ms`);
  });

  test('connection refused fails fast with the address', async () => {
    const port = await freePort();
    const r = await httpProbe(`http://127.0.0.1:${port}/health`, 2_000);
    assert.equal(r.ok, false);
    assert.equal(r.error, `connect ECONNREFUSED 127.0.0.1:${port}`);
    assert.ok(r.durationMs < 1_000);
  });

  test('a bad url fails without throwing', async () => {
    assert.match((await httpProbe('not a url', 100)).error ?? '', /invalid probe url/);
    assert.match((await httpProbe('https://127.0.0.1:1/', 100)).error ?? '', /unsupported probe protocol/);
  });

  test('no socket is left open after many probes', async () => {
    await Promise.all(Array.from({ length: 50 }, () => httpProbe(`${base}/ok`, 2_000)));
    await Promise.all(Array.from({ length: 20 }, () => httpProbe(`${base}/hang`, 100)));
    await new Promise((r) => setTimeout(r, 50));
    const open = await new Promise<number>((r) => server.getConnections((_e, n) => r(n)));
    assert.equal(open, 0);
  });
});
