/**
 * Secret references in config string values: `${env:NAME}` and `${file:/path}`.
 * A file's content is trimmed of its trailing newline. References are resolved
 * before validation, so a missing secret is reported with its config path.
 */
import { readFileSync } from 'node:fs';

const REF = /\$\{(env|file):([^}]+)\}/g;

export interface RefProblem {
  path: string;
  message: string;
}

export interface ResolvedRefs {
  value: unknown;
  problems: RefProblem[];
  /** Values that came from references; the logger redacts them. */
  secrets: string[];
}

export function resolveRefs(value: unknown, env: NodeJS.ProcessEnv = process.env): ResolvedRefs {
  const problems: RefProblem[] = [];
  const secrets: string[] = [];

  const resolveString = (s: string, path: string): string =>
    s.replace(REF, (whole, kind: string, ref: string) => {
      if (kind === 'env') {
        const v = env[ref];
        if (v === undefined) {
          problems.push({ path, message: `environment variable ${ref} is not set (referenced as ${whole})` });
          return '';
        }
        secrets.push(v);
        return v;
      }
      try {
        const v = readFileSync(ref, 'utf8').replace(/\r?\n$/, '');
        secrets.push(v);
        return v;
      } catch (err) {
        problems.push({ path, message: `cannot read secret file ${ref}: ${(err as NodeJS.ErrnoException).code ?? String(err)}` });
        return '';
      }
    });

  const walk = (v: unknown, path: string): unknown => {
    if (typeof v === 'string') return v.includes('${') ? resolveString(v, path) : v;
    if (Array.isArray(v)) return v.map((item, i) => walk(item, `${path}[${i}]`));
    if (v && typeof v === 'object') {
      const out: Record<string, unknown> = {};
      for (const [k, child] of Object.entries(v)) out[k] = walk(child, path ? `${path}.${k}` : k);
      return out;
    }
    return v;
  };

  return { value: walk(value, ''), problems, secrets: secrets.filter((s) => s.length > 0) };
}
