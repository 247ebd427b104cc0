import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { freshStores } from '../fixtures.js';
import { historyRig, rolling } from '../history-rig.js';

const freshStore = freshStores('fleet-history-');

describe('revisions: who applied them, what became of them, the diff', () => {
  test('the repository stores who and what a rollback rolled back from at insert; rows stay immutable', () => {
    const store = freshStore();
    const base = { deployment: 'd', hash: 'h', file: 'f', source: 's', spec: {} as never, createdMs: 1 };
    store.deployments.addRevision(base);
    store.deployments.addRevision({ ...base, appliedBy: 'alice', rolledBackFrom: 1 });
    const [two, one] = store.deployments.history('d', 10);
    assert.deepEqual(
      [two?.appliedBy, two?.rolledBackFrom, one?.appliedBy, one?.rolledBackFrom],
      ['alice', 1, '', 0],
    );
    assert.deepEqual(
      store.deployments.history('d', 10, 2).map((r) => r.revision),
      [1],
    );
    assert.throws(() => store.db.exec(`UPDATE revisions SET applied_by = 'mallory'`), /immutable/);
    store.close();
  });

  test('GET …/revisions lists newest first with who, file, hash and outcome; paginates with before', async () => {
    const r = await historyRig(freshStore());
    const as = (name: string, tag: string) =>
      r.as(name)({ method: 'POST', url: '/v1/apply', payload: { source: rolling(tag), file: 'web.yml' } });
    assert.equal((await as('alice', '1')).statusCode, 200);
    r.finish('succeeded');
    assert.equal((await as('bob', '2')).statusCode, 200);
    r.finish('halted');
    assert.equal((await r.apply(rolling('3'))).statusCode, 200);

    const res = await r.inject({ method: 'GET', url: '/v1/deployments/web/revisions' });
    assert.equal(res.statusCode, 200);
    const body = res.json();
    assert.equal(body.current, 3);
    assert.deepEqual(
      body.revisions.map((v: { revision: number; appliedBy: string; outcome: string }) => [
        v.revision,
        v.appliedBy,
        v.outcome,
      ]),
      [
        [3, 'test-admin', 'rolling'],
        [2, 'bob', 'failed'],
        [1, 'alice', 'stable'],
      ],
    );
    assert.equal(body.revisions[0].file, 'web.yml');
    assert.match(body.revisions[0].hash, /^[0-9a-f]{64}$/);
    assert.equal(body.next, undefined);

    const page = (await r.inject({ method: 'GET', url: '/v1/deployments/web/revisions?limit=2' })).json();
    assert.deepEqual(
      page.revisions.map((v: { revision: number }) => v.revision),
      [3, 2],
    );
    assert.equal(page.next, 2);
    const older = (
      await r.inject({ method: 'GET', url: `/v1/deployments/web/revisions?limit=2&before=${page.next}` })
    ).json();
    assert.deepEqual(
      older.revisions.map((v: { revision: number }) => v.revision),
      [1],
    );
    assert.equal(older.next, undefined);
    await r.close();
  });

  test('GET …/revisions/:n carries the unified diff against the revision before', async () => {
    const r = await historyRig(freshStore());
    await r.seed('1', '2');
    const two = (await r.inject({ method: 'GET', url: '/v1/deployments/web/revisions/2' })).json();
    assert.equal(two.previous, 1);
    assert.match(two.diff, /^--- web\.yml \(revision 1\)$/m);
    assert.match(two.diff, /^\+\+\+ web\.yml \(revision 2\)$/m);
    assert.match(two.diff, /^- {4}image: 127\.0\.0\.1:5000\/x\/web:1$/m);
    assert.match(two.diff, /^\+ {4}image: 127\.0\.0\.1:5000\/x\/web:2$/m);
    assert.equal(two.source, rolling('2'));
    const one = (await r.inject({ method: 'GET', url: '/v1/deployments/web/revisions/1' })).json();
    assert.equal(one.previous, 0);
    assert.match(one.diff, /^--- \/dev\/null$/m);
    await r.close();
  });

  test('unknown deployment or revision: 404 JSON; a bad query: 400; appliedBy over 64 chars: 400', async () => {
    const r = await historyRig(freshStore());
    const get = (url: string) => r.inject({ method: 'GET', url });
    assert.equal((await get('/v1/deployments/nope/revisions')).statusCode, 404);
    await r.apply(rolling('1'));
    const missing = await get('/v1/deployments/web/revisions/9');
    assert.equal(missing.statusCode, 404);
    assert.match(missing.json().message, /revision 9 does not exist/);
    assert.equal((await get('/v1/deployments/nope/revisions/1')).statusCode, 404);
    assert.equal((await get('/v1/deployments/web/revisions?limit=0')).statusCode, 400);
    assert.equal((await r.apply(rolling('2'), { appliedBy: 'x'.repeat(65) })).statusCode, 400);
    assert.equal(r.store.deployments.current('web')?.revision, 1);
    await r.close();
  });

  test('an automatic rollback revision records what it rolled back from and who (fleet)', async () => {
    const r = await historyRig(freshStore());
    await r.seed('1', '2');
    // Batch 1's node goes silent: unreachable past the 15 s bound, the batch fails, auto_rollback.
    r.online.clear();
    for (let i = 0; i < 25; i++) r.clock.advance(1_000);
    const rev = r.store.deployments.current('web')!;
    assert.equal(rev.revision, 3);
    assert.equal(rev.rolledBackFrom, 2);
    assert.equal(rev.appliedBy, 'fleet (auto rollback)');
    assert.equal(r.store.rollouts.outcome('web', 2), 'rolled-back');
    const list = (await r.inject({ method: 'GET', url: '/v1/deployments/web/revisions' })).json();
    assert.equal(list.revisions[1].outcome, 'rolled back');
    assert.equal(list.revisions[0].rolledBackFrom, 2);
    await r.close();
  });
});

