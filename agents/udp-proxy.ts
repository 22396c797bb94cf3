import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { isIPv6 } from 'node:net';

/**
 * One UDP port of a Service on this agent, as kube-proxy does UDP: datagrams from a client (its
 * address and port) all go to the one endpoint its first datagram was given, and replies from that
 * endpoint go back to it from the service port, so a request/response protocol (DNS, a game
 * server, syslog) sees one peer. Like a conntrack entry, a client's mapping lasts while datagrams
 * flow either way and ends `idleMs` after the last; the next datagram is then balanced anew.
 *
 * Each mapping has its own upstream socket (its port tells replies for this client from replies for
 * another). Endpoints that leave the service drop their mappings at once (`retain`), as kube-proxy
 * clears the conntrack entries of removed UDP endpoints: there is no connection to drain, and a
 * client stuck to a gone endpoint would send into nothing. New endpoints get only new clients.
 * UDP says nothing when a datagram is not received, so unlike TCP there is no "try the next".
 */

export interface UdpTarget {
  instanceId: string;
  host: string;
  port: number;
}

export interface UdpProxyOptions {
  address: string;
  port: number;
  /** Endpoints a new client may go to, best first (the balancer's order); none: its datagrams are dropped. */
  pick(): UdpTarget[];
  /** A mapping ends this long after its last datagram either way. Default 30 s (conntrack's UDP timeout). */
  idleMs?: number;
  /** Mappings held at once (each holds a socket); the longest idle makes room for a new one. Default 1024. */
  maxClients?: number;
  log?: (line: string) => void;
  /** A new client was mapped to an endpoint, or dropped for want of one (metrics). */
  onClient?: (mapped: boolean) => void;
}

interface Flow {
  client: { address: string; port: number };
  target: UdpTarget;
  upstream: Socket;
  lastSeen: number;
}

export const DEFAULT_UDP_IDLE_MS = 30_000;
const DEFAULT_MAX_CLIENTS = 1024;

export class UdpProxy {
  private readonly socket: Socket;
  /** By "<address>|<port>" of the client, least recently active first (Map order). */
  private readonly flows = new Map<string, Flow>();
  private sweeper?: NodeJS.Timeout;
  private closed = false;

  constructor(private readonly opts: UdpProxyOptions) {
    this.socket = createSocket({ type: isIPv6(opts.address) ? 'udp6' : 'udp4' });
  }

  /** Binds the port; resolves with an error message when it cannot, as the TCP listeners do. */
  listen(): Promise<string | undefined> {
    const { address, port } = this.opts;
    return new Promise((resolve) => {
      this.socket.once('error', (err: NodeJS.ErrnoException) => {
        this.closeQuietly(this.socket);
        resolve(`${err.code ?? 'error'}: cannot listen on ${address}:${port}/UDP${err.code === 'EADDRINUSE' ? ' (something else on the host holds it)' : ''}`);
      });
      this.socket.bind({ address, port, exclusive: true }, () => {
        this.socket.removeAllListeners('error');
        this.socket.on('error', (err) => this.opts.log?.(`udp ${address}:${port}: ${err.message}`));
        this.socket.on('message', (msg, from) => this.fromClient(msg, from));
        const idle = this.opts.idleMs ?? DEFAULT_UDP_IDLE_MS;
        this.sweeper = setInterval(() => this.sweep(Date.now()), Math.max(20, Math.min(5_000, Math.floor(idle / 4))));
        this.sweeper.unref();
        resolve(undefined);
      });
    });
  }

  /** Clients mapped now, with their endpoints (for tests and logs). */
  clients(): { client: string; instanceId: string }[] {
    return [...this.flows.values()].map((f) => ({ client: `${f.client.address}:${f.client.port}`, instanceId: f.target.instanceId }));
  }

  /** Ends the mappings whose endpoint is no longer `alive` (it left the service, or moved). */
  retain(alive: (t: UdpTarget) => boolean): void {
    for (const [key, f] of this.flows) if (!alive(f.target)) this.end(key);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.sweeper);
    for (const key of [...this.flows.keys()]) this.end(key);
    this.closeQuietly(this.socket);
  }

  private fromClient(msg: Buffer, from: RemoteInfo): void {
    if (this.closed) return;
    const key = `${from.address}|${from.port}`;
    let flow = this.flows.get(key);
    if (!flow) {
      const target = this.opts.pick()[0];
      this.opts.onClient?.(target !== undefined);
      if (!target) return; // no endpoint: dropped, as kube-proxy drops it
      flow = this.open(key, { address: from.address, port: from.port }, target);
    }
    const f = flow;
    this.touch(key, f);
    f.upstream.send(msg, f.target.port, f.target.host, (err) => {
      if (err) this.end(key, f);
    });
  }

  private open(key: string, client: Flow['client'], target: UdpTarget): Flow {
    const max = this.opts.maxClients ?? DEFAULT_MAX_CLIENTS;
    for (const oldest of this.flows.keys()) {
      if (this.flows.size < max) break;
      this.end(oldest);
    }
    // Not connected, and bound by the first send to any local address: a process bound to 0.0.0.0
    // may answer from another local address than the one it was sent to (127.0.0.2 is answered
    // from 127.0.0.1), which a connected socket would drop. The source port tells the endpoint.
    const upstream = createSocket({ type: isIPv6(target.host) ? 'udp6' : 'udp4' });
    const flow: Flow = { client, target, upstream, lastSeen: Date.now() };
    upstream.on('error', () => this.end(key, flow));
    upstream.on('message', (reply, from) => {
      if (from.port !== flow.target.port || this.flows.get(key) !== flow) return;
      this.touch(key, flow);
      this.socket.send(reply, client.port, client.address);
    });
    this.flows.set(key, flow);
    return flow;
  }

  private touch(key: string, flow: Flow): void {
    flow.lastSeen = Date.now();
    this.flows.delete(key);
    this.flows.set(key, flow);
  }

  private sweep(now: number): void {
    const idle = this.opts.idleMs ?? DEFAULT_UDP_IDLE_MS;
    // Least recently active first: stop at the first one still fresh.
    for (const [key, f] of this.flows) {
      if (now - f.lastSeen < idle) break;
      this.end(key);
    }
  }

  /** Ends the mapping of `key` (only if it is still `flow`, when given). */
  private end(key: string, flow?: Flow): void {
    const f = this.flows.get(key);
    if (!f || (flow && f !== flow)) return;
    this.flows.delete(key);
    this.closeQuietly(f.upstream);
  }

  private closeQuietly(s: Socket): void {
    try {
      s.close();
    } catch {
      // Already closed, or never bound.
    }
  }
}
