// Where a tar or git source's `url` points on this machine. specbuild fetches
// without a network: a URL is a local path (absolute, or relative to the
// project) or a file:// URL, reached directly or through a project alias;
// any other scheme is refused with a way out (an alias to a local mirror).
import { isAbsolute, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SpecbuildError, type Location } from '../../core/index.js';
import { translateUrl, type Project } from '../project.js';

/** `scheme:` or `user@host:` before any `/`: something only a network could reach. */
const REMOTE_RE = /^[^/]*:/;

/** The absolute local path of a source URL (aliases translated). */
export function localPathOfUrl(project: Project, url: string, at: Location | undefined): string {
  const translated = translateUrl(project, url);
  const shown = translated === url ? `"${url}"` : `"${url}" (${translated})`;
  if (translated.startsWith('file:')) {
    try {
      return fileURLToPath(translated);
    } catch (e) {
      throw new SpecbuildError('source/fetch', `URL ${shown} is not a local file:// URL`, {
        location: at,
        hint: 'write file:///absolute/path (no host part)',
        cause: e,
      });
    }
  }
  if (REMOTE_RE.test(translated)) {
    const prefix = translated.slice(0, translated.indexOf(':'));
    throw new SpecbuildError(
      'source/fetch',
      `cannot fetch ${shown}: specbuild reads sources from local paths and file:// URLs only, and "${prefix}" is not an alias of project.conf`,
      {
        location: at,
        hint: `declare an alias in project.conf that points to a local mirror directory, e.g. aliases: {upstream: file:///srv/mirror/}, and write the url as upstream:<name>`,
      },
    );
  }
  return isAbsolute(translated) ? translated : join(project.dir, translated);
}
