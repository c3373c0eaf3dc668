/*
 * specbuild-sandbox: runs one command in fresh Linux namespaces (mount, PID,
 * IPC, UTS and, unless --net, network) whose root is a tmpfs holding the
 * host's /usr and /etc, a private /dev, /proc and /tmp, and read-only layers
 * overlaid above the host directories, so that staged files appear at their
 * absolute paths. Writes to overlaid directories go to --upper, never to a
 * layer or the host.
 *
 * The command is root only inside a user namespace of its own, created after
 * the mounts: as root the helper maps it to an unprivileged host uid/gid of
 * its own (SANDBOX_ID_BASE + the helper's pid), as another user to that user.
 * Its namespace owns none of the others, so its capabilities (a small
 * bounding set, see KEPT_CAPS) cannot mount, unmount, make devices or write
 * sysctls, and no_new_privs keeps set-uid programs from raising them.
 *
 * It is native because setting up a dozen mounts by running util-linux
 * commands costs tens of milliseconds per action; this costs about one.
 *
 * Usage (arguments come from specbuild's sandbox layer, not from users):
 *   specbuild-sandbox --scratch DIR [--upper DIR] [--layer DIR]...
 *       [--bind SRC DST]... [--ro-bind SRC DST]... [--cwd DIR] [--net]
 *       [--max-processes N] [--max-memory BYTES] [--stdout FILE] [--stderr FILE]
 *       [--hold] [--foreground] [--no-host] [--env K=V]... -- COMMAND [ARG]...
 *   specbuild-sandbox --serve
 * Layers are given lowest first; with --no-host nothing of the host's file
 * system is seen (its /dev nodes and /proc aside): the layers are the root. --stdout and --stderr name files the helper
 * creates (or truncates) for the command's output; without them it inherits
 * its own. --max-processes bounds the command's tasks
 * (processes and threads) at once, --max-memory the data memory of each of its
 * processes; without them there is no limit. Progress lines on fd 3: "pid N" (the
 * namespace's init, whose /proc/N/root shows the sandbox) and "done STATUS"
 * (the command's raw wait status); with --hold the sandbox stays up after the
 * command until fd 4 reaches end of file, so outputs can be read through it.
 * With --foreground and a terminal on stdin (an interactive shell), the
 * command gets a process group of its own, inside the sandbox, that becomes
 * the terminal's foreground group (so a job-control shell finds its group
 * and can hand the terminal back to it), and the helper gives the terminal
 * back to its own group when the command has finished.
 * Setup errors are written to fd 3 when it is
 * open (else stderr) and give exit status 125; a command that cannot be
 * executed gives 127 (not found) or 126. Otherwise the exit status, or the
 * terminating signal, is the command's.
 *
 * The sandbox ends with its caller: the helper is killed when the process
 * that started it dies (even by SIGKILL), and the namespace's init with the
 * helper. SIGINT and SIGQUIT (a terminal's Ctrl-C and Ctrl-\, when the
 * command shares the caller's terminal) are the command's alone: the helper
 * ignores them, and the init, as any namespace's init, is not killed by them.
 *
 * --serve: a spawner that stays up and forks one sandbox per request (see
 * serve() below). Node's spawn costs grow with the size of the Node process
 * (fork copies its page tables: 2 ms from a fresh Node, 15-20 ms from a
 * server holding 200-300 MB, measured on the 2-core CI machine); forking this
 * small process costs about 0.1 ms. A sandbox it forks has the spawner as its
 * caller, and the spawner ends with the process that started it.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_ITEMS 512
#define SETUP_FAILED 125
#define PATH_MAX_LEN 4096

/*
 * As root, the command's root is host uid and gid SANDBOX_ID_BASE + the
 * helper's pid: never host root, and distinct for every live sandbox (the
 * helper outlives every process of its sandbox), so per-user limits, signals
 * and keyrings never cross sandboxes. systemd's table of id ranges
 * (docs/UIDS-GIDS.md) leaves the ids from 0x70000000 unused: above the
 * container ranges that systemd-nspawn picks from (2^30 is in them) and the
 * subordinate ids that useradd hands out, below 2^31, where tools start to
 * misread ids as negative. pid_max is at most 2^22, so every id fits.
 */
#define SANDBOX_ID_BASE 0x70000000u

/*
 * The capabilities the command keeps (its bounding set; as root of its user
 * namespace it has all of these, and no others, after execve). Each acts only
 * on what is mapped into that namespace: its own files and processes. Kept,
 * because builds run as root expect them: CHOWN, FOWNER and FSETID (`install
 * -o 0 -m 4755`, `cp -a`, `tar x` keeping owners, modes and times),
 * DAC_OVERRIDE (writing or removing its own read-only files, which root does
 * without thinking: `as -o` over an 0444 object), KILL (signalling any of its
 * processes), SETUID and SETGID (tools that switch to root or drop groups,
 * such as su, runuser or apt's privilege drop; only id 0 is mapped). Not
 * kept, because no compile, link or test needs them and each widens what the
 * kernel exposes: SYS_ADMIN, NET_ADMIN, NET_RAW, MKNOD, SYS_CHROOT,
 * SYS_PTRACE, SETPCAP, SETFCAP and the rest.
 */
static const int KEPT_CAPS[] = {CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_FOWNER, CAP_FSETID,
                                CAP_KILL, CAP_SETGID, CAP_SETUID};

extern char **environ;

static const char *layers[MAX_ITEMS];
static int n_layers;
static const char *bind_src[MAX_ITEMS], *bind_dst[MAX_ITEMS];
static int bind_ro[MAX_ITEMS];
static int n_binds;
static char *envs[MAX_ITEMS + 1];
static int n_envs;
static const char *scratch, *upper, *cwd = "/";
static int network, hold, foreground, no_host;
/* 0: no limit. */
static unsigned long long max_processes, max_memory;
/* Running as root: the command gets a host uid of its own (sandbox_id). */
static int as_root;
static unsigned sandbox_id;

