/**
 * Finds files that are complete, per the inbox's completion mode:
 *  - quiet: the same size and mtime observed for at least quietMs of wall clock
 *    (mtime age alone is not enough: SFTP clients may preserve an old mtime while
 *    still writing);
 *  - marker: `<file><suffix>` or `<stem><suffix>` exists (a.csv.done, a.done);
 *  - rename: any file not matching `ignore` (the sender writes under a temporary name).
 * Files come back oldest first, so WMS transactions are read in the order written.
 */
import { readdir, stat } from 'node:fs/promises';
import { extname, join } from 'node:path';

export interface ScanOptions {
  path: string;
  include: string[];
  ignore: string[];
  mode: 'quiet' | 'marker' | 'rename';
  quietMs: number;
  markerSuffixes: string[];
}

export interface ReadyFile {
  name: string;
  path: string;
  size: number;
  mtimeMs: number;
  /** Marker files to remove once the file is archived or rejected. */
  markers: string[];
}

export function globToRegExp(glob: string): RegExp {
  const re = glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${re}$`);
}

export class Scanner {
  private readonly include: RegExp[];
  private readonly ignore: RegExp[];
  /** quiet mode: last observation per file. */
  private readonly seen = new Map<string, { size: number; mtimeMs: number; since: number }>();
  /** Files present in the last scan that are not ready yet (for the status page). */
  waiting = 0;

  constructor(private readonly o: ScanOptions) {
    this.include = o.include.map(globToRegExp);
    this.ignore = o.ignore.map(globToRegExp);
  }

  async scan(now = Date.now()): Promise<ReadyFile[]> {
    const entries = await readdir(this.o.path, { withFileTypes: true });
    const names = new Set(entries.filter((e) => e.isFile()).map((e) => e.name));
    const ready: ReadyFile[] = [];
    let waiting = 0;
    for (const name of names) {
      if (!this.wanted(name)) continue;
      const full = join(this.o.path, name);
      let st;
      try {
        st = await stat(full);
      } catch {
        continue; // renamed or removed between readdir and stat
      }
      const file: ReadyFile = { name, path: full, size: st.size, mtimeMs: st.mtimeMs, markers: [] };
      if (this.o.mode === 'rename') ready.push(file);
      else if (this.o.mode === 'marker') {
        const stem = name.slice(0, name.length - extname(name).length);
        file.markers = this.o.markerSuffixes.flatMap((s) => [name + s, stem + s]).filter((m, i, a) => names.has(m) && a.indexOf(m) === i);
        if (file.markers.length) ready.push(file);
        else waiting++;
      } else {
        const prev = this.seen.get(name);
        if (!prev || prev.size !== st.size || prev.mtimeMs !== st.mtimeMs) {
          this.seen.set(name, { size: st.size, mtimeMs: st.mtimeMs, since: now });
          waiting++;
        } else if (now - prev.since >= this.o.quietMs) ready.push(file);
        else waiting++;
      }
    }
    for (const name of this.seen.keys()) if (!names.has(name)) this.seen.delete(name);
    this.waiting = waiting;
    return ready.sort((a, b) => a.mtimeMs - b.mtimeMs || (a.name < b.name ? -1 : 1));
  }

  /** Forget a file's observation (after it moved, or when it changed while read). */
  forget(name: string): void {
    this.seen.delete(name);
  }

  private wanted(name: string): boolean {
    if (this.ignore.some((r) => r.test(name))) return false;
    if (this.o.mode === 'marker' && this.o.markerSuffixes.some((s) => name.endsWith(s))) return false;
    return this.include.some((r) => r.test(name));
  }
}
