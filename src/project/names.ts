// Element names: paths relative to the element directory, ending in `.bst`,
// as BuildStream names them. A branded type: only `parseElementName` makes one.
import { normalize } from 'node:path';

export type ElementName = string & { readonly __element: unique symbol };

/** The name, or why it is not one. */
export function parseElementName(text: string): ElementName | { error: string } {
  if (!text.endsWith('.bst')) return { error: `element name "${text}" does not end in .bst` };
  if (text.startsWith('/') || normalize(text) !== text || text.split('/').includes('..'))
    return { error: `element name "${text}" is not a plain path inside the element directory` };
  // eslint-disable-next-line no-control-regex -- control characters are what is refused
  if (/[\u0000-\u001f<>:"\\|?*]/.test(text))
    return { error: `element name "${text}" has a character BuildStream reserves (<>:"\\|?*)` };
  return text as ElementName;
}

/** The name as BuildStream writes it in artifact refs: `/` → `-`, `.bst` dropped. */
export function normalName(name: ElementName): string {
  return name
    .slice(0, -4)
    .replaceAll('/', '-')
    .replace(/[^0-9A-Za-z._-]/g, '_');
}
