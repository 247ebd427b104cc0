import { canonicalJson } from '../../../common/canonical.js';
import type { Clock } from '../../../common/clock.js';
import type { Event, StatusReport } from '../../../proto/gen/fleet/v1/agent.js';
import { parseReplicaKey, parseServiceKey, type ReplicaKey, type ServiceKey } from '../replica-key.js';

/** Events kept for the control plane while it is unreachable; the oldest go first past this. */
export const MAX_PENDING_EVENTS = 1_000;

/** What an event is about: a deployment, one of its services, or the node (both empty). */
export interface EventSubject {
  deployment?: string;
  service?: string;
}

/** The subject of an event about one replica. */
export function aboutReplica(key: ReplicaKey): EventSubject {
  const r = parseReplicaKey(key);
  return r ? { deployment: r.deployment, service: r.service } : {};
}

/** The subject of an event about one service (none when there is none). */
export function aboutService(key: ServiceKey | undefined): EventSubject {
  const s = key ? parseServiceKey(key) : undefined;
  return s ? { deployment: s.deployment, service: s.service } : {};
}

/**
 * The reconciler's side of reporting: events buffered until a report carries them, and status
 * reports sent only when something changed (the same status twice is sent once, unless it carries
 * events). While the control plane is unreachable the events wait, bounded, for the next report.
 */
export class Reporter {
  private events: Event[] = [];
  private lastJson = '';
  private last: StatusReport | undefined;

  constructor(
    private readonly clock: Clock,
    /** False when the report could not be delivered (its events are kept for the next one). */
    private readonly send: (r: StatusReport) => unknown,
  ) {}

  /** Buffers an event that happened at `atMs` (now, unless the caller timed it earlier). */
  event(kind: string, message: string, about: EventSubject = {}, atMs = this.clock.now()) {
    this.events.push({
      atMs,
      kind,
      message,
      deployment: about.deployment ?? '',
      service: about.service ?? '',
    });
  }

  /** Sends `report` with the buffered events, unless it says nothing new. */
  publish(report: Omit<StatusReport, 'events'>) {
    const full: StatusReport = { ...report, events: this.events };
    const json = canonicalJson({ ...full, observedAtMs: 0, events: [] });
    this.last = { ...full, events: [] };
    if (json === this.lastJson && full.events.length === 0) return;
    this.lastJson = json;
    const delivered = this.send(full) !== false;
    // Undelivered events wait for the next connection (bounded: the newest are kept).
    this.events = delivered ? [] : this.events.slice(-MAX_PENDING_EVENTS);
  }

  /** The latest report with every event not yet delivered, for a fresh connection to the control plane. */
  latest(): StatusReport | undefined {
    if (!this.last) return undefined;
    const report = { ...this.last, events: this.events };
    this.events = [];
    return report;
  }
}
