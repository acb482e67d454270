/**
 * Loads one YAML file, resolves secret references and validates it against the
 * schema. Every problem is reported at once, each with its key path and why.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Ajv, type ErrorObject } from 'ajv';
import { parseDocument } from 'yaml';
import { PlantgateError } from '../errors.js';
import { resolveRefs } from './refs.js';
import { ConfigSchema, type Config } from './schema.js';

export const DEFAULT_CONFIG_PATH = fileURLToPath(new URL('../../../config/gateway.yaml', import.meta.url));

export interface ConfigProblem {
  path: string;
  message: string;
}

export interface LoadedConfig {
  config: Config;
  /** Secret values resolved from references, for log redaction. */
  secrets: string[];
  file: string;
}

// verbose: errors carry the offending value and the schema, for messages that name both.
const ajv = new Ajv({ allErrors: true, useDefaults: true, strict: false, verbose: true });
const validate = ajv.compile<Config>(ConfigSchema);

/** Parses and validates config text; throws PG_ERR_CONFIG_INVALID listing every problem. */
export function parseConfig(text: string, file = '<config>', env: NodeJS.ProcessEnv = process.env): LoadedConfig {
  const doc = parseDocument(text, { prettyErrors: true });
  if (doc.errors.length > 0) {
    const problems = doc.errors.map((e) => ({ path: `line ${e.linePos?.[0]?.line ?? '?'}`, message: e.message.split('\n')[0] ?? e.message }));
    throw invalid(file, problems);
  }
  const raw = doc.toJS() ?? {};
  if (typeof raw !== 'object' || Array.isArray(raw)) throw invalid(file, [{ path: '(root)', message: 'must be a mapping of sections (gateway, buffer, uplink, web, sources, log)' }]);
  const { value, problems: refProblems, secrets } = resolveRefs(raw, env);
  const problems: ConfigProblem[] = [...refProblems];
  // A missing secret also fails the schema at the same key; report it once, as the missing secret.
  const refPaths = new Set(refProblems.map((p) => p.path));
  if (!validate(value)) problems.push(...describeAjvErrors(validate.errors ?? []).filter((p) => !refPaths.has(p.path)));
  problems.push(...crossChecks(value as Config));
  if (problems.length > 0) throw invalid(file, problems);
  return { config: value as Config, secrets, file };
}

export function loadConfig(file: string = DEFAULT_CONFIG_PATH, env: NodeJS.ProcessEnv = process.env): LoadedConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new PlantgateError('PG_ERR_CONFIG_READ', `cannot read config file ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { file });
  }
  return parseConfig(text, file, env);
}

function invalid(file: string, problems: ConfigProblem[]): PlantgateError {
  const lines = problems.map((p) => `  ${p.path}: ${p.message}`).join('\n');
  return new PlantgateError('PG_ERR_CONFIG_INVALID', `config ${file} has ${problems.length} problem(s):\n${lines}`, { file, problems });
}

function keyPath(instancePath: string): string {
  return instancePath
    .split('/')
    .slice(1)
    .map((seg) => (/^\d+$/.test(seg) ? `[${seg}]` : `.${seg.replace(/~1/g, '/').replace(/~0/g, '~')}`))
    .join('')
    .replace(/^\./, '');
}

function join(base: string, key: string): string {
  return base ? `${base}.${key}` : key;
}

function describeAjvErrors(errors: ErrorObject[]): ConfigProblem[] {
  const out: ConfigProblem[] = [];
  const seen = new Set<string>();
  for (const e of errors) {
    const base = keyPath(e.instancePath);
    let problem: ConfigProblem;
    switch (e.keyword) {
      case 'additionalProperties': {
        const key = String(e.params['additionalProperty']);
        const known = Object.keys(schemaAt(e.parentSchema)?.properties ?? {});
        const near = closest(key, known);
        problem = { path: join(base, key), message: `unknown key${near ? ` (did you mean '${near}'?)` : ''}; allowed: ${known.join(', ')}` };
        break;
      }
      case 'required':
        problem = { path: join(base, String(e.params['missingProperty'])), message: 'is required' };
        break;
      case 'enum':
        problem = { path: base || '(root)', message: `must be one of ${(e.params['allowedValues'] as unknown[]).join(', ')}` };
        break;
      case 'const':
        problem = { path: base || '(root)', message: `must be ${JSON.stringify(e.params['allowedValue'])}` };
        break;
      case 'anyOf': {
        const literals = ((e.schema as { const?: unknown }[]) ?? []).map((s) => s.const).filter((v) => v !== undefined);
        problem = { path: base || '(root)', message: literals.length ? `must be one of ${literals.join(', ')}` : 'does not match any allowed form' };
        break;
      }
      case 'pattern': {
        const description = (e.parentSchema as { description?: string } | undefined)?.description;
        problem = { path: base || '(root)', message: `${JSON.stringify(e.data)} is not valid${description ? `: ${description}` : ` (must match ${e.params['pattern']})`}` };
        break;
      }
      default:
        problem = { path: base || '(root)', message: e.message ?? e.keyword };
    }
    // A union of literals reports each branch's const failure, then anyOf: keep one line per path.
    if (e.keyword === 'const' && errors.some((o) => o.keyword === 'anyOf' && o.instancePath === e.instancePath)) continue;
    const k = `${problem.path}\u0000${problem.message}`;
    if (!seen.has(k)) {
      seen.add(k);
      out.push(problem);
    }
  }
  return out;
}

function schemaAt(s: unknown): { properties?: Record<string, unknown> } | undefined {
  return s && typeof s === 'object' ? (s as { properties?: Record<string, unknown> }) : undefined;
}

/** The nearest known key by edit distance, for "did you mean". */
function closest(key: string, known: string[]): string | undefined {
  let best: string | undefined;
  let bestD = Math.max(2, Math.floor(key.length / 3)) + 1;
  for (const k of known) {
    const d = distance(key.toLowerCase(), k.toLowerCase());
    if (d < bestD) {
      bestD = d;
      best = k;
    }
  }
  return best;
}

function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return row[b.length]!;
}

/** Rules a schema cannot express: connector names unique across kinds. */
function crossChecks(config: Config): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const sources = (config?.sources ?? {}) as Record<string, { name?: string }[] | undefined>;
  const seen = new Map<string, string>();
  for (const [kind, list] of Object.entries(sources)) {
    (list ?? []).forEach((c, i) => {
      if (!c?.name) return;
      const where = `sources.${kind}[${i}].name`;
      const first = seen.get(c.name);
      if (first) problems.push({ path: where, message: `connector name '${c.name}' is already used at ${first}; names must be unique` });
      else seen.set(c.name, where);
    });
  }
  return problems;
}
