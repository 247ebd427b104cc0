/**
 * Keys an operator brings from Compose, Kubernetes or `docker run` that would give a container the
 * host: each is refused for what it is, at its line and column, with why, on a service, its engine
 * and the proxy; and volumes that would hand over the Docker socket or a path outside the roots are
 * refused on the engine as on the service.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { FORBIDDEN_OPTIONS, forbiddenOption } from '../../../../common/container-policy.js';
import { parsePlaybook } from '../../../../control-plane/src/playbook/parse.js';

type Slot = 'service' | 'engine' | 'proxy';

/** The playbook with `line` written into one slot (line 7 col 5, line 11 col 7, line 15 col 3). */
function book(slot: Slot, line: string): string {
  const at = (s: Slot) => (s === slot ? line : '# -');
  return `name: web
hosts: all
services:
  web:
    image: 127.0.0.1:5000/x/web:1
    port: 8080
    ${at('service')}
    engine:
      image: 127.0.0.1:5000/x/vllm:1
      port: 8000
      ${at('engine')}
proxy:
  listen: 80
  routes: [{ path: /, service: web }]
  ${at('proxy')}
`;
}

const WHERE: Record<Slot, { line: number; col: number; scope: string }> = {
  service: { line: 7, col: 5, scope: 'services.web' },
  engine: { line: 11, col: 7, scope: 'services.web.engine' },
  proxy: { line: 15, col: 3, scope: 'proxy' },
};

/** Each forbidden key as people write it, and the refusal it must get. */
const CASES: { line: string; refusal: RegExp }[] = [
  { line: 'privileged: true', refusal: /^privileged containers are not allowed: 'privileged'/ },
  { line: 'cap_add: [SYS_ADMIN]', refusal: /^added capabilities are not allowed: 'cap_add'/ },
  { line: 'capabilities: { add: [NET_ADMIN] }', refusal: /^added capabilities are not allowed/ },
  { line: 'network_mode: host', refusal: /^host networking and other network modes are not allowed/ },
  { line: 'network: host', refusal: /^host networking/ },
  { line: 'hostNetwork: true', refusal: /^host networking/ },
  { line: 'pid: host', refusal: /^the host's PID namespace is not allowed: 'pid'/ },
  { line: 'hostPID: true', refusal: /^the host's PID namespace/ },
  { line: 'ipc: host', refusal: /^the host's IPC namespace is not allowed: 'ipc'/ },
  { line: 'userns_mode: host', refusal: /^the host's namespaces are not allowed: 'userns_mode'/ },
  { line: 'uts: host', refusal: /^the host's namespaces are not allowed/ },
  { line: 'devices: ["/dev/nvidia0:/dev/nvidia0"]', refusal: /^host devices are not allowed: 'devices'/ },
  { line: 'security_opt: ["seccomp=unconfined"]', refusal: /^security options are not allowed/ },
  { line: 'securityContext: { privileged: true }', refusal: /^security options are not allowed/ },
  { line: 'volumes_from: [other]', refusal: /^mounts other than volumes: are not allowed/ },
];

describe('forbidden container options are refused at apply', () => {
  for (const slot of ['service', 'engine', 'proxy'] as const) {
    for (const c of CASES) {
      test(`${c.line} on the ${slot}`, () => {
        const r = parsePlaybook(book(slot, c.line), 'p.yaml');
        assert.equal(r.ok, false);
        if (r.ok) return;
        assert.equal(r.errors.length, 1, JSON.stringify(r.errors));
        const e = r.errors[0]!;
        const want = WHERE[slot];
        assert.deepEqual([e.file, e.line, e.col], ['p.yaml', want.line, want.col]);
        assert.match(e.message, c.refusal);
        assert.ok(e.message.endsWith(` in ${want.scope}`), e.message);
        const key = c.line.split(':')[0]!;
        assert.equal(e.hint, forbiddenOption(key)!.why);
        assert.doesNotMatch(e.message, /unknown key/);
      });
    }
  }

  test('the playbook is accepted without them (the cases fail for the key alone)', () => {
    for (const slot of ['service', 'engine', 'proxy'] as const) {
      const r = parsePlaybook(book(slot, '# nothing'), 'p.yaml');
      assert.equal(r.ok, true, JSON.stringify(!r.ok && r.errors));
    }
  });

  test('every row of the table says why, and names the host access it keeps out', () => {
    for (const o of FORBIDDEN_OPTIONS) {
      assert.match(o.refusal, /not allowed$/);
      assert.ok(o.why.length > 40, o.refusal);
      for (const k of o.keys) assert.equal(forbiddenOption(k), o);
    }
  });

  test('keys are matched without case, dashes or underscores', () => {
    assert.equal(forbiddenOption('capAdd'), forbiddenOption('cap_add'));
    assert.equal(forbiddenOption('CAP-ADD'), forbiddenOption('cap_add'));
    assert.equal(forbiddenOption('hostIPC'), forbiddenOption('ipc'));
    assert.equal(forbiddenOption('image'), undefined);
    assert.equal(forbiddenOption('shm_size'), undefined);
  });

  test('outside a container spec the same word is an ordinary unknown key', () => {
    const text = book('service', '# -').replace('hosts: all', 'hosts: all\nrollout: { network: host }');
    const r = parsePlaybook(text, 'p.yaml');
    assert.equal(r.ok, false);
    if (!r.ok) assert.match(r.errors[0]!.message, /^unknown key 'network' in rollout/);
  });
});

describe('volumes that would hand the engine the host are refused at its line', () => {
  const cases = [
    { volume: '/var/run/docker.sock:/var/run/docker.sock', message: /would expose the Docker socket/ },
    { volume: '/run:/r', message: /would expose the Docker socket/ },
    { volume: '/etc/shadow:/s:ro', message: /mounting host path '\/etc\/shadow' is not allowed/ },
    { volume: '/opt/x:/x', message: /outside the allowed volume roots/ },
  ];
  for (const c of cases) {
    test(c.volume, () => {
      const r = parsePlaybook(book('engine', `volumes: ["${c.volume}"]`), 'p.yaml', {
        volumeRoots: ['/data'],
      });
      assert.equal(r.ok, false);
      if (r.ok) return;
      assert.equal(r.errors.length, 1);
      assert.deepEqual([r.errors[0]!.line, r.errors[0]!.col], [11, 17]);
      assert.match(r.errors[0]!.message, c.message);
    });
  }
});
