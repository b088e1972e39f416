/*
 * TEST DOUBLE of berth-init, for the wsl2 plugin's tests only. It is installed
 * as /sbin/berth-init in a throw-away base image and stands in for the real
 * PID 1: it listens on /.berth-host/docker.sock and answers every request with
 * HTTP 200 "OK" (enough for the plugin's GET /_ping), and exits 0 on SIGTERM.
 *
 * Its behaviour is chosen by the file /etc/berth/fake-init-mode in the image:
 *   (absent) serve as above
 *   "exit"   print a message to stderr and exit 3 at once (a failing init)
 *   "silent" never listen (an engine that never answers), still exit on SIGTERM
 * Static, so it needs nothing from the image.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static volatile sig_atomic_t g_stop = 0;
static void on_term(int sig) {
  (void)sig;
  g_stop = 1;
}

static void read_mode(char* mode, size_t size) {
  mode[0] = '\0';
  FILE* f = fopen("/etc/berth/fake-init-mode", "r");
  if (f == NULL) return;
  if (fgets(mode, (int)size, f) == NULL) mode[0] = '\0';
  fclose(f);
  mode[strcspn(mode, "\r\n")] = '\0';
}

int main(int argc, char** argv) {
  const char* config = argc > 2 ? argv[2] : "(none)";
  char mode[64];
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_term;
  sigaction(SIGTERM, &sa, NULL);
  setvbuf(stderr, NULL, _IONBF, 0);
  read_mode(mode, sizeof mode);
  fprintf(stderr, "fake-init: pid %d, config %s, mode '%s'\n", (int)getpid(), config, mode);
  if (access(config, R_OK) != 0) fprintf(stderr, "fake-init: cannot read %s\n", config);

  if (strcmp(mode, "exit") == 0) {
    fprintf(stderr, "fake-init: failing on purpose\n");
    return 3;
  }
  int listener = -1;
  const char* path = "/.berth-host/docker.sock";
  if (strcmp(mode, "silent") != 0) {
    struct sockaddr_un addr;
    memset(&addr, 0, sizeof addr);
    addr.sun_family = AF_UNIX;
    strncpy(addr.sun_path, path, sizeof addr.sun_path - 1);
    unlink(path);
    listener = socket(AF_UNIX, SOCK_STREAM, 0);
    if (listener < 0 || bind(listener, (struct sockaddr*)&addr, sizeof addr) != 0 || listen(listener, 16) != 0) {
      fprintf(stderr, "fake-init: cannot listen on %s: %s\n", path, strerror(errno));
      return 4;
    }
    fprintf(stderr, "fake-init: listening on %s\n", path);
  }
  while (!g_stop) {
    struct pollfd p = {listener, POLLIN, 0};
    int rc = poll(&p, listener >= 0 ? 1 : 0, 200);
    if (rc <= 0) continue;
    int c = accept(listener, NULL, NULL);
    if (c < 0) continue;
    char buf[2048];
    (void)read(c, buf, sizeof buf);
    static const char reply[] = "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nOK";
    (void)write(c, reply, sizeof reply - 1);
    close(c);
  }
  if (listener >= 0) unlink(path);
  fprintf(stderr, "fake-init: SIGTERM, exiting\n");
  return 0;
}
