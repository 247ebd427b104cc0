import type { Database } from 'better-sqlite3';

/**
 * Numbered, append-only schema migrations. A migration once released is never edited: add a new
 * one. `user_version` records how far a database file has come, so an old file upgrades in place.
 */
export const migrations: readonly string[] = [
  // 1: nodes, deployments with immutable revisions, per-node assignments, reported status, events.
  `
  CREATE TABLE nodes (
    name          TEXT PRIMARY KEY,
    labels        TEXT NOT NULL DEFAULT '{}',
    agent_version TEXT NOT NULL DEFAULT '',
    facts         TEXT NOT NULL DEFAULT '{}',
    connected     INTEGER NOT NULL DEFAULT 0,
    first_seen_ms INTEGER NOT NULL,
    last_seen_ms  INTEGER NOT NULL,
    acked_version TEXT NOT NULL DEFAULT ''
  ) STRICT;

  CREATE TABLE deployments (
    name             TEXT PRIMARY KEY,
    current_revision INTEGER NOT NULL,
    created_ms       INTEGER NOT NULL,
    updated_ms       INTEGER NOT NULL
  ) STRICT;

  CREATE TABLE revisions (
    deployment TEXT NOT NULL REFERENCES deployments(name),
    revision   INTEGER NOT NULL,
    hash       TEXT NOT NULL,
    file       TEXT NOT NULL,
    source     TEXT NOT NULL,
    spec       TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    PRIMARY KEY (deployment, revision)
  ) STRICT;

  CREATE TRIGGER revisions_immutable BEFORE UPDATE ON revisions
  BEGIN SELECT RAISE(ABORT, 'revisions are immutable'); END;

  CREATE TABLE assignments (
    deployment TEXT NOT NULL REFERENCES deployments(name),
    node       TEXT NOT NULL,
    revision   INTEGER NOT NULL,
    PRIMARY KEY (deployment, node)
  ) STRICT;
  CREATE INDEX assignments_node ON assignments(node);

  CREATE TABLE service_status (
    node        TEXT NOT NULL,
    deployment  TEXT NOT NULL,
    service     TEXT NOT NULL,
    revision    INTEGER NOT NULL,
    state       TEXT NOT NULL,
    ready       INTEGER NOT NULL,
    desired     INTEGER NOT NULL,
    last_error  TEXT NOT NULL,
    containers  TEXT NOT NULL,
    updated_ms  INTEGER NOT NULL,
    PRIMARY KEY (node, deployment, service)
  ) STRICT;

  CREATE TABLE events (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms      INTEGER NOT NULL,
    node       TEXT NOT NULL DEFAULT '',
    deployment TEXT NOT NULL DEFAULT '',
    service    TEXT NOT NULL DEFAULT '',
    kind       TEXT NOT NULL,
    message    TEXT NOT NULL
  ) STRICT;
  CREATE INDEX events_deployment ON events(deployment, id);
  `,
  // 2: the latest host facts per node, and a bounded history of GPU samples.
  `
  CREATE TABLE node_facts (
    node       TEXT PRIMARY KEY,
    facts      TEXT NOT NULL,
    updated_ms INTEGER NOT NULL
  ) STRICT;

  CREATE TABLE gpu_samples (
    id    INTEGER PRIMARY KEY AUTOINCREMENT,
    node  TEXT NOT NULL,
    at_ms INTEGER NOT NULL,
    gpus  TEXT NOT NULL
  ) STRICT;
  CREATE INDEX gpu_samples_node ON gpu_samples(node, id);
  `,
  // 3: each node's latest preflight result (the checks of the newest desired state it received).
  `
  CREATE TABLE node_preflight (
    node            TEXT PRIMARY KEY,
    desired_version TEXT NOT NULL,
    ok              INTEGER NOT NULL,
    checks          TEXT NOT NULL,
    checked_ms      INTEGER NOT NULL
  ) STRICT;
  `,
  // 4: what a service is waiting on (pull progress, the next restart), beside its state.
  `
  ALTER TABLE service_status ADD COLUMN progress TEXT NOT NULL DEFAULT '';
  `,
  // 5: rollouts (batches gated on health) and where each targeted node stands in one.
  `
  CREATE TABLE rollouts (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    deployment      TEXT NOT NULL,
    revision        INTEGER NOT NULL,
    from_revision   INTEGER NOT NULL,
    stable_revision INTEGER NOT NULL,
    kind            TEXT NOT NULL,
    state           TEXT NOT NULL,
    policy          TEXT NOT NULL,
    batch           INTEGER NOT NULL,
    batches         INTEGER NOT NULL,
    reason          TEXT NOT NULL DEFAULT '',
    started_ms      INTEGER NOT NULL,
    updated_ms      INTEGER NOT NULL
  ) STRICT;
  CREATE INDEX rollouts_deployment ON rollouts(deployment, id);

  CREATE TABLE rollout_nodes (
    rollout_id       INTEGER NOT NULL REFERENCES rollouts(id),
    node             TEXT NOT NULL,
    batch            INTEGER NOT NULL,
    state            TEXT NOT NULL,
    pushed_ms        INTEGER NOT NULL DEFAULT 0,
    healthy_since_ms INTEGER NOT NULL DEFAULT 0,
    reason           TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (rollout_id, node)
  ) STRICT;
  `,
  // 6: who applied each revision, and the revision a rollback revision rolled back from (0: none).
  // Revisions are immutable (an UPDATE trigger): both are set when the row is inserted.
  `
  ALTER TABLE revisions ADD COLUMN applied_by TEXT NOT NULL DEFAULT '';
  ALTER TABLE revisions ADD COLUMN rolled_back_from INTEGER NOT NULL DEFAULT 0;
  CREATE INDEX revisions_history ON revisions(deployment, revision DESC);
  `,
  // 7: join tokens (secrets only as SHA-256; single use through used_ms) and the key each node
  // name is bound to by its first enrollment (pki/roles.ts explains the trust model).
  `
  CREATE TABLE join_tokens (
    id          TEXT PRIMARY KEY,
    secret_hash TEXT NOT NULL,
    labels      TEXT NOT NULL DEFAULT '{}',
    created_by  TEXT NOT NULL DEFAULT '',
    created_ms  INTEGER NOT NULL,
    expires_ms  INTEGER NOT NULL,
    used_ms     INTEGER,
    used_by     TEXT NOT NULL DEFAULT '',
    revoked_ms  INTEGER
  ) STRICT;

  CREATE TABLE node_keys (
    node            TEXT PRIMARY KEY,
    key_fingerprint TEXT NOT NULL,
    enrolled_ms     INTEGER NOT NULL,
    renewed_ms      INTEGER NOT NULL,
    serial          TEXT NOT NULL,
    not_after_ms    INTEGER NOT NULL
  ) STRICT;
  `,
  // 8: API tokens for users (secrets only as SHA-256; a name is unique among unrevoked tokens, so
  // an actor name in the event log means one token at a time), and the actor of each event.
  `
  CREATE TABLE api_tokens (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    role         TEXT NOT NULL,
    secret_hash  TEXT NOT NULL,
    created_ms   INTEGER NOT NULL,
    created_by   TEXT NOT NULL DEFAULT '',
    last_used_ms INTEGER,
    revoked_ms   INTEGER
  ) STRICT;
  CREATE UNIQUE INDEX api_tokens_name ON api_tokens(name) WHERE revoked_ms IS NULL;
  ALTER TABLE events ADD COLUMN actor TEXT NOT NULL DEFAULT '';
  `,
  // 9: secrets. Every value ever set is kept sealed (AES-256-GCM under a key outside this file) by
  // its fingerprint, because a revision pins the version it was applied with; \`secrets\` names the
  // current version of each.
  `
  CREATE TABLE secret_values (
    name        TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    sealed      BLOB NOT NULL,
    size        INTEGER NOT NULL,
    shape       TEXT NOT NULL DEFAULT '{}',
    created_ms  INTEGER NOT NULL,
    created_by  TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (name, fingerprint)
  ) STRICT;
  CREATE TABLE secrets (
    name        TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    created_ms  INTEGER NOT NULL,
    updated_ms  INTEGER NOT NULL,
    updated_by  TEXT NOT NULL DEFAULT '',
    FOREIGN KEY (name, fingerprint) REFERENCES secret_values(name, fingerprint)
  ) STRICT;
  `,
  // 10: retention (retention/policy.ts) deletes by age in bounded batches: events and GPU samples
  // by their time, so a pass reads only the rows it deletes; rollouts by when they last changed.
  `
  CREATE INDEX events_at ON events(at_ms);
  CREATE INDEX gpu_samples_at ON gpu_samples(at_ms);
  CREATE INDEX rollouts_updated ON rollouts(updated_ms);
  `,
];

/** Applies every migration past the file's `user_version`, each in its own transaction. */
export function migrate(db: Database): number {
  const current = db.pragma('user_version', { simple: true }) as number;
  if (current > migrations.length) {
    throw new Error(
      `database schema v${current} is newer than this fleet (v${migrations.length}); upgrade fleet`,
    );
  }
  for (let v = current; v < migrations.length; v++) {
    db.transaction(() => {
      db.exec(migrations[v]!);
      db.pragma(`user_version = ${v + 1}`);
    })();
  }
  return migrations.length;
}
