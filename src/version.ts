import { readFileSync } from 'node:fs';

/** The release, from package.json (compiled code runs from dist/src/). */
export const VERSION: string = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
