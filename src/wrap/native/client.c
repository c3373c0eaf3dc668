/*
 * specbuild-client, installed as specbuild-cc and specbuild-exec (it reads
 * basename(argv[0]) to know which): the wrappers that a build runs once per
 * compilation. Starting Node costs 70-90 ms, often more than the compilation,
 * so the wrappers are this small native client, which forwards the command
 * line, working directory and environment to a warm specbuild daemon over a
 * unix socket (like nailgun or sccache) and relays its stdout, stderr and exit
 * code. It starts the daemon when none answers, and runs the command itself
 * when the daemon says so or cannot be reached: the daemon never fails a build.
 *
 * A daemon with worker threads has each listen beside its socket (PATH.wK,
 * their number in the symbolic link PATH.workers): the client sends the
 * command straight to the worker the daemon would route it to, by the same
 * hash, and uses PATH itself only when that fails.
 *
 * Wire format: see src/wrap/daemon-protocol.ts. Environment:
 * SPECBUILD_DAEMON_SOCKET (else daemon-BUILD_ID.sock in $XDG_RUNTIME_DIR/specbuild,
 * $XDG_CACHE_HOME/specbuild or ~/.cache/specbuild), SPECBUILD_NO_AUTOSTART,
 * SPECBUILD_DAEMON_JS (instead of the compiled-in daemon script),
 * SPECBUILD_WRAPPER_LOG (a JSON line per fallback run).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef SPECBUILD_NODE
#define SPECBUILD_NODE "node"
#endif
#ifndef SPECBUILD_DAEMON_JS
#define SPECBUILD_DAEMON_JS ""
#endif
#ifndef SPECBUILD_BUILD_ID
#define SPECBUILD_BUILD_ID "dev"
#endif
#define SUN_PATH_MAX sizeof(((struct sockaddr_un *)0)->sun_path)
#define FRAME_CHUNK 65536

extern char **environ;

static const char *tool;    /* "cc" or "exec" */
static char **command;      /* what runs when the daemon does not */
static const char *log_path; /* JSON lines of fallback runs, or NULL */
static struct timespec t0;

struct buf { char *p; size_t len, cap; };

static void put(struct buf *b, const void *p, size_t n) {
  if (b->len + n > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + n) cap *= 2;
    if (!(b->p = realloc(b->p, cap))) fprintf(stderr, "specbuild: out of memory\n"), exit(125);
    b->cap = cap;
  }
  memcpy(b->p + b->len, p, n);
  b->len += n;
}

static void le32(void *out, uint32_t v) {
  for (int i = 0; i < 4; i++) ((unsigned char *)out)[i] = (unsigned char)(v >> 8 * i);
}

static void put_u32(struct buf *b, uint32_t v) {
  put(b, "\0\0\0", 4);
  le32(b->p + b->len - 4, v);
}

static void put_str(struct buf *b, const char *s) {
  size_t n = strlen(s);
  put_u32(b, (uint32_t)n);
  put(b, s, n);
}

static uint32_t get_u32(const unsigned char *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Writes all of p (send() without SIGPIPE for the socket, waiting out a
 * non-blocking stdout); -1 on error. */
static int write_all(int fd, const void *p, size_t n, int sock) {
  const char *c = p;
  while (n > 0) {
    ssize_t w = sock ? send(fd, c, n, MSG_NOSIGNAL) : write(fd, c, n);
    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
      (void)poll(&(struct pollfd){.fd = fd, .events = POLLOUT}, 1, -1);
    if (w < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) continue;
    if (w <= 0) return -1;
    c += w;
    n -= (size_t)w;
  }
  return 0;
}

/* Reads exactly n bytes; -1 on error or end of file. */
static int read_all(int fd, void *p, size_t n) {
  char *c = p;
  while (n > 0) {
    ssize_t r = read(fd, c, n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return -1;
    c += r;
    n -= (size_t)r;
  }
  return 0;
}

static long elapsed_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000;
}

static int socket_path(char *out, size_t cap, const char *cwd) {
  const char *s = getenv("SPECBUILD_DAEMON_SOCKET"), *x;
  int n;
  if (s && *s)
    n = *s == '/' ? snprintf(out, cap, "%s", s) : snprintf(out, cap, "%s/%s", cwd, s);
  else if ((x = getenv("XDG_RUNTIME_DIR")) && *x == '/')
    n = snprintf(out, cap, "%s/specbuild/daemon-%s.sock", x, SPECBUILD_BUILD_ID);
  else if ((x = getenv("XDG_CACHE_HOME")) && *x == '/')
    n = snprintf(out, cap, "%s/specbuild/daemon-%s.sock", x, SPECBUILD_BUILD_ID);
  else if ((x = getenv("HOME")) && *x == '/')
    n = snprintf(out, cap, "%s/.cache/specbuild/daemon-%s.sock", x, SPECBUILD_BUILD_ID);
  else
    return -1;
  return n > 0 && (size_t)n < cap ? 0 : -1;
}

static int connect_to(const char *path) {
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  memcpy(a.sun_path, path, strlen(path) + 1); /* length checked by socket_path */
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0) return fd;
  int e = errno;
  close(fd);
  return errno = e, -1;
}

