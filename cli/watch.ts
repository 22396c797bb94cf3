import { callApi } from './api-client.ts';
import { render } from './format.ts';

type Kind = Parameters<typeof render>[0];
type Format = Parameters<typeof render>[2];

/** An item's identity in a list: instances by id, nodes by name, the rest by namespace/name. */
function keyOf(item: Record<string, unknown>): string {
  return String(item.id ?? `${item.namespace ?? ''}/${item.name ?? ''}`);
}

/** What a watch compares: the item without what moves on its own (a node's heartbeat). */
function signature(item: Record<string, unknown>): string {
  const { lastHeartbeat: _beat, ...rest } = item;
  return JSON.stringify(rest);
}

/**
 * `gantry get KIND -w`, as kubectl's watch: the list once, then each object again whenever it
 * changes (its rows, without the header), and `deleted` lines for those that went. Polls the API
 * every `intervalMs` until the process is stopped (Ctrl-C).
 */
export async function watchList(api: string, kind: Kind, path: string, format: Format, intervalMs = 1000): Promise<never> {
  let seen = new Map<string, string>();
  let first = true;
  for (;;) {
    const { items } = await callApi<{ items: Record<string, unknown>[] }>(api, path);
    const now = new Map(items.map((i) => [keyOf(i), signature(i)]));
    if (first) {
      console.log(render(kind, items, format));
      first = false;
    } else {
      for (const item of items) {
        if (seen.get(keyOf(item)) === now.get(keyOf(item))) continue;
        const text = render(kind, [item], format);
        // A table's header was printed once, at the top.
        console.log(format === 'table' || format === 'wide' ? text.split('\n').slice(1).join('\n') : text);
      }
      for (const key of seen.keys()) if (!now.has(key)) console.log(`${key} deleted`);
    }
    seen = now;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
