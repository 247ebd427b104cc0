import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { formatError, parsePlaybook } from '../../../../control-plane/src/playbook/parse.js';
import type { ParseResult, Playbook } from '../../../../control-plane/src/playbook/types.js';
import { errorsOf, ok } from './results.js';

/** The DESIGN.md example without its rollout keys, gpus, health and proxy (the test below adds most back). */
const DESIGN_EXAMPLE_V1 = `name: telechat-prod
hosts: gpu                    # nodes whose labels match (groups like an Ansible inventory)
vars:
  image_tag: 1.4.2
  model_dir: /data/models/telechat-7b
services:
  telechat:
    image: registry.internal:5000/telechat/inference:{{ image_tag }}
    replicas: 1               # per node
    env: { MODEL_PATH: /models/telechat-7b.Q8_0.gguf }
    volumes: ["{{ model_dir }}:/models:ro"]
    port: 8070
`;

const EXPECTED: Playbook = {
  name: 'telechat-prod',
  hosts: ['gpu'],
  vars: { image_tag: '1.4.2', model_dir: '/data/models/telechat-7b' },
  services: {
    telechat: {
      image: 'registry.internal:5000/telechat/inference:1.4.2',
      replicas: 1,
      env: { MODEL_PATH: '/models/telechat-7b.Q8_0.gguf' },
      volumes: ['/data/models/telechat-7b:/models:ro'],
      port: 8070,
    },
  },
};

/** Lines 1-4; the body of service `web` starts on line 5, column 5. */
const HEAD = 'name: demo\nhosts: gpu\nservices:\n  web:\n';
const svc = (...lines: string[]) => HEAD + lines.map((l) => `    ${l}\n`).join('');

test('the DESIGN.md example (v1 subset) parses to the expected object', () => {
  assert.deepEqual(ok(parsePlaybook(DESIGN_EXAMPLE_V1, 'prod.yaml')), EXPECTED);
});

test('defaults: replicas 1, env {}, volumes [], vars {}', () => {
  assert.deepEqual(ok(parsePlaybook(svc('image: nginx'), 'f.yaml')), {
    name: 'demo',
    hosts: ['gpu'],
    vars: {},
    services: { web: { image: 'nginx', replicas: 1, env: {}, volumes: [] } },
  });
});

interface OkRow {
  name: string;
  yaml: string;
  check: (p: Playbook) => void;
}

const okRows: OkRow[] = [
  {
    name: 'port as a YAML integer',
    yaml: svc('image: nginx', 'port: 8080'),
    check: (p) => assert.equal(p.services.web?.port, 8080),
  },
  { name: 'hosts as a string', yaml: svc('image: nginx'), check: (p) => assert.deepEqual(p.hosts, ['gpu']) },
  {
    name: 'hosts as a list',
    yaml: 'name: demo\nhosts: [gpu, "zone=eu-1", all]\nservices:\n  web:\n    image: nginx\n',
    check: (p) => assert.deepEqual(p.hosts, ['gpu', 'zone=eu-1', 'all']),
  },
  {
    name: 'typed var substitution keeps the var type',
    yaml: `vars:\n  count: 2\n  t: 1.0\n${svc('image: "nginx:{{t}}"', 'replicas: "{{ count }}"', 'env: { NUM: "n={{ count }}" }')}`,
    check: (p) => {
      assert.equal(p.services.web?.replicas, 2);
      assert.equal(p.services.web?.image, 'nginx:1.0');
      assert.deepEqual(p.services.web?.env, { NUM: 'n=2' });
    },
  },
  {
    name: 'publish with port and one replica; valid image forms',
    yaml: `${svc(`image: localhost:5000/a/b_c__d-e:v1.2@sha256:${'a'.repeat(64)}`, 'port: 80', 'publish: 8080', 'command: [serve, "--x"]')}  db:\n    image: redis\n    publish: 8081\n    port: 6379\n`,
    check: (p) => {
      assert.equal(p.services.web?.publish, 8080);
      assert.deepEqual(p.services.web?.command, ['serve', '--x']);
    },
  },
  {
    name: 'quoted yes is a string',
    yaml: svc('image: nginx', 'env: { DEBUG: "yes" }'),
    check: (p) => assert.deepEqual(p.services.web?.env, { DEBUG: 'yes' }),
  },
];

for (const row of okRows) {
  test(`ok: ${row.name}`, () => row.check(ok(parsePlaybook(row.yaml, 'f.yaml'))));
}

