import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { DEFAULT_RESTART_POLICY } from '../../../../agent/src/health/restart-policy.js';
import { fromSpec } from '../../../../agent/src/model.js';
import { ContainerLifecycle } from '../../../../agent/src/reconcile/lifecycle.js';
import { RuntimeError } from '../../../../agent/src/runtime.js';
import {
  type DesiredState,
  type ServiceSpec,
  ServiceState,
  type StatusReport,
} from '../../../../proto/gen/fleet/v1/agent.js';
import { reconcilerRig } from '../../../helpers/reconciler-rig.js';
import { serviceSpec } from '../../../helpers/service-spec.js';

const NODE = 'n1';
const IMAGE = '127.0.0.1:5000/x/web:1';

function desired(over: Partial<ServiceSpec> = {}, version = 'v1', revision = 1): DesiredState {
  return {
    version,
    deployments: [
      {
        name: 'web',
        revision,
        revisionHash: `rh${revision}`,
        registryAuth: [],
        secrets: [],
        services: [serviceSpec({ name: 'web', image: IMAGE, ...over })],
      },
    ],
  };
}

/** A reconciler over a fake runtime and fake timers (test/helpers/reconciler-rig.ts). */
const rig = reconcilerRig;

const last = (reports: StatusReport[]) => {
  const r = reports.at(-1);
  assert.ok(r, 'a report was sent');
  return r;
};

/** Lets pending promise callbacks (the reconcile loop between runtime calls) run. */
const flush = async () => {
  for (let i = 0; i < 20; i++) await Promise.resolve();
};

