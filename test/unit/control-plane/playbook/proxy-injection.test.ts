/**
 * The injection corpus: every payload that could open a new nginx directive or block (or smuggle a
 * container option) goes through every proxy/health field, first at the playbook parser (the
 * first line of defence: rejected, at that field's line and column), then at the agent's renderer
 * and container shaping (the second: ProxyConfigError). A small nginx tokenizer then proves that
 * values which are allowed (and do render) never change the list of directives: see
 * test/unit/agent/proxy/directives.test.ts.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { proxyShape } from '../../../../agent/src/proxy/container.js';
import { ProxyConfigError, type RenderInput, renderNginxConfig } from '../../../../agent/src/proxy/render.js';
import { formatError, parsePlaybook } from '../../../../control-plane/src/playbook/parse.js';
import type { ProxySpec } from '../../../../proto/gen/fleet/v1/agent.js';
import { fullProxySpec } from '../../../helpers/proxy-spec.js';

const PAYLOADS = [
  ';',
  '}',
  '{',
  '\n',
  '\r',
  '$',
  '\0',
  '{{',
  '"',
  "'",
  '#',
  ' ',
  '\t',
  '\\',
  'é',
  '；',
  '\u202e',
  '/a;} server { listen 1; }',
  '/a\n}\nserver {\nlisten 1;\n',
  '/a$host',
  "/a' ; return 200 'x",
  '/a"; include /etc/passwd; #',
  '/a\\E$" 1; default 1; "',
  '{{ evil }}',
  '{{ nope }}',
];

// ---------------------------------------------------------------- first line: the playbook parser

/** A valid playbook; each `<FIELD>` is replaced by a YAML scalar. */
const TEMPLATE = `name: <name>
hosts: gpu
vars:
  evil: "/a;} server { listen 1; }"
services:
  <service>:
    image: 127.0.0.1:5000/fleet/inference:dev
    port: 8070
    health:
      path: <health_path>
proxy:
  image: <image>
  listen: <listen>
  routes:
    - path: <route_path>
      service: <route_service>
      stream: true
      read_timeout: <read_timeout>
      rewrite: <rewrite>
  rate_limit:
    per_second: <per_second>
    burst: <burst>
  tls:
    cert: <tls_cert>
    key: <tls_key>
  api_keys_file: <api_keys_file>
`;

const VALID: Record<string, string | number> = {
  name: 'demo',
  service: 'web',
  health_path: '/health',
  image: '127.0.0.1:5000/fleet/nginx:1',
  listen: '127.0.0.1:18070',
  route_path: '/api/',
  route_service: 'web',
  read_timeout: '600s',
  rewrite: '/',
  per_second: 20,
  burst: 40,
  tls_cert: '/etc/fleet/tls/a.crt',
  tls_key: '/etc/fleet/tls/a.key',
  api_keys_file: '/etc/fleet/api-keys',
};

/** The playbook with `field` set to `value` (double-quoted: JSON strings are YAML scalars), and where it sits. */
function playbookWith(field: string, value: string) {
  const values: Record<string, string> = {};
  for (const [k, v] of Object.entries(VALID))
    values[k] = typeof v === 'number' ? String(v) : JSON.stringify(v);
  values[field] = JSON.stringify(value);
  // A service renamed to the payload is also what the route names, so the name is the only fault.
  if (field === 'service') values.route_service = values.service!;
  const marker = `<${field}>`;
  const at = TEMPLATE.indexOf(marker);
  const before = TEMPLATE.slice(0, at);
  const line = before.split('\n').length;
  const col = at - before.lastIndexOf('\n');
  const text = TEMPLATE.replace(/<(\w+)>/g, (_, k: string) => values[k]!);
  return { text, line, col };
}

test('the template playbook is valid as it stands', () => {
  const r = parsePlaybook(playbookWith('name', 'demo').text, 'p.yaml');
  assert.ok(r.ok, r.ok ? '' : r.errors.map(formatError).join('\n'));
});

for (const field of Object.keys(VALID)) {
  test(`playbook: every payload in ${field} is rejected at its line and column`, () => {
    const prefix = typeof VALID[field] === 'number' ? String(VALID[field]) : (VALID[field] as string);
    for (const payload of PAYLOADS) {
      for (const value of [payload, prefix + payload, payload + prefix]) {
        const { text, line, col } = playbookWith(field, value);
        const r = parsePlaybook(text, 'p.yaml');
        assert.equal(r.ok, false, `${field} = ${JSON.stringify(value)} was accepted`);
        if (r.ok) continue;
        assert.ok(
          r.errors.some((e) => e.line === line && e.col === col),
          `${field} = ${JSON.stringify(value)}: no error at ${line}:${col}, got:\n${r.errors.map(formatError).join('\n')}`,
        );
      }
    }
  });
}

test('playbook: a file path cannot climb out of /etc/fleet/ with a .. or . segment', () => {
  for (const field of ['tls_cert', 'tls_key', 'api_keys_file']) {
    for (const value of [
      '/etc/fleet/../shadow',
      '/etc/fleet/tls/../../ssl/private/k.key',
      '/etc/fleet/./k',
    ]) {
      const { text, line, col } = playbookWith(field, value);
      const r = parsePlaybook(text, 'p.yaml');
      assert.equal(r.ok, false, `${field} = ${value} was accepted`);
      if (r.ok) continue;
      assert.ok(
        r.errors.some((e) => e.line === line && e.col === col && /^invalid file path/.test(e.message)),
        `${field} = ${value}: ${r.errors.map(formatError).join('\n')}`,
      );
    }
  }
});

// ---------------------------------------------------------------- second line: the renderer

