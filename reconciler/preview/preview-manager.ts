import { describeInstances } from '../api/views.ts';
import type { SourceSync } from '../controller/source-sync.ts';
import { ownerOf } from '../../state/records/deployment.ts';
import type { PrReporter } from '../git-host/pr-reporter.ts';
import { isReady } from '../../state/records/instance.ts';
import { objectKey, parseObjectKey } from '../../state/keys.ts';
import type { Store } from '../../state/store.ts';
import type { PreviewPhase, PreviewRecord, ProviderName } from '../../state/records/preview.ts';
import type { PullRequestEvent } from '../webhooks/webhook-event.ts';
import { commentMarkdown, planSummaryLine, type PreviewSummary } from './plan-report.ts';
import { buildPreviewState, previewOwner } from './preview-state.ts';
import { shortSha } from '../../lib/short-sha.ts';

/**
 * Preview environments of pull requests. On open or push: fetch the head, plan it against what
 * runs now (`gantry/plan`), and if valid and there is room, write its desired state (owner
 * `pr-<N>`, namespaces `pr-<N>-<ns>`) beside the tracked branch's in one MULTI; the ordinary
 * deployment controller then starts its instances. `gantry/preview` goes pending, then success
 * once every preview deployment has all its replicas ready, or failure after the ready timeout.
 * On close, the preview's records go in one MULTI and the controller stops its instances.
 *
 * Changes are serialized (one pull request at a time), so the cap on concurrent previews holds.
 * What was reported lives in Redis (`preview:<N>`), so a restarted reconciler resumes waiting.
 */

export interface PreviewEndpoint {
  deployment: string;
  instance: string;
  url: string;
}

export interface PreviewView extends Omit<PreviewRecord, 'plan'> {
  plan: string;
  endpoints: PreviewEndpoint[];
}

export interface PreviewOptions {
  /** Concurrent previews; a pull request beyond it gets a failed gantry/preview status. Default 5. */
  maxPreviews: number;
  /** Replicas of each preview deployment at most. Default 1. */
  maxReplicas: number;
  /** gantry/preview fails when the preview is not ready this long after its deploy. Default 5 min. */
  readyTimeoutMs: number;
  /** How often readiness is checked while deploying. Default 200 ms. */
  pollMs?: number;
}

export const DEFAULT_PREVIEW_OPTIONS: PreviewOptions = { maxPreviews: 5, maxReplicas: 1, readyTimeoutMs: 5 * 60_000 };

export interface PreviewManagerDeps {
  store: Store;
  sync: SourceSync;
  enqueue: (key: string) => void;
  reporter: PrReporter;
  log: (line: string) => void;
}

const PLAN = 'gantry/plan';
const PREVIEW = 'gantry/preview';
const message = (err: unknown) => (err instanceof Error ? err.message : String(err));

export class PreviewManager {
  private chain: Promise<unknown> = Promise.resolve();
  private readonly watchers = new Map<number, AbortController>();
  private stopped = false;

  constructor(
    private readonly deps: PreviewManagerDeps,
    private readonly opts: PreviewOptions = DEFAULT_PREVIEW_OPTIONS,
  ) {}

  /** Deploys (or updates) the preview of an opened or pushed pull request. */
  upsert(pr: PullRequestEvent, provider: ProviderName): Promise<void> {
    return this.serial(() => this.deploy(pr, provider));
  }

  /** Removes every record of a closed pull request's preview; its instances stop through the controller. */
  close(pr: PullRequestEvent): Promise<void> {
    return this.serial(() => this.teardown(pr));
  }

  async get(n: number): Promise<PreviewView | undefined> {
    const rec = await this.read(n);
    return rec ? this.view(rec) : undefined;
  }

  async list(): Promise<PreviewView[]> {
    const numbers = await this.deps.store.previews.numbers();
    const views = await Promise.all(numbers.map((n) => this.get(n)));
    return views.filter((v): v is PreviewView => !!v);
  }

  /** After a restart: wait again for previews that were still deploying. */
  async resume(): Promise<void> {
    for (const n of await this.deps.store.previews.numbers()) {
      const rec = await this.read(n);
      if (rec?.state === 'deploying') this.watch(n, rec.commit);
    }
  }

  stop(): void {
    this.stopped = true;
    for (const ac of this.watchers.values()) ac.abort();
    this.watchers.clear();
  }

