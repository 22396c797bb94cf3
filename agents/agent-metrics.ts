/**
 * An agent's Prometheus metrics (prom-client), served as GET /metrics on its log port (the node
 * address; no credential, as node exporters serve theirs: nothing in it is secret). Starts are
 * timed where LocalInstance starts a container; restarts, probe failures and crash loops are
 * counted from the events this agent records; the service proxy counts its connections and the
 * ones no endpoint took; instances by phase are read from the agent's own map when scraped.
 *
 * Labels are bounded sets only (runtime, result, probe, protocol, phase, event reason): no
 * instance id or service name, whose series would grow without bound.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { NewEvent } from '../state/events.ts';

const SECONDS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
const PHASES = ['Pending', 'Starting', 'Running', 'Exited', 'Failed'] as const;
const PROBE_FAILURES: Record<string, string> = { LivenessProbeFailed: 'liveness', StartupProbeFailed: 'startup' };

export class AgentMetrics {
  readonly registry = new Registry();
  private readonly starts: Counter<'runtime' | 'result'>;
  private readonly startDuration: Histogram<'runtime'>;
  private readonly restarts: Counter;
  private readonly probeFailures: Counter<'probe'>;
  private readonly events: Counter<'type' | 'reason'>;
  private readonly proxyConnections: Counter<'protocol'>;
  private readonly proxyErrors: Counter<'protocol' | 'reason'>;

  constructor(node: string, version: string, phases: () => Iterable<string>) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: 'gantry_agent_' });
    new Gauge({ name: 'gantry_agent_info', help: 'Gantry agent build information and node name', labelNames: ['version', 'node'], registers }).set({ version, node }, 1);
    this.starts = new Counter({ name: 'gantry_agent_container_starts_total', help: 'Container starts by runtime and result (started, failed)', labelNames: ['runtime', 'result'], registers });
    this.startDuration = new Histogram({ name: 'gantry_agent_container_start_duration_seconds', help: 'Time from a start decided to the container started (image ready, slot taken, sandbox, volumes, runtime start)', labelNames: ['runtime'], buckets: SECONDS, registers });
    this.restarts = new Counter({ name: 'gantry_agent_container_restarts_total', help: 'Containers restarted by this agent (restart policy after an exit or a failed liveness probe)', registers });
    this.probeFailures = new Counter({ name: 'gantry_agent_probe_failures_total', help: 'Probes that failed their failureThreshold and restarted a container, by probe', labelNames: ['probe'], registers });
    this.events = new Counter({ name: 'gantry_agent_events_total', help: 'Events recorded by this agent, by type and reason', labelNames: ['type', 'reason'], registers });
    this.proxyConnections = new Counter({ name: 'gantry_agent_service_proxy_connections_total', help: 'Connections (TCP) and new clients (UDP) the service proxy took', labelNames: ['protocol'], registers });
    this.proxyErrors = new Counter({ name: 'gantry_agent_service_proxy_errors_total', help: 'Service proxy connections that no endpoint took, or that an endpoint reset', labelNames: ['protocol', 'reason'], registers });
    new Gauge({
      name: 'gantry_agent_instances',
      help: 'Instances this agent runs, by phase',
      labelNames: ['phase'],
      registers,
      collect() {
        const counts = new Map<string, number>(PHASES.map((p) => [p, 0]));
        for (const phase of phases()) counts.set(phase, (counts.get(phase) ?? 0) + 1);
        for (const [phase, n] of counts) this.set({ phase }, n);
      },
    });
  }

  started(runtime: string, ok: boolean, seconds: number): void {
    this.starts.inc({ runtime, result: ok ? 'started' : 'failed' });
    if (ok) this.startDuration.observe({ runtime }, seconds);
  }

  /** Every event the agent records (EventLog.observe). */
  recorded(ev: NewEvent): void {
    this.events.inc({ type: ev.type, reason: ev.reason });
    if (ev.reason === 'Restarted') this.restarts.inc();
    const probe = PROBE_FAILURES[ev.reason];
    if (probe) this.probeFailures.inc({ probe });
  }

  proxyConnection(protocol: 'tcp' | 'udp'): void {
    this.proxyConnections.inc({ protocol });
  }

  proxyError(protocol: 'tcp' | 'udp', reason: 'no_endpoint' | 'reset'): void {
    this.proxyErrors.inc({ protocol, reason });
  }

  async exposition(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
