/*
 * specbuild-spawner: runs commands for the wrapper daemon. Forking the
 * daemon itself (a Node process of ~115 MB) costs ~8-10 ms a command in page
 * tables alone; this small process forks in well under a millisecond. One
 * runs per daemon thread, its requests on stdin, its answers on stdout, any
 * number of commands at once.
 *
 * A command is looked up on the PATH of its own environment, as Node's
 * spawn does.
 *
 * Messages are little-endian u32 fields; a string is a u32 length and its
 * bytes (no NUL).
 *   request:  id, argc, argv[argc], cwd, envc, env[envc] ("NAME=value"), umask
 *   answer:   id, kind, value, stdout, stderr
 *     kind 0: exited, value = exit code; 1: killed, value = signal;
 *     2: not started, value = errno (chdir or exec failed), outputs empty.
 * The command's stdin is /dev/null; its stdout and stderr are captured
 * whole. It exits when stdin closes and its commands have ended.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

struct buf {
  char *p;
  size_t len, cap;
};

static void buf_add(struct buf *b, const void *data, size_t n) {
  if (b->len + n > b->cap) {
    size_t cap = b->cap == 0 ? 4096 : b->cap;
    while (cap < b->len + n) cap *= 2;
    char *p = realloc(b->p, cap);
    if (p == NULL) _exit(70);
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->len, data, n);
  b->len += n;
}

struct job {
  uint32_t id;
  pid_t pid;
  int out, err; /* -1 once at end of file */
  struct buf o, e;
  struct job *next;
};

static struct job *jobs;
static struct buf in;

static void write_all(const void *data, size_t n) {
  const char *p = data;
  while (n > 0) {
    ssize_t w = write(1, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      _exit(0); /* the daemon has gone */
    }
    p += w;
    n -= (size_t)w;
  }
}

static void put_u32(struct buf *b, uint32_t v) {
  unsigned char x[4] = {v & 0xff, (v >> 8) & 0xff, (v >> 16) & 0xff, (v >> 24) & 0xff};
  buf_add(b, x, 4);
}

static void answer(uint32_t id, uint32_t kind, uint32_t value, struct buf *o, struct buf *e) {
  struct buf m = {0};
  put_u32(&m, id);
  put_u32(&m, kind);
  put_u32(&m, value);
  put_u32(&m, o == NULL ? 0 : (uint32_t)o->len);
  if (o != NULL && o->len > 0) buf_add(&m, o->p, o->len);
  put_u32(&m, e == NULL ? 0 : (uint32_t)e->len);
  if (e != NULL && e->len > 0) buf_add(&m, e->p, e->len);
  write_all(m.p, m.len);
  free(m.p);
}

static int get_u32(const char *p, size_t len, size_t *at, uint32_t *v) {
  if (*at + 4 > len) return 0;
  const unsigned char *u = (const unsigned char *)p + *at;
  *v = (uint32_t)u[0] | (uint32_t)u[1] << 8 | (uint32_t)u[2] << 16 | (uint32_t)u[3] << 24;
  *at += 4;
  return 1;
}

/* A string as a new NUL-terminated copy. */
static int get_str(const char *p, size_t len, size_t *at, char **s) {
  uint32_t n;
  if (!get_u32(p, len, at, &n) || *at + n > len) return 0;
  *s = malloc(n + 1);
  if (*s == NULL) _exit(70);
  memcpy(*s, p + *at, n);
  (*s)[n] = 0;
  *at += n;
  return 1;
}

static void free_strs(char **v, uint32_t n) {
  if (v == NULL) return;
  for (uint32_t i = 0; i < n; i++) free(v[i]);
  free(v);
}

/* Starts one request's command; answers at once when it cannot start. */
static void start(uint32_t id, char **argv, const char *cwd, char **env, mode_t mask) {
  int out[2], err[2], status[2];
  if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0 || pipe2(status, O_CLOEXEC) != 0) {
    answer(id, 2, (uint32_t)errno, NULL, NULL);
    return;
  }
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) {
    int e = errno;
    close(out[0]), close(out[1]), close(err[0]), close(err[1]), close(status[0]), close(status[1]);
    answer(id, 2, (uint32_t)e, NULL, NULL);
    return;
  }
  if (pid == 0) {
    /* If the spawner dies, its commands die with it: the daemon runs them
     * again directly, and two compilers must never write one output. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    signal(SIGPIPE, SIG_DFL);
    /* The command's files are made under the mask it was given (the
     * client's, less its owner bits): never readable, for a moment, by
     * whoever the spawner's mask lets read them. */
    umask(mask);
    int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC); /* dup2 keeps fd 0 open */
    if (devnull >= 0) dup2(devnull, 0);
    dup2(out[1], 1);
    dup2(err[1], 2);
    int e = 0;
    if (cwd[0] != 0 && chdir(cwd) != 0) e = errno;
    if (e == 0) {
      /* As libuv does: the command's own environment, PATH included, is the
       * one searched (execvpe would search the spawner's PATH). */
      environ = env;
      execvp(argv[0], argv);
      e = errno;
    }
    (void)!write(status[1], &e, sizeof e);
    _exit(127);
  }
  close(out[1]);
  close(err[1]);
  close(status[1]);
  int e = 0;
  ssize_t n;
  do n = read(status[0], &e, sizeof e);
  while (n < 0 && errno == EINTR);
  close(status[0]);
  if (n == (ssize_t)sizeof e) {
    /* Not started: the child exits at once. */
    waitpid(pid, NULL, 0);
    close(out[0]);
    close(err[0]);
    answer(id, 2, (uint32_t)e, NULL, NULL);
    return;
  }
  struct job *j = calloc(1, sizeof *j);
  if (j == NULL) _exit(70);
  j->id = id;
  j->pid = pid;
  j->out = out[0];
  j->err = err[0];
  j->next = jobs;
  jobs = j;
}

