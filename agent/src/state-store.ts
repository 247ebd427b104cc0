import { mkdirSync, readFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { DesiredState } from '../../proto/gen/fleet/v1/agent.js';
import { writeFileAtomic } from './atomic-file.js';

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
    writeFileAtomic(this.file, JSON.stringify(DesiredState.toJSON(state)));
  }
}
