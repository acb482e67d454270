/**
 * Capacity limits: pending events, store bytes and a free-disk floor. lmdb-js grows
 * its map as needed (mapSize is no limit), so the disk is the real one and these
 * limits are what keeps a long WAN outage from filling it. When a limit is reached,
 * intake is refused (sources stop acknowledging); it resumes with some headroom
 * (5 %) so acknowledgements don't flap at the edge.
 */
import { statfs } from 'node:fs/promises';
import type { BufferConfig } from '../config/schema.js';

const RESUME_RATIO = 0.95;

export interface Usage {
  events: number;
  bytes: number;
}

export class CapacityGuard {
  private full: string | undefined;
  freeDiskBytes = Number.POSITIVE_INFINITY;

  constructor(
    private readonly config: Pick<BufferConfig, 'maxEvents' | 'maxBytes' | 'minFreeDiskBytes'>,
    private readonly dataDir: string,
  ) {}

  async refreshDisk(): Promise<void> {
    try {
      const s = await statfs(this.dataDir);
      this.freeDiskBytes = s.bavail * s.bsize;
    } catch {
      // Keep the last reading; a statfs failure must not stop intake by itself.
    }
  }

  /** Re-evaluates the state; returns the reason intake is refused, or undefined. */
  evaluate(usage: Usage): string | undefined {
    const c = this.config;
    const resume = this.full !== undefined ? RESUME_RATIO : 1;
    if (usage.events >= c.maxEvents * resume) {
      this.full = eventsMessage(usage.events, c.maxEvents);
    } else if (usage.bytes >= c.maxBytes * resume) {
      this.full = `buffer holds ${usage.bytes} bytes (limit buffer.maxBytes = ${c.maxBytes}); waiting for the uplink to drain`;
    } else if (this.freeDiskBytes < c.minFreeDiskBytes / resume) {
      this.full = `data disk has ${this.freeDiskBytes} bytes free (floor buffer.minFreeDiskBytes = ${c.minFreeDiskBytes}); free disk space or let the uplink drain`;
    } else {
      this.full = undefined;
    }
    return this.full;
  }

  /** The refusal reason if adding `adding` events to the `held` ones would exceed the event limit. */
  eventLimit(held: number, adding: number): string | undefined {
    return held + adding > this.config.maxEvents ? eventsMessage(held, this.config.maxEvents) : undefined;
  }

  get reason(): string | undefined {
    return this.full;
  }
}

function eventsMessage(events: number, max: number): string {
  return `buffer holds ${events} events (limit buffer.maxEvents = ${max}); waiting for the uplink to drain`;
}
