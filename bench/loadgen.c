/* A small load generator for workloads redis-benchmark cannot express
 * (a whole transaction per request, a subscriber that only listens).
 *
 *   loadgen HOST PORT CONNS SECONDS LINES REQUEST_FILE req
 *       Each of CONNS connections sends the bytes of REQUEST_FILE, waits until
 *       LINES CRLF-terminated lines have come back, and sends it again, for
 *       SECONDS. Prints the number of completed requests.
 *   loadgen HOST PORT CONNS SECONDS LINES REQUEST_FILE listen
 *       Each connection sends REQUEST_FILE once (a SUBSCRIBE), then only
 *       reads; prints the number of LINES-line messages received in total,
 *       the first LINES lines (the subscribe confirmation) not counted.
 *
 * Lines are counted by CRLF, so the replies must not hold CRLF inside bulk
 * strings (the benchmarks' values do not). One thread, epoll: written in C
 * so that the client is not what limits the servers being compared.
 */
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
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct conn {
    int fd;
    long lines;      /* lines read towards the current reply */
    int last_cr;     /* the previous read ended with '\r' */
    long done;       /* completed requests (or messages) */
};

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void send_all(int fd, const char *buf, size_t len) {
    while (len) {
        ssize_t n = write(fd, buf, len);
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN) continue;
            perror("write");
            exit(1);
        }
        buf += n;
        len -= (size_t)n;
    }
}

int main(int argc, char **argv) {
    if (argc != 8) {
        fprintf(stderr, "usage: loadgen HOST PORT CONNS SECONDS LINES REQUEST_FILE req|listen\n");
        return 2;
    }
    const char *host = argv[1];
    int port = atoi(argv[2]), nconns = atoi(argv[3]);
    double seconds = atof(argv[4]);
    long lines = atol(argv[5]);
    int listen_mode = strcmp(argv[7], "listen") == 0;

    FILE *f = fopen(argv[6], "rb");
    if (!f) { perror("request file"); return 2; }
    fseek(f, 0, SEEK_END);
    long reqlen = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *req = malloc(reqlen);
    if (fread(req, 1, reqlen, f) != (size_t)reqlen) { perror("read"); return 2; }
    fclose(f);

    int ep = epoll_create1(0);
    struct conn *conns = calloc(nconns, sizeof *conns);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, host, &addr.sin_addr);
    for (int i = 0; i < nconns; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) { perror("connect"); return 1; }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        conns[i].fd = fd;
        conns[i].lines = listen_mode ? -lines : 0; /* listen: skip the confirmation */
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &conns[i]};
        epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    }
    for (int i = 0; i < nconns; i++) send_all(conns[i].fd, req, reqlen);

    char buf[1 << 16];
    struct epoll_event events[256];
    double end = now() + seconds;
    while (now() < end) {
        int n = epoll_wait(ep, events, 256, 100);
        for (int e = 0; e < n; e++) {
            struct conn *c = events[e].data.ptr;
            ssize_t got = read(c->fd, buf, sizeof buf);
            if (got <= 0) {
                if (got < 0 && (errno == EINTR || errno == EAGAIN)) continue;
                fprintf(stderr, "connection closed by the server\n");
                epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
                continue;
            }
            for (ssize_t i = 0; i < got; i++) {
                if (buf[i] == '\n' && (i ? buf[i - 1] == '\r' : c->last_cr)) {
                    if (++c->lines == lines) {
                        c->lines = 0;
                        c->done++;
                        if (!listen_mode) send_all(c->fd, req, reqlen);
                    }
                }
            }
            c->last_cr = buf[got - 1] == '\r';
        }
    }
    long total = 0;
    for (int i = 0; i < nconns; i++) total += conns[i].done;
    printf("%ld\n", total);
    return 0;
}
