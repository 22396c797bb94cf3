/**
 * Real git repositories for tests, driven by the system `git` CLI.
 *
 * Always async (execFile, never execFileSync): a test process that also serves
 * `git http-backend` would deadlock if it blocked its event loop on a git child.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

/** Environment that makes git hermetic: no user/system config, no prompts, fixed identity. */
export const GIT_ENV: NodeJS.ProcessEnv = {
  ...process.env,
  GIT_CONFIG_NOSYSTEM: '1',
  GIT_CONFIG_GLOBAL: '/dev/null',
  GIT_TERMINAL_PROMPT: '0',
  GIT_AUTHOR_NAME: 'Gantry Test',
  GIT_AUTHOR_EMAIL: 'test@gantry.invalid',
  GIT_COMMITTER_NAME: 'Gantry Test',
  GIT_COMMITTER_EMAIL: 'test@gantry.invalid',
};

/** Runs git asynchronously in `cwd`; resolves with stdout (trailing newline trimmed). */
export function gitAsync(args: string[], cwd: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('git', args, { cwd, env: GIT_ENV, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`git ${args.join(' ')} failed in ${cwd}: ${stderr || err.message}`));
      else resolve(stdout.replace(/\n$/, ''));
    });
  });
}

export interface TestRepo {
  /** The repository: a working repo, or the bare repo itself when `bare`. */
  dir: string;
  /** Where commits are made: `dir` itself, or a clone that pushes to the bare `dir`. */
  workDir: string;
  branch: string;
  /**
   * Writes (string) or deletes (null) files relative to the repo root, commits everything
   * and, for a bare repo, pushes. Always makes a commit, even if nothing changed.
   * Resolves with the new commit sha.
   */
  commitFiles(files: Record<string, string | null>, message?: string): Promise<string>;
  cleanup(): Promise<void>;
}

export async function createRepo(opts: { branch?: string; bare?: boolean } = {}): Promise<TestRepo> {
  const branch = opts.branch ?? 'main';
  const root = await mkdtemp(join(tmpdir(), 'gantry-git-'));
  const dir = join(root, opts.bare ? 'repo.git' : 'repo');
  const workDir = opts.bare ? join(root, 'work') : dir;

  await mkdir(dir);
  if (opts.bare) {
    await gitAsync(['init', '--quiet', '--bare', '-b', branch], dir);
    await mkdir(workDir);
  }
  await gitAsync(['init', '--quiet', '-b', branch], workDir);
  await gitAsync(['config', 'user.name', 'Gantry Test'], workDir);
  await gitAsync(['config', 'user.email', 'test@gantry.invalid'], workDir);
  await gitAsync(['config', 'commit.gpgsign', 'false'], workDir);
  if (opts.bare) await gitAsync(['remote', 'add', 'origin', dir], workDir);

  let counter = 0;
  return {
    dir,
    workDir,
    branch,
    async commitFiles(files, message) {
      for (const [path, content] of Object.entries(files)) {
        const abs = join(workDir, path);
        if (content === null) {
          await rm(abs, { force: true });
        } else {
          await mkdir(dirname(abs), { recursive: true });
          await writeFile(abs, content);
        }
      }
      await gitAsync(['add', '--all'], workDir);
      await gitAsync(['commit', '--quiet', '--allow-empty', '-m', message ?? `commit ${++counter}`], workDir);
      if (opts.bare) await gitAsync(['push', '--quiet', '--force', 'origin', `HEAD:refs/heads/${branch}`], workDir);
      return gitAsync(['rev-parse', 'HEAD'], workDir);
    },
    async cleanup() {
      await rm(root, { recursive: true, force: true });
    },
  };
}
