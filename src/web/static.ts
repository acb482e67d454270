/**
 * The status page: three hand-written files (no framework, no build step, no
 * external resources — the plant network is closed). They are read once at start
 * and served from memory. tsc does not copy them, so compiled code running from
 * dist/src/web/ finds them back in src/web/static; running from the sources (or
 * from a package that copied them next to the code) they sit in ./static.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';

const FILES = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/style.css': { file: 'style.css', type: 'text/css; charset=utf-8' },
} as const;

// Only our own files and our own websocket: a payload rendered by mistake can load nothing.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self' ws: wss:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

export function staticDir(moduleUrl = import.meta.url): string {
  const here = dirname(fileURLToPath(moduleUrl));
  const candidates = [join(here, 'static'), join(here, '..', '..', '..', 'src', 'web', 'static')];
  const found = candidates.find((d) => existsSync(join(d, 'index.html')));
  if (!found) throw new Error(`status page files not found; looked in ${candidates.join(', ')}`);
  return found;
}

export function staticRoutes(app: FastifyInstance, dir = staticDir()): void {
  for (const [route, { file, type }] of Object.entries(FILES)) {
    const body = readFileSync(join(dir, file));
    app.get(route, async (_req, reply) =>
      reply
        .header('content-type', type)
        // The page and the gateway are upgraded together; a stale cached app.js against a new API would mislead.
        .header('cache-control', 'no-cache')
        .header('x-content-type-options', 'nosniff')
        .header('content-security-policy', CSP)
        .header('referrer-policy', 'no-referrer')
        .send(body),
    );
  }
}
