import { connect, createServer, type Server, type Socket } from 'node:net';
import type { Redis } from 'ioredis';
import { CoalescedRunner } from '../lib/coalesced-runner.ts';
import { connectRedis } from '../state/connection.ts';
import { objectKey, type Keys } from '../state/keys.ts';
import { ServiceStore } from '../state/service-store.ts';
import { listenersOf, type Endpoint, type EndpointsRecord, type ServiceListener, type ServiceNodeStatus } from '../state/records/service.ts';
import { ServiceBalancer } from './service-balancer.ts';
import { UdpProxy } from './udp-proxy.ts';

/**
 * The service proxy of one agent, like kube-proxy in userspace mode: for every Service it listens
 * on each of its ports and nodePorts (the record's `listeners`: those the endpoints controller did
 * not give to an earlier service) on the agent's address. Each TCP connection goes to one endpoint
 * (ServiceBalancer), trying the next one when an endpoint refuses; UDP clients are mapped to one
 * endpoint each (udp-proxy.ts). What to do comes only from `endpoints:<ns>:<name>` records,
 * re-read on every message of the services channel and every `resyncMs`.
 *
 * TCP connections already forwarded are never cut: an endpoint that leaves the list, or a service
 * whose listener closes, only stops getting new connections; the open ones drain on their own. A
 * UDP client mapped to an endpoint that leaves is mapped anew at its next datagram.
 * A port something else on the host holds is recorded in `service-node-status:<node>` (shown as a
 * PortUnavailable condition) and retried on the next pass; it never stops the agent.
 *
 * Docker containers cannot reach the agent's address (127.0.0.x is their own loopback), so each
 * service port (not nodePorts) is also listened on at `containerAddress`, the gateway of the
 * containers' network, which only they (and the host) reach. The agents of one host share the engine
 * and so that address: one proxy holds each port there, forwarding to the same endpoints as the
 * others; the rest take EADDRINUSE there as "served", report nothing, and try again on every pass,
 * so another takes over within a resync once the holder stops.
 */

export interface ServiceProxyOptions {
  /** Counts connections taken, and those no endpoint took or an endpoint reset (metrics). */
  onConnection?: (protocol: 'tcp' | 'udp') => void;
  onError?: (protocol: 'tcp' | 'udp', reason: 'no_endpoint' | 'reset') => void;
  redisUrl: string;
  keys: Keys;
  node: string;
  address: string;
  /** Where Docker containers reach this host (their network's gateway), read on every pass; none: not listened on. */
  containerAddress?: () => string | undefined;
  resyncMs?: number;
  /** How long to wait for an endpoint to accept before trying the next (default 2 s). */
  connectTimeoutMs?: number;
  /** How long a UDP client stays mapped to its endpoint without a datagram either way (default 30 s). */
  udpIdleMs?: number;
  log?: (line: string) => void;
}

interface Listener {
  /** TCP ones accept connections; UDP ones map clients. */
  server?: Server;
  udp?: UdpProxy;
  /** "<ns>/<name>" of the service it serves. */
  service: string;
  /** The agent's address, or the containers' gateway. */
  address: string;
  socket: ServiceListener;
  record: EndpointsRecord;
  balancer: ServiceBalancer;
}

/** "8000/TCP", "30080/UDP": a port is bound once per protocol. */
const socketKey = (l: Pick<ServiceListener, 'port' | 'protocol'>) => `${l.port}/${l.protocol}`;
/** "8000/TCP@172.17.0.1": a socket on one of the addresses listened on. */
const listenKey = (address: string, l: Pick<ServiceListener, 'port' | 'protocol'>) => `${socketKey(l)}@${address}`;

export class ServiceProxy {
  private readonly redis: Redis;
  private readonly store: ServiceStore;
  private readonly sub: Redis;
  private readonly listeners = new Map<string, Listener>();
  /** Sockets on the containers' gateway that another agent of this host holds (retried every pass). */
  private readonly heldElsewhere = new Set<string>();
  /** Ports that failed to bind, by service, as last written to Redis. */
  private readonly failures = new Map<string, ServiceNodeStatus>();
  private records: EndpointsRecord[] = [];
  private timer?: NodeJS.Timeout;
  /** Refreshes one at a time; messages during one share a single refresh after it. */
  private readonly refreshes = new CoalescedRunner(() => this.refresh(), {
    onError: (err) => this.log(`service proxy: ${err instanceof Error ? err.message : String(err)}`),
  });
  private closed = false;
  private readonly log: (line: string) => void;

