import { test } from 'node:test';
test('x', async () => { await import('/work/main/scratch-git-tmp.ts'); });
