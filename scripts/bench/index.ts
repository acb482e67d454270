/**
 * `npm run bench [-- [--quick] [ingest drain latency startup filedrop opcua]]`
 *
 * Runs the named benches (default: all, in the order below), prints each figure
 * as an aligned line, then one Markdown table of everything for README's
 * Performance section, with the machine it ran on. A bench that throws is
 * reported and the run goes on; the exit code is 1 if any failed.
 */
import { cpus, loadavg, totalmem } from 'node:os';
import type { BenchFigure } from './figure.js';

const ALL = ['ingest', 'drain', 'latency', 'startup', 'filedrop', 'opcua'] as const;

type BenchModule = { bench(opts: { quick: boolean }): Promise<BenchFigure[]> };

function formatValue(f: BenchFigure): string {
  const v = Number.isInteger(f.value) ? f.value.toLocaleString('en-US') : String(f.value);
  return `${v} ${f.unit}`;
}

function line(f: BenchFigure): string {
  return `  ${f.name.padEnd(66)} ${formatValue(f).padStart(18)}  ${(f.target ?? '').padEnd(20)}  ${f.note ?? ''}`.trimEnd();
}

function cell(s: string): string {
  return s.replace(/\|/g, '\\|');
}

function machine(): string {
  const c = cpus();
  return `${c.length} CPUs (${c[0]?.model ?? 'unknown'}), ${Math.round(totalmem() / 1024 ** 3)} GiB RAM, Node ${process.version}, ${process.platform}/${process.arch}`;
}

function load(): string {
  return loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');
}

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  const quick = args.includes('--quick');
  const unknown = args.filter((a) => a.startsWith('-') && a !== '--quick');
  const names = args.filter((a) => !a.startsWith('-'));
  const bad = names.filter((n) => !(ALL as readonly string[]).includes(n));
  if (unknown.length > 0 || bad.length > 0) {
    process.stderr.write(`unknown ${[...unknown, ...bad].join(', ')}\nusage: npm run bench -- [--quick] [${ALL.join(' ')}]\n`);
    return 2;
  }
  const selected = names.length > 0 ? ALL.filter((n) => names.includes(n)) : [...ALL];

  console.log(`plantgate bench${quick ? ' (quick)' : ''}: ${selected.join(', ')}`);
  console.log(`machine: ${machine()}`);
  const all: { bench: string; figure: BenchFigure }[] = [];
  const failed: { bench: string; error: string }[] = [];
  for (const name of selected) {
    const t0 = performance.now();
    console.log(`\n== ${name} (load average ${load()})`);
    try {
      const mod = (await import(`./${name}.js`)) as Partial<BenchModule>;
      if (typeof mod.bench !== 'function') throw new Error(`scripts/bench/${name}.ts exports no bench(opts) function`);
      const figures = await mod.bench({ quick });
      for (const f of figures) {
        console.log(line(f));
        all.push({ bench: name, figure: f });
      }
      console.log(`  (${name}: ${((performance.now() - t0) / 1000).toFixed(1)} s, load average after ${load()})`);
    } catch (err) {
      const e = err as { code?: string; message?: string; stack?: string };
      const msg = e.code === 'ERR_MODULE_NOT_FOUND' ? `scripts/bench/${name}.ts is missing (not built): ${e.message}` : e instanceof SyntaxError ? `scripts/bench/${name}.ts could not be loaded: ${e.message}` : (e.stack ?? String(err));
      console.log(`  FAILED: ${name}: ${msg}`);
      failed.push({ bench: name, error: (e.message ?? String(err)).split('\n')[0]! });
    }
  }

  console.log(`\n## Performance (${quick ? 'quick run' : 'full run'}; ${machine()})\n`);
  console.log('| bench | figure | measured | target | note |');
  console.log('|---|---|---:|---|---|');
  for (const { bench, figure: f } of all) console.log(`| ${bench} | ${cell(f.name.trim())} | ${cell(formatValue(f))} | ${cell(f.target ?? '')} | ${cell(f.note ?? '')} |`);
  for (const f of failed) console.log(`| ${f.bench} | FAILED | | | ${cell(f.error)} |`);
  if (failed.length > 0) console.log(`\n${failed.length} bench(es) failed: ${failed.map((f) => f.bench).join(', ')}`);
  return failed.length > 0 ? 1 : 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  },
);
