/*
 * specbuild-sandbox: runs one command in fresh Linux namespaces (mount, PID,
 * IPC, UTS and, unless --net, network) whose root is a tmpfs holding the
 * host's /usr and /etc, a private /dev, /proc and /tmp, and read-only layers
 * overlaid above the host directories, so that staged files appear at their
 * absolute paths. Writes to overlaid directories go to --upper, never to a
 * layer or the host.
 *
 * It is native because setting up a dozen mounts by running util-linux
 * commands costs tens of milliseconds per action; this costs about one.
 *
 * Usage (arguments come from specbuild's sandbox layer, not from users):
 *   specbuild-sandbox --scratch DIR [--upper DIR] [--layer DIR]...
 *       [--bind SRC DST]... [--ro-bind SRC DST]... [--cwd DIR] [--net]
 *       [--hold] [--env K=V]... -- COMMAND [ARG]...
 * Layers are given lowest first. Progress lines on fd 3: "pid N" (the
 * namespace's init, whose /proc/N/root shows the sandbox) and "done STATUS"
 * (the command's raw wait status); with --hold the sandbox stays up after the
 * command until fd 4 reaches end of file, so outputs can be read through it.
 * Setup errors are written to fd 3 when it is
 * open (else stderr) and give exit status 125; a command that cannot be
 * executed gives 127 (not found) or 126. Otherwise the exit status, or the
 * terminating signal, is the command's.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
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
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_ITEMS 512
#define SETUP_FAILED 125
#define PATH_MAX_LEN 4096

extern char **environ;

static const char *layers[MAX_ITEMS];
static int n_layers;
static const char *bind_src[MAX_ITEMS], *bind_dst[MAX_ITEMS];
static int bind_ro[MAX_ITEMS];
static int n_binds;
static char *envs[MAX_ITEMS + 1];
static int n_envs;
static const char *scratch, *upper, *cwd = "/";
static int network, hold;

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

static void write_file(const char *path, const char *text) {
  int fd = open(path, O_WRONLY);
  if (fd < 0) die("open %s", path);
  if (write(fd, text, strlen(text)) < 0) die("write %s", path);
  close(fd);
}

/* ROOT/NAME becomes an overlay of every layer's NAME (highest first) above
 * the host's /NAME when with_host; writes go to UPPER/NAME. */
