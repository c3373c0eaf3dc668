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
 *       [--max-processes N] [--max-memory BYTES]
 *       [--hold] [--foreground] [--env K=V]... -- COMMAND [ARG]...
 * Layers are given lowest first. --max-processes bounds the command's tasks
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
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
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
static int network, hold, foreground;
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
  if (len < sizeof opts)
    len += (size_t)snprintf(opts + len, sizeof opts - len, ",upperdir=%s,workdir=%s", up, work);
  if (len >= sizeof opts) {
    errno = E2BIG;
    die("too many layers (or too long paths) for one overlay of /%s: its options exceed %zu bytes",
        name, sizeof opts);
  }
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

static void setup_root(const char *root) {
  char p[PATH_MAX_LEN], q[PATH_MAX_LEN];
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

static int parse_args(int argc, char **argv) {
  int i = 1;
  for (; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--") == 0) { i++; break; }
    if (strcmp(a, "--net") == 0) { network = 1; continue; }
    if (strcmp(a, "--hold") == 0) { hold = 1; continue; }
    if (strcmp(a, "--foreground") == 0) { foreground = 1; continue; }
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    errno = 0;
    if (v == NULL) die("%s needs a value", a);
    if (strcmp(a, "--scratch") == 0) scratch = v;
    else if (strcmp(a, "--upper") == 0) upper = v;
    else if (strcmp(a, "--cwd") == 0) cwd = v;
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

int main(int argc, char **argv) {
  caller = getppid();
  die_with_caller();
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
