import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ApplyReply } from '../../../../control-plane/src/api/client.js';
import {
  applyCommandLine,
  detailedExitCode,
  hasChanges,
  refusedExitCode,
  renderCheck,
  renderField,
} from '../../../../control-plane/src/cli/check.js';

const DIFF = `--- nginx.conf (serving)
+++ nginx.conf (revision 2)
@@ -1,3 +1,3 @@
 http {
-  limit_req_zone $binary_remote_addr zone=fleet_rate:10m rate=10r/s;
+  limit_req_zone $binary_remote_addr zone=fleet_rate:10m rate=20r/s;
 }
`;

type NodePlan = ApplyReply['nodes'][number];

const node = (name: string, over: Partial<NodePlan> = {}): NodePlan => ({
  node: name,
  connected: true,
  services: [
    {
      service: 'web',
      action: 'replace',
      changes: [
        { field: 'env.API_TOKEN', change: 'changed', from: '[redacted]', to: '[redacted]' },
        { field: 'image', change: 'changed', from: 'reg/web:1', to: 'reg/web:2' },
      ],
    },
  ],
  preflight: {
    checked: true,
    ok: true,
    message: 'checks pass',
    checks: [{ name: 'docker', ok: true, message: 'Docker Engine reachable', service: '' }],
  },
  preview: {
    containers: [
      {
        action: 'replace',
        service: 'web',
        replica: 0,
        name: 'fleet-a-web-0',
        ids: ['0123456789abcdef'],
        reason: 'spec changed',
      },
    ],
    images: [
      { image: 'reg/nginx:1', present: true },
      { image: 'reg/web:2', present: false },
    ],
    proxyDiff: DIFF,
    notes: [],
    error: '',
  },
  ...over,
});

const reply = (over: Partial<ApplyReply> = {}): ApplyReply => ({
  deployment: 'shop',
  revision: 2,
  previousRevision: 1,
  hash: 'h',
  changed: true,
  check: true,
  nodes: [node('a'), node('b')],
  batches: [['a'], ['b']],
  changes: [{ field: 'rollout.min_healthy_time', change: 'changed', from: '10s', to: '2s' }],
  ...over,
});

const COMMAND = 'fleet apply shop.yaml --expect-revision 1';

