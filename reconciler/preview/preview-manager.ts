import { describeInstances } from '../api/views.ts';
import { pruneConfigVersions } from '../controller/config-gc.ts';
import type { SourceSync } from '../controller/source-sync.ts';
import { ownerOf } from '../../state/records/deployment.ts';
import type { PrReporter } from '../git-host/pr-reporter.ts';
import type { AccessLevel, GitHostClient } from '../git-host/git-host-client.ts';
import { isReady } from '../../state/records/instance.ts';
import { objectKey, parseObjectKey } from '../../state/keys.ts';
import type { Store } from '../../state/store.ts';
import type { PreviewPhase, PreviewRecord, ProviderName } from '../../state/records/preview.ts';
import type { PullRequestEvent } from '../webhooks/webhook-event.ts';
import { commentMarkdown, planSummaryLine, type PreviewSummary } from './plan-report.ts';
import { buildPreviewState, previewOwner } from './preview-state.ts';
import { PullRequestGate } from './pr-gate.ts';
import { DEFAULT_TRUST_POLICY, type TrustDecision, type TrustRule } from './pr-trust.ts';
import { shortSha } from '../../lib/short-sha.ts';

/**
 * Preview environments of pull requests. On open or push: fetch the head, plan it against what
 * runs now (`gantry/plan`), and if valid and there is room, write its desired state (owner
 * `pr-<N>`, namespaces `pr-<N>-<ns>`) beside the tracked branch's in one MULTI; the ordinary
 * deployment controller then starts its instances. `gantry/preview` goes pending, then success
 * once every preview deployment has all its replicas ready, or failure after the ready timeout.
 * On close, the preview's records go in one MULTI and the controller stops its instances.
 *
 * Only a trusted pull request gets a preview (pr-trust.ts, pr-gate.ts: same repository, trusted
 * author, or a trusted person's label, re-checked at the Git host); any other gets its plan, a
 * pending `gantry/preview` saying why and how to allow it, and no instance. A preview that lost
 * its trust (label removed, commits after the approval) is removed. The comment names no node
 * address unless `commentUrls` (the API's preview view, which is authenticated, has them).
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
  /** Ways a pull request is trusted to run a preview (pr-trust.ts). Default same-repo, author, label. */
  trustRules: readonly TrustRule[];
  /** GitHub author_association values of trusted authors. Default OWNER, MEMBER, COLLABORATOR. */
  trustedAssociations: readonly string[];
  /** Least access of a trusted GitLab or Gitea author, and of whoever adds the label. Default write (GitLab: Developer). */
  trustMinAccess: AccessLevel;
  /** The label a trusted person adds to allow a preview. Default gantry-preview. */
  trustLabel: string;
  /** Publish preview endpoints' node addresses (http://<hostIP>:<port>) in the pull-request comment. Default false. */
  commentUrls: boolean;
}

export const DEFAULT_PREVIEW_OPTIONS: PreviewOptions = {
  maxPreviews: 5,
  maxReplicas: 1,
  readyTimeoutMs: 5 * 60_000,
  trustRules: DEFAULT_TRUST_POLICY.rules,
  trustedAssociations: DEFAULT_TRUST_POLICY.associations,
  trustMinAccess: DEFAULT_TRUST_POLICY.minAccess,
  trustLabel: DEFAULT_TRUST_POLICY.label,
  commentUrls: false,
};

export interface PreviewManagerDeps {
  store: Store;
  sync: SourceSync;
  enqueue: (key: string) => void;
  reporter: PrReporter;
  /** The Git host's API, to re-check pull requests before deploying or removing previews; absent: payloads only. */
  host?: GitHostClient;
  log: (line: string) => void;
}

const PLAN = 'gantry/plan';
const PREVIEW = 'gantry/preview';
const message = (err: unknown) => (err instanceof Error ? err.message : String(err));

export class PreviewManager {
  private chain: Promise<unknown> = Promise.resolve();
  private readonly watchers = new Map<number, AbortController>();
  private stopped = false;
  private readonly gate: PullRequestGate;

  constructor(
    private readonly deps: PreviewManagerDeps,
    private readonly opts: PreviewOptions = DEFAULT_PREVIEW_OPTIONS,
  ) {
    const policy = { rules: opts.trustRules, associations: opts.trustedAssociations, minAccess: opts.trustMinAccess, label: opts.trustLabel };
    this.gate = new PullRequestGate({ host: deps.host, store: deps.store }, policy);
  }

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
    // Throws when the Git host cannot be asked: nothing is deployed on facts not checked, and the delivery can be redelivered.
    const gate = await this.gate.check(pr, provider, commit);
    if (gate.kind === 'gone') {
      log(`preview #${n}: ${gate.why}; nothing deployed`);
      if ((await this.read(n)) || (await this.ownedDeployments(n)).length > 0) await this.teardownNow(pr, `${gate.why}: the preview was removed`);
      return;
    }
    if (gate.kind === 'moved') {
      log(`preview #${n}: its head at the Git host is ${shortSha(gate.head)}, not ${shortSha(commit)}; the event of the newer head deploys it`);
      return;
    }
    const trust = gate.decision;
    const existing = await this.read(n);
    if (trust.trusted && existing && existing.commit === commit && existing.state !== 'failed') {
      log(`preview #${n}: already at ${shortSha(commit)}`);
      return;
    }