interface ErrRow {
  name: string;
  yaml: string;
  line: number;
  col: number;
  message: string;
  hint?: string;
  /** When set, the exact number of errors expected (guards against cascades). */
  count?: number;
}

const errRows: ErrRow[] = [
  { name: 'invalid YAML', yaml: 'name: demo\nhosts: [gpu\n', line: 3, col: 1, message: 'Flow sequence' },
  {
    name: 'duplicate key',
    yaml: `name: a\n${svc('image: nginx')}`,
    line: 2,
    col: 1,
    message: 'duplicate key',
    count: 1,
  },
  {
    name: 'unknown key with did-you-mean',
    yaml: svc('image: nginx', 'imgae: nginx'),
    line: 6,
    col: 5,
    message: "unknown key 'imgae' in services.web",
    hint: "did you mean 'image'?",
    count: 1,
  },
  {
    name: 'missing required key at the mapping key',
    yaml: svc('replicas: 1'),
    line: 4,
    col: 3,
    message: "missing required key 'image' in services.web",
    count: 1,
  },
  {
    name: 'string where a number belongs',
    yaml: svc('image: nginx', 'replicas: "3"'),
    line: 6,
    col: 15,
    message: "expected integer, got string '3'",
    hint: 'remove the quotes',
    count: 1,
  },
  {
    name: 'replicas out of range',
    yaml: svc('image: nginx', 'replicas: 65'),
    line: 6,
    col: 15,
    message: 'between 1..64',
  },
  {
    name: 'yes as a value (one error, not two)',
    yaml: svc('image: nginx', 'replicas: yes'),
    line: 6,
    col: 15,
    message: "YAML 1.1 boolean 'yes' is ambiguous",
    hint: 'write true/false',
    count: 1,
  },
  {
    name: 'On as a key',
    yaml: `${svc('image: nginx')}On: 1\n`,
    line: 6,
    col: 1,
    message: "YAML 1.1 boolean 'On'",
  },
  {
    name: 'undefined variable',
    yaml: `vars: { tag: "1" }\n${svc('image: "nginx:{{ tagg }}"')}`,
    line: 6,
    col: 12,
    message: "undefined variable 'tagg'",
    hint: 'defined variables: tag',
    count: 1,
  },
  {
    name: 'malformed template',
    yaml: svc('image: "nginx:{{ tag"'),
    line: 5,
    col: 12,
    message: "unclosed '{{'",
    count: 1,
  },
  {
    name: 'template filter',
    yaml: svc('image: "{{ a | b }}"'),
    line: 5,
    col: 12,
    message: 'filters are not supported',
  },
  {
    name: 'var referencing a var',
    yaml: `vars: { a: "{{ b }}", b: x }\n${svc('image: nginx')}`,
    line: 1,
    col: 12,
    message: 'cannot reference other variables',
  },
  {
    name: 'typed var where a string belongs',
    yaml: `vars: { p: 80 }\n${svc('image: nginx', 'env: { P: "{{ p }}" }')}`,
    line: 7,
    col: 15,
    message: 'expected string, got integer 80',
    hint: "came from '{{ p }}'",
  },
  {
    name: 'image UPPER/case',
    yaml: svc('image: UPPER/case'),
    line: 5,
    col: 12,
    message: 'must be lowercase',
    count: 1,
  },
  { name: 'image with a space', yaml: svc('image: a b'), line: 5, col: 12, message: 'whitespace', count: 1 },
  {
    name: 'image :tag',
    yaml: svc('image: ":tag"'),
    line: 5,
    col: 12,
    message: 'no repository name',
    count: 1,
  },
  {
    name: 'image reg:5000/x:',
    yaml: svc('image: "reg:5000/x:"'),
    line: 5,
    col: 12,
    message: 'empty tag',
    count: 1,
  },
  {
    name: 'docker.sock volume',
    yaml: svc('image: nginx', 'volumes: ["/var/run/docker.sock:/var/run/docker.sock"]'),
    line: 6,
    col: 15,
    message: 'Docker socket',
    count: 1,
  },
  {
    name: 'docker.sock spelled with extra slashes',
    yaml: svc('image: nginx', 'volumes: ["/run//docker.sock/:/s"]'),
    line: 6,
    col: 15,
    message: 'Docker socket',
  },
  {
    name: 'relative volume path',
    yaml: svc('image: nginx', 'volumes: [/ok:/ok, "data:/data"]'),
    line: 6,
    col: 24,
    message: "host path 'data' must be absolute",
    count: 1,
  },
  {
    name: '/etc volume',
    yaml: svc('image: nginx', 'volumes: ["/etc/ssl:/ssl:ro"]'),
    line: 6,
    col: 15,
    message: 'not allowed',
  },
  {
    name: '.. in volume',
    yaml: svc('image: nginx', 'volumes: ["/data/../etc:/x"]'),
    line: 6,
    col: 15,
    message: "'..'",
  },
  {
    name: 'publish without port',
    yaml: svc('image: nginx', 'publish: 8080'),
    line: 6,
    col: 14,
    message: 'publish requires port',
    count: 1,
  },
  {
    name: 'publish with replicas 2',
    yaml: svc('image: nginx', 'port: 80', 'replicas: 2', 'publish: 8080'),
    line: 8,
    col: 14,
    message: 'publish requires replicas: 1',
    hint: 'proxy',
    count: 1,
  },
  {
    name: 'duplicate publish ports → error at the second',
    yaml: `${svc('image: nginx', 'port: 80', 'publish: 8080')}  api:\n    image: nginx\n    port: 81\n    publish: 8080\n`,
    line: 11,
    col: 14,
    message: 'host port 8080 is already published by services.web',
    count: 1,
  },
  {
    name: 'env number value',
    yaml: svc('image: nginx', 'env: { PORT: 8080 }'),
    line: 6,
    col: 18,
    message: 'expected string, got integer 8080',
    hint: 'quote it: "8080"',
    count: 1,
  },
  {
    name: 'env key format',
    yaml: svc('image: nginx', 'env: { 1X: a }'),
    line: 6,
    col: 12,
    message: "invalid environment variable name '1X'",
  },
  {
    name: 'empty services',
    yaml: 'name: demo\nhosts: gpu\nservices: {}\n',
    line: 3,
    col: 11,
    message: 'services must define at least one entry',
    count: 1,
  },
  {
    name: 'bad deployment name',
    yaml: svc('image: nginx').replace('demo', 'Demo'),
    line: 1,
    col: 7,
    message: "invalid deployment name 'Demo'",
  },
  {
    name: 'bad host selector',
    yaml: svc('image: nginx').replace('gpu', '"a=b=c"'),
    line: 2,
    col: 8,
    message: 'invalid host selector',
  },
  {
    name: 'model path outside the volumes',
    yaml: svc('image: nginx', 'volumes: ["/data/m:/models:ro"]', 'model: { path: /weights/x.gguf }'),
    line: 7,
    col: 20,
    message: "model path '/weights/x.gguf' is not under any of this service's volumes",
  },
  {
    name: 'model sha256 not hex',
    yaml: svc(
      'image: nginx',
      'volumes: ["/data/m:/models:ro"]',
      'model: { path: /models/x.gguf, sha256: abc }',
    ),
    line: 7,
    col: 44,
    message: 'invalid sha256',
  },
  {
    name: 'multi-document',
    yaml: `${svc('image: nginx')}---\nname: other\n`,
    line: 6,
    col: 1,
    message: 'multiple YAML documents',
    count: 1,
  },
  { name: 'empty file', yaml: '', line: 1, col: 1, message: 'playbook is empty', count: 1 },
  { name: 'comments only', yaml: '# nothing\n', line: 1, col: 1, message: 'playbook is empty', count: 1 },
  { name: 'root is a list', yaml: '- a\n- b\n', line: 1, col: 1, message: 'must be a mapping', count: 1 },
  {
    name: '__proto__ key',
    yaml: `${svc('image: nginx')}__proto__: {}\n`,
    line: 6,
    col: 1,
    message: '__proto__',
    count: 1,
  },
];