static void die(const char *fmt, ...) {
  char buf[2048];
  int saved = errno;
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof buf - 200, fmt, ap);
  va_end(ap);
  if (n < 0) n = 0;
  if (n > (int)sizeof buf - 200) n = sizeof buf - 200;
  if (saved != 0) n += snprintf(buf + n, 150, ": %s", strerror(saved));
  buf[n++] = '\n';
  int fd = fcntl(3, F_GETFD) == -1 ? 2 : 3;
  if (write(fd, buf, n) < 0) { /* nowhere else to report */ }
  _exit(SETUP_FAILED);
}

/* A line for the caller on fd 3 (pid of the namespace's init, command status). */
static void report(const char *fmt, ...) {
  char buf[128];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  if (n > 0 && fcntl(3, F_GETFD) != -1 && write(3, buf, (size_t)n) < 0) { /* caller gone */ }
}

static void path_join(char *out, const char *a, const char *b) {
  while (*b == '/') b++;
  int n = snprintf(out, PATH_MAX_LEN, "%s/%s", a, b);
  if (n < 0 || n >= PATH_MAX_LEN) { errno = ENAMETOOLONG; die("path too long: %s/%s", a, b); }
}

static void mkdirs(const char *path) {
  char tmp[PATH_MAX_LEN];
  snprintf(tmp, sizeof tmp, "%s", path);
  for (char *p = tmp + 1; *p; p++) {
    if (*p != '/') continue;
    *p = 0;
    if (mkdir(tmp, 0755) != 0 && errno != EEXIST) die("mkdir %s", tmp);
    *p = '/';
  }
  if (mkdir(tmp, 0755) != 0 && errno != EEXIST) die("mkdir %s", tmp);
}

static void do_mount(const char *src, const char *dst, const char *type, unsigned long flags, const char *data) {
  if (mount(src, dst, type, flags, data) != 0)
    die("mount %s on %s (%s)", src ? src : "-", dst, type ? type : "bind");
}

static void bind_mount(const char *src, const char *dst, int readonly) {
  do_mount(src, dst, NULL, MS_BIND | MS_REC, NULL);
  if (readonly) do_mount(NULL, dst, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID, NULL);
}

static int is_dir(const char *p) {
  struct stat st;
  return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* LAYER/SUB is a directory, and no component of SUB is a symlink: the
 * helper resolves layer paths on the host, where a symlink in a layer (an
 * action's input root) could point anywhere, e.g. etc -> /root. */
static int is_layer_dir(const char *layer, const char *sub) {
  char p[PATH_MAX_LEN];
  path_join(p, layer, sub);
  for (char *c = p + strlen(layer) + 1;; c++) {
    if (*c != '/' && *c != 0) continue;
    char end = *c;
    *c = 0;
    struct stat st;
    int dir = lstat(p, &st) == 0 && S_ISDIR(st.st_mode);
    *c = end;
    if (!dir) return 0;
    if (end == 0) return 1;
  }
}

static void write_file(const char *path, const char *text) {
  int fd = open(path, O_WRONLY);
  if (fd < 0) die("open %s", path);
  if (write(fd, text, strlen(text)) < 0) die("write %s", path);
  close(fd);
}

/* A directory the helper made becomes the command's (as root: else it is the
 * caller's already, which is the command's root). */
static void give_to_sandbox(const char *path) {
  if (as_root && chown(path, sandbox_id, sandbox_id) != 0) die("chown %s", path);
}

/* A volatile overlay leaves WORK/work/incompat/volatile behind, and the
 * kernel refuses to mount over it again (an upper directory that several
 * runs share, as tests do). Upper directories are throw-away: the mark goes. */
static void clear_volatile_mark(const char *work) {
  char p[PATH_MAX_LEN];
  path_join(p, work, "work/incompat/volatile/dirty");
  if (unlink(p) != 0) return; /* the usual case: a fresh upper directory */
  *strrchr(p, '/') = 0;
  rmdir(p);
  *strrchr(p, '/') = 0;
  rmdir(p);
}

/* ROOT/NAME becomes an overlay of the layers' directories SUBS (each a path
 * in a layer; every layer's first SUB, highest layer first, then every
 * layer's second...) above the host directory HOST, if not NULL; writes go to
 * UPPER/NAME. */
static void overlay(const char *root, const char *name, const char *const *subs, int n_subs, const char *host) {
  /* mount(2) copies at most one page of options. */
  static char opts[4096];
  char target[PATH_MAX_LEN], up[PATH_MAX_LEN], work[PATH_MAX_LEN], ld[PATH_MAX_LEN], wbase[PATH_MAX_LEN];
  size_t len = (size_t)snprintf(opts, sizeof opts, "lowerdir=");
  int lowers = 0;
  for (int s = 0; s < n_subs; s++) {
    for (int i = n_layers - 1; i >= 0 && len < sizeof opts; i--) {
      if (!is_layer_dir(layers[i], subs[s])) continue;
      path_join(ld, layers[i], subs[s]);
      len += (size_t)snprintf(opts + len, sizeof opts - len, "%s%s", lowers ? ":" : "", ld);
      lowers++;
    }
  }
  if (host != NULL && len < sizeof opts) {
    len += (size_t)snprintf(opts + len, sizeof opts - len, "%s%s", lowers ? ":" : "", host);
    lowers++;
  }
  path_join(target, root, name);
  mkdirs(target);
  if (lowers == 0) return;
  path_join(up, upper, name);
  path_join(wbase, upper, ".work");
  path_join(work, wbase, name);
  mkdirs(up);
  mkdirs(work);
  /* The overlay's top directory is the upper one: the command's own, like
   * the rest of its root. (Copy-up below it is done with the mounter's
   * credentials, the files the command creates are its own.) */
  give_to_sandbox(up);
  clear_volatile_mark(work);
  if (len < sizeof opts)
    len += (size_t)snprintf(opts + len, sizeof opts - len, ",upperdir=%s,workdir=%s", up, work);
  if (len >= sizeof opts) {
    errno = E2BIG;
    die("too many layers (or too long paths) for one overlay of /%s: its options exceed %zu bytes",
        name, sizeof opts);
  }
  /* volatile (Linux 5.10): no sync of the upper file system, which the
   * kernel otherwise does when the overlay is unmounted, i.e. when the
   * sandbox ends: a writeback of everything dirty on that whole file system
   * (the cache's disk), for writes that are thrown away. With another process
   * writing, a sandbox's end took 5-6 ms (p90 11-15), 0.5 ms with volatile
   * (2-core CI machine, ext4). Older kernels refuse the option: then without. */
  size_t plain = len;
  len += (size_t)snprintf(opts + len, sizeof opts - len, ",volatile");
  if (len < sizeof opts && mount("overlay", target, "overlay", MS_NOSUID, opts) == 0) return;
  opts[plain] = 0;
  do_mount("overlay", target, "overlay", MS_NOSUID, opts);
}

/* ROOT/NAME: an overlay of every layer's NAME, above the host's /NAME when with_host. */
static void overlay_top(const char *root, const char *name, int with_host) {
  char host[PATH_MAX_LEN];
  snprintf(host, sizeof host, "/%s", name);
  overlay(root, name, &name, 1, with_host ? host : NULL);
}

static int provided(const char *name) {
  static const char *names[] = {"usr", "etc", "dev", "proc", "bin", "lib", "lib32", "lib64", "libx32", "sbin"};
  for (size_t i = 0; i < sizeof names / sizeof *names; i++)
    if (strcmp(name, names[i]) == 0) return 1;
  return 0;
}

/* Top-level entries of the layers other than the ones the sandbox provides. */
static void layer_tops(const char *root) {
  static char seen[MAX_ITEMS][256];
  int n_seen = 0;
  char p[PATH_MAX_LEN], q[PATH_MAX_LEN];
  for (int i = n_layers - 1; i >= 0; i--) {
    DIR *d = opendir(layers[i]);
    if (d == NULL) die("layer %s", layers[i]);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
      const char *name = e->d_name;
      if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0) continue;
      int dup = 0;
      for (int k = 0; k < n_seen; k++) dup |= strcmp(seen[k], name) == 0;
      if (dup) continue;
      if (strcmp(name, "dev") == 0 || strcmp(name, "proc") == 0) {
        errno = 0;
        die("layer %s has a top-level \"%s\", which the sandbox provides itself", layers[i], name);
      }
      if (provided(name)) continue; /* overlaid in setup_root */
      if (n_seen >= MAX_ITEMS || strlen(name) >= 256) { errno = E2BIG; die("too many top-level entries in layers"); }
      snprintf(seen[n_seen++], 256, "%s", name);
      path_join(p, layers[i], name);
      path_join(q, root, name);
      struct stat st;
      if (lstat(p, &st) != 0) die("stat %s", p);
      if (S_ISDIR(st.st_mode)) {
        overlay_top(root, name, 0);
      } else if (S_ISLNK(st.st_mode)) {
        char target[PATH_MAX_LEN];
        ssize_t n = readlink(p, target, sizeof target - 1);
        if (n < 0) die("readlink %s", p);
        target[n] = 0;
        if (symlink(target, q) != 0) die("symlink %s", q);
      } else {
        int fd = open(q, O_CREAT | O_WRONLY, 0644);
        if (fd < 0) die("create %s", q);
        close(fd);
        bind_mount(p, q, 1);
      }
    }
    closedir(d);
  }
}