static void mkdir_parents(char *path) {
  for (char *s = strchr(path + 1, '/'); s; s = strchr(s + 1, '/')) {
    *s = '\0';
    (void)mkdir(path, 0700);
    *s = '/';
  }
}

/* Starts the daemon detached (double fork, new session, stdio on /dev/null).
 * Returns a pipe that the daemon holds open: it reads an errno if exec
 * failed, or end of file once the daemon has exited; -1 if it cannot start. */
static int spawn_daemon(const char *path) {
  const char *js = getenv("SPECBUILD_DAEMON_JS");
  if (!js || !*js) js = SPECBUILD_DAEMON_JS;
  int p[2];
  if (!*js) return errno = ENOENT, -1;
  if (pipe2(p, O_CLOEXEC) < 0) return -1;
  pid_t pid = fork();
  if (pid == 0) {
    close(p[0]);
    pid_t g = setsid() < 0 ? -1 : fork();
    if (g != 0) {
      if (g < 0) (void)!write(p[1], &errno, sizeof errno);
      _exit(0);
    }
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    for (int i = 0; null >= 0 && i < 3; i++) dup2(null, i);
    /* The daemon outlives this build: it must not hold the build's other
     * descriptors (make's jobserver, a pipe someone waits on for EOF). */
    if (close_range(3, (unsigned)p[1] - 1, 0) < 0 && errno == ENOSYS) {
      for (int fd = 3; fd < 1024; fd++)
        if (fd != p[1]) close(fd);
    } else {
      close_range((unsigned)p[1] + 1, ~0U, 0);
    }
    if (*js == '/') (void)!chdir("/"); /* do not pin the build's directory */
    fcntl(p[1], F_SETFD, 0);
    /* --no-turbofan (--no-opt): no optimizing compiler. A request's
     * JavaScript is short and mostly waits on system calls, hashing and
     * gRPC, but V8 spent the daemon's first dozens of compiles optimizing it
     * on background threads: zlib's compiles one by one, misses, cost the
     * daemon 38-47 ms of CPU each over its first 13 (29-37 ms without
     * TurboFan) and 15-27 ms later either way; C++ compiles of ~15 standard
     * headers 57-65 against 44-48 ms, later 23-31 ms either way. On 2 cores
     * that CPU is taken from the compilers. Hits cost the same (3-7 ms). */
    execl(SPECBUILD_NODE, "node", "--no-turbofan", js, "--socket", path, (char *)NULL);
    (void)!write(p[1], &errno, sizeof errno);
    _exit(127);
  }
  int e = errno;
  close(p[1]);
  while (pid > 0 && waitpid(pid, NULL, 0) < 0 && errno == EINTR) continue;
  if (pid < 0) close(p[0]);
  return pid < 0 ? (errno = e, -1) : p[0];
}

/* Connects, starting the daemon if none answers; -1 with why[] filled. */
static int reach_daemon(const char *path, char *why, size_t n) {
  int fd = connect_to(path), e = errno;
  if (fd >= 0) return fd;
  snprintf(why, n, "connect %s: %s", path, strerror(e));
  const char *no = getenv("SPECBUILD_NO_AUTOSTART");
  if ((e != ENOENT && e != ECONNREFUSED) || (no && *no)) return -1;
  char lock[SUN_PATH_MAX + 8];
  snprintf(lock, sizeof lock, "%s.lock", path);
  mkdir_parents(lock);
  /* Whoever holds the lock starts the daemon; the others wait for it. */
  int lk = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600), alive = -1, ended = 0;
  int starter = lk < 0 || flock(lk, LOCK_EX | LOCK_NB) == 0;
  if (starter && (fd = connect_to(path)) < 0 && (alive = spawn_daemon(path)) < 0)
    ended = e = errno;
  /* Until it answers, it dies at start-up, the starter gives up, or 3 s pass. */
  for (long end = elapsed_ms() + 3000; fd < 0 && !ended && elapsed_ms() < end;) {
    struct pollfd pf = {.fd = alive, .events = POLLIN};
    if (poll(&pf, 1, 10) > 0) {
      e = 0;
      ended = read(alive, &e, sizeof e) == sizeof e ? e : -1;
    } else if (!starter && flock(lk, LOCK_EX | LOCK_NB) == 0) {
      ended = -1;
    }
    fd = connect_to(path);
  }
  if (lk >= 0) close(lk);
  if (alive >= 0) close(alive);
  if (fd < 0 && ended > 0) snprintf(why, n, "cannot start %s: %s", SPECBUILD_NODE, strerror(e));
  else if (fd < 0 && ended < 0) snprintf(why, n, "the daemon for %s exited at start-up", path);
  else if (fd < 0) snprintf(why, n, "no daemon answered on %s within 3 s", path);
  return fd;
}

