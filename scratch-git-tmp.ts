import { createGitSource } from '/work/main/reconciler/git/source.ts';
import { createRepo } from '/work/main/test/helpers/git-repo.ts';
const r = await createRepo();
await r.commitFiles({ 'a.yaml': '1' });
const s = createGitSource({ repo: r.dir, branch: 'main', subPath: '.', dataDir: '/tmp', pollIntervalMs: 600000 });
let hints = 0; s.watch(() => hints++);
while (hints < 1) await new Promise((res) => setTimeout(res, Number(process.env.POLL ?? 10)));
let missed = 0;
for (let i = 0; i < 10; i++) {
  const before = hints;
  await r.commitFiles({ [`f${i}.yaml`]: 'x' });
  const t = Date.now();
  while (hints === before && Date.now() - t < 5000) await new Promise((res) => setTimeout(res, Number(process.env.POLL ?? 10)));
  if (Date.now() - t > 300) process.stdout.write(`slow${i}:${Date.now() - t} `); if (hints === before) { missed++; process.stdout.write(`m${i} `); }
  if (process.env.RESOLVE) await s.resolve();
}
console.log('missed', missed, 'of 40');
await s.close(); await r.cleanup();