/* --no-host: /usr, /etc, /bin, /lib... from the layers alone (the lowest is
 * a whole root file system, e.g. an action's chrootRootDigest): a directory
 * any layer has is an overlay of the layers' (writes to the upper one); else
 * the highest layer's symlink there (bin -> usr/bin), else nothing. */
static void setup_root_from_layers(const char *root) {
  static const char *names[] = {"usr", "etc", "bin", "lib", "lib32", "lib64", "libx32", "sbin"};
  char p[PATH_MAX_LEN], q[PATH_MAX_LEN];
  for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
    int dir = 0;
    for (int l = 0; l < n_layers; l++) dir |= is_layer_dir(layers[l], names[i]);
    if (dir) {
      overlay_top(root, names[i], 0);
      continue;
    }
    for (int l = n_layers - 1; l >= 0; l--) {
      struct stat st;
      path_join(p, layers[l], names[i]);
      if (lstat(p, &st) != 0 || !S_ISLNK(st.st_mode)) continue;
      char target[PATH_MAX_LEN];
      ssize_t n = readlink(p, target, sizeof target - 1);
      if (n < 0) die("readlink %s", p);
      target[n] = 0;
      path_join(q, root, names[i]);
      if (symlink(target, q) != 0) die("symlink %s", q);
      break;
    }
  }
}