const KEY = 'k3y-0123456789abcdef';
const baseSpec = fullProxySpec;
/** Every feature on; `web` has no healthy replica. */
const baseInput = (): RenderInput => ({
  deployment: 'demo',
  spec: baseSpec(),
  upstreams: { telechat: [{ address: '172.18.0.2', port: 8070 }], web: [] },
  healthPaths: { telechat: '/health', web: '/health' },
  apiKeys: [KEY],
});

type Mutate = (i: RenderInput, v: unknown) => void;
const r0 = (i: RenderInput) => i.spec.routes[0]!;
/** Every string field of RenderInput, as a way to put a value there. */
const STRING_FIELDS: Record<string, Mutate> = {
  deployment: (i, v) => {
    i.deployment = v as string;
  },
  'route path': (i, v) => {
    r0(i).path = v as string;
  },
  'route service': (i, v) => {
    r0(i).service = v as string;
    i.upstreams[v as string] = [{ address: '172.18.0.2', port: 8070 }];
    i.healthPaths[v as string] = '/health';
  },
  'route rewrite': (i, v) => {
    r0(i).rewrite = v as string;
  },
  'health path': (i, v) => {
    i.healthPaths.telechat = v as string;
  },
  'health service key': (i, v) => {
    i.healthPaths[v as string] = '/health';
  },
  'upstream service key': (i, v) => {
    i.upstreams[v as string] = [{ address: '172.18.0.3', port: 1 }];
  },
  'upstream address': (i, v) => {
    i.upstreams.telechat = [{ address: v as string, port: 8070 }];
  },
  'tls cert': (i, v) => {
    i.spec.tlsCertFile = v as string;
  },
  'tls key': (i, v) => {
    i.spec.tlsKeyFile = v as string;
  },
  'api keys file': (i, v) => {
    i.spec.apiKeysFile = v as string;
  },
  'api key': (i, v) => {
    i.apiKeys = [KEY, v as string];
  },
};
const VALID_STRING: Record<string, string> = {
  deployment: 'demo',
  'route path': '/api/',
  'route service': 'telechat',
  'route rewrite': '/',
  'health path': '/health',
  'health service key': 'web',
  'upstream service key': 'web',
  'upstream address': '172.18.0.2',
  'tls cert': '/etc/fleet/tls/a.crt',
  'tls key': '/etc/fleet/tls/a.key',
  'api keys file': '/etc/fleet/api-keys',
  'api key': KEY,
};
const NUMBER_FIELDS: Record<string, Mutate> = {
  'read timeout': (i, v) => {
    r0(i).readTimeoutS = v as number;
  },
  'rate per second': (i, v) => {
    i.spec.ratePerSecond = v as number;
  },
  'rate burst': (i, v) => {
    i.spec.rateBurst = v as number;
  },
  'upstream port': (i, v) => {
    i.upstreams.telechat = [{ address: '172.18.0.2', port: v as number }];
  },
};
const BAD_NUMBERS: unknown[] = [
  -1,
  1.5,
  Number.NaN,
  Number.POSITIVE_INFINITY,
  1e9,
  '20',
  '20;',
  null,
  undefined,
];

function renderWith(mutate: Mutate, value: unknown) {
  const i = baseInput();
  mutate(i, value);
  return () => renderNginxConfig(i);
}

for (const [field, mutate] of Object.entries(STRING_FIELDS)) {
  test(`renderer: every payload in ${field} throws ProxyConfigError`, () => {
    const valid = VALID_STRING[field]!;
    assert.doesNotThrow(renderWith(mutate, valid));
    for (const payload of PAYLOADS) {
      for (const value of [payload, valid + payload, payload + valid]) {
        assert.throws(renderWith(mutate, value), ProxyConfigError, `${field} = ${JSON.stringify(value)}`);
      }
    }
  });
}

for (const [field, mutate] of Object.entries(NUMBER_FIELDS)) {
  test(`renderer: ${field} must be an integer in range`, () => {
    for (const value of BAD_NUMBERS)
      assert.throws(renderWith(mutate, value), ProxyConfigError, `${field} = ${String(value)}`);
  });
}

test('renderer: upstream addresses must be strict dotted quads, keys must be plain tokens', () => {
  const addresses = [
    '172.18.0.256',
    '01.2.3.4',
    '1.2.3',
    '1.2.3.4.5',
    '::1',
    'localhost',
    '1.2.3.4:80',
    '0x7f.0.0.1',
    '',
  ];
  for (const a of addresses)
    assert.throws(renderWith(STRING_FIELDS['upstream address']!, a), ProxyConfigError, a);
  for (const k of ['short', 'x'.repeat(257), `${KEY}\\E`, `${KEY}"`, `${KEY} x`, ''])
    assert.throws(renderWith(STRING_FIELDS['api key']!, k), ProxyConfigError, k);
});

test('container shaping: payloads in image, listen address and TLS files throw ProxyConfigError', () => {
  const fields: Record<string, [string, keyof ProxySpec]> = {
    image: ['127.0.0.1:5000/fleet/nginx:1', 'image'],
    'listen address': ['127.0.0.1', 'listenAddress'],
    'tls cert': ['/etc/fleet/tls/a.crt', 'tlsCertFile'],
    'tls key': ['/etc/fleet/tls/a.key', 'tlsKeyFile'],
  };
  assert.doesNotThrow(() => proxyShape(baseSpec()));
  for (const [field, [valid, key]] of Object.entries(fields)) {
    for (const payload of PAYLOADS) {
      for (const value of [payload, valid + payload, payload + valid]) {
        const s = { ...baseSpec(), [key]: value };
        assert.throws(() => proxyShape(s), ProxyConfigError, `${field} = ${JSON.stringify(value)}`);
      }
    }
  }
});
