#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
/* TEST DOUBLE: a tiny static echo server that runs inside test containers
 * (busybox has no UDP echo and forks per connection in httpd).
 *   vk-echo tcp PORT [PORT...]   echo every TCP connection (epoll, one thread)
 *   vk-echo udp PORT [PORT...]   echo every datagram to its sender */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

static int listen_on(int type, int port) {
  int fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);
  int one = 1;
  struct sockaddr_in a;
  if (fd < 0) return -1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons((unsigned short)port);
  if (bind(fd, (struct sockaddr*)&a, sizeof a) != 0) return -1;
  if (type == SOCK_STREAM && listen(fd, 1024) != 0) return -1;
  return fd;
}

int main(int argc, char** argv) {
  static char buf[1 << 16];
  int ep, i, udp;
  struct epoll_event ev, evs[64];
  if (argc < 3) {
    fprintf(stderr, "usage: vk-echo tcp|udp PORT...\n");
    return 2;
  }
  udp = strcmp(argv[1], "udp") == 0;
  ep = epoll_create1(EPOLL_CLOEXEC);
  for (i = 2; i < argc; ++i) {
    int fd = listen_on(udp ? SOCK_DGRAM : SOCK_STREAM, atoi(argv[i]));
    if (fd < 0) {
      perror("listen");
      return 1;
    }
    ev.events = EPOLLIN;
    ev.data.u64 = (unsigned long long)fd | (1ULL << 32); /* bit 32: a listener */
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
  }
  for (;;) {
    int n = epoll_wait(ep, evs, 64, -1);
    for (i = 0; i < n; ++i) {
      int fd = (int)(evs[i].data.u64 & 0xffffffffu);
      int listener = (int)(evs[i].data.u64 >> 32);
      if (udp) {
        struct sockaddr_storage from;
        socklen_t len = sizeof from;
        ssize_t r = recvfrom(fd, buf, sizeof buf, 0, (struct sockaddr*)&from, &len);
        if (r >= 0) sendto(fd, buf, (size_t)r, 0, (struct sockaddr*)&from, len);
      } else if (listener) {
        int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
        int one = 1;
        if (c < 0) continue;
        setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        ev.events = EPOLLIN;
        ev.data.u64 = (unsigned long long)c;
        epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev);
      } else {
        ssize_t r = read(fd, buf, sizeof buf);
        if (r <= 0) {
          close(fd);
          continue;
        }
        /* blocking socket: write everything back */
        ssize_t off = 0;
        while (off < r) {
          ssize_t w = write(fd, buf + off, (size_t)(r - off));
          if (w < 0 && errno == EINTR) continue;
          if (w <= 0) break;
          off += w;
        }
      }
    }
  }
}
