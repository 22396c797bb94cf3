/**
 * `.gantryignore`: files Gantry must not read, such as a folder of CustomResourceDefinitions or of
 * Helm templates next to plain manifests. Like .gitignore, a file applies to its own directory and
 * everything below it, one pattern per line:
 *   - blank lines and lines starting with `#` are skipped; `!pattern` takes a file back;
 *   - `*` matches within one path segment, `**` across segments, `?` one character;
 *   - a pattern holding a `/` (other than a trailing one) is anchored at the .gantryignore's
 *     directory; one without matches a file or directory name at any depth;
 *   - a trailing `/` matches a directory (and so everything in it).
 * Pure: the loader passes the files' contents.
 */

export const IGNORE_FILE = '.gantryignore';

interface Rule {
  negate: boolean;
  regex: RegExp;
  pattern: string;
}

export interface IgnoreFile {
  /** Directory of the .gantryignore, '' for the root, without a trailing '/'. */
  dir: string;
  path: string;
  rules: Rule[];
}

function globToRegex(glob: string): string {
  let out = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*' && glob[i + 1] === '*') {
      // `**/` matches zero or more directories; a `**` elsewhere anything at all.
      if (glob[i + 2] === '/') {
        out += '(?:.*/)?';
        i += 2;
      } else {
        out += '.*';
        i += 1;
      }
    } else if (c === '*') out += '[^/]*';
    else if (c === '?') out += '[^/]';
    else out += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return out;
}

export function parseIgnoreFile(path: string, text: string): IgnoreFile {
  const slash = path.lastIndexOf('/');
  const dir = slash === -1 ? '' : path.slice(0, slash);
  const rules: Rule[] = [];
  for (const raw of text.split(/\r?\n/)) {
    let line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const negate = line.startsWith('!');
    if (negate) line = line.slice(1);
    const dirOnly = line.endsWith('/');
    if (dirOnly) line = line.slice(0, -1);
    if (line === '') continue;
    const anchored = line.includes('/');
    if (line.startsWith('/')) line = line.slice(1);
    const body = globToRegex(line);
    // A match may be the path itself or a directory above it (everything inside an ignored dir).
    const tail = dirOnly ? '/.+' : '(?:/.+)?';
    rules.push({ negate, pattern: raw.trim(), regex: new RegExp(`^${anchored ? '' : '(?:.*/)?'}${body}${tail}$`) });
  }
  return { dir, path, rules };
}

/** The ignore file and pattern that skip `file` (a repository-relative path), if any. */
export function ignoredBy(file: string, ignoreFiles: IgnoreFile[]): { path: string; pattern: string } | undefined {
  let verdict: { path: string; pattern: string } | undefined;
  // Outer files first, so a nested .gantryignore can take a file back with `!`.
  const applicable = ignoreFiles.filter((f) => f.dir === '' || file.startsWith(`${f.dir}/`)).sort((a, b) => a.dir.length - b.dir.length);
  for (const f of applicable) {
    const rel = f.dir === '' ? file : file.slice(f.dir.length + 1);
    for (const rule of f.rules) {
      if (!rule.regex.test(rel)) continue;
      verdict = rule.negate ? undefined : { path: f.path, pattern: rule.pattern };
    }
  }
  return verdict;
}
