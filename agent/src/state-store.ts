import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { DesiredState } from '../../proto/gen/fleet/v1/agent.js';

/**
 * The last desired state the control plane sent, on local disk, so the agent keeps enforcing it
 * across its own restarts while the control plane is away. Written atomically (temp file, fsync,
 * rename, fsync of the folder): a crash leaves the old state or the new one, never half of either.
 */
export class StateStore {
  private readonly file: string;

  constructor(dir: string) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    this.file = join(dir, 'desired.json');
  }

  load(): DesiredState | undefined {
    let text: string;
    try {
      text = readFileSync(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    return DesiredState.fromJSON(JSON.parse(text));
  }

  /** Moves an unreadable state file out of the way; returns where it went. */
  setAside(): string {
    const aside = `${this.file}.corrupt-${Date.now()}`;
    renameSync(this.file, aside);
    return aside;
  }

  save(state: DesiredState) {
    const tmp = `${this.file}.tmp-${process.pid}`;
    const fd = openSync(tmp, 'w', 0o600);
    try {
      writeSync(fd, JSON.stringify(DesiredState.toJSON(state)));
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, this.file);
    const dfd = openSync(dirname(this.file), 'r');
    try {
      fsyncSync(dfd);
    } finally {
      closeSync(dfd);
    }
  }
}
