/** Schema building blocks shared by the gateway sections and every source kind's config. */
import { Type, type TProperties } from '@sinclair/typebox';

export const strict = { additionalProperties: false } as const;

/** An object section whose missing keys all take their defaults; unknown keys are rejected. */
export function Section<T extends TProperties>(props: T, description?: string) {
  return Type.Object(props, { ...strict, default: {}, ...(description ? { description } : {}) });
}

/** An integer with its default and lower bound; the unit belongs in the key's name. */
export function Int(def: number, min: number, description: string, max?: number) {
  return Type.Integer({ default: def, minimum: min, ...(max !== undefined ? { maximum: max } : {}), description });
}

/** A connector's name: part of every event's source URI and of its state folder. */
export const ConnectorName = Type.String({
  pattern: '^[a-z0-9][a-z0-9._-]{0,63}$',
  description: 'Connector name (lower case letters, digits, . _ -); part of each event source URI',
});
