/**
 * The status page: hand-written HTML, CSS and browser-native JavaScript modules
 * (no framework, no build step, no external resources — the plant network is
 * closed). Every file of the folder is read once at start and served from memory.
 * tsc does not copy them, so compiled code running from dist/src/web/ finds them
 * back in src/web/static; running from the sources (or from a package that copied
 * them next to the code) they sit in ./static.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply } from 'fastify';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
};

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
  for (const file of readdirSync(dir).sort()) {
    const type = TYPES[extname(file)];
    if (!type) continue;
    const body = readFileSync(join(dir, file));
    const send = async (_req: unknown, reply: FastifyReply) =>
      reply
        .header('content-type', type)
        // The page and the gateway are upgraded together; a stale cached module against a new API would mislead.
        .header('cache-control', 'no-cache')
        .header('x-content-type-options', 'nosniff')
        .header('content-security-policy', CSP)
        .header('referrer-policy', 'no-referrer')
        .send(body);
    app.get(`/${file}`, send);
    if (file === 'index.html') app.get('/', send);
  }
}
