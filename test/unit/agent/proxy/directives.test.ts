/**
 * "No new directive, ever": a small nginx tokenizer lists the directives of a rendered config. The
 * baseline (every feature on) must have exactly the expected list, and values at the edges of
 * their allowlists (allowed, so they do render) must leave that list unchanged. The injection
 * corpus itself (values that must be refused) is in test/unit/control-plane/playbook/proxy-injection.test.ts.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type RenderInput, renderNginxConfig } from '../../../../agent/src/proxy/render.js';
import { fullProxySpec } from '../../../helpers/proxy-spec.js';

const KEY = 'k3y-0123456789abcdef';
/** Every feature on; `web` has no healthy replica. */
const baseInput = (): RenderInput => ({
  deployment: 'demo',
  spec: fullProxySpec(),
  upstreams: { telechat: [{ address: '172.18.0.2', port: 8070 }], web: [] },
  healthPaths: { telechat: '/health', web: '/health' },
  apiKeys: [KEY],
});

type Mutate = (i: RenderInput, v: never) => void;
const r0 = (i: RenderInput) => i.spec.routes[0]!;

// ---------------------------------------------------------------- no new directive, ever

/**
 * nginx's lexer (ngx_conf_read_token), enough for rendered configs: words, quoted strings with
 * backslash escapes, `#` comments at a token start, `${var}` inside words, and `;`, `{`, `}`.
 * Returns every directive as its block path and name, e.g. `http/server/location/proxy_pass`.
 */
function directives(conf: string): string[] {
  const out: string[] = [];
  const stack: string[] = [];
  let words: string[] = [];
  const space = (c: string | undefined) => c === ' ' || c === '\t' || c === '\r' || c === '\n';
  let i = 0;
  while (i < conf.length) {
    const ch = conf[i]!;
    if (space(ch)) i++;
    else if (ch === '#') while (i < conf.length && conf[i] !== '\n') i++;
    else if (ch === ';' || ch === '{') {
      if (words.length === 0) throw new Error(`'${ch}' without a directive at ${i}`);
      out.push([...stack, words[0]].join('/'));
      if (ch === '{') stack.push(words[0]!);
      words = [];
      i++;
    } else if (ch === '}') {
      if (words.length > 0 || stack.length === 0) throw new Error(`unexpected '}' at ${i}`);
      stack.pop();
      i++;
    } else if (ch === '"' || ch === "'") {
      let j = i + 1;
      while (j < conf.length && conf[j] !== ch) j += conf[j] === '\\' ? 2 : 1;
      if (j >= conf.length) throw new Error(`unterminated string at ${i}`);
      words.push(conf.slice(i + 1, j));
      i = j + 1;
    } else {
      let j = i;
      while (j < conf.length && !space(conf[j]) && conf[j] !== ';' && conf[j] !== '{' && conf[j] !== '}') {
        if (conf[j] === '$' && conf[j + 1] === '{') j = conf.indexOf('}', j) + 1 || conf.length;
        else j++;
      }
      words.push(conf.slice(i, j));
      i = j;
    }
  }
  if (stack.length > 0 || words.length > 0) throw new Error('unterminated block or directive');
  return out;
}

const L = 'http/server/location';
/** The baseline's directives, in order: every feature on, one route served and one without replicas. */
const BASELINE_DIRECTIVES = [
  'worker_processes',
  'worker_shutdown_timeout',
  'pid',
  'error_log',
  'events',
  'events/worker_connections',
  'http',
  ...['access_log', 'server_tokens', 'default_type', 'client_body_temp_path', 'proxy_temp_path'].map(
    (d) => `http/${d}`,
  ),
  ...['fastcgi_temp_path', 'uwsgi_temp_path', 'scgi_temp_path', 'keepalive_timeout'].map((d) => `http/${d}`),
  ...[
    'map',
    'map/default',
    'map/',
    'map',
    'map/default',
    'map/',
    'map',
    'map/default',
    'map/~^Bearer \\Q',
  ].map((d) => `http/${d}`),
  ...['limit_req_zone', 'upstream', 'upstream/server', 'upstream/keepalive', 'server'].map(
    (d) => `http/${d}`,
  ),
  ...['listen', 'ssl_certificate', 'ssl_certificate_key', 'ssl_protocols', 'ssl_session_cache'].map(
    (d) => `http/server/${d}`,
  ),
  ...[
    'ssl_session_timeout',
    'limit_req',
    'limit_req_status',
    'limit_req_log_level',
    'client_max_body_size',
  ].map((d) => `http/server/${d}`),
  ...[
    'proxy_http_version',
    ...Array(7).fill('proxy_set_header'),
    'proxy_connect_timeout',
    'proxy_next_upstream',
    'proxy_next_upstream_tries',
    'error_page',
  ].map((d) => `http/server/${d}`),
  // location = /health: forwarded
  ...['', '/proxy_pass', '/proxy_read_timeout', '/gzip'].map((d) => L + d),
  // location /api/: key gate, then streamed
  ...['', '/if', '/if/add_header', '/if/return', '/proxy_pass', '/proxy_buffering'].map((d) => L + d),
  ...['/proxy_cache', '/gzip', '/proxy_read_timeout', '/proxy_send_timeout'].map((d) => L + d),
  // location /v1/: key gate, then 503 (no healthy replica)
  ...['', '/if', '/if/add_header', '/if/return', '/add_header', '/return'].map((d) => L + d),
  // location @fleet_unavailable
  ...['', '/add_header', '/return'].map((d) => L + d),
];

