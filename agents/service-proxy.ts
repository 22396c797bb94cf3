import { connect, createServer, type Server, type Socket } from 'node:net';
import type { Redis } from 'ioredis';
import { CoalescedRunner } from '../lib/coalesced-runner.ts';
import { connectRedis } from '../state/connection.ts';
import { objectKey, type Keys } from '../state/keys.ts';
import { ServiceStore } from '../state/service-store.ts';
import { type EndpointsRecord, type ServiceNodeStatus } from '../state/records/service.ts';
import { ServiceBalancer } from './service-balancer.ts';

/**
 * The service proxy of one agent, like kube-proxy in userspace mode: for every Service it listens
 * on each of its ports (those the endpoints controller did not give to an earlier service) on the
 * agent's address, and forwards each TCP connection to one endpoint (ServiceBalancer), trying the
 * next one when an endpoint refuses. What to do comes only from `endpoints:<ns>:<name>` records,
 * re-read on every message of the services channel and every `resyncMs`.
 *
 * Connections already forwarded are never cut: an endpoint that leaves the list, or a service
 * whose listener closes, only stops getting new connections; the open ones drain on their own.
 * A port something else on the host holds is recorded in `service-node-status:<node>` (shown as a
 * PortUnavailable condition) and retried on the next pass; it never stops the agent.
 */

export interface ServiceProxyOptions {
  redisUrl: string;
  keys: Keys;
  node: string;
  address: string;
  resyncMs?: number;
  /** How long to wait for an endpoint to accept before trying the next (default 2 s). */
  connectTimeoutMs?: number;
  log?: (line: string) => void;
}

interface Listener {
  server: Server;
  /** "<ns>/<name>" of the service it serves. */
  service: string;
  port: number;
  record: EndpointsRecord;
  balancer: ServiceBalancer;
}

export class ServiceProxy {
  private readonly redis: Redis;
  private readonly store: ServiceStore;
  private readonly sub: Redis;
  private readonly listeners = new Map<number, Listener>();
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

  /** Ports listened on now, by port (for tests and logs). */
  listening(): Map<number, string> {
    return new Map([...this.listeners].map(([p, l]) => [p, l.service]));
  }

  poke(): void {
    this.refreshes.poke();
  }

  private async refresh(): Promise<void> {
    const records = await this.store.readAllEndpoints();
    if (this.closed) return;
    this.records = records;
    const wanted = new Map<number, EndpointsRecord>();
    for (const r of records) for (const port of r.listen) wanted.set(port, r);
    for (const [port, l] of this.listeners) {
      const r = wanted.get(port);
      if (!r || objectKey(r.namespace, r.name) !== l.service) {
        l.server.close(); // stops accepting; open connections drain
        this.listeners.delete(port);
        this.log(`service ${l.service}: stopped listening on ${this.opts.address}:${port}`);
      }
    }
    const failed = new Map<string, ServiceNodeStatus>();
    for (const [port, r] of wanted) {
      const service = objectKey(r.namespace, r.name);
      const existing = this.listeners.get(port);
      if (existing) {
        existing.record = r;
        continue;
      }
      const error = await this.listen(port, r);
      if (error) failed.set(service, { port, error, at: this.failures.get(service)?.at ?? Date.now() });
    }
    await this.reportFailures(failed);
  }

  /** Binds `port` for `record`'s service; resolves with an error message when it cannot. */
  private listen(port: number, record: EndpointsRecord): Promise<string | undefined> {
    const service = objectKey(record.namespace, record.name);
    const listener: Listener = { server: createServer(), service, port, record, balancer: new ServiceBalancer() };
    listener.server.on('connection', (client) => this.forward(listener, client));
    return new Promise((resolve) => {
      listener.server.once('error', (err: NodeJS.ErrnoException) => {
        resolve(`${err.code ?? 'error'}: cannot listen on ${this.opts.address}:${port}${err.code === 'EADDRINUSE' ? ' (something else on the host holds it)' : ''}`);
      });
      listener.server.listen({ host: this.opts.address, port, exclusive: true }, () => {
        listener.server.removeAllListeners('error');
        listener.server.on('error', (err) => this.log(`service ${service}: ${err.message}`));
        this.listeners.set(port, listener);
        this.log(`service ${service}: listening on ${this.opts.address}:${port}`);
        resolve(undefined);
      });
    });
  }

  private forward(l: Listener, client: Socket): void {
    client.on('error', () => client.destroy());
    const servicePort = String(l.port);
    const candidates = l.balancer.order(l.record.endpoints.filter((e) => e.ports[servicePort] !== undefined), l.record.split);
    const attempt = (i: number): void => {
      if (client.destroyed) return;
      const ep = candidates[i];
      if (!ep) {
        client.destroy(); // no endpoint accepted: the client sees the connection close
        return;
      }
      const upstream = connect({ host: ep.host, port: ep.ports[servicePort]! });
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
      upstream.once('close', () => {
        if (connected) client.destroy();
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
    for (const l of this.listeners.values()) l.server.close();
    this.listeners.clear();
    await this.store.clearNodeStatus(this.opts.node).catch(() => undefined);
    await Promise.allSettled([this.redis.quit(), this.sub.quit()]);
  }
}
