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
#include <strings.h>
#include <linux/fs.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/random.h>
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

/* This process's file mode creation mask (read by setting it, then put back). */
static mode_t current_umask(void) {
  mode_t m = umask(022);
  umask(m);
  return m;
}

/* The request frame; *hashed is where the bytes the daemon routes by end
 * (the tool, directory and arguments: not the environment). */
static void build_frame(struct buf *b, size_t *hashed, const char *cwd, int argc, char **argv) {
  put(b, "SBD2\0\0\0\0", 8);
  put_str(b, tool);
  put_str(b, cwd);
  put_u32(b, (uint32_t)(argc - 1));
  for (int i = 1; i < argc; i++) put_str(b, argv[i]);
  *hashed = b->len;
  uint32_t envc = 0;
  for (char **e = environ; *e; e++) envc++;
  put_u32(b, envc);
  for (char **e = environ; *e; e++) put_str(b, *e);
  /* The modes the command's files would get, for those the daemon makes. */
  put_u32(b, (uint32_t)current_umask());
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

/* ---- Hits answered here, from what the daemon wrote down (native-answers.ts) ----
 * After the daemon answers a compile from direct mode's memory, it writes
 * the checks that answer rested on and the answer itself into
 * PATH.answers/NAME, NAME a hash of the request's bytes. If every check
 * holds, this process copies the outputs from the server's blob directory and
 * prints what the daemon printed, with no hop to the daemon: on a VM, waking
 * the daemon's thread and back cost more than the rest of a hit. Anything
 * that does not hold or parse, and the request goes to the daemon as before. */

/* SHA-256 (FIPS 180-4), for an input whose stat is not the one the daemon's
 * stat cache vouched for (a fresh copy of the tree, a file touched). */
struct sha256 { uint32_t h[8]; uint64_t len; unsigned char blk[64]; size_t n; };

static const uint32_t K256[64] = {
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

#define ROR(x, n) ((x) >> (n) | (x) << (32 - (n)))

static void sha256_block(uint32_t *h, const unsigned char *p) {
  uint32_t w[64], a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], k = h[7];
  for (int i = 0; i < 16; i++)
    w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 |
           p[4 * i + 3];
  for (int i = 16; i < 64; i++) {
    uint32_t s0 = ROR(w[i - 15], 7) ^ ROR(w[i - 15], 18) ^ w[i - 15] >> 3;
    uint32_t s1 = ROR(w[i - 2], 17) ^ ROR(w[i - 2], 19) ^ w[i - 2] >> 10;
    w[i] = w[i - 16] + s0 + w[i - 7] + s1;
  }
  for (int i = 0; i < 64; i++) {
    uint32_t t1 = k + (ROR(e, 6) ^ ROR(e, 11) ^ ROR(e, 25)) + ((e & f) ^ (~e & g)) + K256[i] + w[i];
    uint32_t t2 = (ROR(a, 2) ^ ROR(a, 13) ^ ROR(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
    k = g, g = f, f = e, e = d + t1, d = c, c = b, b = a, a = t1 + t2;
  }
  h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e, h[5] += f, h[6] += g, h[7] += k;
}

static void sha256_init(struct sha256 *s) {
  static const uint32_t iv[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  memcpy(s->h, iv, sizeof iv);
  s->len = 0;
  s->n = 0;
}

static void sha256_update(struct sha256 *s, const unsigned char *p, size_t n) {
  s->len += n;
  if (s->n > 0) {
    size_t k = 64 - s->n < n ? 64 - s->n : n;
    memcpy(s->blk + s->n, p, k);
    s->n += k, p += k, n -= k;
    if (s->n < 64) return;
    sha256_block(s->h, s->blk);
    s->n = 0;
  }
  for (; n >= 64; p += 64, n -= 64) sha256_block(s->h, p);
  memcpy(s->blk, p, n);
  s->n = n;
}

static void sha256_final(struct sha256 *s, unsigned char out[32]) {
  uint64_t bits = s->len * 8;
  unsigned char pad[72] = {0x80};
  size_t k = (s->n < 56 ? 56 : 120) - s->n;
  for (int i = 0; i < 8; i++) pad[k + (size_t)i] = (unsigned char)(bits >> (56 - 8 * i));
  sha256_update(s, pad, k + 8);
  for (int i = 0; i < 32; i++) out[i] = (unsigned char)(s->h[i / 4] >> (24 - 8 * (i % 4)));
}

/* The SHA-256 of the file `st` describes (a regular file, re-checked on the
 * open descriptor: never a FIFO swapped in); -1 if it cannot be read. */
static int hash_file(const char *path, const struct stat *st, unsigned char out[32]) {
  int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  struct stat now;
  if (fd < 0) return -1;
  if (fstat(fd, &now) < 0 || !S_ISREG(now.st_mode) || now.st_dev != st->st_dev ||
      now.st_ino != st->st_ino)
    return close(fd), -1;
  struct sha256 s;
  sha256_init(&s);
  static unsigned char chunk[1 << 16];
  ssize_t r;
  while ((r = read(fd, chunk, sizeof chunk)) != 0) {
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return close(fd), -1;
    sha256_update(&s, chunk, (size_t)r);
  }
  close(fd);
  sha256_final(&s, out);
  return 0;
}

/* The largest input hashed here (CLIENT_HASH_MAX in cc.ts): a larger one
 * whose stat is not the vouched one goes to the daemon, which vouches anew. */
#define HASH_MAX ((off_t)4 << 20)

/* make's own variables: they differ between make -j1 and -j2 of one build,
 * and the daemon reads none of them (VOLATILE_ENV in native-answers.ts). */
static const char *const volatile_env[] = {"MAKEFLAGS",     "MFLAGS",       "MAKELEVEL",
                                           "MAKEOVERRIDES", "MAKE_TERMOUT", "MAKE_TERMERR"};

static int is_volatile(const char *e, size_t name_len) {
  for (size_t i = 0; i < sizeof volatile_env / sizeof *volatile_env; i++)
    if (strlen(volatile_env[i]) == name_len && strncmp(e, volatile_env[i], name_len) == 0) return 1;
  return 0;
}

static int by_bytes(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The request's bytes (requestKey in native-answers.ts): the command, the
 * working directory, and the environment as the daemon reads it (the first
 * entry of each name, none without "=") less make's, sorted. -1 when out of memory. */
static int request_key(struct buf *b, const char *cwd) {
  uint32_t argc = 0, envc = 0, n = 0;
  for (char **a = command; *a; a++) argc++;
  put_u32(b, argc);
  for (char **a = command; *a; a++) put_str(b, *a);
  put_str(b, cwd);
  for (char **e = environ; *e; e++) envc++;
  char **env = malloc((envc + 1) * sizeof *env);
  if (!env) return -1;
  for (char **e = environ; *e; e++) {
    const char *eq = strchr(*e, '=');
    size_t len = eq ? (size_t)(eq - *e) : 0;
    int seen = len == 0 || is_volatile(*e, len);
    for (uint32_t i = 0; i < n && !seen; i++) seen = strncmp(env[i], *e, len + 1) == 0;
    if (!seen) env[n++] = *e;
  }
  qsort(env, n, sizeof *env, by_bytes);
  put_u32(b, n);
  for (uint32_t i = 0; i < n; i++) put_str(b, env[i]);
  free(env);
  return 0;
}

/* answerName(): two 32-bit FNV-1a hashes of the request's bytes. */
static void answer_name(const struct buf *key, char out[17]) {
  uint32_t a = 0x811c9dc5u, c = 0x050c5d1fu;
  for (size_t i = 0; i < key->len; i++) {
    a = (a ^ (unsigned char)key->p[i]) * 0x01000193u;
    c = (c ^ (unsigned char)key->p[i]) * 0x01000193u;
  }
  snprintf(out, 17, "%08x%08x", a, c);
}

/* A cursor over an answer's bytes; `bad` once anything ran past the end. */
struct cur { const unsigned char *start, *p, *end; int bad; };

static const unsigned char *take(struct cur *c, size_t n) {
  if (c->bad || (size_t)(c->end - c->p) < n) return c->bad = 1, NULL;
  const unsigned char *p = c->p;
  c->p += n;
  return p;
}

static uint32_t take_u32(struct cur *c) {
  const unsigned char *p = take(c, 4);
  return p ? get_u32(p) : 0;
}

static uint64_t take_u64(struct cur *c) {
  const unsigned char *p = take(c, 8);
  return p ? (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32 : 0;
}

static void le64(unsigned char *out, uint64_t v) {
  le32(out, (uint32_t)v);
  le32(out + 4, (uint32_t)(v >> 32));
}

/* A string, copied and terminated (NULL if it holds a NUL or runs past the end). */
static char *take_str(struct cur *c) {
  uint32_t n = take_u32(c);
  const unsigned char *p = take(c, n);
  if (!p || memchr(p, 0, n)) return c->bad = 1, NULL;
  char *s = malloc((size_t)n + 1);
  if (!s) return c->bad = 1, NULL;
  memcpy(s, p, n);
  s[n] = '\0';
  return s;
}

/* Bytes in place (stdout, stderr, the log line), with their length. */
static const unsigned char *take_bytes(struct cur *c, size_t *len) {
  *len = take_u32(c);
  return take(c, *len);
}

static int64_t ns_of(struct timespec t) { return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec; }

/* A file's signature the client found settled after hashing it: written
 * into the answer once every check held (so later runs stat, not hash). */
struct revouch { long at; unsigned char sig[33]; };

/* One check of the answer; 0 when it holds. A file hashed here and found
 * settled at `start` (the clock read before any stat of this run) is added
 * to rv (at most max). */
static int check_holds(struct cur *c, int64_t start, struct revouch *rv, int *nrv, int max) {
  const unsigned char *kind = take(c, 1);
  if (!kind) return -1;
  char *path = take_str(c), *real = NULL;
  struct stat st;
  int ok = -1;
  if (!path || *path != '/') goto out;
  switch (*kind) {
  case 'x': ok = access(path, X_OK) == 0 ? -1 : 0; break;
  case 'e': ok = access(path, X_OK) == 0 ? 0 : -1; break;
  case 'a': ok = stat(path, &st) < 0 && (errno == ENOENT || errno == ENOTDIR) ? 0 : -1; break;
  case 'p': ok = stat(path, &st) == 0 && S_ISREG(st.st_mode) ? 0 : -1; break;
  case 'r': {
    char *want = take_str(c);
    real = want ? realpath(path, NULL) : NULL;
    ok = real && strcmp(real, want) == 0 ? 0 : -1;
    free(want);
    break;
  }
  case 'f': {
    const unsigned char *hash = take(c, 32);
    uint64_t size = take_u64(c);
    const unsigned char *exec = take(c, 1);
    long at = (long)(c->p - c->start);
    const unsigned char *has = take(c, 1);
    uint64_t sig[4];
    for (int i = 0; i < 4; i++) sig[i] = take_u64(c);
    if (c->bad || stat(path, &st) < 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size != size ||
        ((st.st_mode & 0111) != 0) != (*exec != 0))
      break;
    /* The stat the daemon's stat cache vouched for: the same contents. */
    if (*has && sig[0] == (uint64_t)st.st_dev && sig[1] == (uint64_t)st.st_ino &&
        sig[2] == (uint64_t)ns_of(st.st_mtim) && sig[3] == (uint64_t)ns_of(st.st_ctim)) {
      ok = 0;
      break;
    }
    unsigned char now[32];
    if (st.st_size > HASH_MAX || hash_file(path, &st, now) < 0 || memcmp(now, hash, 32) != 0)
      break;
    ok = 0;
    /* Vouched for from now on if it had not changed for a second when it
     * was stat'ed, by the stat cache's rule (stat-cache.ts): a later change
     * then gets a later time. The clock is the one read before the stat
     * (read after the hash, a change within the stat's timestamp tick could
     * pass as settled on a file system with 1 s timestamps). */
    int64_t changed = st.st_nlink == 1 && ns_of(st.st_ctim) > ns_of(st.st_mtim) ? ns_of(st.st_ctim)
                                                                                 : ns_of(st.st_mtim);
    if (*nrv < max && start > 0 && start - changed >= 1000000000) {
      struct revouch *r = &rv[(*nrv)++];
      r->at = at;
      r->sig[0] = 1;
      le64(r->sig + 1, (uint64_t)st.st_dev);
      le64(r->sig + 9, (uint64_t)st.st_ino);
      le64(r->sig + 17, (uint64_t)ns_of(st.st_mtim));
      le64(r->sig + 25, (uint64_t)ns_of(st.st_ctim));
    }
    break;
  }
  }
out:
  free(path);
  free(real);
  return c->bad ? -1 : ok;
}

/* Copies a blob to a temporary file beside dest, then renames it over:
 * as the daemon writes outputs (outputs.ts, placeLocalBlob). 0 when done. */
static int place_output(const char *cwd, const char *rel, const char *blob, uint64_t size, int exec) {
  char dest[PATH_MAX], tmp[PATH_MAX];
  unsigned char rnd[6];
  size_t rl = strlen(rel);
  if (*rel == '/' || strcmp(rel, "..") == 0 || strncmp(rel, "../", 3) == 0 || strstr(rel, "/../") ||
      (rl >= 3 && strcmp(rel + rl - 3, "/..") == 0))
    return -1;
  if (snprintf(dest, sizeof dest, "%s/%s", cwd, rel) >= (int)sizeof dest) return -1;
  const char *slash = strrchr(dest, '/');
  if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) return -1;
  if (snprintf(tmp, sizeof tmp, "%.*s/.%02x%02x%02x%02x%02x%02x.specbuild-tmp", (int)(slash - dest),
               dest, rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5]) >= (int)sizeof tmp)
    return -1;
  int in = open(blob, O_RDONLY | O_CLOEXEC), out = -1, ok = -1, made = 0;
  struct stat st;
  if (in < 0 || fstat(in, &st) < 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size != size)
    goto out;
  out = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (out < 0) goto out;
  made = 1;
  if (ioctl(out, FICLONE, in) < 0) {
    uint64_t left = size;
    while (left > 0) {
      ssize_t n = copy_file_range(in, NULL, out, NULL, left, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      left -= (uint64_t)n;
    }
    if (left > 0) { /* copy_file_range refused (another file system): read and write */
      static char chunk[1 << 16];
      if (lseek(in, 0, SEEK_SET) < 0 || ftruncate(out, 0) < 0 || lseek(out, 0, SEEK_SET) < 0)
        goto out;
      ssize_t n;
      while ((n = read(in, chunk, sizeof chunk)) != 0) {
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 || write_all(out, chunk, (size_t)n, 0) < 0) goto out;
      }
    }
  }
  /* The mode the compiler would have given it, under this command's umask. */
  if (fstat(out, &st) < 0 || (uint64_t)st.st_size != size ||
      fchmod(out, (exec ? 0777 : 0666) & ~current_umask()) < 0)
    goto out;
  int closed = close(out);
  out = -1;
  if (closed == 0) ok = rename(tmp, dest);
out:
  if (in >= 0) close(in);
  if (out >= 0) close(out);
  if (ok < 0 && made) unlink(tmp);
  return ok;
}

/* Is this user's, and nobody else may write it. */
static int own_and_private(const struct stat *st) {
  return st->st_uid == geteuid() && (st->st_mode & 022) == 0;
}

#define MAX_OUTPUTS 64
#define MAX_REVOUCH 64

/* Answers the compile from PATH.answers if every check there holds: its
 * exit code (0), else -1 and the daemon answers it. Only an answer this
 * user's daemon wrote counts: in a directory and a file that are this
 * user's, and that nobody else may write. An answer at this request's name
 * that is of no use is removed here (the daemon writes a new one when it
 * can): one for this request whose checks no longer hold, another build's,
 * a damaged one. Else every later run would read it in vain, and the
 * daemon would have to remove it, hashing every request it is sent to find
 * its name. */
static int answer_here(const char *sock, const char *cwd) {
  struct buf key = {0};
  char name[17], dir[PATH_MAX], file[PATH_MAX];
  struct stat st;
  unsigned char *data = NULL;
  char *rel[MAX_OUTPUTS] = {0}, *blob[MAX_OUTPUTS] = {0};
  uint64_t size[MAX_OUTPUTS];
  int exec[MAX_OUTPUTS], fd = -1, result = -1, nrv = 0, stale = 0;
  uint32_t outputs = 0;
  struct revouch rv[MAX_REVOUCH];
  int n = snprintf(dir, sizeof dir, "%s.answers", sock);
  if (n <= 0 || (size_t)n >= sizeof dir || lstat(dir, &st) < 0 || !S_ISDIR(st.st_mode) ||
      !own_and_private(&st) || request_key(&key, cwd) < 0)
    goto out;
  answer_name(&key, name);
  n = snprintf(file, sizeof file, "%s/%s", dir, name);
  if (n <= 0 || (size_t)n >= sizeof file) goto out;
  fd = open(file, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || !own_and_private(&st)) goto out;
  /* Ours to remove from here on, unless it turns out to be another request's (below). */
  stale = 1;
  if (st.st_size < 8 || st.st_size > (64 << 20) || !(data = malloc((size_t)st.st_size)) ||
      read_all(fd, data, (size_t)st.st_size) < 0)
    goto out;
  struct cur c = {data, data, data + st.st_size, 0};
  const unsigned char *magic = take(&c, 4);
  char *id = take_str(&c);
  uint32_t kn = take_u32(&c);
  const unsigned char *k = take(&c, kn);
  int ours = magic && memcmp(magic, "SBA2", 4) == 0 && id && strcmp(id, SPECBUILD_BUILD_ID) == 0;
  int same = ours && k && kn == key.len && memcmp(k, key.p, kn) == 0;
  free(id);
  /* Another build's answer, or a damaged one, is of no use to anyone and is
   * removed; another request's (their names collided) is left to it. */
  if (ours && !same) stale = 0;
  if (!same) goto out;
  struct timespec now;
  int64_t start = clock_gettime(CLOCK_REALTIME, &now) == 0 ? ns_of(now) : 0;
  for (uint32_t i = 0, checks = take_u32(&c); i < checks; i++)
    if (check_holds(&c, start, rv, &nrv, MAX_REVOUCH) < 0) goto out;
  /* Read to the end before anything is written. */
  outputs = take_u32(&c);
  if (outputs > MAX_OUTPUTS) goto out;
  for (uint32_t i = 0; i < outputs; i++) {
    rel[i] = take_str(&c);
    blob[i] = take_str(&c);
    size[i] = take_u64(&c);
    const unsigned char *x = take(&c, 1);
    exec[i] = x && *x;
  }
  size_t olen, elen, hlen, tlen;
  const unsigned char *out = take_bytes(&c, &olen), *err = take_bytes(&c, &elen);
  const unsigned char *head = take_bytes(&c, &hlen), *tail = take_bytes(&c, &tlen);
  const unsigned char *end = take(&c, 4);
  if (c.bad || memcmp(end, "END1", 4) != 0 || c.p != c.end) goto out;
  for (uint32_t i = 0; i < outputs; i++)
    if (*blob[i] != '/' || place_output(cwd, rel[i], blob[i], size[i], exec[i]) < 0) goto out;
  for (int i = 0; i < nrv; i++) /* best effort: a lost write costs a hash next time */
    (void)!pwrite(fd, rv[i].sig, sizeof rv[i].sig, rv[i].at);
  (void)write_all(1, out, olen, 0);
  (void)write_all(2, err, elen, 0);
  const char *log = getenv("SPECBUILD_WRAPPER_LOG");
  if (log && *log) {
    struct buf line = {0};
    char ms[24];
    put(&line, head, hlen);
    put(&line, ms, (size_t)snprintf(ms, sizeof ms, "%ld", elapsed_ms()));
    put(&line, tail, tlen);
    int lfd = open(log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (lfd >= 0) { /* one write, so concurrent wrappers' lines do not interleave */
      (void)write_all(lfd, line.p, line.len, 0);
      close(lfd);
    }
    free(line.p);
  }
  result = 0;
  stale = 0;
out:
  if (stale) (void)unlink(file);
  for (uint32_t i = 0; i < outputs && i < MAX_OUTPUTS; i++) free(rel[i]), free(blob[i]);
  if (fd >= 0) close(fd);
  free(data);
  free(key.p);
  return result;
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
    const char *native = getenv("SPECBUILD_NATIVE_HITS");
    if (strcmp(tool, "cc") == 0 && !(native && (strcmp(native, "0") == 0 || strcasecmp(native, "false") == 0)) &&
        answer_here(path, cwd) == 0)
      return 0;
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