  constructor(private readonly opts: ServiceProxyOptions) {
    this.log = opts.log ?? (() => {});
    this.redis = connectRedis(opts.redisUrl, `gantry-agent-${opts.node}-proxy`);
    this.store = new ServiceStore(this.redis, opts.keys);
    this.sub = connectRedis(opts.redisUrl, `gantry-agent-${opts.node}-proxy-sub`);
  }

  /** Subscribes, then applies the current services (so instances started next see their env). */
  async start(): Promise<void> {
    await this.store.clearNodeStatus(this.opts.node);
    await this.sub.subscribe(this.opts.keys.servicesChannel);
    this.sub.on('message', () => this.poke());
    await this.refreshes.run();
    this.timer = setInterval(() => this.poke(), this.opts.resyncMs ?? 5_000);
    this.timer.unref();
  }

  /** The services as last read (for instance env). */
  services(): readonly EndpointsRecord[] {
    return this.records;
  }

  /** Sockets listened on now on `address` (default the agent's; "8000/TCP" -> "<ns>/<name>"), for tests and logs. */
  listening(address = this.opts.address): Map<string, string> {
    return new Map([...this.listeners.values()].filter((l) => l.address === address).map((l) => [socketKey(l.socket), l.service]));
  }

  poke(): void {
    this.refreshes.poke();
  }

  private async refresh(): Promise<void> {
    const records = await this.store.readAllEndpoints();
    if (this.closed) return;
    this.records = records;
    const own = this.opts.address;
    const gateway = this.containerAddress();
    const wanted = new Map<string, { record: EndpointsRecord; socket: ServiceListener; address: string }>();
    for (const r of records) {
      for (const socket of listenersOf(r)) {
        wanted.set(listenKey(own, socket), { record: r, socket, address: own });
        // Containers are given the service ports; nodePorts are for clients of the node's address.
        if (gateway && !socket.nodePort) wanted.set(listenKey(gateway, socket), { record: r, socket, address: gateway });
      }
    }
    for (const key of this.heldElsewhere) if (!wanted.has(key)) this.heldElsewhere.delete(key);
    for (const [key, l] of this.listeners) {
      const w = wanted.get(key);
      if (!w || objectKey(w.record.namespace, w.record.name) !== l.service || w.socket.target !== l.socket.target) {
        l.server?.close(); // stops accepting; open connections drain
        l.udp?.close();
        this.listeners.delete(key);
        this.log(`service ${l.service}: stopped listening on ${l.address}:${socketKey(l.socket)}`);
      }
    }
    const failed = new Map<string, ServiceNodeStatus>();
    for (const [key, { record: r, socket, address }] of wanted) {
      const service = objectKey(r.namespace, r.name);
      const existing = this.listeners.get(key);
      if (existing) {
        existing.record = r;
        const target = socket.target;
        existing.udp?.retain((t) => r.endpoints.some((e) => e.instanceId === t.instanceId && e.host === t.host && e.ports[target] === t.port));
        continue;
      }
      const error = await this.listen(socket, r, address);
      if (error && address !== own && error.startsWith('EADDRINUSE')) {
        // Another agent of this host serves the containers there (to the same endpoints): no conflict.
        if (!this.heldElsewhere.has(key)) this.log(`service ${service}: ${address}:${socketKey(socket)} is held by another agent of this host, which serves the containers; retrying on every pass`);
        this.heldElsewhere.add(key);
      } else if (error && (address === own || !failed.has(service))) {
        failed.set(service, { port: socket.port, error, at: this.failures.get(service)?.at ?? Date.now() });
      } else if (!error) this.heldElsewhere.delete(key);
    }
    await this.reportFailures(failed);
  }

  /** The containers' gateway, unless it is the agent's own address (or a wildcard, which covers it). */
  private containerAddress(): string | undefined {
    const gateway = this.opts.containerAddress?.();
    return gateway && gateway !== this.opts.address && !['0.0.0.0', '::'].includes(this.opts.address) ? gateway : undefined;
  }

  /** Binds `socket` on `address` for `record`'s service; resolves with an error message (starting with its code) when it cannot. */
  private async listen(socket: ServiceListener, record: EndpointsRecord, address: string): Promise<string | undefined> {
    const service = objectKey(record.namespace, record.name);
    const listener: Listener = { service, address, socket, record, balancer: new ServiceBalancer() };
    const error = socket.protocol === 'UDP' ? await this.listenUdp(listener) : await this.listenTcp(listener);
    if (error) return error;
    this.listeners.set(listenKey(address, socket), listener);
    const why = socket.nodePort ? ' (nodePort)' : address !== this.opts.address ? " (the containers' gateway)" : '';
    this.log(`service ${service}: listening on ${address}:${socketKey(socket)}${why}`);
    return undefined;
  }

