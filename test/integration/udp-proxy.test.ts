import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { UdpProxy, type UdpTarget } from '../../agents/udp-proxy.ts';
import { waitFor } from '../helpers/wait.ts';

/**
 * The UDP half of the service proxy on real sockets (127.0.0.0/8 only): clients stick to one
 * endpoint, replies come back from the service port, mappings end when idle, when their endpoint
 * leaves, or to make room; no endpoint drops datagrams; a taken port is an error message.
 */

const sockets: Socket[] = [];
const proxies: UdpProxy[] = [];
after(() => {
  for (const p of proxies) p.close();
  for (const s of sockets) s.close();
});

/** An echo endpoint answering "<name> <datagram>", bound to `bind` (0.0.0.0 answers from 127.0.0.1). */
async function echo(name: string, bind: string): Promise<{ name: string; port: number; seen: () => number }> {
  const s = createSocket('udp4');
  sockets.push(s);
  let seen = 0;
  s.on('message', (m, from) => {
    seen++;
    s.send(`${name} ${m.toString()}`, from.port, from.address);
  });
  await new Promise<void>((r) => s.bind(0, bind, r));
  return { name, port: s.address().port, seen: () => seen };
}

/** A client socket; `ask` resolves with the reply and where it came from, or undefined if none came in `ms`. */
async function client(): Promise<{ ask(msg: string, port: number, ms?: number): Promise<{ text: string; from: RemoteInfo } | undefined>; port: number }> {
  const s = createSocket('udp4');
  sockets.push(s);
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
  return {
    port: s.address().port,
    ask: (msg, port, ms = 1_000) =>
      new Promise((resolve) => {
        const onMessage = (m: Buffer, from: RemoteInfo) => {
          clearTimeout(timer);
          resolve({ text: m.toString(), from });
        };
        // A timeout for a lost datagram, not a wait for something to happen: callers retry with waitFor.
        const timer = setTimeout(() => {
          s.off('message', onMessage);
          resolve(undefined);
        }, ms);
        s.once('message', onMessage);
        s.send(msg, port, '127.0.0.1');
      }),
  };
}

async function freeUdpPort(): Promise<number> {
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
  const port = s.address().port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** A proxy on 127.0.0.1 whose new clients go round robin over `targets()`. */
async function proxy(targets: () => UdpTarget[], opts: { idleMs?: number; maxClients?: number } = {}): Promise<{ proxy: UdpProxy; port: number }> {
  const port = await freeUdpPort();
  let next = 0;
  const p = new UdpProxy({
    address: '127.0.0.1',
    port,
    ...opts,
    pick: () => {
      const all = targets();
      const k = next++ % Math.max(1, all.length);
      return [...all.slice(k), ...all.slice(0, k)];
    },
  });
  proxies.push(p);
  assert.equal(await p.listen(), undefined);
  return { proxy: p, port };
}

const answered = async (c: Awaited<ReturnType<typeof client>>, msg: string, port: number) => waitFor(() => c.ask(msg, port), { what: `a reply to ${msg}` });

test('a client sticks to one endpoint, the next client gets the next one, and replies come from the service port', async () => {
  // a is bound to 0.0.0.0 and sent to at 127.0.0.5: it answers from 127.0.0.1, which a connected upstream socket would drop.
  const a = await echo('a', '0.0.0.0');
  const b = await echo('b', '127.0.0.1');
  const { proxy: p, port } = await proxy(() => [
    { instanceId: 'a', host: '127.0.0.5', port: a.port },
    { instanceId: 'b', host: '127.0.0.1', port: b.port },
  ]);
  const one = await client();
  const two = await client();
  const first = await answered(one, 'hello', port);
  assert.equal(first.from.address, '127.0.0.1');
  assert.equal(first.from.port, port);
  const stuck = first.text.split(' ')[0]!;
  for (let i = 0; i < 5; i++) assert.equal((await answered(one, `again ${i}`, port)).text, `${stuck} again ${i}`);
  const other = (await answered(two, 'hi', port)).text.split(' ')[0]!;
  assert.notEqual(other, stuck);
  assert.deepEqual(p.clients().map((c) => c.instanceId).sort(), ['a', 'b']);
});

test('an endpoint that leaves drops its clients at once: their next datagram goes to one that is left', async () => {
  const a = await echo('a', '127.0.0.1');
  const b = await echo('b', '127.0.0.1');
  let live: UdpTarget[] = [
    { instanceId: 'a', host: '127.0.0.1', port: a.port },
    { instanceId: 'b', host: '127.0.0.1', port: b.port },
  ];
  const { proxy: p, port } = await proxy(() => live);
  const c = await client();
  const first = (await answered(c, 'x', port)).text.split(' ')[0]!;
  live = live.filter((t) => t.instanceId !== first);
  p.retain((t) => live.some((l) => l.instanceId === t.instanceId));
  assert.deepEqual(p.clients(), []);
  assert.equal((await answered(c, 'y', port)).text, `${live[0]!.instanceId} y`);
});

test('an idle mapping ends after idleMs; the client is mapped anew by its next datagram', async () => {
  const a = await echo('a', '127.0.0.1');
  const { proxy: p, port } = await proxy(() => [{ instanceId: 'a', host: '127.0.0.1', port: a.port }], { idleMs: 150 });
  const c = await client();
  await answered(c, 'x', port);
  assert.equal(p.clients().length, 1);
  await waitFor(() => p.clients().length === 0, { timeoutMs: 3_000, what: 'the idle mapping to end' });
  assert.equal((await answered(c, 'y', port)).text, 'a y');
  assert.equal(p.clients().length, 1);
});

test('at most maxClients mappings: the longest idle makes room, and still gets answers when it comes back', async () => {
  const a = await echo('a', '127.0.0.1');
  const { proxy: p, port } = await proxy(() => [{ instanceId: 'a', host: '127.0.0.1', port: a.port }], { maxClients: 2 });
  const [c1, c2, c3] = [await client(), await client(), await client()];
  await answered(c1, '1', port);
  await answered(c2, '2', port);
  await answered(c3, '3', port);
  assert.deepEqual(p.clients().map((x) => x.client), [`127.0.0.1:${c2.port}`, `127.0.0.1:${c3.port}`]);
  assert.equal((await answered(c1, 'back', port)).text, 'a back');
  assert.deepEqual(p.clients().map((x) => x.client), [`127.0.0.1:${c3.port}`, `127.0.0.1:${c1.port}`]);
});

test('no endpoint: datagrams are dropped and nothing is mapped; a taken port is reported, not thrown', async () => {
  const { proxy: p, port } = await proxy(() => []);
  const c = await client();
  assert.equal(await c.ask('anyone?', port, 300), undefined);
  assert.deepEqual(p.clients(), []);
  const taken = new UdpProxy({ address: '127.0.0.1', port, pick: () => [] });
  assert.match((await taken.listen()) ?? '', new RegExp(`^EADDRINUSE: cannot listen on 127\\.0\\.0\\.1:${port}/UDP \\(something else on the host holds it\\)$`));
  taken.close();
});
