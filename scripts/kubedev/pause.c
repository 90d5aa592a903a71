/* The pod sandbox's only process: it holds the pod's namespaces open, reaps the zombies of processes
 * that end up parented to it, and exits 0 on SIGINT/SIGTERM. Built static so it runs in a FROM-scratch
 * image (kube-dev-cluster's local pause image; no registry with the upstream one is reachable here). */
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static void stop(int signo) { (void)signo; _exit(0); }

static void reap(int signo) {
  (void)signo;
  while (waitpid(-1, NULL, WNOHANG) > 0) {
  }
}

int main(void) {
  struct sigaction down = {.sa_handler = stop};
  struct sigaction child = {.sa_handler = reap, .sa_flags = SA_NOCLDSTOP};
  if (getpid() != 1) {
    /* Not an error: upstream's pause warns the same way when run outside a fresh PID namespace. */
    (void)!write(2, "pause: not PID 1, still pausing\n", 32);
  }
  if (sigaction(SIGINT, &down, NULL) < 0 || sigaction(SIGTERM, &down, NULL) < 0 ||
      sigaction(SIGCHLD, &child, NULL) < 0) {
    return 1;
  }
  for (;;) {
    pause();
  }
}