static void overlay_top(const char *root, const char *name, int with_host) {
  /* mount(2) copies at most one page of options. */
  static char opts[4096];
  char target[PATH_MAX_LEN], up[PATH_MAX_LEN], work[PATH_MAX_LEN], ld[PATH_MAX_LEN], wbase[PATH_MAX_LEN];
  size_t len = (size_t)snprintf(opts, sizeof opts, "lowerdir=");
  int lowers = 0;
  for (int i = n_layers - 1; i >= 0; i--) {
    path_join(ld, layers[i], name);
    if (!is_dir(ld)) continue;
    len += (size_t)snprintf(opts + len, sizeof opts - len, "%s%s", lowers ? ":" : "", ld);
    lowers++;
    if (len >= sizeof opts) break;
  }
  if (with_host && len < sizeof opts) {
    len += (size_t)snprintf(opts + len, sizeof opts - len, "%s/%s", lowers ? ":" : "", name);
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
  if (len < sizeof opts)
    len += (size_t)snprintf(opts + len, sizeof opts - len, ",upperdir=%s,workdir=%s", up, work);
  if (len >= sizeof opts) {
    errno = E2BIG;
    die("too many layers (or too long paths) for one overlay of /%s: its options exceed %zu bytes",
        name, sizeof opts);
  }
  do_mount("overlay", target, "overlay", MS_NOSUID, opts);
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
      if (provided(name)) continue; /* usr and etc are overlaid in setup_root */
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
  /* The host's /bin, /lib... as the same symlinks (or read-only binds of real directories). */
  static const char *links[] = {"bin", "lib", "lib32", "lib64", "libx32", "sbin"};
  for (size_t i = 0; i < sizeof links / sizeof *links; i++) {
    char host[64], target[PATH_MAX_LEN];
    snprintf(host, sizeof host, "/%s", links[i]);
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
    path_join(q, layers[i], "etc");
    layered_etc |= is_dir(q);
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

int main(int argc, char **argv) {
  int i = 1;
  for (; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--") == 0) { i++; break; }
    if (strcmp(a, "--net") == 0) { network = 1; continue; }
    if (strcmp(a, "--hold") == 0) { hold = 1; continue; }
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    errno = 0;
    if (v == NULL) die("%s needs a value", a);
    if (strcmp(a, "--scratch") == 0) scratch = v;
    else if (strcmp(a, "--upper") == 0) upper = v;
    else if (strcmp(a, "--cwd") == 0) cwd = v;
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

  uid_t uid = getuid();
  gid_t gid = getgid();
  int flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS | (network ? 0 : CLONE_NEWNET);
  if (uid != 0) flags |= CLONE_NEWUSER;
  if (unshare(flags) != 0) {
    die("cannot create Linux namespaces (%s); run as root, or enable unprivileged user namespaces "
        "(sysctl kernel.unprivileged_userns_clone=1 and user.max_user_namespaces > 0)",
        uid == 0 ? "as root" : "with a user namespace");
  }
  if (uid != 0) {
    char map[64];
    write_file("/proc/self/setgroups", "deny");
    snprintf(map, sizeof map, "0 %u 1", (unsigned)uid);
    write_file("/proc/self/uid_map", map);
    snprintf(map, sizeof map, "0 %u 1", (unsigned)gid);
    write_file("/proc/self/gid_map", map);
  }
  /* The command's wait status travels from the namespace's init to us here. */
  int status_pipe[2];
  if (pipe2(status_pipe, O_CLOEXEC) != 0) die("pipe");
  pid_t child = fork();
  if (child < 0) die("fork");
  if (child > 0) {
    close(status_pipe[1]);
    report("pid %d\n", (int)child);
    int st;
    int cmd_status;
    ssize_t got_status;
    do {
      got_status = read(status_pipe[0], &cmd_status, sizeof cmd_status);
    } while (got_status < 0 && errno == EINTR);
    if (got_status == (ssize_t)sizeof cmd_status) report("done %d\n", cmd_status);
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
  /* Init of the new PID namespace: sets up the root, runs the command as its
   * child (so that the command behaves as any process, not as an init that
   * ignores signals), reaps orphans, and reports the command's wait status.
   * When it exits, the kernel kills whatever is left in the namespace. */
  close(status_pipe[0]);
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  /* The parent may have died before PDEATHSIG was set: then the pipe's read
   * end is closed, and its write end polls as an error. (getppid() cannot
   * tell: a namespace's init sees its parent as 0 either way.) */
  struct pollfd alive = {.fd = status_pipe[1], .events = 0};
  if (poll(&alive, 1, 0) > 0 && (alive.revents & POLLERR)) _exit(SETUP_FAILED);
  do_mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL);
  char root[PATH_MAX_LEN];
  do_mount("tmpfs", scratch, "tmpfs", MS_NOSUID, "mode=0755");
  path_join(root, scratch, "root");
  mkdirs(root);
  setup_root(root);
  if (!network) loopback_up();
  if (chroot(root) != 0) die("chroot %s", root);
  if (chdir(cwd) != 0) die("working directory %s", cwd);
  pid_t cmd = fork();
  if (cmd < 0) die("fork");
  if (cmd == 0) {
    close(3);
    close(4);
    environ = envs;
    execvp(argv[i], argv + i);
    int err = errno;
    char msg[PATH_MAX_LEN + 128];
    int n = snprintf(msg, sizeof msg, "specbuild-sandbox: cannot execute %s: %s\n", argv[i], strerror(err));
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
