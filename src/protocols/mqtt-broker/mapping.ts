/**
 * Topic mappings: which topic becomes which event type, and how a JSON payload
 * becomes an EventDraft. A mapping's topic may name levels (`plant/{site}/{line}/#`);
 * named levels match like `+` and are captured for the partition and subject templates.
 */
import type { EventDraft } from '../../model/event.js';
import { getPath, renderTemplate, toIsoTime, type TemplateScope } from '../../model/template.js';
import type { MqttMappingConfig } from './config.js';

export interface CompiledMapping {
  config: MqttMappingConfig;
  /** The MQTT filter with named levels replaced by '+'. */
  filter: string;
  levels: string[];
  /** Level index → capture name. */
  names: Map<number, string>;
}

export function compileMapping(config: MqttMappingConfig): CompiledMapping {
  const levels = config.topic.split('/');
  const names = new Map<number, string>();
  const filterLevels = levels.map((level, i) => {
    const named = /^\{([A-Za-z0-9_]+)\}$/.exec(level);
    if (named) {
      names.set(i, named[1]!);
      return '+';
    }
    return level;
  });
  return { config, filter: filterLevels.join('/'), levels: filterLevels, names };
}

/** MQTT topic filter match ([MQTT-4.7]); returns the named captures, or undefined. */
export function matchFilter(filterLevels: string[], names: Map<number, string>, topic: string): Record<string, string> | undefined {
  const parts = topic.split('/');
  const captures: Record<string, string> = {};
  for (let i = 0; i < filterLevels.length; i++) {
    const f = filterLevels[i]!;
    if (f === '#') return captures;
    const part = parts[i];
    if (part === undefined) return undefined;
    if (f === '+') {
      const name = names.get(i);
      if (name !== undefined) captures[name] = part;
    } else if (f !== part) {
      return undefined;
    }
  }
  return parts.length === filterLevels.length ? captures : undefined;
}

/** A topic's mapping and the levels it captured. */
export interface TopicRoute {
  mapping: CompiledMapping;
  captures: Readonly<Record<string, string>>;
  /** The partition key, when the topic's levels alone supply it (the default site/line): rendered once, not per message. */
  partitionkey?: string;
}

/** Topics remembered; past this the memory is cleared and refilled (a plant publishes on far fewer). */
const ROUTES_REMEMBERED = 10_000;

/**
 * Finds the first mapping whose filter matches a topic. Machines publish on the
 * same few hundred topics many times a second, so each topic is matched once and
 * its route remembered (unmapped topics too).
 */
export class TopicRoutes {
  private readonly known = new Map<string, TopicRoute | null>();

  constructor(private readonly mappings: readonly CompiledMapping[]) {}

  route(topic: string): TopicRoute | undefined {
    let route = this.known.get(topic);
    if (route === undefined) {
      route = null;
      for (const mapping of this.mappings) {
        const captures = matchFilter(mapping.levels, mapping.names, topic);
        if (captures) {
          const fixed = renderTemplate(mapping.config.partitionKey, { captures });
          route = fixed.missing.length === 0 ? { mapping, captures, partitionkey: fixed.value } : { mapping, captures };
          break;
        }
      }
      if (this.known.size >= ROUTES_REMEMBERED) this.known.clear();
      this.known.set(topic, route);
    }
    return route ?? undefined;
  }
}

/** Compiles a plain topic filter once; the returned test runs per message. */
export function compileFilter(filter: string): (topic: string) => boolean {
  const levels = filter.split('/');
  const none = new Map<number, string>();
  // [MQTT-4.7.2-1] wildcard filters do not match topics starting with '$'.
  const wildcardFirst = filter.startsWith('+') || filter.startsWith('#');
  return (topic) => !(wildcardFirst && topic.startsWith('$')) && matchFilter(levels, none, topic) !== undefined;
}

export class MappingError extends Error {}

export interface MappingContext {
  site: string;
  /** Epoch ms: the event's time when the payload gives none. */
  receivedAt: number;
}

/** Builds the draft for a payload on a mapped topic; throws MappingError with a technician's reason. */
export function buildDraft(route: TopicRoute, payload: Record<string, unknown>, ctx: MappingContext): EventDraft {
  const c = route.mapping.config;

  let time: string | undefined;
  if (c.timeField !== undefined) {
    const raw = getPath(payload, c.timeField);
    if (raw !== undefined && raw !== null) {
      time = toIsoTime(raw);
      if (time === undefined) throw new MappingError(`field '${c.timeField}' is ${JSON.stringify(raw)}, not a timestamp (ISO 8601 or epoch milliseconds)`);
    }
  }

  const partitionkey = route.partitionkey ?? renderPartition(c.partitionKey, scopeOf(route, payload, ctx));
  const draft: EventDraft = { type: c.type, time: time ?? new Date(ctx.receivedAt).toISOString(), partitionkey, data: payload };
  const id = c.idField !== undefined ? scalarString(getPath(payload, c.idField)) : undefined;
  if (id !== undefined) draft.id = id;
  const subject = c.subjectField !== undefined ? scalarString(getPath(payload, c.subjectField)) : c.subject !== undefined ? renderTemplate(c.subject, scopeOf(route, payload, ctx)).value || undefined : undefined;
  if (subject !== undefined) draft.subject = subject;
  const correlation = c.correlationField !== undefined ? scalarString(getPath(payload, c.correlationField)) : undefined;
  if (correlation !== undefined) draft.correlationid = correlation;
  return draft;
}

/** What a template may draw on; built only for a template the topic alone does not render. */
function scopeOf(route: TopicRoute, payload: Record<string, unknown>, ctx: MappingContext): TemplateScope {
  return { captures: route.captures, payload, context: { site: ctx.site } };
}

/** A partition name that a topic or payload does not supply falls back to '-' so the event is kept in a stable scope. */
function renderPartition(template: string, scope: TemplateScope): string {
  const partition = renderTemplate(template, scope);
  if (partition.missing.length === 0) return partition.value;
  return renderTemplate(template.replace(/\{([A-Za-z0-9_.-]+)\}/g, (w, n: string) => (partition.missing.includes(n) ? '-' : w)), scope).value;
}

function scalarString(v: unknown): string | undefined {
  if (typeof v === 'string') return v.length > 0 ? v : undefined;
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  return undefined;
}