for (const row of errRows) {
  test(`error: ${row.name}`, () => {
    const errors = errorsOf(parsePlaybook(row.yaml, 'f.yaml'));
    const hit = errors.find(
      (e) => e.line === row.line && e.col === row.col && e.message.includes(row.message),
    );
    assert.ok(
      hit,
      `no error at ${row.line}:${row.col} containing "${row.message}"; got:\n${errors.map(formatError).join('\n')}`,
    );
    if (row.hint !== undefined) assert.ok(hit.hint?.includes(row.hint), `hint: ${hit.hint}`);
    if (row.count !== undefined) assert.equal(errors.length, row.count, errors.map(formatError).join('\n'));
    assert.equal(hit.file, 'f.yaml');
  });
}

test('the full DESIGN.md example parses, its serial, max_fail_percentage and rollout included', () => {
  const rollout = [
    'serial: [1, "25%"]',
    'max_fail_percentage: 0',
    'rollout: { min_healthy_time: 10s, healthy_deadline: 30m, auto_rollback: true }',
  ];
  const full = DESIGN_EXAMPLE_V1.replace('vars:', `${rollout.join('\n')}\nvars:`)
    .replace('    port: 8070\n', '    port: 8070\n    health: { path: /health, start_period: 600s }\n')
    .concat('proxy:\n  listen: 80\n  routes:\n    - { path: /api/, service: telechat, stream: true }\n')
    .concat('  rate_limit: { per_second: 20, burst: 40 }\n');
  const p = ok(parsePlaybook(full, 'prod.yaml'));
  assert.deepEqual(p.serial, [1, '25%']);
  assert.equal(p.max_fail_percentage, 0);
  assert.deepEqual(p.rollout, { min_healthy_time: '10s', healthy_deadline: '30m', auto_rollback: true });
});