/* The request frame; *hashed is where the bytes the daemon routes by end
 * (the tool, directory and arguments: not the environment). */
static void build_frame(struct buf *b, size_t *hashed, const char *cwd, int argc, char **argv) {
  put(b, "SBD1\0\0\0\0", 8);
  put_str(b, tool);
  put_str(b, cwd);
  put_u32(b, (uint32_t)(argc - 1));
  for (int i = 1; i < argc; i++) put_str(b, argv[i]);
  *hashed = b->len;
  uint32_t envc = 0;
  for (char **e = environ; *e; e++) envc++;
  put_u32(b, envc);
  for (char **e = environ; *e; e++) put_str(b, *e);
  le32(b->p + 4, (uint32_t)b->len);
}

/* commandHash() of daemon-protocol.ts: FNV-1a over the frame's bytes from
 * the tool to the last argument, then MurmurHash3's finaliser. */
static uint32_t command_hash(const struct buf *b, size_t end) {
  uint32_t h = 0x811c9dc5u;
  for (size_t i = 8; i < end; i++) h = (h ^ (unsigned char)b->p[i]) * 0x01000193u;
  h ^= h >> 16;
  h *= 0x85ebca6bu;
  h ^= h >> 13;
  h *= 0xc2b2ae35u;
  h ^= h >> 16;
  return h;
}

/* The daemon's worker threads listen beside its socket, each on PATH.wK, and
 * PATH.workers is a symbolic link whose target starts with their number. The
 * command goes straight to the worker the daemon would route it to, so that
 * the daemon's main thread does nothing per command; -1 when there is no
 * such socket to connect to (no daemon, an older one, a worker restarting):
 * then PATH itself. */
static int connect_worker(const char *path, uint32_t hash) {
  char link[SUN_PATH_MAX + 16], target[32], wpath[SUN_PATH_MAX];
  snprintf(link, sizeof link, "%s.workers", path);
  ssize_t n = readlink(link, target, sizeof target - 1);
  if (n <= 0) return -1;
  target[n] = '\0';
  char *end;
  unsigned long k = strtoul(target, &end, 10);
  if (end == target || k == 0 || k > 256) return -1;
  int w = snprintf(wpath, sizeof wpath, "%s.w%lu", path, (unsigned long)(hash % k));
  if (w <= 0 || (size_t)w >= sizeof wpath) return -1;
  return connect_to(wpath);
}

/* Sends the request and relays the answer: the exit code, -2 if the daemon
 * says to run locally, -1 if the connection broke or spoke nonsense. */
static int exchange(int fd, const struct buf *b) {
  if (b->len > UINT32_MAX || write_all(fd, b->p, b->len, 1) < 0) return -1;
  char *chunk = malloc(FRAME_CHUNK);
  int result = -1;
  unsigned char h[5];
  while (chunk && read_all(fd, h, 5) == 0) {
    uint32_t n = get_u32(h + 1);
    if (h[0] == 'O' || h[0] == 'E') {
      while (n > 0) {
        size_t k = n < FRAME_CHUNK ? n : FRAME_CHUNK;
        if (read_all(fd, chunk, k) < 0) goto out;
        (void)write_all(h[0] == 'O' ? 1 : 2, chunk, k, 0); /* keep draining */
        n -= (uint32_t)k;
      }
    } else if (h[0] == 'X' && n == 4 && read_all(fd, h, 4) == 0) {
      int32_t code = (int32_t)get_u32(h);
      result = code >= 0 && code <= 255 ? code : 255;
      break;
    } else {
      if (h[0] == 'L' && n == 0) result = -2;
      break;
    }
  }
out:
  free(chunk);
  return result;
}

static void json_str(struct buf *b, const char *s) {
  put(b, "\"", 1);
  for (char esc[8]; *s; s++) {
    unsigned char c = (unsigned char)*s;
    int n = c == '"' || c == '\\' ? snprintf(esc, sizeof esc, "\\%c", c)
            : c < 0x20            ? snprintf(esc, sizeof esc, "\\u%04x", c)
                                  : 0;
    put(b, n ? esc : s, n ? (size_t)n : 1);
  }
  put(b, "\"", 1);
}

