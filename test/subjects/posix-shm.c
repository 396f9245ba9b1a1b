/*
 * posix-shm: POSIX shared memory and semaphores as glibc makes them
 * (shm_open and sem_open open with O_NOFOLLOW, which stays in the file's
 * flags): "kept", an shm object still linked in /dev/shm, open as fd 20 and
 * mapped; "gone", one unlinked at once (a ghost), open as fd 21 and mapped;
 * a named semaphore unlinked after sem_open (only its mapping is left), as
 * Python's multiprocessing leaves its locks. Each object holds seeded
 * data (subject_map_filled); the semaphore's value is 3.
 * After SIGTERM: each mapping holds the pattern, a write through fd 20 and
 * 21 is seen through its mapping (one object again), the semaphore can be
 * taken three times and no more. (Whether the restored fds show O_NOFOLLOW
 * is not checked: no fcntl sets it again on an open file.)
 */
#define _GNU_SOURCE
#include "subject.h"

#include <errno.h>
#include <fcntl.h>
#include <semaphore.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#define SIZE (3 * 4096 + 100)

static unsigned char *make(const char *name, int keep_at, int unlink_now, uint64_t *sum)
{
	int fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
	if (fd < 0 || ftruncate(fd, SIZE) != 0)
		subject_fail("shm_open %s: errno %d", name, errno);
	if (unlink_now && shm_unlink(name) != 0)
		subject_fail("shm_unlink %s: errno %d", name, errno);
	return subject_map_filled(fd, SIZE, SIZE, 51, sum, keep_at, name);
}

static void same_object(int fd, unsigned char *p, uint64_t sum, const char *what)
{
	if (subject_hash(p, SIZE) != sum)
		subject_fail("%s: the mapping's contents", what);
	unsigned char c = 0xa7;
	if (pwrite(fd, &c, 1, 4097) != 1 || p[4097] != 0xa7)
		subject_fail("%s: a write through the fd is not seen through the mapping", what);
}

int main(int argc, char **argv)
{
	subject_init(argc, argv);
	char kept[64], gone[64], sem[64];
	snprintf(kept, sizeof kept, "/criu-ts-subject-%d-kept", getpid());
	snprintf(gone, sizeof gone, "/criu-ts-subject-%d-gone", getpid());
	snprintf(sem, sizeof sem, "/criu-ts-subject-%d-sem", getpid());
	uint64_t sa, sb;
	unsigned char *a = make(kept, 20, 0, &sa);
	unsigned char *b = make(gone, 21, 1, &sb);
	sem_t *s = sem_open(sem, O_CREAT | O_EXCL, 0600, 3);
	if (s == SEM_FAILED)
		subject_fail("sem_open: errno %d", errno);
	sem_unlink(sem);

	subject_ready();
	subject_wait_term();

	same_object(20, a, sa, "linked shm");
	same_object(21, b, sb, "unlinked shm");
	shm_unlink(kept);
	for (int i = 0; i < 3; i++)
		if (sem_trywait(s) != 0)
			subject_fail("semaphore taken %d times only", i);
	if (sem_trywait(s) == 0 || errno != EAGAIN)
		subject_fail("semaphore taken a fourth time");
	subject_pass();
}