  private async deploy(pr: PullRequestEvent, provider: ProviderName): Promise<void> {
    const { store, reporter, log } = this.deps;
    const n = pr.number;
    const owner = previewOwner(n);
    const repo = pr.repo.apiName;

    let head: { ref: string; commit: string };
    try {
      head = await this.fetchHead(pr);
    } catch (err) {
      const why = `cannot fetch the head of #${n}: ${message(err)}`;
      log(`preview #${n}: ${why}`);
      if (/^[0-9a-f]{40}$/.test(pr.headSha)) {
        await reporter.status(repo, pr.headSha, { context: PLAN, state: 'failure', description: why });
        await reporter.status(repo, pr.headSha, { context: PREVIEW, state: 'failure', description: why });
      }
      await reporter.comment(repo, n, commentMarkdown(n, undefined, { state: 'failed', message: why, namespaces: [], endpoints: [] }));
      return;
    }
    const { commit } = head;
    if (pr.headSha && !commit.startsWith(pr.headSha)) log(`preview #${n}: the payload names ${shortSha(pr.headSha)} but ${head.ref} is at ${shortSha(commit)} now; using ${shortSha(commit)}`);
    const existing = await this.read(n);
    if (existing && existing.commit === commit && existing.state !== 'failed') {
      log(`preview #${n}: already at ${shortSha(commit)}`);
      return;
    }

    const { diff, desired } = await this.deps.sync.planRevision(commit);
    await reporter.status(repo, commit, { context: PLAN, state: diff.valid ? 'success' : 'failure', description: planSummaryLine(diff) });
    const refuse = async (why: string) => {
      log(`preview #${n}: ${why}`);
      await store.events.record({ type: 'Warning', reason: 'PreviewRefused', object: `preview/${n}`, message: why });
      await reporter.status(repo, commit, { context: PREVIEW, state: 'failure', description: why });
      await reporter.comment(repo, n, commentMarkdown(n, diff, { state: 'failed', message: why, namespaces: existing?.namespaces ?? [], endpoints: [] }));
    };
    if (!desired) {
      return refuse(existing ? `not updated: the manifests at ${shortSha(commit)} are invalid; the preview keeps running ${shortSha(existing.commit)}` : `not deployed: the manifests at ${shortSha(commit)} are invalid`);
    }
    if (!existing) {
      const others = (await store.previews.numbers()).filter((x) => x !== n);
      if (this.opts.maxPreviews <= 0) return refuse('not deployed: previews are disabled (--max-previews 0)');
      if (others.length >= this.opts.maxPreviews) {
        return refuse(`not deployed: ${others.length} previews already run (${others.map((x) => `#${x}`).join(', ')}), the limit is ${this.opts.maxPreviews}; close one or raise --max-previews`);
      }
    }

    const [namespacesNow, deploymentsNow] = await Promise.all([store.readNamespaces(), store.readDeployments()]);
    const next = buildPreviewState(desired, n, { maxReplicas: this.opts.maxReplicas }, deploymentsNow.filter((d) => ownerOf(d) === owner));
    const clash = next.namespaces.find((ns) => namespacesNow.some((x) => x.name === ns.name && ownerOf(x) !== owner));
    if (clash) return refuse(`not deployed: namespace ${clash.name} already exists and is not this preview's`);

    const now = Date.now();
    const namespaces = next.namespaces.map((ns) => ns.name);
    const msg = `deploying ${next.deployments.length} deployment(s) of ${shortSha(commit)} to ${namespaces.join(', ') || 'no namespace'}`;
    const record: PreviewRecord = {
      number: n,
      provider,
      repo,
      headBranch: pr.headBranch,
      headRef: head.ref,
      commit,
      state: 'deploying',
      message: msg,
      plan: diff,
      namespaces,
      deployments: next.deployments.map((d) => objectKey(d.namespace, d.name)).sort(),
      createdAt: existing?.createdAt ?? now,
      updatedAt: now,
    };
    await store.writeOwnedState(owner, { namespaces: namespacesNow, deployments: deploymentsNow }, next, { preview: record });
    const touched = new Set([...deploymentsNow.filter((d) => ownerOf(d) === owner).map((d) => objectKey(d.namespace, d.name)), ...record.deployments]);
    for (const key of touched) this.deps.enqueue(key);
    await store.events.record({ type: 'Normal', reason: 'PreviewDeploying', object: `preview/${n}`, message: msg });
    log(`preview #${n}: ${msg} (${diff.summary} against ${shortSha(diff.base)})`);
    await reporter.status(repo, commit, { context: PREVIEW, state: 'pending', description: msg });
    await reporter.comment(repo, n, commentMarkdown(n, diff, { state: 'deploying', message: msg, namespaces, endpoints: [] }));
    this.watch(n, commit);
  }

  private async teardown(pr: PullRequestEvent): Promise<void> {
    const { store, reporter, log } = this.deps;
    const n = pr.number;
    const owner = previewOwner(n);
    this.watchers.get(n)?.abort();
    const [rec, namespacesNow, deploymentsNow] = await Promise.all([this.read(n), store.readNamespaces(), store.readDeployments()]);
    const owned = deploymentsNow.filter((d) => ownerOf(d) === owner);
    await store.writeOwnedState(owner, { namespaces: namespacesNow, deployments: deploymentsNow }, { namespaces: [], deployments: [] }, { removePreview: n });
    for (const d of owned) this.deps.enqueue(objectKey(d.namespace, d.name));
    const why = `pull request ${pr.merged ? 'merged' : 'closed'}: the preview was removed`;
    if (rec || owned.length > 0) {
      await store.events.record({ type: 'Normal', reason: 'PreviewRemoved', object: `preview/${n}`, message: `${why} (${owned.length} deployment(s))` });
      log(`preview #${n}: ${why} (${owned.length} deployment(s))`);
    }
    await reporter.finalComment(pr.repo.apiName, n, commentMarkdown(n, rec?.plan, { state: 'closed', message: why, namespaces: [], endpoints: [] }));
  }

  private async fetchHead(pr: PullRequestEvent): Promise<{ ref: string; commit: string }> {
    if (pr.headRefs.length === 0) throw new Error(pr.headProblem ?? 'no ref to fetch it from');
    let last: unknown;
    for (const ref of pr.headRefs) {
      try {
        return { ref, commit: await this.deps.sync.fetchRef(ref) };
      } catch (err) {
        last = err;
      }
    }
    throw last;
  }

  private watch(n: number, commit: string): void {
    if (this.stopped) return;
    this.watchers.get(n)?.abort();
    const ac = new AbortController();
    this.watchers.set(n, ac);
    void this.waitReady(n, commit, ac.signal)
      .catch((err) => this.deps.log(`preview #${n}: readiness check failed: ${message(err)}`))
      .finally(() => {
        if (this.watchers.get(n) === ac) this.watchers.delete(n);
      });
  }

  private async waitReady(n: number, commit: string, signal: AbortSignal): Promise<void> {
    const pollMs = this.opts.pollMs ?? 200;
    while (!signal.aborted) {
      const rec = await this.read(n);
      if (!rec || rec.commit !== commit || rec.state !== 'deploying') return;
      const check = await this.readiness(rec);
      const late = Date.now() > rec.updatedAt + this.opts.readyTimeoutMs;
      if (check.ready || late) {
        const state = check.ready ? 'ready' : 'failed';
        const why = check.ready ? check.message : `not ready after ${Math.round(this.opts.readyTimeoutMs / 1000)} s: ${check.message}`;
        await this.serial(() => this.settle(n, commit, state, why));
        return;
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, pollMs);
        signal.addEventListener('abort', () => (clearTimeout(t), resolve()), { once: true });
      });
    }
  }

  private async settle(n: number, commit: string, state: PreviewPhase, why: string): Promise<void> {
    const { store, reporter, log } = this.deps;
    const rec = await this.read(n);
    if (!rec || rec.commit !== commit || rec.state !== 'deploying') return;
    const done: PreviewRecord = { ...rec, state, message: why, updatedAt: Date.now() };
    await store.previews.write(done);
    const endpoints = state === 'ready' ? await this.endpoints(done) : [];
    await store.events.record({ type: state === 'ready' ? 'Normal' : 'Warning', reason: state === 'ready' ? 'PreviewReady' : 'PreviewFailed', object: `preview/${n}`, message: why });
    log(`preview #${n}: ${state}: ${why}`);
    await reporter.status(rec.repo, commit, { context: PREVIEW, state: state === 'ready' ? 'success' : 'failure', description: state === 'ready' ? `ready: ${why}` : why });
    const summary: PreviewSummary = { state, message: why, namespaces: done.namespaces, endpoints: endpoints.map((e) => ({ deployment: e.deployment, url: e.url })) };
    await reporter.comment(rec.repo, n, commentMarkdown(n, rec.plan, summary));
  }

  /** Ready when every deployment runs exactly its replicas, all of the current revision and ready. */
  private async readiness(rec: PreviewRecord): Promise<{ ready: boolean; message: string }> {
    const { store } = this.deps;
    const problems: string[] = [];
    for (const key of rec.deployments) {
      const { namespace, name } = parseObjectKey(key);
      const [d, instances] = await Promise.all([store.readDeployment(namespace, name), store.readDeploymentInstances(namespace, name)]);
      if (!d) {
        problems.push(`${key} is missing`);
        continue;
      }
      const ready = instances.filter((i) => i.record.templateHash === d.templateHash && isReady(i)).length;
      if (ready === d.replicas && instances.length === d.replicas) continue;
      const pending = instances.find((i) => i.record.pendingReason)?.record.pendingReason;
      problems.push(`${key} ${ready}/${d.replicas} ready${pending ? ` (${pending})` : ''}`);
    }
    return problems.length === 0 ? { ready: true, message: `${rec.deployments.length} deployment(s) ready` } : { ready: false, message: problems.join('; ') };
  }

  private async endpoints(rec: Pick<PreviewRecord, 'namespaces'>): Promise<PreviewEndpoint[]> {
    const inPreview = new Set(rec.namespaces);
    const out: PreviewEndpoint[] = [];
    for (const i of await describeInstances(this.deps.store)) {
      if (!inPreview.has(i.namespace) || i.phase !== 'Running' || !i.hostIP) continue;
      for (const p of i.ports) out.push({ deployment: `${i.namespace}/${i.deployment}`, instance: i.id, url: `http://${i.hostIP}:${p.hostPort}` });
    }
    return out.sort((a, b) => (a.url < b.url ? -1 : 1));
  }

  private async view(rec: PreviewRecord): Promise<PreviewView> {
    return { ...rec, plan: planSummaryLine(rec.plan), endpoints: await this.endpoints(rec) };
  }

  private read(n: number): Promise<PreviewRecord | undefined> {
    return this.deps.store.previews.read(n);
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.chain.then(fn, fn);
    this.chain = next.catch(() => undefined);
    return next;
  }
}
