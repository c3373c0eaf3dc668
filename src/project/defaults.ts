// Built-in configuration: the project defaults every project.conf composes
// onto, and the defaults of each element kind. Names, values and commands
// follow BuildStream's (a BuildStream project must behave the same here).
import { availableParallelism } from 'node:os';

/** The defaults below project.conf. `max-jobs` and `project-name` are added by the loader. */
export const PROJECT_DEFAULTS = `
element-path: .
variables:
  prefix: /usr
  exec_prefix: "%{prefix}"
  bindir: "%{exec_prefix}/bin"
  sbindir: "%{exec_prefix}/sbin"
  libexecdir: "%{exec_prefix}/libexec"
  datadir: "%{prefix}/share"
  sysconfdir: /etc
  sharedstatedir: "%{prefix}/com"
  localstatedir: /var
  lib: lib
  libdir: "%{prefix}/%{lib}"
  debugdir: "%{libdir}/debug"
  includedir: "%{prefix}/include"
  docdir: "%{datadir}/doc"
  infodir: "%{datadir}/info"
  mandir: "%{datadir}/man"
  build-root: /buildstream/%{project-name}/%{element-name}
  conf-root: .
  install-root: /buildstream-install
  strip-binaries: ""
environment:
  PATH: /usr/bin:/bin:/usr/sbin:/sbin
  SHELL: /bin/sh
  TERM: dumb
  USER: tomjon
  USERNAME: tomjon
  LOGNAME: tomjon
  LC_ALL: C
  HOME: /tmp
  TZ: UTC
  SOURCE_DATE_EPOCH: "1321009871"
environment-nocache: []
sandbox: {}
split-rules: {}
`;

const BUILD_CONFIG = `
config:
  configure-commands: []
  build-commands: []
  install-commands: []
  strip-commands:
  - "%{strip-binaries}"
`;

const MAKE_VARIABLES = `
  make-install-args: '%{make-args} DESTDIR="%{install-root}" install'
  make: make %{make-args}
  make-install: make -j1 %{make-install-args}
`;

const MAKE_ENVIRONMENT = `
environment:
  MAKEFLAGS: -j%{max-jobs}
  V: "1"
environment-nocache:
- MAKEFLAGS
- V
`;

/** Every kind specbuild knows, with its defaults (YAML composed under the element). */
export const KIND_DEFAULTS: Readonly<Record<string, string>> = {
  import: `
config:
  source: /
  target: /
`,
  stack: `
config: {}
`,
  manual: BUILD_CONFIG,
  make: `
variables:
  make-args: 'PREFIX="%{prefix}"'
${MAKE_VARIABLES}
config:
  configure-commands: []
  build-commands:
  - "%{make}"
  install-commands:
  - "%{make-install}"
  strip-commands:
  - "%{strip-binaries}"
${MAKE_ENVIRONMENT}
`,
  autotools: `
variables:
  autogen: |
    export NOCONFIGURE=1;
    if [ -x %{conf-cmd} ]; then true;
    elif [ -x %{conf-root}/autogen ]; then %{conf-root}/autogen;
    elif [ -x %{conf-root}/autogen.sh ]; then %{conf-root}/autogen.sh;
    elif [ -x %{conf-root}/bootstrap ]; then %{conf-root}/bootstrap;
    elif [ -x %{conf-root}/bootstrap.sh ]; then %{conf-root}/bootstrap.sh;
    else autoreconf -ivf %{conf-root};
    fi
  conf-global: ""
  conf-local: ""
  conf-cmd: "%{conf-root}/configure"
  conf-args: |
    --prefix=%{prefix} \\
    --exec-prefix=%{exec_prefix} \\
    --bindir=%{bindir} \\
    --sbindir=%{sbindir} \\
    --sysconfdir=%{sysconfdir} \\
    --datadir=%{datadir} \\
    --includedir=%{includedir} \\
    --libdir=%{libdir} \\
    --libexecdir=%{libexecdir} \\
    --localstatedir=%{localstatedir} \\
    --sharedstatedir=%{sharedstatedir} \\
    --mandir=%{mandir} \\
    --infodir=%{infodir} %{conf-global} %{conf-local}
  configure: "%{conf-cmd} %{conf-args}"
  make-args: ""
${MAKE_VARIABLES}
config:
  configure-commands:
  - "%{autogen}"
  - "%{configure}"
  build-commands:
  - "%{make}"
  install-commands:
  - "%{make-install}"
  strip-commands:
  - "%{strip-binaries}"
${MAKE_ENVIRONMENT}
`,
  cmake: `
variables:
  build-dir: _builddir
  cmake-global: ""
  cmake-local: ""
  generator: Ninja
  cmake-args: |
    -DCMAKE_VERBOSE_MAKEFILE=ON \\
    -DCMAKE_INSTALL_PREFIX:PATH="%{prefix}" \\
    -DCMAKE_INSTALL_LIBDIR:PATH="%{lib}" %{cmake-global} %{cmake-local}
  cmake: cmake -B%{build-dir} -H"%{conf-root}" -G"%{generator}" %{cmake-args}
  make: cmake --build %{build-dir} -- \${JOBS}
  make-install: env DESTDIR="%{install-root}" cmake --build %{build-dir} --target install
config:
  configure-commands:
  - "%{cmake}"
  build-commands:
  - "%{make}"
  install-commands:
  - "%{make-install}"
  strip-commands:
  - "%{strip-binaries}"
environment:
  JOBS: -j%{max-jobs}
environment-nocache:
- JOBS
`,
};

/** The kinds whose elements run commands in a sandbox. */
export const BUILD_KINDS: readonly string[] = ['manual', 'make', 'autotools', 'cmake'];

/** BuildStream's default for max-jobs: the number of cores, at most 8. */
export function defaultMaxJobs(): number {
  return Math.min(availableParallelism(), 8);
}