describe('POST /v1/deployments/:name/rollback', () => {
  test('--to N: a new revision with N’s playbook, kind rollback, rolled out with N’s own serial', async () => {
    const r = await historyRig(freshStore());
    await r.apply(rolling('1'));
    r.finish();
    await r.apply(rolling('2', ''));
    r.finish();
    const res = await r.as('carol')({
      method: 'POST',
      url: '/v1/deployments/web/rollback',
      payload: { to: 1, appliedBy: 'carol-os-user' },
    });
    assert.equal(res.statusCode, 200, res.body);
    const body = res.json();
    assert.equal(body.revision, 3);
    assert.equal(body.previousRevision, 2);
    assert.equal(body.to, 1);
    const rev = r.store.deployments.current('web')!;
    assert.equal(rev.rolledBackFrom, 2);
    assert.equal(rev.appliedBy, 'carol', 'the actor is the token, not what the CLI says');
    const applied = r.store.events.list(20, 'web').find((e) => e.kind === 'deployment.applied')!;
    assert.deepEqual([applied.kind, applied.actor], ['deployment.applied', 'carol']);
    assert.match(applied.message, /\(local user carol-os-user\)$/);
    assert.equal(rev.hash, r.store.deployments.revision('web', 1)!.hash);
    const rollout = r.store.rollouts.get(body.rollout)!;
    assert.equal(rollout.kind, 'rollback');
    assert.equal(rollout.batches, 2, 'serial 1 over two nodes, as revision 1 says');
    assert.equal(rollout.fromRevision, 2);
    await r.close();
  });

  test('default target: the newest stable revision whose content is not the current one', async () => {
    const r = await historyRig(freshStore());
    await r.seed('1', '2');
    r.finish();
    await r.apply(rolling('3'));
    r.finish('halted');
    const res = await r.inject({ method: 'POST', url: '/v1/deployments/web/rollback', payload: {} });
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(res.json().to, 2);
    assert.equal(r.store.deployments.current('web')!.revision, 4);
    await r.close();
  });

  test('bad input stores nothing: no such revision 404, nothing stable 409, a running rollout 409', async () => {
    const r = await historyRig(freshStore());
    const post = (payload: object, name = 'web') =>
      r.inject({ method: 'POST', url: `/v1/deployments/${name}/rollback`, payload });
    assert.equal((await post({}, 'nope')).statusCode, 404);
    await r.apply(rolling('1'));
    r.finish('halted');
    const missing = await post({ to: 99 });
    assert.equal(missing.statusCode, 404);
    assert.match(missing.json().message, /revision 99 does not exist \(revisions 1 to 1\)/);
    const none = await post({});
    assert.equal(none.statusCode, 409);
    assert.equal(none.json().error, 'no_stable_revision');
    assert.equal((await post({ too: 1 })).statusCode, 400);
    assert.equal(r.store.deployments.current('web')!.revision, 1);

    r.finish('succeeded');
    await r.apply(rolling('2'));
    const busy = await post({ to: 1 });
    assert.equal(busy.statusCode, 409);
    assert.match(busy.json().message, /rollout of revision 2 is running.*--expect-revision 2/);
    assert.equal(r.store.deployments.current('web')!.revision, 2);
    const forced = await post({ to: 1, expectRevision: 2 });
    assert.equal(forced.statusCode, 200, forced.body);
    assert.equal(r.store.rollouts.outcome('web', 2), 'superseded');
    await r.close();
  });
});

describe('applies to one deployment are serialized', () => {
  test('two concurrent applies of different content: one 200, one 409 while the first rolls out', async () => {
    const r = await historyRig(freshStore());
    const [a, b] = await Promise.all([r.apply(rolling('1')), r.apply(rolling('2'))]);
    assert.deepEqual([a.statusCode, b.statusCode].sort(), [200, 409]);
    const loser = a.statusCode === 409 ? a : b;
    assert.match(loser.json().message, /rollout of revision 1 is running/);
    assert.equal(r.store.deployments.current('web')!.revision, 1);
    assert.equal(r.store.deployments.history('web', 10).length, 1, 'the refused one stored nothing');
    assert.equal(r.store.rollouts.latest('web')!.state, 'running');
    await r.close();
  });

  test('with expectRevision naming the current revision, the second supersedes the first’s rollout', async () => {
    const r = await historyRig(freshStore());
    assert.equal((await r.apply(rolling('1'))).statusCode, 200);
    r.finish();
    const [a, b] = await Promise.all([
      r.apply(rolling('2'), { expectRevision: 1 }),
      r.apply(rolling('3'), { expectRevision: 2 }),
    ]);
    assert.equal(a.statusCode, 200, a.body);
    assert.equal(b.statusCode, 200, b.body);
    assert.equal(r.store.rollouts.outcome('web', 2), 'superseded');
    assert.equal(r.store.rollouts.outcome('web', 3), 'running');
    // A stale expectation is refused, whatever runs.
    const stale = await r.apply(rolling('4'), { expectRevision: 2 });
    assert.equal(stale.statusCode, 409);
    assert.match(stale.json().message, /web is at revision 3, not 2/);
    await r.close();
  });
});