    const { diff, desired } = await this.deps.sync.planRevision(commit);
    await reporter.status(repo, commit, { context: PLAN, state: diff.valid ? 'success' : 'failure', description: planSummaryLine(diff) });
    if (!trust.trusted) return this.hold(pr, commit, diff, trust);
    log(`preview #${n}: trusted: ${trust.reason}`);
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
    if (!(await this.gate.closed(pr, this.deps.log))) {
      this.deps.log(`preview #${pr.number}: a close, but the pull request is open at the Git host (a stale or replayed delivery); the preview stays`);
      return;
    }
    await this.teardownNow(pr, `pull request ${pr.merged ? 'merged' : 'closed'}: the preview was removed`);
  }

  private async teardownNow(pr: PullRequestEvent, why: string): Promise<void> {
    const { store, reporter, log } = this.deps;
    const n = pr.number;
    const { rec, owned } = await this.removeState(n);
    if (rec || owned.length > 0) {
      await store.events.record({ type: 'Normal', reason: 'PreviewRemoved', object: `preview/${n}`, message: `${why} (${owned.length} deployment(s))` });
      log(`preview #${n}: ${why} (${owned.length} deployment(s))`);
    }
    await reporter.finalComment(pr.repo.apiName, n, commentMarkdown(n, rec?.plan, { state: 'closed', message: why, namespaces: [], endpoints: [] }));
  }

  /** Removes a preview's records and desired state; the controller stops its instances. */
  private async removeState(n: number): Promise<{ rec?: PreviewRecord; owned: { namespace: string; name: string }[] }> {
    const { store } = this.deps;
    const owner = previewOwner(n);
    this.watchers.get(n)?.abort();
    const [rec, namespacesNow, deploymentsNow] = await Promise.all([this.read(n), store.readNamespaces(), store.readDeployments()]);
    const owned = deploymentsNow.filter((d) => ownerOf(d) === owner);
    await store.writeOwnedState(owner, { namespaces: namespacesNow, deployments: deploymentsNow }, { namespaces: [], deployments: [] }, { removePreview: n });
    for (const d of owned) this.deps.enqueue(objectKey(d.namespace, d.name));
    // Its ConfigMap and Secret versions go now, not at the next full resync: a closed pull
    // request's secrets must not stay in Redis for minutes.
    await pruneConfigVersions(store);
    return { ...(rec ? { rec } : {}), owned };
  }

  private async ownedDeployments(n: number): Promise<{ namespace: string; name: string }[]> {
    const owner = previewOwner(n);
    return (await this.deps.store.readDeployments()).filter((d) => ownerOf(d) === owner);
  }

  /** An untrusted head: its plan is reported, nothing runs, and a preview of an earlier head is removed. */
  private async hold(pr: PullRequestEvent, commit: string, diff: PreviewRecord['plan'], trust: Extract<TrustDecision, { trusted: false }>): Promise<void> {
    const { store, reporter, log } = this.deps;
    const n = pr.number;
    const repo = pr.repo.apiName;
    const had = (await this.read(n)) !== undefined || (await this.ownedDeployments(n)).length > 0;
    if (had) await this.removeState(n);
    const why = `not deployed: ${trust.reason}`;
    const message = `${why}${had ? '; its earlier preview was removed' : ''}. To deploy it, ${trust.allow}.`;
    log(`preview #${n}: ${message}`);
    await store.events.record({ type: 'Normal', reason: 'PreviewNotTrusted', object: `preview/${n}`, message });
    await reporter.status(repo, commit, { context: PREVIEW, state: 'pending', description: trust.status });
    await reporter.comment(repo, n, commentMarkdown(n, diff, { state: 'awaiting-approval', message, namespaces: [], endpoints: [] }));
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
    // Node addresses stay off the pull request (anyone who can read it would see them) unless asked for.
    const shown = endpoints.map((e) => (this.opts.commentUrls ? { deployment: e.deployment, url: e.url } : { deployment: e.deployment }));
    const summary: PreviewSummary = { state, message: why, namespaces: done.namespaces, endpoints: shown, detailsAt: `/api/v1/previews/${n}` };
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
      // Ready ones only, as a Service's endpoints: a replacement still starting (a rollout of the
      // preview, a restart) is not a URL to hand out yet.
      if (!inPreview.has(i.namespace) || i.phase !== 'Running' || !i.ready || !i.hostIP) continue;
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