/* Takes every whole request from the input buffer. */
static void take_requests(void) {
  size_t at = 0;
  for (;;) {
    size_t here = at;
    uint32_t id, argc, envc, mask = 0;
    char **argv = NULL, **env = NULL, *cwd = NULL;
    uint32_t got_argv = 0, got_env = 0;
    int ok = get_u32(in.p, in.len, &here, &id) && get_u32(in.p, in.len, &here, &argc) &&
             argc > 0 && argc < 65536;
    if (ok) {
      argv = calloc(argc + 1, sizeof *argv);
      if (argv == NULL) _exit(70);
      for (; ok && got_argv < argc; got_argv++) ok = get_str(in.p, in.len, &here, &argv[got_argv]);
      if (!ok && got_argv > 0) got_argv--;
    }
    ok = ok && get_str(in.p, in.len, &here, &cwd);
    ok = ok && get_u32(in.p, in.len, &here, &envc) && envc < 65536;
    if (ok) {
      env = calloc(envc + 1, sizeof *env);
      if (env == NULL) _exit(70);
      for (; ok && got_env < envc; got_env++) ok = get_str(in.p, in.len, &here, &env[got_env]);
      if (!ok && got_env > 0) got_env--;
    }
    ok = ok && get_u32(in.p, in.len, &here, &mask);
    if (!ok) {
      free_strs(argv, got_argv);
      free_strs(env, got_env);
      free(cwd);
      break; /* incomplete: wait for more */
    }
    start(id, argv, cwd, env, (mode_t)(mask & 0777));
    free_strs(argv, argc);
    free_strs(env, envc);
    free(cwd);
    at = here;
  }
  if (at > 0) {
    memmove(in.p, in.p + at, in.len - at);
    in.len -= at;
  }
}

static void finish(struct job *j) {
  int status = 0;
  while (waitpid(j->pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFSIGNALED(status))
    answer(j->id, 1, (uint32_t)WTERMSIG(status), &j->o, &j->e);
  else
    answer(j->id, 0, (uint32_t)WEXITSTATUS(status), &j->o, &j->e);
  free(j->o.p);
  free(j->e.p);
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  int open_in = 1;
  char chunk[65536];
  for (;;) {
    size_t count = 0;
    for (struct job *j = jobs; j != NULL; j = j->next) count++;
    if (!open_in && count == 0) return 0;
    struct pollfd *fds = calloc(1 + 2 * count, sizeof *fds);
    struct job **owner = calloc(1 + 2 * count, sizeof *owner);
    if (fds == NULL || owner == NULL) _exit(70);
    nfds_t n = 0;
    if (open_in) fds[n++] = (struct pollfd){.fd = 0, .events = POLLIN};
    for (struct job *j = jobs; j != NULL; j = j->next) {
      if (j->out >= 0) owner[n] = j, fds[n++] = (struct pollfd){.fd = j->out, .events = POLLIN};
      if (j->err >= 0) owner[n] = j, fds[n++] = (struct pollfd){.fd = j->err, .events = POLLIN};
    }
    if (poll(fds, n, -1) < 0 && errno != EINTR) _exit(71);
    for (nfds_t i = 0; i < n; i++) {
      if (fds[i].revents == 0) continue;
      ssize_t r;
      do r = read(fds[i].fd, chunk, sizeof chunk);
      while (r < 0 && errno == EINTR);
      if (fds[i].fd == 0 && owner[i] == NULL) {
        if (r <= 0) open_in = 0;
        else {
          buf_add(&in, chunk, (size_t)r);
          take_requests();
        }
        continue;
      }
      struct job *j = owner[i];
      int is_out = fds[i].fd == j->out;
      if (r > 0) {
        buf_add(is_out ? &j->o : &j->e, chunk, (size_t)r);
      } else {
        close(fds[i].fd);
        if (is_out) j->out = -1;
        else j->err = -1;
      }
    }
    free(fds);
    free(owner);
    /* Commands whose outputs are both closed: reaped and answered. */
    for (struct job **pp = &jobs; *pp != NULL;) {
      struct job *j = *pp;
      if (j->out < 0 && j->err < 0) {
        *pp = j->next;
        finish(j);
        free(j);
      } else {
        pp = &j->next;
      }
    }
  }
}
