/* A host "board": serves the profiling protocol on a TCP socket at 127.0.0.1, so the host side
 * and the device side can be tested together without hardware (and a model's C code can be run
 * natively). Usage: ep_host PORT (0: any free port). Prints "EP_LISTEN <port>" when ready, then
 * serves one connection after another; the model's state lasts across connections, as on a board
 * that stays powered. */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "ep_port.h"
#include "ep_protocol.h"

static int ep_connection = -1;
static int ep_disconnected;
static const char *ep_stack_base;
static const char *ep_stack_deepest;

/* The deepest stack address seen by a port call, a lower bound of the stack the protocol used. */
static void ep_note_stack(void) {
  char here;
  if (ep_stack_deepest == NULL || &here < ep_stack_deepest) ep_stack_deepest = &here;
}

int ep_port_read_byte(uint32_t timeout_ms) {
  struct pollfd pfd = {ep_connection, POLLIN, 0};
  unsigned char byte;
  ep_note_stack();
  if (ep_disconnected) return -1;
  if (poll(&pfd, 1, timeout_ms == EP_PORT_FOREVER ? -1 : (int)timeout_ms) <= 0) return -1;
  if (recv(ep_connection, &byte, 1, 0) != 1) {
    ep_disconnected = 1;
    return -1;
  }
  return byte;
}

void ep_port_write(const uint8_t *data, uint32_t length) {
  while (!ep_disconnected && length > 0) {
    ssize_t sent = send(ep_connection, data, length, MSG_NOSIGNAL);
    if (sent <= 0) {
      ep_disconnected = 1;
      return;
    }
    data += sent;
    length -= (uint32_t)sent;
  }
}

uint64_t ep_timer_ticks(void) {
  struct timespec now;
  ep_note_stack();
  clock_gettime(CLOCK_MONOTONIC, &now);
  return (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
}

uint32_t ep_stack_high_water(void) { return (uint32_t)(ep_stack_base - ep_stack_deepest); }

static int ep_listen(unsigned short port) {
  struct sockaddr_in address = {0};
  socklen_t size = sizeof address;
  int one = 1, server = socket(AF_INET, SOCK_STREAM, 0);
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(port);
  setsockopt(server, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (server < 0 || bind(server, (struct sockaddr *)&address, sizeof address) != 0 || listen(server, 1) != 0 ||
      getsockname(server, (struct sockaddr *)&address, &size) != 0) {
    perror("ep_host: listen");
    exit(1);
  }
  printf("EP_LISTEN %u\n", ntohs(address.sin_port));
  fflush(stdout);
  return server;
}

int main(int argc, char **argv) {
  static ep_proto proto;
  char base;
  int one = 1, server = ep_listen((unsigned short)(argc > 1 ? atoi(argv[1]) : 0));
  ep_stack_base = &base;
  ep_proto_init(&proto, ep_model_get());
  for (;;) {
    ep_connection = accept(server, NULL, NULL);
    if (ep_connection < 0) continue;
    setsockopt(ep_connection, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    ep_disconnected = 0;
    while (!ep_disconnected) ep_proto_step(&proto, EP_PORT_FOREVER);
    close(ep_connection);
  }
}