describe('Reconciler', () => {
  test('with no desired state it touches nothing, even with managed containers present', async () => {
    const { rt, timers, reports, rec } = rig();
    rt.addContainer({ deployment: 'web', service: 'web', replica: 0, hash: 'whatever', state: 'exited' });
    rec.start();
    await rec.idle();
    timers.advance(35_000); // several resync periods
    await rec.idle();
    assert.equal(rt.totalCalls(), 0, `runtime calls: ${rt.log.join(', ')}`);
    assert.equal(rt.containers.size, 1);
    assert.equal(reports.length, 0);
    await rec.stop();
  });

  test('setDesired converges: pulls the missing image, creates the container, reports RUNNING', async () => {
    const { rt, reports, rec } = rig({ images: [] });
    rec.setDesired(desired());
    await rec.idle();
    assert.equal(rt.calls.pull, 1);
    assert.equal(rt.calls.create, 1);
    const [c] = rt.byKey('web/web/0');
    assert.ok(c);
    assert.equal(c.state, 'running');
    assert.equal(c.hash, fromSpec(desired(), NODE)[0]!.hash);
    const r = last(reports);
    assert.equal(r.converged, true);
    assert.equal(r.desiredVersion, 'v1');
    assert.equal(r.services.length, 1);
    assert.equal(r.services[0]!.state, ServiceState.SERVICE_STATE_RUNNING);
    assert.equal(r.services[0]!.readyReplicas, 1);
    assert.deepEqual(
      r.events.map((e) => e.kind),
      ['image.pulled', 'container.started'],
    );
    assert.equal(rec.latestReport()?.services[0]?.state, ServiceState.SERVICE_STATE_RUNNING);
    await rec.stop();
  });

  test('a steady-state run costs exactly one list call and nothing else', async () => {
    const { rt, rec } = rig();
    rec.setDesired(desired({ replicas: 3 }));
    await rec.idle();
    assert.equal(rt.containers.size, 3);
    rt.resetCalls();
    rec.trigger('resync');
    await rec.idle();
    assert.deepEqual(rt.log, ['list']);
    assert.equal(rt.totalCalls(), 1);
  });

  test('a report is not re-sent when nothing changed', {}, async () => {
    const { reports, rec } = rig();
    rec.setDesired(desired());
    await rec.idle();
    const sent = reports.length;
    assert.ok(sent >= 1);
    rec.trigger('resync');
    await rec.idle();
    assert.equal(reports.length, sent, 'an unchanged run sends nothing');
  });

  test('quiet runs stop reporting, and a change is reported with its events', async () => {
    const { rt, reports, rec } = rig();
    rec.setDesired(desired());
    await rec.idle();
    rec.trigger('resync');
    await rec.idle();
    const sent = reports.length;
    for (let i = 0; i < 3; i++) {
      rec.trigger('resync');
      await rec.idle();
    }
    assert.equal(reports.length, sent, 'repeated unchanged runs send nothing');

    // Someone stops the container: the next run starts it again and reports the event.
    const [c] = rt.byKey('web/web/0');
    c!.state = 'exited';
    rec.trigger('resync');
    await rec.idle();
    assert.equal(reports.length, sent + 1);
    assert.equal(rt.calls.start, 1);
    assert.deepEqual(
      last(reports).events.map((e) => e.kind),
      ['container.restarted'],
    );
    assert.equal(last(reports).services[0]!.state, ServiceState.SERVICE_STATE_RUNNING);
  });

  test('triggers during a run are merged into one more run', async () => {
    const { rt, rec } = rig();
    rec.setDesired(desired());
    await rec.idle();
    rt.resetCalls();
    const release = rt.hold('list');
    rec.trigger('a');
    await flush();
    assert.equal(rt.calls.list, 1, 'the first run is waiting in list()');
    for (let i = 0; i < 5; i++) rec.trigger(`during ${i}`);
    await flush();
    assert.equal(rt.calls.list, 1, 'no second run starts while one is in progress');
    release();
    await rec.idle();
    assert.equal(rt.calls.list, 2, 'five triggers during a run give exactly one more run');
    assert.equal(rt.totalCalls(), 2);
  });

  test('the merged run uses the latest desired state', async () => {
    const { rt, rec } = rig();
    rec.setDesired(desired());
    await rec.idle();
    const release = rt.hold('list');
    rec.trigger('resync');
    await flush();
    rec.setDesired(desired({ env: { V: '2' } }, 'v2', 2));
    rec.setDesired(desired({ env: { V: '3' } }, 'v3', 3));
    release();
    await rec.idle();
    const [c] = rt.byKey('web/web/0');
    assert.equal(rt.byKey('web/web/0').length, 1);
    assert.equal(c!.hash, fromSpec(desired({ env: { V: '3' } }, 'v3', 3), NODE)[0]!.hash);
    assert.equal(rec.desiredVersion, 'v3');
  });

  test('a changed spec replaces the container (the new one created beside the old, then the old removed)', async () => {
    const { rt, reports, rec } = rig();
    rec.setDesired(desired());
    await rec.idle();
    const [old] = rt.byKey('web/web/0');
    rt.resetCalls();
    rec.setDesired(desired({ env: { MODE: 'fast' } }, 'v2', 2));
    await rec.idle();
    const now = rt.byKey('web/web/0');
    assert.equal(now.length, 1);
    assert.notEqual(now[0]!.id, old!.id);
    assert.equal(now[0]!.hash, fromSpec(desired({ env: { MODE: 'fast' } }, 'v2', 2), NODE)[0]!.hash);
    assert.deepEqual(
      rt.log.filter((l) => l !== 'list'),
      ['create web/web/0', `remove ${old!.id}`],
    );
    const r = last(reports);
    assert.equal(r.desiredVersion, 'v2');
    assert.equal(r.services[0]!.revision, 2);
    assert.equal(r.services[0]!.state, ServiceState.SERVICE_STATE_RUNNING);
  });

  test('containers no longer desired are removed', async () => {
    const { rt, rec } = rig();
    rec.setDesired(desired({ replicas: 2 }));
    await rec.idle();
    rec.setDesired({ version: 'empty', deployments: [] });
    await rec.idle();
    assert.equal(rt.containers.size, 0);
    assert.equal(rt.calls.remove, 2);
  });

  test('a failing pull reports FAILED with lastError and schedules a retry with backoff', async () => {
    const { rt, timers, reports, rec } = rig({ images: [] });
    rt.failNext('pull', new RuntimeError('registry unreachable', true));
    rt.failNext('pull', new RuntimeError('registry unreachable', true));
    rec.setDesired(desired());
    await rec.idle();
    let r = last(reports);
    assert.equal(r.converged, false);
    assert.equal(r.services[0]!.state, ServiceState.SERVICE_STATE_FAILED);
    assert.match(r.services[0]!.lastError, /pull failed: registry unreachable/);
    assert.ok(r.events.some((e) => e.kind === 'reconcile.failed' && e.service === 'web'));
    assert.equal(rt.calls.create, 0);
    assert.deepEqual(timers.delays(), [1_000], 'first retry after the base delay');

    timers.advance(999);
    await rec.idle();
    assert.equal(rt.calls.pull, 1, 'no retry before the delay');
    timers.advance(1);
    await rec.idle();
    assert.equal(rt.calls.pull, 2, 'retried once the delay passed');
    assert.deepEqual(timers.delays(), [2_000], 'the second retry waits twice as long');

    timers.advance(2_000);
    await rec.idle();
    r = last(reports);
    assert.equal(r.converged, true);
    assert.equal(r.services[0]!.state, ServiceState.SERVICE_STATE_RUNNING);
    assert.equal(r.services[0]!.lastError, '');
    assert.equal(timers.size, 0, 'no retry pending once converged');

    // Success reset the backoff: the next failure waits the base delay again.
    rt.failNext('list', new RuntimeError('daemon restarting', true));
    rec.trigger('resync');
    await rec.idle();
    assert.deepEqual(timers.delays(), [1_000]);
  });

  test('a terminal error is retried rarely, not with the fast backoff', async () => {
    const { rt, timers, reports, rec } = rig();
    rt.failNext('create', new RuntimeError('invalid reference format', false));
    rec.setDesired(desired());
    await rec.idle();
    assert.equal(last(reports).services[0]!.state, ServiceState.SERVICE_STATE_FAILED);
    assert.match(last(reports).services[0]!.lastError, /create failed: invalid reference format/);
    assert.deepEqual(timers.delays(), [60_000]);
  });

  test('a create that finds the image gone forgets it, so the next run pulls again', async () => {
    const { rt, timers, rec } = rig({ images: [] });
    rec.setDesired(desired());
    await rec.idle();
    assert.equal(rt.calls.pull, 1);
    rt.containers.clear();
    rt.images.clear(); // someone ran `docker image prune -a`
    rec.trigger('resync');
    await rec.idle();
    assert.deepEqual(timers.delays(), [60_000], 'No such image is terminal');
    timers.advance(60_000);
    await rec.idle();
    assert.equal(rt.calls.pull, 2, 'pulled again');
    assert.equal(rt.byKey('web/web/0').length, 1);
  });

  test('stop() prevents further runs: triggers, retries and resyncs do nothing', async () => {
    const { rt, timers, rec } = rig({ images: [] });
    rt.failNext('pull');
    rec.start();
    rec.setDesired(desired());
    await rec.idle();
    assert.ok(timers.size >= 1, 'a retry and a resync are pending');
    await rec.stop();
    assert.equal(timers.size, 0, 'stop clears its timers');
    rt.resetCalls();
    rec.trigger('after stop');
    timers.advance(120_000);
    await rec.idle();
    assert.equal(rt.totalCalls(), 0);
  });

  test('stop() during a run executes no further steps', async () => {
    const { rt, rec } = rig();
    const release = rt.hold('list');
    rec.setDesired(desired());
    await flush();
    const stopped = rec.stop();
    release();
    await stopped;
    assert.equal(rt.calls.create, 0);
    assert.equal(rt.containers.size, 0);
  });

  test('resync timer re-checks periodically and repairs drift', async () => {
    const { rt, timers, rec } = rig();
    rec.start();
    rec.setDesired(desired());
    await rec.idle();
    rt.containers.clear(); // removed behind the agent's back
    rt.resetCalls();
    timers.advance(10_000);
    await rec.idle();
    assert.equal(rt.calls.create, 1);
    assert.equal(rt.byKey('web/web/0').length, 1);
    await rec.stop();
  });

  test('a crash-looping container is restarted at once, then with growing backoff, and reported as crash-loop', async () => {
    const { rt, timers, reports, rec } = rig();
    // Every start "succeeds" but the container exits straight away.
    const start = rt.start.bind(rt);
    rt.start = async (id) => {
      await start(id);
      const c = rt.containers.get(id)!;
      c.state = 'exited';
      c.exitCode = 3;
    };
    rt.addContainer({
      deployment: 'web',
      service: 'web',
      replica: 0,
      hash: fromSpec(desired(), NODE)[0]!.hash,
      image: IMAGE,
      state: 'exited',
      exitCode: 3,
    });
    rec.setDesired(desired());
    await rec.idle();
    assert.equal(rt.calls.start, 1, 'the first restart is immediate');
    assert.equal(last(reports).services[0]!.state, ServiceState.SERVICE_STATE_RESTARTING);
    const gaps: number[] = [];
    for (let i = 0; i < 4; i++) {
      const before = timers.now();
      const starts: number = rt.calls.start;
      while (rt.calls.start === starts) {
        timers.advance(100);
        await rec.idle();
        assert.ok(timers.now() - before < 20_000, 'the next restart came');
      }
      gaps.push(timers.now() - before);
    }
    // Backoff 1 s, 2 s, 4 s, 8 s (jitter pinned to none), within the 100 ms steps of the fake clock.
    assert.deepEqual(
      gaps.map((g) => Math.round(g / 1000)),
      [1, 2, 4, 8],
    );
    const r = last(reports).services[0]!;
    assert.equal(r.state, ServiceState.SERVICE_STATE_CRASH_LOOP);
    assert.match(r.progress, /5 restarts, last exit code 3/);
    assert.equal(r.containers[0]!.restartCount, 5);
    assert.equal(r.containers[0]!.lastExitCode, 3);
    assert.equal(last(reports).converged, false);
  });

  test('a container the agent did not create but which matches is adopted, not recreated', async () => {
    const { rt, rec } = rig();
    const hash = fromSpec(desired(), NODE)[0]!.hash;
    const existing = rt.addContainer({ deployment: 'web', service: 'web', replica: 0, hash, image: IMAGE });
    rec.setDesired(desired());
    await rec.idle();
    assert.deepEqual(rt.log, ['list']);
    assert.deepEqual([...rt.containers.keys()], [existing.id]);
  });
});

