import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ProxyConfigError, type RenderInput, renderNginxConfig } from '../../../../agent/src/proxy/render.js';
import { proxyRoute, proxySpec } from '../../../helpers/proxy-spec.js';

const KEY_A = 'A1b2C3d4E5f6G7h8.x+y/z=';
const KEY_B = 'zzzzzzzzzzzzzzzzzzzz';

const route = proxyRoute;

const spec = proxySpec;

const input = (over: Partial<RenderInput> = {}): RenderInput => ({
  deployment: 'demo',
  spec: spec(),
  upstreams: {
    telechat: [
      { address: '172.18.0.10', port: 8070 },
      { address: '172.18.0.9', port: 8070 },
    ],
  },
  healthPaths: { telechat: '/health' },
  apiKeys: [],
  ...over,
});

/** The text inside the block opened by the line `head {` (brace-counted, quotes skipped). */
function blockOf(conf: string, head: string): string {
  const start = conf.indexOf(`${head} {\n`);
  assert.ok(start >= 0, `no block '${head}' in:\n${conf}`);
  let depth = 0;
  let quote = '';
  for (let i = start; i < conf.length; i++) {
    const ch = conf[i];
    if (quote) {
      if (ch === quote) quote = '';
    } else if (ch === "'" || ch === '"') quote = ch;
    else if (ch === '{') depth++;
    else if (ch === '}' && --depth === 0) return conf.slice(conf.indexOf('\n', start) + 1, i);
  }
  assert.fail(`unbalanced block '${head}'`);
}

/** The trimmed, non-empty lines of a block. */
const linesOf = (text: string) =>
  text
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);

const has = (text: string, ...want: string[]) => {
  const lines = linesOf(text);
  for (const w of want) assert.ok(lines.includes(w), `missing '${w}' in:\n${text}`);
};
const lacks = (text: string, ...unwanted: string[]) => {
  for (const u of unwanted) assert.ok(!text.includes(u), `unexpected '${u}' in:\n${text}`);
};