/** Directive names with map entries reduced to their fixed part (an entry's name is its source value). */
const shape = (conf: string) =>
  directives(conf).map((d) =>
    d.replace(/^(http\/map\/)(default|~\^Bearer \\Q).*$|^(http\/map\/)$/, '$1$2$3'),
  );

test('tokenizer: the baseline config has exactly the expected directives', () => {
  assert.deepEqual(shape(renderNginxConfig(baseInput())), BASELINE_DIRECTIVES);
});

test('tokenizer: it sees an injected block, an injected directive and a comment eating a semicolon', () => {
  const conf = renderNginxConfig(baseInput());
  const base = shape(conf);
  for (const [from, to] of [
    ['location /api/ {', 'location /api/;} server { listen 1; } location /x/ {'],
    ['proxy_pass http://fleet_up_telechat/;', 'proxy_pass http://fleet_up_telechat/; return 200 x;'],
    ['proxy_read_timeout 600s;', 'proxy_read_timeout 600s #;'],
  ] as const) {
    assert.ok(conf.includes(from));
    let seen: string[] | Error;
    try {
      seen = shape(conf.replace(from, to));
    } catch (err) {
      seen = err as Error; // an unbalanced block is caught too
    }
    assert.notDeepEqual(seen, base, to);
  }
});

/** Values that are allowed (they render) but sit close to the edges of their allowlists. */
const EDGE_VALUES: [string, Mutate, unknown[]][] = [
  [
    'route path',
    (i, v: string) => {
      r0(i).path = v;
    },
    ['/a.b~c-d_e/', '/', `/${'x'.repeat(127)}`, '/~', '/..', '//', '/health'],
  ],
  [
    'route rewrite',
    (i, v: string) => {
      r0(i).rewrite = v;
    },
    ['/a.b~c-d_e/', '/~', `/${'y'.repeat(127)}`, ''],
  ],
  [
    'route service',
    (i, v: string) => {
      r0(i).service = v;
      i.upstreams[v] = [{ address: '172.18.0.2', port: 8070 }];
      i.healthPaths[v] = '/health';
    },
    ['0', 'a-b', 'z'.repeat(63)],
  ],
  [
    'health path',
    (i, v: string) => {
      i.healthPaths.telechat = v;
    },
    ['/', '/~.-_', `/${'h'.repeat(127)}`],
  ],
  [
    'deployment',
    (i, v: string) => {
      i.deployment = v;
    },
    ['0', 'a-b', 'd'.repeat(63)],
  ],
  [
    'upstream address',
    (i, v: string) => {
      i.upstreams.telechat = [{ address: v, port: 8070 }];
    },
    ['0.0.0.0', '255.255.255.255', '10.0.0.1'],
  ],
  [
    'api key',
    (i, v: string) => {
      i.apiKeys = [v];
    },
    ['QQQQQQQQEEEEEEEE', 'Bearer0123456789ab', '~+/=._-AAAAAAAAAAA', 'k'.repeat(256)],
  ],
  [
    'read timeout',
    (i, v: number) => {
      r0(i).readTimeoutS = v;
    },
    [1, 86_400],
  ],
  [
    'rate',
    (i, v: number) => {
      i.spec.ratePerSecond = v;
      i.spec.rateBurst = v;
    },
    [1, 100_000],
  ],
  [
    'upstream port',
    (i, v: number) => {
      i.upstreams.telechat = [{ address: '172.18.0.2', port: v }];
    },
    [1, 65_535],
  ],
];

for (const [field, mutate, values] of EDGE_VALUES) {
  test(`no new directive: edge values of ${field} render with the baseline's directives`, () => {
    for (const value of values) {
      const input = baseInput();
      mutate(input, value as never);
      const conf = renderNginxConfig(input);
      // Locations and upstreams may sort differently; the multiset of directives may not change.
      assert.deepEqual(
        shape(conf).sort(),
        [...BASELINE_DIRECTIVES].sort(),
        `${field} = ${JSON.stringify(value)}`,
      );
      assert.ok(conf.includes(String(value)), `${field} = ${JSON.stringify(value)} is not in the config`);
    }
  });
}
