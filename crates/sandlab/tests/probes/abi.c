/* Tries socket(2) through every x86 ABI an x86_64 kernel has, each in its own child (a
 * seccomp bad-arch action may kill the caller), and prints one line per path:
 * "<path> <result>", where the result is the fd or -errno, or "signal <n>".
 * Built static and non-PIE so the i386 argument block lives below 4 GiB. */
#include <errno.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define AF_INET_ 2
#define AF_VSOCK_ 40
#define SOCK_STREAM_ 1

static long int80(long nr, long a, long b, long c) {
    long ret;
    __asm__ volatile("int $0x80" : "=a"(ret) : "a"(nr), "b"(a), "c"(b), "d"(c) : "memory");
    return ret;
}

static long x32(long nr, long a, long b, long c) {
    long ret;
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "a"(nr | 0x40000000L), "D"(a), "S"(b), "d"(c)
                     : "rcx", "r11", "memory");
    return ret;
}

static unsigned int vsock_args[3] = {AF_VSOCK_, SOCK_STREAM_, 0};
static unsigned int inet_args[3] = {AF_INET_, SOCK_STREAM_, 0};

static long attempt(int which) {
    switch (which) {
    case 0: return int80(102, 1, (long)vsock_args, 0); /* i386 socketcall(SYS_SOCKET) */
    case 1: return int80(102, 1, (long)inet_args, 0);
    case 2: return int80(359, AF_VSOCK_, SOCK_STREAM_, 0); /* i386 socket */
    case 3: return int80(359, AF_INET_, SOCK_STREAM_, 0);
    case 4: return x32(41, AF_VSOCK_, SOCK_STREAM_, 0); /* x32 socket */
    case 5: return x32(41, AF_INET_, SOCK_STREAM_, 0);
    case 6: { long r = syscall(SYS_socket, AF_VSOCK_, SOCK_STREAM_, 0); return r < 0 ? -errno : r; }
    default: { long r = syscall(SYS_socket, AF_INET_, SOCK_STREAM_, 0); return r < 0 ? -errno : r; }
    }
}

int main(void) {
    const char *names[] = {"i386_socketcall_vsock", "i386_socketcall_inet", "i386_socket_vsock",
                           "i386_socket_inet", "x32_socket_vsock", "x32_socket_inet",
                           "native_socket_vsock", "native_socket_inet"};
    for (int i = 0; i < 8; i++) {
        int fds[2];
        if (pipe(fds) != 0) return 1;
        pid_t pid = fork();
        if (pid == 0) {
            long r = attempt(i);
            (void)!write(fds[1], &r, sizeof r);
            _exit(0);
        }
        close(fds[1]);
        long r = 0;
        ssize_t n = read(fds[0], &r, sizeof r);
        close(fds[0]);
        int status = 0;
        waitpid(pid, &status, 0);
        if (n == (ssize_t)sizeof r)
            printf("%s %ld\n", names[i], r);
        else if (WIFSIGNALED(status))
            printf("%s signal %d\n", names[i], WTERMSIG(status));
        else
            printf("%s none\n", names[i]);
    }
    return 0;
}
