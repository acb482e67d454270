/**
 * Moving a finished file out of the inbox: to `archive/YYYY-MM-DD/` once every
 * record is committed, or to `error/` with `<name>.error.json` beside it. A move is
 * a rename (atomic on one filesystem); across filesystems it is copy + fsync + unlink,
 * so a crash leaves at worst a second copy, never a lost file. Names that already
 * exist in the target (the same file dropped twice) get a numeric suffix.
 */
import { constants } from 'node:fs';
import { copyFile, mkdir, open, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { basename, extname, join } from 'node:path';
import type { RecordProblem } from './records.js';

export async function archiveFile(src: string, archiveDir: string, now = new Date()): Promise<string> {
  const day = `${now.getFullYear()}-${String(now.getMonth() + 1).padStart(2, '0')}-${String(now.getDate()).padStart(2, '0')}`;
  const dir = join(archiveDir, day);
  await mkdir(dir, { recursive: true });
  const dest = await freeName(dir, basename(src));
  await move(src, dest);
  return dest;
}

export interface ErrorReport {
  file: string;
  inbox: string;
  sha256?: string;
  at: string;
  /** rejected: the file is in error/ and nothing of it was committed; partial: good records committed, file archived. */
  outcome: 'rejected' | 'partial';
  summary: string;
  records: { total: number; bad: number; committed: number };
  problems: RecordProblem[];
  /** More bad records exist than are listed (maxReportedProblems). */
  truncated: boolean;
}

/** Writes the report first, then moves the file, so error/ never holds a file without its reason. */
export async function rejectFile(src: string | undefined, errorDir: string, report: ErrorReport): Promise<string> {
  await mkdir(errorDir, { recursive: true });
  const dest = await freeName(errorDir, report.file, src ? undefined : '.error.json');
  const reportPath = `${dest}.error.json`;
  await writeAtomic(reportPath, `${JSON.stringify(report, null, 2)}\n`);
  if (src) await move(src, dest);
  return reportPath;
}

async function writeAtomic(path: string, text: string): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, text);
  await rename(tmp, path);
}

async function move(src: string, dest: string): Promise<void> {
  try {
    await rename(src, dest);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
    await copyFile(src, dest, constants.COPYFILE_EXCL);
    const fh = await open(dest, 'r');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
    await unlink(src);
  }
}

/** `name`, else `name-2.ext`, `name-3.ext` ... (checked with the report suffix when given). */
async function freeName(dir: string, name: string, suffix = ''): Promise<string> {
  const ext = extname(name);
  const stem = name.slice(0, name.length - ext.length);
  for (let n = 1; n < 10_000; n++) {
    const candidate = join(dir, n === 1 ? name : `${stem}-${n}${ext}`);
    if (!(await exists(candidate + suffix)) && !(await exists(`${candidate}.error.json`))) return candidate;
  }
  return join(dir, `${stem}-${Date.now()}${ext}`);
}

async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}