test('process level: no user, pid and temp paths under /tmp, stderr log, auto workers', () => {
  const conf = renderNginxConfig(input());
  const top = conf.slice(0, conf.indexOf('events {'));
  has(top, 'worker_processes auto;', 'pid /tmp/nginx.pid;', 'error_log /dev/stderr warn;');
  lacks(conf, '\nuser ', 'include ');
  blockOf(conf, 'events');
  const http = blockOf(conf, 'http');
  has(http, 'access_log off;');
  for (const t of ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'])
    assert.match(http, new RegExp(`^ +${t}_temp_path /tmp/\\S+;$`, 'm'), `${t}_temp_path under /tmp`);
});

test('upstream: only the given replicas, numerically sorted, with keepalive', () => {
  const conf = renderNginxConfig(input());
  assert.deepEqual(linesOf(blockOf(conf, 'upstream fleet_up_telechat')), [
    'server 172.18.0.9:8070;',
    'server 172.18.0.10:8070;',
    'keepalive 32;',
  ]);
});

test('connection handling keeps upstream keepalive and passes WebSocket upgrades; standard headers', () => {
  const conf = renderNginxConfig(input());
  assert.deepEqual(linesOf(blockOf(conf, 'map $http_upgrade $fleet_connection')), [
    'default upgrade;',
    "'' '';",
  ]);
  has(
    blockOf(conf, 'server'),
    'proxy_http_version 1.1;',
    'proxy_set_header Upgrade $http_upgrade;',
    'proxy_set_header Connection $fleet_connection;',
    'proxy_set_header Host $host;',
    'proxy_set_header X-Real-IP $remote_addr;',
    'proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;',
    'proxy_set_header X-Forwarded-Proto $scheme;',
    'proxy_set_header X-Request-ID $fleet_request_id;',
  );
});

test('stream route: no buffering, no cache, no gzip, long read timeout (default 600 s)', () => {
  const conf = renderNginxConfig(input());
  const loc = blockOf(conf, 'location /api/');
  has(loc, 'proxy_buffering off;', 'proxy_cache off;', 'gzip off;', 'proxy_read_timeout 600s;');
  lacks(loc, 'gzip on;');
  assert.match(conf, /^worker_shutdown_timeout 600s;$/m);
});

test('non-stream route: gzip for JSON, buffered, its read timeout', () => {
  const conf = renderNginxConfig(
    input({ spec: spec({ routes: [route({ stream: false, readTimeoutS: 30 })] }) }),
  );
  const loc = blockOf(conf, 'location /api/');
  has(loc, 'gzip on;', 'gzip_types application/json;', 'proxy_read_timeout 30s;');
  lacks(loc, 'proxy_buffering off;', 'gzip off;');
  assert.match(conf, /^worker_shutdown_timeout 30s;$/m);
});

test('worker_shutdown_timeout is the longest route read timeout', () => {
  const routes = [route({ readTimeoutS: 1800 }), route({ path: '/v1/', stream: false, readTimeoutS: 20 })];
  const conf = renderNginxConfig(input({ spec: spec({ routes }) }));
  assert.match(conf, /^worker_shutdown_timeout 1800s;$/m);
  has(blockOf(conf, 'location /v1/'), 'proxy_read_timeout 20s;');
});

const rewrites: [string, string][] = [
  ['/', 'proxy_pass http://fleet_up_telechat/;'],
  ['', 'proxy_pass http://fleet_up_telechat;'],
  ['/v1/', 'proxy_pass http://fleet_up_telechat/v1/;'],
];
for (const [rewrite, want] of rewrites) {
  test(`rewrite ${JSON.stringify(rewrite)} → ${want}`, () => {
    const conf = renderNginxConfig(input({ spec: spec({ routes: [route({ rewrite })] }) }));
    has(blockOf(conf, 'location /api/'), want);
  });
}

const noReplicas: [string, RenderInput['upstreams']][] = [
  ['an empty list', { telechat: [] }],
  ['no entry at all', {}],
];
for (const [name, upstreams] of noReplicas) {
  test(`no healthy replica (${name}): no upstream, 503 with Retry-After and JSON`, () => {
    const conf = renderNginxConfig(input({ upstreams }));
    lacks(conf, 'upstream fleet_up_telechat', 'proxy_pass');
    has(
      blockOf(conf, 'location /api/'),
      'add_header Retry-After 5 always;',
      `return 503 '{"error":"no healthy replica","service":"telechat"}\\n';`,
    );
    has(blockOf(conf, 'location = /health'), 'add_header Retry-After 5 always;');
    assert.match(blockOf(conf, 'location = /health'), /return 503 '\{"status":"unavailable"/);
  });
}

test('/health forwards to the first route’s service at its probe path', () => {
  const routes = [route({ path: '/z/', service: 'web' }), route({ path: '/a/', service: 'telechat' })];
  const conf = renderNginxConfig(
    input({
      spec: spec({ routes }),
      upstreams: { web: [{ address: '172.18.0.5', port: 8080 }], telechat: [] },
      healthPaths: { web: '/ready', telechat: '/health' },
    }),
  );
  has(blockOf(conf, 'location = /health'), 'proxy_pass http://fleet_up_web/ready;');
  // Locations come out sorted by path, whatever the route order.
  assert.ok(conf.indexOf('location /a/') < conf.indexOf('location /z/'));
});

test('/health without a probe path answers 200 while the service has a healthy replica', () => {
  const conf = renderNginxConfig(input({ healthPaths: {} }));
  has(blockOf(conf, 'location = /health'), `return 200 '{"status":"ok","service":"telechat"}\\n';`);
});

test('rate limit: zone, burst with nodelay, 429; none when per_second is 0', () => {
  const conf = renderNginxConfig(input({ spec: spec({ ratePerSecond: 20, rateBurst: 40 }) }));
  has(blockOf(conf, 'http'), 'limit_req_zone $binary_remote_addr zone=fleet_rate:10m rate=20r/s;');
  has(blockOf(conf, 'server'), 'limit_req zone=fleet_rate burst=40 nodelay;', 'limit_req_status 429;');
  lacks(renderNginxConfig(input()), 'limit_req');
});

test('TLS: listen ssl with the mounted files; plain listen otherwise; one file alone is refused', () => {
  const tls = { tlsCertFile: '/etc/fleet/tls/a.crt', tlsKeyFile: '/etc/fleet/tls/a.key' };
  const conf = renderNginxConfig(input({ spec: spec(tls) }));
  has(
    blockOf(conf, 'server'),
    'listen 8080 ssl;',
    'ssl_certificate /etc/fleet-proxy/tls/cert.pem;',
    'ssl_certificate_key /etc/fleet-proxy/tls/key.pem;',
  );
  const plain = renderNginxConfig(input());
  has(blockOf(plain, 'server'), 'listen 8080;');
  lacks(plain, 'ssl');
  assert.throws(
    () => renderNginxConfig(input({ spec: spec({ tlsCertFile: tls.tlsCertFile }) })),
    ProxyConfigError,
  );
  assert.throws(
    () => renderNginxConfig(input({ spec: spec({ tlsKeyFile: tls.tlsKeyFile }) })),
    ProxyConfigError,
  );
});

test('API keys: case-sensitive literal regex per key, 401 on every route, not on /health', () => {
  const routes = [route(), route({ path: '/v1/', stream: false })];
  const conf = renderNginxConfig(input({ spec: spec({ routes }), apiKeys: [KEY_B, KEY_A, KEY_B] }));
  assert.deepEqual(linesOf(blockOf(conf, 'map $http_authorization $fleet_api_key_ok')), [
    'default 0;',
    `"~^Bearer \\Q${KEY_A}\\E$" 1;`,
    `"~^Bearer \\Q${KEY_B}\\E$" 1;`,
  ]);
  for (const path of ['/api/', '/v1/']) {
    const gate = blockOf(blockOf(conf, `location ${path}`), 'if ($fleet_api_key_ok = 0)');
    has(gate, 'add_header WWW-Authenticate Bearer always;', `return 401 '{"error":"unauthorized"}\\n';`);
  }
  lacks(blockOf(conf, 'location = /health'), 'fleet_api_key_ok');
  lacks(renderNginxConfig(input()), '$http_authorization', 'fleet_api_key_ok');
});

test('a keys file with no keys is refused rather than serving without keys', () => {
  assert.throws(
    () => renderNginxConfig(input({ spec: spec({ apiKeysFile: '/etc/fleet/api-keys' }), apiKeys: [] })),
    ProxyConfigError,
  );
});

test('a route path given twice is refused', () => {
  const routes = [route(), route({ service: 'other' })];
  assert.throws(() => renderNginxConfig(input({ spec: spec({ routes }) })), /given twice/);
});

test('deterministic: equal input in any order gives byte-equal config', () => {
  const routes = [route(), route({ path: '/b/', service: 'web' }), route({ path: '/a/', service: 'web' })];
  const a = input({
    spec: spec({ routes, ratePerSecond: 5, rateBurst: 1 }),
    upstreams: {
      telechat: [
        { address: '172.18.0.3', port: 1 },
        { address: '172.18.0.2', port: 2 },
      ],
      web: [{ address: '10.0.0.1', port: 80 }],
    },
    apiKeys: [KEY_A, KEY_B],
  });
  const b = input({
    spec: spec({ routes: [routes[0]!, routes[2]!, routes[1]!], ratePerSecond: 5, rateBurst: 1 }),
    upstreams: {
      web: [{ address: '10.0.0.1', port: 80 }],
      telechat: [
        { address: '172.18.0.2', port: 2 },
        { address: '172.18.0.3', port: 1 },
        { address: '172.18.0.2', port: 2 },
      ],
    },
    apiKeys: [KEY_B, KEY_A],
  });
  const first = renderNginxConfig(a);
  assert.equal(renderNginxConfig(a), first);
  assert.equal(renderNginxConfig(b), first);
  assert.notEqual(renderNginxConfig(input()), first);
});
