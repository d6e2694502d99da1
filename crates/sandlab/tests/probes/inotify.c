/* Opens inotify instances until the kernel refuses or `max` are open, prints
 * "<count> <errno>" (errno 0 when it stopped at max), and with "hold" keeps them open
 * until killed. Usage: inotify MAX [hold] */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

int main(int argc, char **argv) {
    long max = argc > 1 ? atol(argv[1]) : 100000;
    long n = 0;
    int err = 0;
    while (n < max) {
        if (inotify_init1(IN_CLOEXEC) < 0) {
            err = errno;
            break;
        }
        n++;
    }
    printf("%ld %d\n", n, err);
    fflush(stdout);
    if (argc > 2 && strcmp(argv[2], "hold") == 0)
        for (;;) pause();
    return 0;
}
