/**
 * NodeId strings and browse paths → NodeIds, resolved on every new session
 * (namespace indexes may change when a server is reconfigured and restarted).
 */
import { makeBrowsePath, resolveNodeId, type ClientSession } from 'node-opcua';
import { PlantgateError } from '../../errors.js';

export interface NodeRef {
  nodeId?: string | undefined;
  browsePath?: string | undefined;
}

/** A field given as a string: a browse path when it starts with '/', else a NodeId. */
export function refFromString(s: string): NodeRef {
  return s.startsWith('/') ? { browsePath: s } : { nodeId: s };
}

export function describeRef(ref: NodeRef): string {
  return ref.nodeId ?? ref.browsePath ?? '(no node)';
}

/** Resolves many refs with one TranslateBrowsePaths call; throws PG_ERR_OPCUA_NODE naming every unresolvable one. */
export async function resolveRefs(session: ClientSession, refs: NodeRef[], where: string): Promise<string[]> {
  const out: (string | undefined)[] = refs.map((r) => {
    if (!r.nodeId) return undefined;
    try {
      return resolveNodeId(r.nodeId).toString();
    } catch {
      throw new PlantgateError('PG_ERR_OPCUA_NODE', `${where}: '${r.nodeId}' is not a valid NodeId (e.g. ns=2;s=Line1.Count or ns=3;i=1001)`);
    }
  });
  const paths = refs.map((r, i) => ({ r, i })).filter(({ r }) => !r.nodeId && r.browsePath);
  if (paths.length > 0) {
    const results = await session.translateBrowsePath(paths.map(({ r }) => makeBrowsePath('RootFolder', r.browsePath!)));
    const bad: string[] = [];
    results.forEach((res, k) => {
      const { r, i } = paths[k]!;
      const target = res.targets?.[0]?.targetId;
      if (res.statusCode.isGood() && target) out[i] = target.toString();
      else bad.push(`${r.browsePath} (${res.statusCode.name})`);
    });
    if (bad.length) throw new PlantgateError('PG_ERR_OPCUA_NODE', `${where}: browse path(s) not found on the server: ${bad.join(', ')}`);
  }
  const missing = refs.filter((_, i) => out[i] === undefined);
  if (missing.length) throw new PlantgateError('PG_ERR_OPCUA_NODE', `${where}: a node needs nodeId or browsePath`);
  return out as string[];
}