static void setup_root(const char *root) {
  char p[PATH_MAX_LEN], q[PATH_MAX_LEN];
  if (no_host) {
    setup_root_from_layers(root);
    goto layers_done;
  }
  /* The host's /bin, /lib... as the same symlinks (or read-only binds of real
   * directories), unless a layer has a directory there (a project's lib/ at
   * the top of an input root): the layer's then wins, merged with what the
   * host has there, so that the loader, libraries and tools are still found. */
  static const char *links[] = {"bin", "lib", "lib32", "lib64", "libx32", "sbin"};
  for (size_t i = 0; i < sizeof links / sizeof *links; i++) {
    char host[64], target[PATH_MAX_LEN];
    snprintf(host, sizeof host, "/%s", links[i]);
    int layered = 0;
    for (int l = 0; l < n_layers; l++) layered |= is_layer_dir(layers[l], links[i]);
    if (layered) {
      /* Lowers: the layers' lib/, then (when /lib -> usr/lib) the layers'
       * usr/lib, which /lib showed before, then the host's /usr/lib. */
      const char *subs[2] = {links[i], NULL};
      int n_subs = 1;
      int on_host = realpath(host, target) != NULL && target[1] != 0 && is_dir(target);
      if (on_host && strcmp(target + 1, links[i]) != 0) subs[n_subs++] = target + 1;
      overlay(root, links[i], subs, n_subs, on_host ? target : NULL);
      continue;
    }
    struct stat st;
    if (lstat(host, &st) != 0) continue;
    path_join(p, root, links[i]);
    if (S_ISLNK(st.st_mode)) {
      ssize_t n = readlink(host, target, sizeof target - 1);
      if (n < 0) die("readlink %s", host);
      target[n] = 0;
      if (symlink(target, p) != 0) die("symlink %s", p);
    } else if (S_ISDIR(st.st_mode)) {
      mkdirs(p);
      bind_mount(host, p, 1);
    }
  }
  /* /usr: the layers above the host's. /etc: read-only host, or layers above it. */
  int layered_etc = 0;
  for (int i = 0; i < n_layers; i++) {
    layered_etc |= is_layer_dir(layers[i], "etc");
  }
  if (upper != NULL) {
    overlay_top(root, "usr", 1);
  } else {
    path_join(p, root, "usr");
    mkdirs(p);
    bind_mount("/usr", p, 1);
  }
  if (layered_etc && upper != NULL) {
    overlay_top(root, "etc", 1);
  } else {
    path_join(p, root, "etc");
    mkdirs(p);
    bind_mount("/etc", p, 1);
  }
layers_done:
  if (n_layers > 0) layer_tops(root);
  /* /dev: a private tmpfs with the usual device nodes bound from the host. */
  path_join(p, root, "dev");
  mkdirs(p);
  do_mount("tmpfs", p, "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755,size=1024k");
  static const char *devs[] = {"null", "zero", "full", "random", "urandom", "tty"};
  for (size_t i = 0; i < sizeof devs / sizeof *devs; i++) {
    char host[64];
    snprintf(host, sizeof host, "/dev/%s", devs[i]);
    path_join(q, p, devs[i]);
    int fd = open(q, O_CREAT | O_WRONLY, 0666);
    if (fd < 0) die("create %s", q);
    close(fd);
    bind_mount(host, q, 0);
  }
  static const char *fdlinks[][2] = {
      {"/proc/self/fd", "fd"}, {"/proc/self/fd/0", "stdin"}, {"/proc/self/fd/1", "stdout"}, {"/proc/self/fd/2", "stderr"}};
  for (size_t i = 0; i < 4; i++) {
    path_join(q, p, fdlinks[i][1]);
    if (symlink(fdlinks[i][0], q) != 0) die("symlink %s", q);
  }
  path_join(q, p, "shm");
  mkdirs(q);
  do_mount("tmpfs", q, "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
  /* /tmp: empty and private, unless the layers bring a tmp/ (then overlaid above). */
  path_join(p, root, "tmp");
  struct stat tst;
  if (lstat(p, &tst) != 0) {
    mkdirs(p);
    do_mount("tmpfs", p, "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
  }
  /* Writable (and read-only) binds at fixed paths. */
  for (int i = 0; i < n_binds; i++) {
    path_join(p, root, bind_dst[i]);
    if (is_dir(bind_src[i])) {
      mkdirs(p);
    } else {
      char parent[PATH_MAX_LEN];
      snprintf(parent, sizeof parent, "%s", p);
      char *slash = strrchr(parent, '/');
      if (slash != NULL && slash != parent) { *slash = 0; mkdirs(parent); }
      int fd = open(p, O_CREAT | O_WRONLY, 0644);
      if (fd < 0) die("create %s", p);
      close(fd);
    }
    bind_mount(bind_src[i], p, bind_ro[i]);
  }
  path_join(p, root, "proc");
  mkdirs(p);
  do_mount("proc", p, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
  /* Sysctls read-only. The command could not undo this even as root of its
   * user namespace: that namespace does not own this mount namespace. */
  path_join(q, p, "sys");
  do_mount(q, q, NULL, MS_BIND, NULL);
  do_mount(NULL, q, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
}

static void loopback_up(void) {
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) return;
  struct ifreq r;
  memset(&r, 0, sizeof r);
  snprintf(r.ifr_name, sizeof r.ifr_name, "lo");
  if (ioctl(s, SIOCGIFFLAGS, &r) == 0) {
    r.ifr_flags |= IFF_UP;
    if (ioctl(s, SIOCSIFFLAGS, &r) != 0) { /* tools then see no loopback; not fatal */ }
  }
  close(s);
}

/* Makes ROOT (a mount point) the root of the mount namespace and detaches the
 * host's. pivot_root, not chroot: the kernel refuses to create a user
 * namespace inside a chroot, and a chroot can be left by whoever may chroot. */
static void enter_root(const char *root) {
  if (chdir(root) != 0) die("chdir %s", root);
  /* The old root lands on top of the new one, at ".", from where it is detached. */
  if (syscall(SYS_pivot_root, ".", ".") != 0) die("pivot_root %s", root);
  if (umount2(".", MNT_DETACH) != 0) die("detach the host's root");
  if (chdir("/") != 0) die("chdir /");
}

static const char NO_NAMESPACES[] =
    "cannot create Linux namespaces (%s); run as root, or enable unprivileged user namespaces "
    "(sysctl kernel.unprivileged_userns_clone=1 and user.max_user_namespaces > 0)";

/* In the parent: maps root of the init's new user namespace to the sandbox's
 * id. Only a process outside that namespace may map it to another id than
 * its own (it needs CAP_SETUID over the parent namespace). */
static void write_id_maps(pid_t init) {
  char path[64], map[64];
  /* As another user, 0 is 0 of the namespace the helper made for itself: the caller. */
  snprintf(map, sizeof map, "0 %u 1\n", as_root ? sandbox_id : 0);
  snprintf(path, sizeof path, "/proc/%d/uid_map", (int)init);
  write_file(path, map);
  snprintf(path, sizeof path, "/proc/%d/gid_map", (int)init);
  write_file(path, map);
}

static int read_byte(int fd) {
  char c;
  ssize_t r;
  do {
    r = read(fd, &c, 1);
  } while (r < 0 && errno == EINTR);
  return r == 1;
}

/* In the init, once every mount is made: moves into a new user namespace,
 * which owns none of the sandbox's other namespaces, and becomes its root. */
static void enter_user_namespace(int ask_fd, int mapped_fd) {
  /* Supplementary groups cannot be mapped; clear them rather than keep root's. */
  if (as_root && setgroups(0, NULL) != 0) die("setgroups");
  if (unshare(CLONE_NEWUSER) != 0) die(NO_NAMESPACES, "a user namespace for the command");
  if (write(ask_fd, "u", 1) != 1) die("asking for id maps");
  errno = 0;
  if (!read_byte(mapped_fd)) die("the helper did not map the command's ids");
  /* As root this changes the host uid to the sandbox's (a no-op otherwise);
   * the capabilities in the new namespace stay, since 0 is its root. */
  if (setresgid(0, 0, 0) != 0) die("setresgid");
  if (setresuid(0, 0, 0) != 0) die("setresuid");
}

/* Sets RESOURCE to VALUE, or keeps the caller's hard limit if lower (only a
 * privileged process could raise it). */
static void limit(int resource, const char *name, unsigned long long value) {
  struct rlimit rl;
  if (getrlimit(resource, &rl) != 0) die("getrlimit %s", name);
  if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < value) value = rl.rlim_max;
  rl.rlim_cur = rl.rlim_max = value;
  if (setrlimit(resource, &rl) != 0) die("setrlimit %s", name);
}

/* In the init, before forking the command, which inherits all of this. */
static void confine(void) {
  /* Counted per user of this user namespace, which is the sandbox's alone
   * (and as root its uid too): the init is one of the tasks. */
  if (max_processes > 0) limit(RLIMIT_NPROC, "RLIMIT_NPROC", max_processes + 1);
  /* Heap and private writable mappings of each process; unlike RLIMIT_AS it
   * leaves alone the address space that runtimes reserve and never touch. */
  if (max_memory > 0) limit(RLIMIT_DATA, "RLIMIT_DATA", max_memory);
  /* The running kernel may know capabilities that these headers do not:
   * drop until it says there are no more. */
  for (int cap = 0; cap < 64; cap++) {
    int keep = 0;
    for (size_t k = 0; k < sizeof KEPT_CAPS / sizeof *KEPT_CAPS; k++) keep |= KEPT_CAPS[k] == cap;
    if (keep) continue;
    if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0) {
      if (errno == EINVAL) break;
      die("dropping capability %d", cap);
    }
  }
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) die("PR_SET_NO_NEW_PRIVS");
}

