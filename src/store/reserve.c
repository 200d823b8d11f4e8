/*
 * reserve.c: disk space set aside for a full disk (issue #12, risk 3).
 *
 * A store file on a disk that fills up cannot always recover by itself even after
 * its writes stop: SQLite's checkpoint must grow the database file by up to the
 * WAL's size before the WAL can be truncated, and that growth needs the very space
 * that is missing. So `serve` keeps a file of real, allocated blocks next to the
 * store ("<store>-reserve"); when a write fails with a full disk, the file is
 * deleted, which gives the checkpoint its room, and it is allocated again once the
 * store has recovered. The space is allocated with posix_fallocate (not a sparse
 * file), so it is really held.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"
#include "store/store_int.h"

int store__reserve_take(const char *path, int64_t bytes)
{
    struct stat st;
    if (bytes <= 0)
        return 0;
    if (stat(path, &st) == 0 && st.st_size >= bytes && (int64_t)st.st_blocks * 512 >= bytes)
        return 0; /* already there, allocated */
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return BH_EIO;
    int err = posix_fallocate(fd, 0, (off_t)bytes);
    if (err == 0)
        err = fsync(fd) == 0 ? 0 : errno;
    close(fd);
    if (err != 0) {
        /* A partial reserve would hold space without the promise: none at all. */
        unlink(path);
        return err == ENOSPC ? BH_ENOSPC : BH_EIO;
    }
    return 0;
}

bool store__reserve_release(const char *path)
{
    return unlink(path) == 0;
}