describe('fleet apply --check --diff: the text', () => {
  const text = renderCheck(reply(), { diff: true, command: COMMAND });

  test('per node: the field diff, the containers, the images to pull, GPU fit and the nginx diff', () => {
    const a = text.slice(text.indexOf('node a (connected)'), text.indexOf('node b'));
    assert.match(a, /^ {2}preflight a: ok \(1 checks\)$/m);
    assert.match(
      a,
      /^ {2}service web: replace\n {4}~ env\.API_TOKEN: \[redacted\] → \[redacted\]\n {4}~ image: reg\/web:1 → reg\/web:2$/m,
    );
    assert.match(a, /^ {4}replace +web\/0 +fleet-a-web-0 +0123456789ab +spec changed$/m);
    assert.match(a, /^ {4}pull {5}reg\/web:2$/m);
    assert.match(a, /^ {4}present {2}reg\/nginx:1$/m);
    assert.match(a, /^ {2}GPU fit: no GPUs asked for$/m);
    assert.match(
      a,
      /^ {2}nginx config \(upstreams: today's ready replicas\):\n {4}--- nginx\.conf \(serving\)\n {4}\+\+\+ nginx\.conf \(revision 2\)/m,
    );
    assert.match(a, /^ {4}- {2}limit_req_zone .*rate=10r\/s;\n {4}\+ {2}limit_req_zone .*rate=20r\/s;$/m);
  });

  test('then the deployment-level fields, the batches and the exact command', () => {
    assert.match(text, /^deployment fields:\n {2}~ rollout\.min_healthy_time: 10s → 2s$/m);
    assert.match(text, /^rollout: 2 batches\n {2}batch 1: a\n {2}batch 2: b$/m);
    assert.ok(text.endsWith(`apply exactly this: ${COMMAND}`), text);
  });

  test('GPU fit lists the GPU checks and the planner notes; other failing checks stay under preflight', () => {
    const n = node('g', {
      preflight: {
        checked: true,
        ok: false,
        message: 'checks fail',
        checks: [
          { name: 'nvidia-runtime', ok: false, message: 'no nvidia runtime', service: '' },
          { name: 'gpus', ok: true, message: 'needs 1 GPU(s); node has 8', service: '' },
          { name: 'model-file', ok: false, message: 'model file /m not found', service: 'shop/web' },
        ],
      },
      preview: { ...node('g').preview!, notes: ['shop/web/0: would get GPU GPU-1'] },
    });
    const t = renderCheck(reply({ nodes: [n] }), { diff: true, command: COMMAND });
    assert.match(
      t,
      /^ {2}preflight g: FAIL \(3 checks\)\n {4}model-file \[shop\/web\]: model file \/m not found$/m,
    );
    assert.match(
      t,
      /^ {2}GPU fit:\n {4}FAIL nvidia-runtime: no nvidia runtime\n {4}ok {3}gpus: needs 1 GPU\(s\); node has 8\n {4}shop\/web\/0: would get GPU GPU-1$/m,
    );
  });

  test('an agent that was not asked says so; no changes means no command', () => {
    const off = node('off', {
      connected: false,
      preview: undefined,
      preflight: { checked: false, ok: false, message: 'agent not connected', checks: [] },
    });
    const t = renderCheck(reply({ nodes: [off] }), { diff: true, command: COMMAND });
    assert.match(t, /^node off \(offline\)\n {2}preflight off: not checked \(agent not connected\)$/m);
    assert.match(t, /containers, images, nginx config: not known \(agent not asked\)/);
    const old = renderCheck(reply({ nodes: [node('old', { preview: undefined })] }), {
      diff: true,
      command: COMMAND,
    });
    assert.match(old, /not known \(the agent sent no preview: an older agent\?\)/);
    const same = node('a', {
      services: [{ service: 'web', action: 'unchanged', changes: [] }],
      preview: {
        ...node('a').preview!,
        containers: [{ ...node('a').preview!.containers[0]!, action: 'keep' }],
        proxyDiff: '',
      },
    });
    const none = renderCheck(reply({ changed: false, nodes: [same], batches: [], changes: [] }), {
      diff: true,
      command: COMMAND,
    });
    assert.match(none, /nginx config: unchanged/);
    assert.ok(none.endsWith('no changes: nothing to apply'), none);
    assert.ok(!none.includes('--expect-revision'));
  });

  test('plain --check prints the plan and preflight lines as before', () => {
    const t = renderCheck(reply(), { diff: false, command: COMMAND });
    assert.equal(
      t,
      [
        'shop: would apply revision 2 (was 1)',
        'NODE  AGENT      SERVICE  ACTION',
        'a     connected  web      replace',
        'b     connected  web      replace',
        'preflight a: ok (1 checks)',
        'preflight b: ok (1 checks)',
      ].join('\n'),
    );
  });

  test('field lines: added, removed, changed', () => {
    assert.equal(renderField({ field: 'env.X', change: 'added', to: '1' }), '+ env.X: 1');
    assert.equal(renderField({ field: 'volumes', change: 'removed', from: '/a:/a' }), '- volumes: /a:/a');
    assert.equal(
      renderField({ field: 'replicas', change: 'changed', from: '1', to: '2' }),
      '~ replicas: 1 → 2',
    );
  });
});

describe('--detailed-exitcode: 0 no change, 2 changes, 1 an error or a failing check', () => {
  const keepAll = (n: NodePlan): NodePlan => ({
    ...n,
    preview: { ...n.preview!, containers: n.preview!.containers.map((c) => ({ ...c, action: 'keep' })) },
  });

  test('2 when a revision would be made or an agent would touch a container', () => {
    assert.equal(detailedExitCode(reply()), 2);
    // Same revision, but an agent would recreate a missing container (drift): a change too.
    assert.equal(detailedExitCode(reply({ changed: false })), 2);
    assert.equal(hasChanges(reply({ changed: false })), true);
  });

  test('0 when nothing would change anywhere', () => {
    assert.equal(detailedExitCode(reply({ changed: false, nodes: [keepAll(node('a'))] })), 0);
  });

  test('1 when a check fails, an agent was not asked, or could not preview', () => {
    const failing = node('a', {
      preflight: { checked: true, ok: false, message: 'checks fail', checks: [] },
    });
    assert.equal(detailedExitCode(reply({ nodes: [failing] })), 1);
    const unasked = node('a', {
      preflight: { checked: false, ok: false, message: 'agent not connected', checks: [] },
    });
    assert.equal(detailedExitCode(reply({ changed: false, nodes: [unasked] })), 1);
    const blind = node('a', { preview: { ...node('a').preview!, error: 'docker: down' } });
    assert.equal(detailedExitCode(reply({ nodes: [blind] })), 1);
  });
});

describe('the command that applies exactly what was checked', () => {
  test('same file, the revision it is at now, the global options given', () => {
    assert.equal(applyCommandLine('pb/shop.yaml', 3), 'fleet apply pb/shop.yaml --expect-revision 3');
    assert.equal(
      applyCommandLine('/tmp/my book.yaml', 0, ['--server', 'http://127.0.0.1:7080']),
      "fleet --server http://127.0.0.1:7080 apply '/tmp/my book.yaml' --expect-revision 0",
    );
    assert.equal(applyCommandLine("it's.yaml", 1), `fleet apply 'it'\\''s.yaml' --expect-revision 1`);
  });
});

describe('a refused apply (bad playbook, conflict, no node)', () => {
  test('exits 2, but 1 under --check --detailed-exitcode where 2 means changes', () => {
    assert.equal(refusedExitCode({ check: false }), 2);
    assert.equal(refusedExitCode({ check: true }), 2);
    assert.equal(refusedExitCode({ check: true, detailedExitcode: true }), 1);
  });
});