  private listenTcp(l: Listener): Promise<string | undefined> {
    const { port } = l.socket;
    // Half-open, as kube-proxy relays: a client that sends its request and shuts its side
    // (`printf 'PING\r\n' | nc -N host port`) still gets the answer.
    const server = createServer({ allowHalfOpen: true });
    server.on('connection', (client) => this.forward(l, client));
    return new Promise((resolve) => {
      server.once('error', (err: NodeJS.ErrnoException) => {
        resolve(`${err.code ?? 'error'}: cannot listen on ${l.address}:${port}${err.code === 'EADDRINUSE' ? ' (something else on the host holds it)' : ''}`);
      });
      server.listen({ host: l.address, port, exclusive: true }, () => {
        server.removeAllListeners('error');
        server.on('error', (err) => this.log(`service ${l.service}: ${err.message}`));
        l.server = server;
        resolve(undefined);
      });
    });
  }

  private async listenUdp(l: Listener): Promise<string | undefined> {
    const target = l.socket.target;
    const udp = new UdpProxy({
      address: l.address,
      port: l.socket.port,
      idleMs: this.opts.udpIdleMs,
      // Read at each new client: l.record is replaced on every refresh.
      pick: () => this.candidates(l).map((e) => ({ instanceId: e.instanceId, host: e.host, port: e.ports[target]! })),
      log: (line) => this.log(`service ${l.service}: ${line}`),
      onClient: (mapped) => (mapped ? this.opts.onConnection?.('udp') : this.opts.onError?.('udp', 'no_endpoint')),
    });
    const error = await udp.listen();
    if (!error) l.udp = udp;
    return error;
  }

  /** The endpoints serving `l`'s service port, in the order a new connection or client tries them. */
  private candidates(l: Listener): Endpoint[] {
    const target = l.socket.target;
    return l.balancer.order(l.record.endpoints.filter((e) => e.ports[target] !== undefined), l.record.split);
  }

  private forward(l: Listener, client: Socket): void {
    client.on('error', () => client.destroy());
    this.opts.onConnection?.('tcp');
    const servicePort = l.socket.target;
    const candidates = this.candidates(l);
    const attempt = (i: number): void => {
      if (client.destroyed) return;
      const ep = candidates[i];
      if (!ep) {
        this.opts.onError?.('tcp', 'no_endpoint');
        client.destroy(); // no endpoint accepted: the client sees the connection close
        return;
      }
      const upstream = connect({ host: ep.host, port: ep.ports[servicePort]!, allowHalfOpen: true });
      upstream.setTimeout(this.opts.connectTimeoutMs ?? 2_000);
      let connected = false;
      upstream.once('timeout', () => {
        if (!connected) upstream.destroy(new Error('connect timeout'));
      });
      upstream.once('connect', () => {
        connected = true;
        upstream.setTimeout(0);
        client.pipe(upstream);
        upstream.pipe(client);
      });
      upstream.on('error', () => {
        if (!connected) attempt(i + 1);
        else client.destroy();
      });
      // Closed cleanly: the client gets what is still buffered for it, then the end (pipe ends it
      // on the upstream's end); a reset or error is passed on as one.
      upstream.once('close', (hadError) => {
        if (connected && hadError) {
          this.opts.onError?.('tcp', 'reset');
          client.destroy();
        } else if (connected) client.end();
      });
      client.once('close', () => upstream.destroy());
    };
    attempt(0);
  }

  private async reportFailures(failed: Map<string, ServiceNodeStatus>): Promise<void> {
    const set = new Map<string, ServiceNodeStatus>();
    for (const [service, st] of failed) {
      const before = this.failures.get(service);
      if (before && before.port === st.port && before.error === st.error) continue;
      set.set(service, st);
      this.log(`service ${service}: ${st.error}`);
    }
    const gone = [...this.failures.keys()].filter((s) => !failed.has(s));
    await this.store.updateNodeStatus(this.opts.node, set, gone);
    this.failures.clear();
    for (const [k, v] of failed) this.failures.set(k, v);
  }

  async stop(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    await this.refreshes.stop();
    for (const l of this.listeners.values()) {
      l.server?.close();
      l.udp?.close();
    }
    this.listeners.clear();
    await this.store.clearNodeStatus(this.opts.node).catch(() => undefined);
    await Promise.allSettled([this.redis.quit(), this.sub.quit()]);
  }
}