test('errors are collected and sorted by line then column', () => {
  const yaml = `name: Bad\nhosts: gpu\nservices:\n  web:\n    image: nginx\n    replicas: "2"\n    port: 0\n    imgae: x\n`;
  const errors = errorsOf(parsePlaybook(yaml, 'f.yaml'));
  assert.deepEqual(
    errors.map((e) => [e.line, e.col]),
    [
      [1, 7],
      [6, 15],
      [7, 11],
      [8, 5],
    ],
  );
});

test('formatError gives file:line:col: message (hint: ...)', () => {
  const yaml = 'name: prod\nhosts: all\nservices:\n  api:\n    image: nginx\n  web:\n    imgae: nginx\n';
  const errors = errorsOf(parsePlaybook(yaml, 'prod.yaml'));
  const formatted = errors.map(formatError);
  assert.ok(
    formatted.includes("prod.yaml:7:5: unknown key 'imgae' in services.web (hint: did you mean 'image'?)"),
    formatted.join('\n'),
  );
  assert.ok(
    formatted.includes("prod.yaml:6:3: missing required key 'image' in services.web"),
    formatted.join('\n'),
  );
});

function assertWellFormed(r: ParseResult): void {
  if (r.ok) return;
  assert.ok(r.errors.length > 0 && r.errors.length <= 51);
  for (const e of r.errors) {
    assert.ok(
      Number.isInteger(e.line) && e.line >= 1 && Number.isInteger(e.col) && e.col >= 1,
      JSON.stringify(e),
    );
    assert.equal(typeof e.message, 'string');
  }
}

test('never throws: random text', () => {
  fc.assert(
    fc.property(fc.string({ unit: 'binary', maxLength: 300 }), (s) =>
      assertWellFormed(parsePlaybook(s, 'f')),
    ),
    { numRuns: 300 },
  );
});

test('never throws: mutations of a valid playbook', () => {
  fc.assert(
    fc.property(fc.nat(DESIGN_EXAMPLE_V1.length), fc.nat(20), fc.string({ maxLength: 8 }), (at, del, ins) => {
      const s = DESIGN_EXAMPLE_V1.slice(0, at) + ins + DESIGN_EXAMPLE_V1.slice(at + del);
      assertWellFormed(parsePlaybook(s, 'f'));
    }),
    { numRuns: 500 },
  );
});

test('never throws: deep nesting, huge strings, alias bombs, odd tags', () => {
  const bomb = ['a: &a [x, x, x, x, x, x, x, x, x, x]'];
  for (let i = 1; i < 9; i++)
    bomb.push(
      `${'abcdefghi'[i]}: &${'abcdefghi'[i]} [${Array(10)
        .fill(`*${'abcdefghi'[i - 1]}`)
        .join(', ')}]`,
    );
  const inputs = [
    '['.repeat(100_000),
    '{a: '.repeat(20_000),
    `${'  '.repeat(0)}${Array.from({ length: 2000 }, (_, i) => `${' '.repeat(i)}k:`).join('\n')}`,
    `name: ${'x'.repeat(1_000_000)}\n`,
    svc(`image: "${'{{ a }}'.repeat(10_000)}"`),
    bomb.join('\n'),
    'x: &a [*a]\n',
    'a: !!binary aGk=\nb: !custom 1\n',
    '\u0000\u0001\u0002: [',
    '? [a, b]\n: c\n',
    '~\n',
  ];
  for (const s of inputs) assertWellFormed(parsePlaybook(s, 'f'));
});