describe('Reconciler and Docker exit events', () => {
  test('an announced exit restarts the replica even while the list still says running', async () => {
    const { rt, reports, rec, timers } = rig();
    rec.setDesired(desired());
    await rec.idle();
    const [c] = rt.byKey('web/web/0');
    rt.resetCalls();
    // Docker's list lags its die event: the container still reads as running.
    rec.containerExited(c!.id, 137);
    await rec.idle();
    assert.equal(rt.calls.start, 1, 'restarted on the event, not at the next resync');
    assert.deepEqual(
      last(reports).events.map((e) => e.kind),
      ['container.restarted'],
    );
    // The hint is spent: the next round does not restart it again.
    rec.trigger('resync');
    await rec.idle();
    assert.equal(rt.calls.start, 1);
    // The agent's start stopped nothing: an exit right after it is a crash of the new run, seen
    // at once and restarted when its backoff (1 s) ends, not at the next resync (10 s).
    rec.containerExited(c!.id, 3, timers.now());
    await rec.idle();
    assert.equal(rt.calls.start, 1, 'the second restart waits for its backoff');
    timers.advance(1_100);
    await rec.idle();
    assert.equal(rt.calls.start, 2, 'restarted when the backoff ended');
  });

  test('the exit of the agent’s own restart (Docker stops, then starts) is not a crash; a later one is', () => {
    let now = 1_000;
    const life = new ContainerLifecycle(
      () => now,
      DEFAULT_RESTART_POLICY,
      () => 0,
    );
    life.restarting(['c1']);
    now = 1_500;
    assert.equal(life.exited('c1', 143, 1_200), false, 'the stop inside the restart call is ours');
    assert.equal(life.exited('c1', 3, 1_400), true, 'a second exit within the call is the new run crashing');
    life.restarting(['c1']);
    now = 2_000;
    life.started(['c1']);
    assert.equal(life.exited('c1', 3, 2_050), true, 'an exit after the restart returned is a crash');
    life.restarting(['c1']);
    life.started(['c1']);
    assert.equal(life.exited('c1', 143, 2_000), false);
    life.starting('c1');
    life.started(['c1']);
    assert.equal(life.exited('c1', 3, 2_000), true, 'a plain start stops nothing: its exits are crashes');
  });
});

describe('Reconciler pull progress', () => {
  test('while an image downloads the service is reported PULLING with bytes so far', async () => {
    const { rt, reports, rec } = rig({ images: [] });
    rt.pullSizeBytes = 1_200_000_000;
    const release = rt.hold('pull');
    rec.setDesired(desired());
    for (
      let i = 0;
      i < 50 && !reports.some((r) => r.services[0]?.state === ServiceState.SERVICE_STATE_PULLING);
      i++
    )
      await Promise.resolve();
    const pulling = reports.find((r) => r.services[0]?.state === ServiceState.SERVICE_STATE_PULLING);
    assert.ok(pulling, `a PULLING report: ${reports.map((r) => r.services[0]?.state).join(',')}`);
    assert.equal(pulling.services[0]!.progress, '600 MB of 1.2 GB');
    release();
    await rec.idle();
    assert.equal(last(reports).services[0]!.state, ServiceState.SERVICE_STATE_RUNNING);
    assert.equal(last(reports).services[0]!.progress, '');
  });
});