/* The parent dying ends the sandbox. Checked again after PDEATHSIG is set:
 * the parent may have died before, and then the status pipe's read end is
 * closed, and its write end polls as an error. (getppid() cannot tell: a
 * namespace's init sees its parent as 0 either way.) */
static void die_with_parent(int status_fd) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  struct pollfd alive = {.fd = status_fd, .events = 0};
  if (poll(&alive, 1, 0) > 0 && (alive.revents & POLLERR)) _exit(SETUP_FAILED);
}

static unsigned long long parse_count(const char *option, const char *v) {
  char *end;
  errno = 0;
  unsigned long long n = strtoull(v, &end, 10);
  if (errno != 0 || *end != 0 || *v < '0' || *v > '9' || n == 0) {
    errno = 0;
    die("%s needs a positive integer, not \"%s\"", option, v);
  }
  return n;
}

/* Closes every descriptor from LOWEST up. */
static void close_from(int lowest) {
#ifdef SYS_close_range
  if (syscall(SYS_close_range, (unsigned)lowest, ~0u, 0) == 0) return;
#endif
  struct rlimit rl;
  int max = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 1u << 20 ? (int)rl.rlim_cur : 1 << 20;
  for (int fd = lowest; fd < max; fd++) close(fd);
}

/* The command's stdout or stderr (FD) becomes FILE, created or truncated,
 * opened here on the host as the caller. */
static void output_to(const char *file, int fd, const char *what) {
  int f = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (f < 0) die("open %s file %s", what, file);
  if (dup2(f, fd) < 0) die("dup2 %s", what);
  close(f);
}

static int parse_args(int argc, char **argv) {
  int i = 1;
  for (; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--") == 0) { i++; break; }
    if (strcmp(a, "--net") == 0) { network = 1; continue; }
    if (strcmp(a, "--hold") == 0) { hold = 1; continue; }
    if (strcmp(a, "--foreground") == 0) { foreground = 1; continue; }
    if (strcmp(a, "--no-host") == 0) { no_host = 1; continue; }
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    errno = 0;
    if (v == NULL) die("%s needs a value", a);
    if (strcmp(a, "--scratch") == 0) scratch = v;
    else if (strcmp(a, "--upper") == 0) upper = v;
    else if (strcmp(a, "--cwd") == 0) cwd = v;
    else if (strcmp(a, "--stdout") == 0) output_to(v, 1, "stdout");
    else if (strcmp(a, "--stderr") == 0) output_to(v, 2, "stderr");
    else if (strcmp(a, "--max-processes") == 0) max_processes = parse_count(a, v);
    else if (strcmp(a, "--max-memory") == 0) max_memory = parse_count(a, v);
    else if (strcmp(a, "--layer") == 0 && n_layers < MAX_ITEMS) layers[n_layers++] = v;
    else if (strcmp(a, "--env") == 0 && n_envs < MAX_ITEMS) envs[n_envs++] = (char *)v;
    else if ((strcmp(a, "--bind") == 0 || strcmp(a, "--ro-bind") == 0) && n_binds < MAX_ITEMS && i + 2 < argc) {
      bind_ro[n_binds] = a[2] == 'r';
      bind_src[n_binds] = v;
      bind_dst[n_binds++] = argv[i + 2];
      i++;
    } else die("unknown option %s (or too many of it)", a);
    i++;
  }
  errno = 0;
  if (i >= argc) die("no command given");
  if (scratch == NULL) die("--scratch is required");
  if (n_layers > 0 && upper == NULL) die("--layer needs --upper");
  if (no_host && n_layers == 0) die("--no-host needs a --layer holding a root file system");
  envs[n_envs] = NULL;
  return i;
}

/* Makes the calling process's group the foreground group of the terminal on
 * stdin, if there is one (as a background group would be stopped for it). */
static void take_terminal(void) {
  if (!isatty(0)) return;
  signal(SIGTTOU, SIG_IGN);
  if (tcsetpgrp(0, getpgrp()) != 0) { /* then the shell runs without job control */ }
  signal(SIGTTOU, SIG_DFL);
}

/* The process that started the helper. */
static pid_t caller;

/* A caller killed outright takes its sandbox with it (the init follows the
 * helper, see die_with_parent), rather than leave a build running. */
static void die_with_caller(void) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != caller) _exit(SETUP_FAILED);
}

/* The helper's first process: stays outside the sandbox, maps the command's
 * ids when the init asks, and passes the command's status on. */
