/**
 * One daemon per data dir. LMDB itself allows several processes, but two
 * gateways on one store would hand out the same sequences and send the same
 * batches twice. The lock is a file holding the owner's pid, created with O_EXCL;
 * a lock whose process is gone (SIGKILL, power loss) is taken over.
 */
import { closeSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { PlantgateError } from '../errors.js';

const LOCK_FILE = 'plantgate.pid';
/** Locks this process holds: a lock file with our own pid is ours only if listed here (else a reused pid, e.g. pid 1 in a container). */
const held = new Set<string>();

export function lockDataDir(dataDir: string): () => void {
  const file = join(dataDir, LOCK_FILE);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(file, 'wx');
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      held.add(file);
      return () => {
        held.delete(file);
        rmSync(file, { force: true });
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const owner = Number(readFileSync(file, 'utf8').trim());
      const ours = owner === process.pid;
      if ((ours && held.has(file)) || (!ours && Number.isInteger(owner) && owner > 0 && alive(owner))) {
        throw new PlantgateError('PG_ERR_BUFFER_LOCKED', `data dir ${dataDir} is in use by another plantgate (pid ${owner}); stop it first, or give this one its own gateway.dataDir`);
      }
      rmSync(file, { force: true });
    }
  }
  throw new PlantgateError('PG_ERR_BUFFER_LOCKED', `could not take the lock ${file}; another plantgate is starting on the same data dir`);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
