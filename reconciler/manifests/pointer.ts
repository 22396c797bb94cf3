/** JSON pointers (RFC 6901), the addresses problems are reported at: /spec/template/spec/containers/0. */

export function escapePointerToken(token: string): string {
  // Every field of every document passes here: most need no escaping, and two regex passes cost.
  if (!token.includes('~') && !token.includes('/')) return token;
  return token.replace(/~/g, '~0').replace(/\//g, '~1');
}

/** The tokens of a pointer; '' (the whole document) has none. */
export function parsePointer(pointer: string): string[] {
  if (pointer === '') return [];
  return pointer
    .slice(1)
    .split('/')
    .map((t) => t.replace(/~1/g, '/').replace(/~0/g, '~'));
}