static void write_log(void) {
  struct buf b = {0};
  char tail[96];
  put(&b, "{\"argv\":[", 9);
  for (char **a = command; *a; a++) {
    if (a != command) put(&b, ",", 1);
    json_str(&b, *a);
  }
  int n = snprintf(tail, sizeof tail, "],\"outcome\":\"fallback\",\"action\":\"\",\"ms\":%ld}\n",
                   elapsed_ms());
  put(&b, tail, (size_t)n);
  int fd = open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd >= 0) { /* one write, so concurrent wrappers' lines do not interleave */
    if (write_all(fd, b.p, b.len, 0) < 0)
      fprintf(stderr, "specbuild-%s: cannot write %s: %s\n", tool, log_path, strerror(errno));
    close(fd);
  }
  free(b.p);
}

static _Noreturn void exec_command(void) {
  execvp(command[0], command);
  int e = errno;
  fprintf(stderr, "specbuild-%s: cannot run %s: %s\n", tool, command[0], strerror(e));
  _exit(e == ENOENT ? 127 : 126);
}

/* Runs the command here: exec'd outright, or as a child when the fallback is
 * to be logged with its duration (the status, or signal, is passed on). */
static _Noreturn void run_locally(int fallback) {
  pid_t pid = fallback && log_path && *log_path ? fork() : 0;
  if (pid <= 0) exec_command(); /* also when fork failed: run, unlogged */
  int st;
  while (waitpid(pid, &st, 0) < 0)
    if (errno != EINTR) exit(125);
  write_log();
  if (WIFSIGNALED(st)) {
    signal(WTERMSIG(st), SIG_DFL);
    raise(WTERMSIG(st));
    exit(128 + WTERMSIG(st));
  }
  exit(WEXITSTATUS(st));
}

int main(int argc, char **argv) {
  clock_gettime(CLOCK_MONOTONIC, &t0);
  const char *base = argc > 0 ? strrchr(argv[0], '/') : NULL;
  base = base ? base + 1 : argc > 0 ? argv[0] : "";
  if (strncmp(base, "specbuild-", 10) == 0) base += 10;
  log_path = getenv("SPECBUILD_WRAPPER_LOG");
  if (strcmp(base, "cc") == 0) {
    tool = "cc";
    if (argc >= 2) command = argv + 1;
  } else if (strcmp(base, "exec") == 0) {
    tool = "exec"; /* options come in pairs, as specbuild-exec parses them */
    for (int i = 1; i < argc; i += 2) {
      if (strcmp(argv[i], "--") == 0) {
        if (i + 1 < argc) command = argv + i + 1;
        break;
      }
      if (strcmp(argv[i], "--log") == 0 && i + 1 < argc) log_path = argv[i + 1];
    }
  } else {
    fprintf(stderr, "specbuild-client: run it as specbuild-cc or specbuild-exec\n");
    return 2;
  }
  /* specbuild-exec's own options (--help, mistakes) are the daemon's to answer;
   * only when it cannot be reached does a missing command end here. */
  if (!command && (strcmp(tool, "cc") == 0 || argc < 2)) {
    fputs(strcmp(tool, "cc") == 0 ? "usage: specbuild-cc COMPILER [ARG]...\n"
                                  : "usage: specbuild-exec [OPTION]... -- COMMAND [ARG]...\n",
          stderr);
    return 2;
  }
  char cwd[PATH_MAX], path[SUN_PATH_MAX], why[SUN_PATH_MAX + 200];
  int fd = -1;
  struct buf frame = {0};
  size_t hashed = 0;
  if (!getcwd(cwd, sizeof cwd))
    snprintf(why, sizeof why, "cannot get the working directory: %s", strerror(errno));
  else if (socket_path(path, sizeof path, cwd) < 0)
    snprintf(why, sizeof why, "no socket path of at most %zu bytes", SUN_PATH_MAX - 1);
  else {
    build_frame(&frame, &hashed, cwd, argc, argv);
    fd = connect_worker(path, command_hash(&frame, hashed));
    if (fd < 0) fd = reach_daemon(path, why, sizeof why);
  }
  if (fd < 0 && !command) {
    fprintf(stderr, "specbuild-exec: daemon unavailable (%s)\n", why);
    fputs("usage: specbuild-exec [OPTION]... -- COMMAND [ARG]...\n", stderr);
    return 2;
  }
  if (fd < 0) {
    fprintf(stderr, "specbuild-%s: daemon unavailable (%s); %s locally\n", tool, why,
            strcmp(tool, "cc") == 0 ? "compiling" : "running");
    run_locally(1);
  }
  int code = exchange(fd, &frame);
  close(fd);
  free(frame.p);
  if (code >= 0) return code;
  if (!command) {
    fputs("usage: specbuild-exec [OPTION]... -- COMMAND [ARG]...\n", stderr);
    return 2;
  }
  run_locally(code == -1); /* -2: the daemon chose a local run and logs it itself */
}