static _Noreturn void parent(pid_t child, int status_fd, int ask_fd, int mapped_fd) {
  die_with_caller(); /* again: credential changes on the way may have cleared it */
  /* Set after the fork: the command's dispositions stay the default ones. */
  signal(SIGINT, SIG_IGN);
  signal(SIGQUIT, SIG_IGN);
  report("pid %d\n", (int)child);
  /* End of file instead: the init failed before asking, and says why. */
  if (read_byte(ask_fd)) {
    write_id_maps(child);
    if (write(mapped_fd, "m", 1) != 1) { /* init gone; its status tells */ }
  }
  close(ask_fd);
  close(mapped_fd);
  int st;
  int cmd_status;
  ssize_t got_status;
  do {
    got_status = read(status_fd, &cmd_status, sizeof cmd_status);
  } while (got_status < 0 && errno == EINTR);
  if (got_status == (ssize_t)sizeof cmd_status) report("done %d\n", cmd_status);
  if (foreground) take_terminal(); /* back from the command's group, to the caller's */
  while (waitpid(child, &st, 0) < 0) {
    if (errno != EINTR) die("waitpid");
  }
  if (got_status == (ssize_t)sizeof cmd_status) st = cmd_status;
  if (WIFEXITED(st)) _exit(WEXITSTATUS(st));
  int sig = WTERMSIG(st);
  signal(sig, SIG_DFL);
  kill(getpid(), sig);
  _exit(128 + sig);
}

/* One sandbox: the whole life of a helper run with arguments (or of a
 * process that serve() forked for a request). Never returns. */
static _Noreturn void sandbox(int argc, char **argv) {
  caller = getppid();
  die_with_caller();
  /* A descriptor its caller left open (not close-on-exec) must not reach the
   * command: 0-2 are the command's, 3 and 4 the helper's own. */
  close_from(5);
  int cmd_index = parse_args(argc, argv);
  uid_t uid = getuid();
  gid_t gid = getgid();
  as_root = uid == 0;
  sandbox_id = SANDBOX_ID_BASE + (unsigned)getpid();
  /* The PID namespace here (it applies to children); the others in the init,
   * so that the parent stays in the host's mount namespace and sees its /proc.
   * As another user, first a user namespace of the helper's own, in which it
   * may mount; the command gets a further one of its own below. */
  if (unshare(CLONE_NEWPID | (as_root ? 0 : CLONE_NEWUSER)) != 0)
    die(NO_NAMESPACES, as_root ? "as root" : "with a user namespace");
  if (!as_root) {
    char map[64];
    write_file("/proc/self/setgroups", "deny");
    snprintf(map, sizeof map, "0 %u 1", (unsigned)uid);
    write_file("/proc/self/uid_map", map);
    snprintf(map, sizeof map, "0 %u 1", (unsigned)gid);
    write_file("/proc/self/gid_map", map);
  }
  /* The command's wait status travels from the namespace's init to us on
   * status_pipe; the init asks for its id maps on ask_pipe, we answer on
   * mapped_pipe. */
  int status_pipe[2], ask_pipe[2], mapped_pipe[2];
  if (pipe2(status_pipe, O_CLOEXEC) != 0 || pipe2(ask_pipe, O_CLOEXEC) != 0 ||
      pipe2(mapped_pipe, O_CLOEXEC) != 0)
    die("pipe");
  pid_t child = fork();
  if (child < 0) die("fork");
  if (child > 0) {
    close(status_pipe[1]);
    close(ask_pipe[1]);
    close(mapped_pipe[0]);
    parent(child, status_pipe[0], ask_pipe[0], mapped_pipe[1]);
  }
  /* Init of the new PID namespace: sets up the root, runs the command as its
   * child (so that the command behaves as any process, not as an init that
   * ignores signals), reaps orphans, and reports the command's wait status.
   * When it exits, the kernel kills whatever is left in the namespace. */
  close(status_pipe[0]);
  close(ask_pipe[0]);
  close(mapped_pipe[1]);
  die_with_parent(status_pipe[1]);
  /* Made by host root (or the helper's own user namespace), so that the
   * command's user namespace owns none of them. */
  if (unshare(CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS | (network ? 0 : CLONE_NEWNET)) != 0)
    die(NO_NAMESPACES, as_root ? "as root" : "with a user namespace");
  do_mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL);
  char root[PATH_MAX_LEN];
  do_mount("tmpfs", scratch, "tmpfs", MS_NOSUID, "mode=0755");
  path_join(root, scratch, "root");
  mkdirs(root);
  do_mount(root, root, NULL, MS_BIND, NULL); /* pivot_root needs a mount point */
  give_to_sandbox(root);
  setup_root(root);
  if (!network) loopback_up();
  enter_root(root);
  enter_user_namespace(ask_pipe[1], mapped_pipe[0]);
  close(ask_pipe[1]);
  close(mapped_pipe[0]);
  /* Changing uid cleared the parent-death signal. */
  die_with_parent(status_pipe[1]);
  confine();
  /* As the command: it must be able to reach its working directory itself. */
  if (chdir(cwd) != 0) die("working directory %s", cwd);
  /* The init keeps its capabilities in the namespace (its bounding set no
   * longer matters: it never executes anything): holding more than the
   * command keeps the command from tracing it or reading its fds. */
  pid_t cmd = fork();
  if (cmd < 0) die("fork");
  if (cmd == 0) {
    if (foreground && isatty(0)) {
      if (setpgid(0, 0) != 0) die("setpgid");
      take_terminal();
    }
    close(3);
    close(4);
    environ = envs;
    execvp(argv[cmd_index], argv + cmd_index);
    int err = errno;
    char msg[PATH_MAX_LEN + 128];
    int n = snprintf(msg, sizeof msg, "specbuild-sandbox: cannot execute %s: %s\n", argv[cmd_index], strerror(err));
    if (n > 0 && write(2, msg, (size_t)n) < 0) { /* stderr gone */ }
    _exit(err == ENOENT ? 127 : 126);
  }
  for (;;) {
    int st;
    pid_t got = wait(&st);
    if (got < 0) {
      if (errno == EINTR) continue;
      _exit(SETUP_FAILED);
    }
    if (got == cmd) {
      if (write(status_pipe[1], &st, sizeof st) < 0) { /* parent gone */ }
      /* With --hold, stay alive (keeping the sandbox's mounts, visible at
       * /proc/PID/root) until the caller closes fd 4 after reading outputs. */
      for (char c; hold;) {
        ssize_t r = read(4, &c, 1);
        if (r == 0 || (r < 0 && errno != EINTR)) break;
      }
      _exit(0);
    }
  }
}

