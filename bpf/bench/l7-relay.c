// A TCP relay in the L7 proxy's place, for `npm run bench:l7 -- --relay`: the floor of what a
// proxy at that position costs (the datapath's steering, two TCP connections per client
// connection, the upstream from the client's own address and port), with no HTTP work and no
// Node. It listens like the agent's proxy (127.0.0.1:PORT, IP_TRANSPARENT, SO_MARK 0x100),
// connects upstream like it (bound to the client's address and port, SO_MARK 0x400) and copies
// bytes both ways. Single-threaded epoll; a short write waits for the socket to drain.
// Usage: l7-relay PORT (run inside the agent's network namespace). Prints READY when listening.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_FD 65536
#define BUF 65536

static int peer[MAX_FD];

static int set_opts(int fd, unsigned mark) {
	int one = 1;
	return setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, sizeof(mark)) || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	       setsockopt(fd, SOL_IP, IP_TRANSPARENT, &one, sizeof(one));
}

static void nodelay(int fd) {
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static void drop(int ep, int fd) {
	int p = peer[fd];
	epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
	close(fd);
	if (p >= 0) {
		epoll_ctl(ep, EPOLL_CTL_DEL, p, NULL);
		close(p);
		peer[p] = -1;
	}
	peer[fd] = -1;
}

// Writes all of buf to fd; on a full socket buffer waits for it to drain (the bench's messages
// are small, this almost never happens). Returns -1 on error.
static int write_all(int fd, const char *buf, ssize_t len) {
	ssize_t off = 0;
	while (off < len) {
		ssize_t w = send(fd, buf + off, len - off, MSG_NOSIGNAL);
		if (w >= 0) {
			off += w;
			continue;
		}
		if (errno != EAGAIN && errno != EINTR)
			return -1;
		fd_set ws;
		FD_ZERO(&ws);
		FD_SET(fd, &ws);
		select(fd + 1, NULL, &ws, NULL, NULL);
	}
	return 0;
}

int main(int argc, char **argv) {
	if (argc != 2) {
		fprintf(stderr, "usage: l7-relay PORT\n");
		return 2;
	}
	for (int i = 0; i < MAX_FD; i++)
		peer[i] = -1;
	struct sockaddr_in la = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[1]))};
	inet_pton(AF_INET, "127.0.0.1", &la.sin_addr);
	int l = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (l < 0 || set_opts(l, 0x100) || bind(l, (struct sockaddr *)&la, sizeof(la)) || listen(l, 511)) {
		perror("l7-relay: listen");
		return 1;
	}
	int ep = epoll_create1(0);
	struct epoll_event ev = {.events = EPOLLIN, .data.fd = l};
	epoll_ctl(ep, EPOLL_CTL_ADD, l, &ev);
	printf("READY\n");
	fflush(stdout);
	static char buf[BUF];
	struct epoll_event evs[64];
	for (;;) {
		int n = epoll_wait(ep, evs, 64, -1);
		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd;
			if (fd == l) {
				struct sockaddr_in src, dst;
				socklen_t sl = sizeof(src), dl = sizeof(dst);
				int c = accept4(l, (struct sockaddr *)&src, &sl, SOCK_NONBLOCK);
				if (c < 0)
					continue;
				getsockname(c, (struct sockaddr *)&dst, &dl);
				int u = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
				if (u < 0 || c >= MAX_FD || u >= MAX_FD || set_opts(u, 0x400) || bind(u, (struct sockaddr *)&src, sizeof(src)) ||
				    (connect(u, (struct sockaddr *)&dst, sizeof(dst)) && errno != EINPROGRESS)) {
					close(c);
					if (u >= 0)
						close(u);
					continue;
				}
				nodelay(c);
				nodelay(u);
				peer[c] = u;
				peer[u] = c;
				struct epoll_event ec = {.events = EPOLLIN, .data.fd = c}, eu = {.events = EPOLLIN, .data.fd = u};
				epoll_ctl(ep, EPOLL_CTL_ADD, c, &ec);
				epoll_ctl(ep, EPOLL_CTL_ADD, u, &eu);
				continue;
			}
			if (peer[fd] < 0)
				continue;
			ssize_t r = read(fd, buf, sizeof(buf));
			if (r < 0 && (errno == EAGAIN || errno == EINTR))
				continue;
			if (r <= 0 || write_all(peer[fd], buf, r) < 0)
				drop(ep, fd);
		}
	}
}