/*
 * --serve: the spawner. Node's channel is the spawner's stdin (requests) and
 * stdout (events), in frames: a little-endian u32 length of the body, then
 * the body: a u8 type, a u32 request id and the type's data.
 *   requests  RUN (1): the sandbox's arguments as on the command line, each
 *               NUL-terminated;
 *             RELEASE (2): ends the sandbox's --hold (its fd 4 reaches end of file);
 *             KILL (3): SIGKILLs the sandbox's process group (timeouts, cancellation).
 *   events    HELLO (0, id 0): the spawner is ready;
 *             OUTPUT (1): what the sandbox wrote on its fd 3 (progress lines,
 *               setup errors), as it comes;
 *             EXIT (2): its raw wait status (i32), after all of its OUTPUT.
 * Each sandbox is a child of the spawner in a session of its own (so a KILL
 * reaches all of it, as the helper's process group does when run per
 * request), with fds 0 (/dev/null), 1 and 2 (--stdout, --stderr), 3 and 4
 * (pipes from and to the spawner) and no other: a sandbox holding another's
 * fd 4 would keep that one's --hold from ending. It dies with the spawner
 * (PR_SET_PDEATHSIG), and the spawner kills every sandbox it started and
 * exits when Node goes away (end of file on its channel).
 */
enum { REQ_RUN = 1, REQ_RELEASE = 2, REQ_KILL = 3 };
enum { EV_HELLO = 0, EV_OUTPUT = 1, EV_EXIT = 2 };
/* A request's arguments are bounded by what the kernel passes to a command anyway. */
#define MAX_FRAME (64u << 20)
#define FIRST_FREE_FD 5

struct job {
  uint32_t id;
  pid_t pid;
  int out_fd;  /* read end of the sandbox's fd 3; -1 after end of file */
  int hold_fd; /* write end of its fd 4; -1 once released */
  struct job *next;
};

static struct job *jobs;
static int ctl_in = -1, ctl_out = -1, dev_null = -1;
static pid_t spawner_pid;

static void put_u32(unsigned char *p, uint32_t v) {
  p[0] = (unsigned char)v;
  p[1] = (unsigned char)(v >> 8);
  p[2] = (unsigned char)(v >> 16);
  p[3] = (unsigned char)(v >> 24);
}

static uint32_t get_u32(const unsigned char *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Node is gone (or broke the protocol): nothing may outlive it. */
static _Noreturn void end_all(void) {
  for (struct job *j = jobs; j != NULL; j = j->next) kill(-j->pid, SIGKILL);
  _exit(0);
}

static void send_event(uint8_t type, uint32_t id, const void *data, uint32_t len) {
  unsigned char buf[9 + 4096];
  if (len > sizeof buf - 9) len = sizeof buf - 9; /* callers send at most 4096 */
  put_u32(buf, 5 + len);
  buf[4] = type;
  put_u32(buf + 5, id);
  memcpy(buf + 9, data, len);
  size_t n = 9 + len, off = 0;
  while (off < n) {
    ssize_t w = write(ctl_out, buf + off, n - off);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) end_all();
    off += (size_t)w;
  }
}

/* Relays what the sandbox wrote on its fd 3; at end of file, closes it. */
static void relay_output(struct job *j) {
  char buf[4096];
  for (;;) {
    ssize_t r = read(j->out_fd, buf, sizeof buf);
    if (r > 0) {
      send_event(EV_OUTPUT, j->id, buf, (uint32_t)r);
      continue;
    }
    if (r < 0 && errno == EINTR) continue;
    if (r == 0 || errno != EAGAIN) {
      close(j->out_fd);
      j->out_fd = -1;
    }
    return;
  }
}

/* In the forked child: becomes a helper run for one sandbox. */
static _Noreturn void become_sandbox(int argc, char **argv, int out_w, int hold_r) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != spawner_pid) _exit(SETUP_FAILED);
  setsid();
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  signal(SIGPIPE, SIG_DFL);
  /* Every source is at FIRST_FREE_FD or above, so no dup2 is a no-op that
   * would keep close-on-exec set. */
  if (dup2(dev_null, 0) < 0 || dup2(dev_null, 1) < 0 || dup2(dev_null, 2) < 0 ||
      dup2(out_w, 3) < 0 || dup2(hold_r, 4) < 0)
    _exit(SETUP_FAILED);
  sandbox(argc, argv); /* which closes the spawner's descriptors, from 5 up */
}

/* A request the spawner cannot start reports like a helper that failed its setup. */
static void refuse(uint32_t id, const char *why) {
  char msg[256];
  int n = snprintf(msg, sizeof msg, "%s: %s\n", why, strerror(errno));
  send_event(EV_OUTPUT, id, msg, n > 0 ? (uint32_t)n : 0);
  unsigned char st[4];
  put_u32(st, SETUP_FAILED << 8);
  send_event(EV_EXIT, id, st, 4);
}

static void start_job(uint32_t id, char *data, uint32_t len) {
  int argc = 1;
  for (uint32_t i = 0; i < len; i++) argc += data[i] == 0;
  if (len > 0 && data[len - 1] != 0) {
    errno = EINVAL;
    refuse(id, "malformed request");
    return;
  }
  char **argv = calloc((size_t)argc + 1, sizeof *argv);
  struct job *j = calloc(1, sizeof *j);
  int out[2] = {-1, -1}, hold[2] = {-1, -1};
  if (argv == NULL || j == NULL || pipe2(out, O_CLOEXEC) != 0 || pipe2(hold, O_CLOEXEC) != 0) {
    refuse(id, "cannot start a sandbox");
    goto fail;
  }
  argv[0] = "specbuild-sandbox";
  for (uint32_t i = 0, k = 1; i < len; k++) {
    argv[k] = data + i;
    i += (uint32_t)strlen(data + i) + 1;
  }
  pid_t pid = fork();
  if (pid < 0) {
    refuse(id, "cannot fork a sandbox");
    goto fail;
  }
  if (pid == 0) become_sandbox(argc, argv, out[1], hold[0]);
  close(out[1]);
  close(hold[0]);
  free(argv);
  fcntl(out[0], F_SETFL, O_NONBLOCK);
  *j = (struct job){.id = id, .pid = pid, .out_fd = out[0], .hold_fd = hold[1], .next = jobs};
  jobs = j;
  return;
fail:
  for (int i = 0; i < 2; i++) {
    if (out[i] >= 0) close(out[i]);
    if (hold[i] >= 0) close(hold[i]);
  }
  free(argv);
  free(j);
}

static struct job *job_by_id(uint32_t id) {
  for (struct job *j = jobs; j != NULL; j = j->next)
    if (j->id == id) return j;
  return NULL;
}

/* Handles the complete requests at the start of BUF; returns the bytes used. */
static size_t handle_requests(unsigned char *buf, size_t n) {
  size_t used = 0;
  while (n - used >= 4) {
    uint32_t len = get_u32(buf + used);
    if (len < 5 || len > MAX_FRAME) end_all();
    if (n - used - 4 < len) break;
    unsigned char *body = buf + used + 4;
    uint32_t id = get_u32(body + 1);
    struct job *j = job_by_id(id);
    switch (body[0]) {
      case REQ_RUN:
        start_job(id, (char *)body + 5, len - 5);
        break;
      case REQ_RELEASE:
        if (j != NULL && j->hold_fd >= 0) {
          close(j->hold_fd);
          j->hold_fd = -1;
        }
        break;
      case REQ_KILL:
        if (j != NULL) kill(-j->pid, SIGKILL);
        break;
      default:
        end_all();
    }
    used += 4 + len;
  }
  return used;
}

/* Reports the sandboxes that have exited: their last output, then their status. */
static void reap(void) {
  int st;
  pid_t pid;
  while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
    for (struct job **p = &jobs; *p != NULL; p = &(*p)->next) {
      struct job *j = *p;
      if (j->pid != pid) continue;
      /* Every writer of its fd 3 is gone: this reads to end of file. */
      while (j->out_fd >= 0) relay_output(j);
      unsigned char raw[4];
      put_u32(raw, (uint32_t)st);
      send_event(EV_EXIT, j->id, raw, 4);
      if (j->hold_fd >= 0) close(j->hold_fd);
      *p = j->next;
      free(j);
      break;
    }
  }
}

static _Noreturn void serve(void) {
  spawner_pid = getpid();
  /* The channel moves above the fds a sandbox gets, which hold /dev/null
   * here, so that every pipe made later is at FIRST_FREE_FD or above. */
  ctl_in = fcntl(0, F_DUPFD_CLOEXEC, FIRST_FREE_FD);
  ctl_out = fcntl(1, F_DUPFD_CLOEXEC, FIRST_FREE_FD);
  int nul = open("/dev/null", O_RDWR);
  if (ctl_in < 0 || ctl_out < 0 || nul < 0) _exit(SETUP_FAILED);
  for (int fd = 0; fd < FIRST_FREE_FD; fd++)
    if (fd != nul) dup2(nul, fd);
  dev_null = fcntl(nul, F_DUPFD_CLOEXEC, FIRST_FREE_FD);
  if (nul >= FIRST_FREE_FD) close(nul);
  fcntl(ctl_out, F_SETFL, fcntl(ctl_out, F_GETFL) & ~O_NONBLOCK);
  signal(SIGPIPE, SIG_IGN); /* a write to a gone Node fails with EPIPE instead */
  pid_t node = getppid();
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != node) _exit(0);
  sigset_t chld;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  sigprocmask(SIG_BLOCK, &chld, NULL);
  int sig_fd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sig_fd < 0 || dev_null < 0) _exit(SETUP_FAILED);
  send_event(EV_HELLO, 0, "1", 1);
  size_t cap = 1 << 16, have = 0;
  unsigned char *buf = malloc(cap);
  struct pollfd *fds = NULL;
  size_t fds_cap = 0;
  if (buf == NULL) _exit(SETUP_FAILED);
  for (;;) {
    size_t n = 2;
    for (struct job *j = jobs; j != NULL; j = j->next) n++;
    if (n > fds_cap) {
      fds_cap = n * 2;
      fds = realloc(fds, fds_cap * sizeof *fds);
      if (fds == NULL) end_all();
    }
    fds[0] = (struct pollfd){.fd = ctl_in, .events = POLLIN};
    fds[1] = (struct pollfd){.fd = sig_fd, .events = POLLIN};
    n = 2;
    for (struct job *j = jobs; j != NULL; j = j->next)
      fds[n++] = (struct pollfd){.fd = j->out_fd, .events = POLLIN}; /* -1 is skipped */
    if (poll(fds, n, -1) < 0) {
      if (errno == EINTR) continue;
      end_all();
    }
    /* Output first, then exits (which drain the rest), then new requests.
     * The list is as it was when fds was filled. */
    n = 2;
    for (struct job *j = jobs; j != NULL; j = j->next)
      if (fds[n++].revents != 0 && j->out_fd >= 0) relay_output(j);
    if (fds[1].revents != 0) {
      struct signalfd_siginfo si;
      while (read(sig_fd, &si, sizeof si) > 0) {
      }
      reap();
    }
    if (fds[0].revents != 0) {
      if (have == cap) {
        cap *= 2;
        if (cap > 2 * (size_t)MAX_FRAME) end_all();
        buf = realloc(buf, cap);
        if (buf == NULL) end_all();
      }
      ssize_t r = read(ctl_in, buf + have, cap - have);
      if (r < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      if (r <= 0) end_all();
      have += (size_t)r;
      size_t used = handle_requests(buf, have);
      memmove(buf, buf + used, have - used);
      have -= used;
    }
  }
}

int main(int argc, char **argv) {
  if (argc == 2 && strcmp(argv[1], "--serve") == 0) serve();
  sandbox(argc, argv);
}
